"""State that several bot instances share through Redis (``REDIS_URL``); without it, the in-process pieces in
``bot.conversations``, ``bot.limits`` and ``bot.render`` hold the same state for one process.

Each piece here offers the same small interface as its in-process twin, so the rest of the bot does not know
which it has:

- :mod:`bot.state.claims`: claim an event id (or a message's channel + ts) once across instances.
- :mod:`bot.state.limits`: per-user and per-workspace answer limits counted across instances.
- :mod:`bot.state.window`: one rolling Slack budget per workspace x method (the pacing module's window seam),
  with a shared 429 pause.
- :mod:`bot.state.memory`: conversation memory (the Agents SDK's ``RedisSession``, attributed, with retention and
  deletion); :mod:`bot.state.overrides`: a conversation's overrides; :mod:`bot.state.datasets`: dataset sources.
- :mod:`bot.state.call_log`: Teams' per-conversation call windows and 429 pause, for every instance;
  :mod:`bot.state.teams_datasets`: a Teams conversation's dataset source.
- :mod:`bot.state.registry`: running answers with a lease and heartbeat; Stop reaches the owning instance;
  survivors adopt answers whose instance died.

Every script reads Redis' own clock (``TIME``), so instances with skewed clocks agree on windows and leases.
When Redis is slow or unreachable the callers degrade conservatively (see each module), never to "unlimited".
"""
