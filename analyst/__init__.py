"""Variance Analyst's platform-free core: ingestion, the variance engine, the report and the agent.

Nothing here knows about Slack; front ends consume :mod:`analyst.events`.
"""
