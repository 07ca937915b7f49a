"""Microsoft Teams: the analyst in 1:1 chats (files, native streaming) and group chats, on the Teams SDK.

- :mod:`bot.teams.server`: ``variance-bot teams`` (aiohttp; ``POST /api/messages``, ``GET /healthz``).
- :mod:`bot.teams.auth`: the inbound token check and the bot's own token.
- :mod:`bot.teams.sdk`: the SDK, imported and configured so that only our settings count.
- :mod:`bot.teams.handlers`: what the bot does with a message; :mod:`bot.teams.writer`: the answer into Teams.
- :mod:`bot.teams.pacing`: Teams' per-conversation limits and 429s (shared by every instance with ``REDIS_URL``).
- :mod:`bot.teams.files`: files sent in 1:1 chats; :mod:`bot.teams.package`: the app package.

Nothing here imports the SDK at module import time except through :mod:`bot.teams.sdk`.
"""
