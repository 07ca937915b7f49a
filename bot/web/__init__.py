"""The web chat: ``variance-bot web``, an aiohttp server with a page that streams the analyst's answers (SSE).

- :mod:`bot.web.app`: routes, access checks, the answer stream (:func:`create_web_app`);
- :mod:`bot.web.uploads`: uploads read with the bot's readers in its worker processes;
- :mod:`bot.web.stream`: SSE frames and model text neutralised while it streams;
- :mod:`bot.web.settings`: the environment (``VARIANCE_WEB_TOKEN`` and the shared limits);
- :mod:`bot.web.cli`: the command;
- ``static/``: the page (HTML, CSS, JS) and markdown-it 14.3.3 (MIT, ``static/vendor``), served as they are.
"""
