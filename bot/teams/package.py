"""``variance-bot teams-package -o app.zip``: the Teams app package (manifest + icons) to upload in Teams.

The manifest (``app_package/manifest.json``) names the bot by ``TEAMS_APP_ID`` (or ``--app-id``): scopes personal
and groupChat, the commands "report" and "help", and file support (``supportsFiles``) so users can send files
in 1:1 chats. The icons are a 192×192 colour icon and a 32×32 white-on-transparent outline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

PACKAGE_DIR = Path(__file__).with_name("app_package")
FILES = ("manifest.json", "color.png", "outline.png")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def manifest(app_id: str) -> dict[str, object]:
    text = (PACKAGE_DIR / "manifest.json").read_text(encoding="utf-8").replace("${TEAMS_APP_ID}", app_id)
    data: dict[str, object] = json.loads(text)
    return data


def build_package(output: Path, app_id: str) -> Path:
    """Write the zip (manifest and icons at its root, as Teams expects)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest(app_id), indent=2, ensure_ascii=False))
        for name in FILES[1:]:
            archive.write(PACKAGE_DIR / name, arcname=name)
    return output


def cli_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="variance-bot teams-package", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="variance-analyst-teams.zip", help="zip file to write")
    parser.add_argument("--app-id", default=None, help="the bot's Microsoft App ID (default: TEAMS_APP_ID)")
    args = parser.parse_args(list(argv or []))
    app_id = (args.app_id or os.environ.get("TEAMS_APP_ID", "")).strip()
    if not _GUID.match(app_id):
        print(
            "variance-bot teams-package: give the bot's Microsoft App ID (a GUID) with --app-id or TEAMS_APP_ID",
            file=sys.stderr,
        )
        return 2
    path = build_package(Path(args.output), app_id)
    print(f"wrote {path} (upload it in Teams: Apps > Manage your apps > Upload an app)")
    return 0
