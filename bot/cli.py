"""``variance-bot``: ``report`` (no accounts needed), ``ask`` (needs an OpenAI key), ``serve`` (Slack) and ``web``.

Each subcommand imports its own module lazily so that ``report`` starts without loading the agent SDK or Slack.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: variance-bot <command> [options]

commands:
  report FILE        deterministic budget-vs-actual report (no Slack or OpenAI account needed)
  ask FILE QUESTION  stream the analyst's answer to a question (needs OPENAI_API_KEY)
  pack FILE -o XLSX  month-end variance pack: summary, bridge chart, material lines (commentary with a key)
  serve              run the Slack bot (Socket Mode with SLACK_APP_TOKEN, or --http --port N)
  teams              run the Teams bot (--port N: POST /api/messages, GET /healthz)
  teams-package      zip the Teams app package (-o app.zip) to upload in Teams
  web                serve the web chat on http://127.0.0.1:8080/ (--host H needs VARIANCE_WEB_TOKEN)

run 'variance-bot <command> --help' for the options of a command.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "report":
        from analyst.report import cli_main as report_main

        return report_main(rest)
    if command == "ask":
        from analyst.agent.cli import cli_main as ask_main

        return ask_main(rest)
    if command == "pack":
        from analyst.pack.cli import cli_main as pack_main

        return pack_main(rest)
    if command == "serve":
        from bot.app import cli_main as serve_main

        return serve_main(rest)
    if command == "teams":
        from bot.teams.server import cli_main as teams_main

        return teams_main(rest)
    if command == "teams-package":
        from bot.teams.package import cli_main as package_main

        return package_main(rest)
    if command == "web":
        from bot.web.cli import cli_main as web_main

        return web_main(rest)
    print(f"variance-bot: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2
