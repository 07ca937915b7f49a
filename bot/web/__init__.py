"""The web chat: ``variance-bot web``, an aiohttp server with a page that streams the analyst's answers (SSE).

- :mod:`bot.web.app`: the application, its routes, start and stop, the page, uploads and charts
  (:func:`create_web_app`);
- :mod:`bot.web.access`: access checks, security headers and the request log for every request;
- :mod:`bot.web.answers`: the answer stream (``GET /api/chat/stream``, Server-Sent Events);
- :mod:`bot.web.state`: what the handlers share (the app's state, ids and keys, JSON errors);
- :mod:`bot.web.uploads`: uploads read with the bot's readers in its worker processes;
- :mod:`bot.web.stream`: SSE frames and model text neutralised while it streams;
- :mod:`bot.web.settings`: the environment (``VARIANCE_WEB_TOKEN`` and the shared limits);
- :mod:`bot.web.cli`: the command;
- ``static/``: the page (HTML, CSS, JS) and markdown-it 14.3.3 (MIT, ``static/vendor``), served as they are.
"""
