"""The analyst agent: an OpenAI Agents SDK run over the variance engine, as a typed event stream.

    from analyst.agent import AgentSettings, start_run

    run = start_run(question, context, conversation_id="T1:C1:170.1", settings=AgentSettings.from_env())
    async for event in run:  # TextDelta | ToolStarted | ToolFinished, then exactly one Done | Failed
        ...
    run.cancel()  # from any task: the stream ends with Failed(kind=CANCELLED, partial_text=...)

Importing this package loads the agents SDK (about 2 s); the report, ingestion and the engine never import it.
"""

from analyst.agent.run import AnalystRun, start_run
from analyst.agent.settings import AgentSettings, SettingsError

__all__ = ["AgentSettings", "AnalystRun", "SettingsError", "start_run"]
