"""Downloads from the TLS file host trust exactly the system CAs plus SSL_CERT_FILE / REQUESTS_CA_BUNDLE."""

from __future__ import annotations

import json
from types import SimpleNamespace

import aiohttp
import pytest

from bot.files import FileRejected
from bot.teams.auth import trust_context
from bot.teams.files import TeamsFile, attached_files, download
from bot.teams.settings import TeamsSettings
from tests.fakes.teams_server import FakeTeams


def _file(url: str) -> TeamsFile:
    return TeamsFile(name="budget.csv", file_type="csv", download_url=url, unique_id="1")


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
async def test_the_test_ca_is_trusted_through_either_variable(teams: FakeTeams, variable: str) -> None:
    env = {k: v for k, v in teams.env().items() if k != "SSL_CERT_FILE"} | {variable: teams.ca_file}
    settings = TeamsSettings.from_env(env, load_agent=False)
    assert settings.ca_files == (teams.ca_file,)
    url = teams.host_file("budget.csv", b"Account,Budget,Actual\nTravel,10,12\n", "text/csv")
    async with aiohttp.ClientSession() as session:
        content = await download(session, _file(url), ssl_context=trust_context(settings.ca_files), max_bytes=10_000)
    assert content == b"Account,Budget,Actual\nTravel,10,12\n"


async def test_an_untrusted_certificate_is_a_readable_refusal(teams: FakeTeams) -> None:
    url = teams.host_file("budget.csv", b"Account,Budget,Actual\n", "text/csv")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FileRejected) as refused:
            await download(session, _file(url), ssl_context=trust_context(()), max_bytes=10_000)
    assert refused.value.reason == "tls"
    assert "certificate is not trusted" in refused.value.user_message


async def test_a_file_over_the_limit_is_refused_while_downloading(teams: FakeTeams) -> None:
    url = teams.host_file("budget.csv", b"x" * 5000, "text/csv")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FileRejected) as refused:
            await download(session, _file(url), ssl_context=trust_context((teams.ca_file,)), max_bytes=1000)
    assert refused.value.reason == "too_large"


def test_only_download_info_attachments_are_files() -> None:
    attachments = [
        {"contentType": "text/html", "content": "<p>why?</p>"},
        {
            "contentType": "application/vnd.microsoft.teams.file.download.info",
            "name": "Q3 budget.xlsx",
            "content": {"downloadUrl": "https://tenant.sharepoint.com/x", "uniqueId": "u1", "fileType": "xlsx"},
        },
        {"contentType": "application/vnd.microsoft.card.adaptive", "content": {}},
    ]
    (file,) = attached_files(attachments)
    assert (file.name, file.extension, file.unique_id, file.is_table) == ("Q3 budget.xlsx", "xlsx", "u1", True)


def test_the_report_card_makes_hostile_labels_inert() -> None:
    from bot.teams.writer import report_card

    report = {
        "totals": {"actual": 120.0, "reference": 100.0, "variance": 20.0, "variance_pct": 20.0},
        "columns": {"actual": "Actual", "reference": "<at>Budget</at>"},
        "top_drivers": {
            "by": ["Account"],
            "unfavourable": [{"Account": "<at>Everyone</at> see https://evil.example.com", "variance": 20.0}],
        },
        "counts": {"lines": 1, "material": 1},
    }
    summary, card = report_card(report, "<b>q3</b>.csv")
    shown = json.dumps(card) + summary
    assert "<at>" not in shown and "<b>" not in shown and "https://evil" not in shown
    assert "+20.00 (+20.0%)" in shown


async def test_a_chart_too_large_for_one_teams_activity_is_left_out(monkeypatch) -> None:
    """A chart whose base64 would pass Teams' ~256 KB activity limit is not sent (the card stands alone)."""
    import analyst.charts as charts
    from bot.teams import charts as teams_charts
    from tests.fakes.teams_server import MAX_ACTIVITY_BYTES

    big = charts.Chart(kind="bridge", title="t", alt_text="t", png=b"\x89PNG" + b"0" * 200_000, filename="x.png")

    async def render(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        return big

    monkeypatch.setattr(charts, "render_chart_async", render)
    context = SimpleNamespace(dataset=None, options=None)
    assert await teams_charts.bridge_chart_message(context) is None  # type: ignore[arg-type]
    # The limit leaves room: the largest PNG sent fits in one activity once base64-encoded.
    largest = teams_charts.image_attachment(b"0" * teams_charts.MAX_INLINE_PNG_BYTES, "x.png")
    assert len(json.dumps({"type": "message", "text": "t" * 300, "attachments": [largest]})) < MAX_ACTIVITY_BYTES
