"""The web chat in a real browser: Debian's headless Chromium driven by Selenium through chromedriver.

One Chromium for the whole test session; one server (the real app and the fake OpenAI server, on their own event
loop in a thread, since Selenium's calls block) for this module. Screenshots go to ``$VARIANCE_SCREENSHOT_DIR``
when it is set, else to a temporary folder (the path is printed).

Without Chromium the tests skip, except in CI (``CI=true``), where a missing browser is a failure: ``.ci/run``
installs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from analyst.agent import AgentSettings
from bot.files import WorkerPool
from bot.web.app import STATE_KEY, create_web_app
from bot.web.settings import WebSettings
from tests.fakes.openai_server import FakeOpenAI, RecordedRequest, Turn, error, hang, text, tool_call, tool_calls
from tests.web.helpers import EXAMPLE

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
IN_CI = os.environ.get("CI", "").lower() == "true"
WAIT_S = 40

ANSWER = """## Marketing is 252,864 over budget (+4.8%)

Marketing spent **5,556,064** against a budget of **5,303,200**. Four accounts explain the whole overspend; the \
rest of the department came in slightly under plan.

| Account | Actual | Budget | Variance | Var % |
|---|---:|---:|---:|---:|
| Events & Conferences | 598,450 | 405,000 | +193,450 | +47.8% |
| Paid Advertising | 1,717,768 | 1,686,400 | +31,368 | +1.9% |
| Travel & Entertainment | 107,938 | 81,000 | +26,938 | +33.3% |
| Sponsorships | 156,744 | 135,000 | +21,744 | +16.1% |
| Other accounts (4) | 2,975,164 | 2,995,800 | −20,636 | −0.7% |

### What drove it
- **Events & Conferences** is the one material line: +193,450 (+47.8%), about three quarters of the overspend.
- **Travel & Entertainment** (+33.3%) follows the event calendar.
- **Salaries & Wages** ran 17,604 under budget and offset part of it.

Next step: ask the events owner for the conference commitments behind the overrun.
"""
UNIQUE_SENTENCE = "Four accounts explain the whole overspend"


# ----------------------------------------------------------------------------------------------------
# The browser (once per session) and the server (once per module)


def _chromium_or_skip() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    missing = "Debian's chromium and chromium-driver are not installed (/usr/bin/chromium, /usr/bin/chromedriver)"
    if IN_CI:
        pytest.fail(f"{missing}: .ci/run must install them in CI")
    pytest.skip(f"{missing}; install them with: apt-get install -y chromium chromium-driver")


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _chromium_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for a browser on the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1440,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class LiveServer:
    """The web app and the fake model server on an event loop of their own (Selenium blocks its caller)."""

    def __init__(self, workers: WorkerPool, data_dir: Path) -> None:
        self.workers = workers
        self.data_dir = data_dir
        self.scenario = "answer"  # what the fake model does: answer | hang | slow | fail
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="web-test-server", daemon=True)
        self.fake: FakeOpenAI | None = None
        self.runner: Any = None
        self.url = ""

    def respond(self, request: RecordedRequest) -> Turn:
        after_tool = any(
            isinstance(item, dict) and item.get("type") == "function_call_output"
            for item in request.json.get("input") or []
        )
        if self.scenario == "hang":
            return hang("Let me look at the marketing lines ")
        if self.scenario == "fail":
            return error(503)
        if not after_tool:
            if self.scenario == "answer":  # the numbers and a chart of them, as the agent does when asked
                return tool_calls(
                    ("breakdown", {"by": ["Department"]}), ("make_chart", {"kind": "bars", "dimension": "Department"})
                )
            return tool_call("breakdown", {"by": ["Department"]})
        if self.scenario == "slow":  # slow once (about 12 s, time to cut the connection), then quick
            self.scenario = "answer"
            return text(ANSWER, chunk=8, delay=0.1)
        return text(ANSWER, chunk=8, delay=0.005)

    def call(self, make: Callable[[], Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.call(self._start)

    async def _start(self) -> None:
        from aiohttp import web

        self.fake = FakeOpenAI(responder=self.respond)
        await self.fake.start()
        agent = AgentSettings(
            api_key="sk-test", base_url=self.fake.base_url, model="gpt-test", timeout=10, data_dir=self.data_dir
        )
        app = create_web_app(WebSettings(agent=agent, keep_alive_s=2.0), workers=self.workers)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def drop_connections(self) -> int:
        """Cut every open connection from the server side, as a proxy restart or a network change would."""

        async def drop() -> int:
            handlers = self.runner.server.connections
            for handler in handlers:
                if handler.transport is not None:
                    handler.transport.abort()
            return len(handlers)

        return int(self.call(drop))

    def streams(self) -> int:
        async def count() -> int:
            return len(self.runner.app[STATE_KEY].runs)

        return int(self.call(count))

    def stop(self) -> None:
        async def stop() -> None:
            await self.runner.cleanup()
            assert self.fake is not None
            await self.fake.stop()

        self.call(stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(workers: WorkerPool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _chromium_or_skip()
    server = LiveServer(workers, tmp_path_factory.mktemp("web-data"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("VARIANCE_SCREENSHOT_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------------------------------
# Page helpers

# Counts EventSources and keeps them, so a test can check that each one was closed.
TRACK_EVENT_SOURCES = """
(() => {
  if (window.__sources) return;  // registered once per test that opens the page: wrap once
  const Real = window.EventSource;
  window.__sources = [];
  function Tracked(url, init) { const es = new Real(url, init); window.__sources.push(es); return es; }
  Tracked.prototype = Real.prototype;
  Tracked.CONNECTING = 0; Tracked.OPEN = 1; Tracked.CLOSED = 2;
  window.EventSource = Tracked;
})();
"""

# Records every label the tool indicator shows while it is visible, and every answer state line shown
# ("Reconnecting in 1 s…"), however briefly.
RECORD_TOOL_LABELS = """
window.__toolLabels = [];
window.__states = [];
function record(list, selector) {
  document.querySelectorAll(selector).forEach((node) => {
    const label = node.textContent;
    if (label && list[list.length - 1] !== label) list.push(label);
  });
}
new MutationObserver(() => {
  record(window.__toolLabels, '.tool-indicator:not([hidden]) .tool-label');
  record(window.__states, '.answer-state:not([hidden])');
}).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
"""

# WCAG contrast of every visible text element against its effective background; returns the failures.
CONTRAST_FAILURES = """
function rgb(value) { const m = value.match(/[\\d.]+/g) || ['0','0','0','0']; return m.map(Number); }
function lum(c) {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function background(node) {
  for (let n = node; n; n = n.parentElement) {
    const c = rgb(getComputedStyle(n).backgroundColor);
    if (c.length < 4 || c[3] > 0.9) return c;
  }
  return [255, 255, 255, 1];
}
const failures = [];
document.querySelectorAll('body *').forEach((node) => {
  const own = Array.from(node.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own || !node.offsetParent && getComputedStyle(node).position !== 'fixed') return;
  if (node.closest('.visually-hidden, [hidden], button:disabled, textarea:disabled')) return;
  const style = getComputedStyle(node);
  const fg = lum(rgb(style.color)), bg = lum(background(node));
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && +style.fontWeight >= 700);
  if (ratio < (large ? 3 : 4.5)) {
    failures.push(`${node.tagName}.${node.className} "${node.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
});
return failures;
"""


def _wait(driver: Any, condition: Callable[[Any], Any], timeout: float = WAIT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def _open_and_upload(driver: Any, live: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRACK_EVENT_SOURCES})
    driver.get(live.url + "/")
    driver.find_element(By.ID, "file-input").send_keys(str(EXAMPLE))
    _wait(driver, lambda d: d.find_element(By.ID, "report").is_displayed())
    driver.execute_script(RECORD_TOOL_LABELS)


def _ask_with_keyboard(driver: Any, question: str) -> None:
    from selenium.webdriver.common.keys import Keys

    active = driver.switch_to.active_element
    assert active.get_attribute("id") == "question", "after an upload the question box has the focus"
    active.send_keys(question)
    active.send_keys(Keys.ENTER)


def _answer_state(driver: Any) -> str | None:
    return driver.execute_script(
        "const a = document.querySelectorAll('article.answer');"
        "return a.length ? a[a.length - 1].dataset.state || null : null;"
    )


def _loaded_image(driver: Any, selector: str) -> dict[str, Any] | None:
    """The first image matching ``selector`` once the browser has decoded it: its alt text and pixel width."""
    result: dict[str, Any] | None = driver.execute_script(
        "const img = document.querySelector(arguments[0]);"
        "return img && img.complete && img.naturalWidth > 0 ? {alt: img.alt, width: img.naturalWidth} : null;",
        selector,
    )
    return result


def _save(driver: Any, folder: Path, name: str) -> Path:
    """A full-page screenshot (Chromium's own capture beyond the viewport)."""
    import base64

    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = folder / name
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"screenshot: {path}")
    return path


# ----------------------------------------------------------------------------------------------------
# Tests


def test_upload_ask_and_read_a_streamed_markdown_answer(browser: Any, live: LiveServer, screenshots: Path) -> None:
    from selenium.webdriver.common.by import By

    live.scenario = "answer"
    _open_and_upload(browser, live)
    report = browser.find_element(By.ID, "report")
    kpis = [e.text for e in report.find_elements(By.CSS_SELECTOR, ".kpi-value")]
    # A file mixing revenue and costs leads with the effect on profit, then each type's own variance; the
    # straight sum of revenue and costs (+623.5K) is not shown as "the variance".
    labels = [e.text for e in report.find_elements(By.CSS_SELECTOR, ".kpi-label")]
    assert [label.lower() for label in labels] == [
        "effect on profit", "revenue variance", "contra revenue variance", "costs variance",
    ]
    assert kpis == ["+248.8K", "+436.2K", "+113.6K", "+73.7K"]
    assert "Events & Conferences" in report.text
    # The bridge chart beside the summary, loaded (a decoded image, not a broken one).
    bridge = _wait(browser, lambda d: _loaded_image(d, "#report .report-chart img"))
    assert bridge["alt"].startswith("Profit: budget to actual")

    _ask_with_keyboard(browser, "Why is marketing over budget?")
    _wait(browser, lambda d: _answer_state(d) == "done")
    answer = browser.find_element(By.CSS_SELECTOR, "article.answer .answer-body")
    heading = answer.find_element(By.TAG_NAME, "h2")
    assert heading.text == "Marketing is 252,864 over budget (+4.8%)"
    table = answer.find_element(By.TAG_NAME, "table")
    assert [th.get_attribute("textContent") for th in table.find_elements(By.CSS_SELECTOR, "thead th")] == [
        "Account", "Actual", "Budget", "Variance", "Var %",
    ]
    first_row = [td.text for td in table.find_elements(By.CSS_SELECTOR, "tbody tr:first-child td")]
    assert first_row == ["Events & Conferences", "598,450", "405,000", "+193,450", "+47.8%"]
    assert answer.find_elements(By.TAG_NAME, "strong") and answer.find_elements(By.TAG_NAME, "li")
    assert answer.text.count(UNIQUE_SENTENCE) == 1
    # The agent's chart inline in the answer.
    chart = _wait(browser, lambda d: _loaded_image(d, "article.answer .answer-figures img"))
    assert chart["alt"].startswith("Budget vs actual by Department")
    assert chart["width"] >= 640

    labels = browser.execute_script("return window.__toolLabels")
    assert "Computing variance by Department…" in labels
    # After done the page closed its EventSource: the browser will not ask the same question again by itself.
    assert browser.execute_script("return window.__sources.map(s => s.readyState)") == [2]
    assert not browser.find_element(By.ID, "stop").is_displayed()
    assert browser.execute_script(CONTRAST_FAILURES) == []
    _save(browser, screenshots, "web-chat-answer.png")


def test_keyboard_focus_is_visible(browser: Any, live: LiveServer, screenshots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(live.url + "/")
    assert browser.execute_script(CONTRAST_FAILURES) == []
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the skip link comes first
    assert browser.switch_to.active_element.get_attribute("class") == "skip-link"
    browser.switch_to.active_element.send_keys(Keys.TAB)
    active = browser.switch_to.active_element
    assert active.get_attribute("id") == "choose-file"
    outline = browser.execute_script(
        "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, parseFloat(s.outlineWidth)]"
    )
    assert outline[0] != "none" and outline[1] >= 2
    _save(browser, screenshots, "web-chat-start.png")


def test_stop_ends_the_answer_and_the_model_call(browser: Any, live: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    live.scenario = "hang"
    _open_and_upload(browser, live)
    before = len(live.fake.requests) if live.fake else 0
    _ask_with_keyboard(browser, "Why is marketing over budget?")
    _wait(browser, lambda d: "Let me look" in d.find_element(By.CSS_SELECTOR, "article.answer .answer-body").text)
    question = browser.switch_to.active_element
    question.send_keys(Keys.TAB)  # from the question box to Stop
    stop = browser.switch_to.active_element
    assert stop.get_attribute("id") == "stop"
    stop.send_keys(Keys.ENTER)
    _wait(browser, lambda d: _answer_state(d) == "stopped")
    assert "Stopped." in browser.find_element(By.CSS_SELECTOR, "article.answer").text
    assert live.fake is not None
    live.call(lambda: live.fake.wait_for(lambda f: f.requests[before].disconnected and f.streams_open == 0, 15))
    _wait(browser, lambda d: live.streams() == 0)
    assert browser.switch_to.active_element.get_attribute("id") == "question"


def test_dropped_connection_reconnects_without_duplicated_text(
    browser: Any, live: LiveServer, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    live.scenario = "slow"
    _open_and_upload(browser, live)
    assert live.fake is not None
    before = len(live.fake.requests)
    _ask_with_keyboard(browser, "Why is marketing over budget?")
    body = (By.CSS_SELECTOR, "article.answer .answer-body")
    _wait(browser, lambda d: "Marketing spent" in d.find_element(*body).text)
    assert browser.find_element(By.ID, "stop").is_displayed()
    assert not browser.find_element(By.ID, "suggestions").is_displayed()
    _save(browser, screenshots, "web-chat-streaming.png")
    assert live.drop_connections() >= 1
    _wait(browser, lambda d: _answer_state(d) == "done")
    states = browser.execute_script("return window.__states")
    assert any(state.startswith("Connection lost. Reconnecting in") for state in states), states
    answer = browser.find_element(*body)
    assert answer.text.count(UNIQUE_SENTENCE) == 1
    assert len(answer.find_elements(By.TAG_NAME, "h2")) == 1
    assert len(answer.find_elements(By.TAG_NAME, "table")) == 1
    # Two streams (the dropped one and the retry), both closed; the question was asked twice, not more.
    assert browser.execute_script("return window.__sources.map(s => s.readyState)") == [2, 2]
    asked = [r for r in live.fake.requests[before:] if "function_call_output" not in json.dumps(r.json)]
    assert len(asked) == 2
    _save(browser, screenshots, "web-chat-reconnected.png")


def test_unreadable_upload_shows_the_servers_message(browser: Any, live: LiveServer, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    page = tmp_path / "export.csv"
    page.write_text("<!doctype html><html><body>Sign in</body></html>")
    browser.get(live.url + "/")
    browser.find_element(By.ID, "file-input").send_keys(str(page))
    status = browser.find_element(By.ID, "upload-status")
    _wait(browser, lambda d: "web page" in status.text)
    assert "error" in status.get_attribute("class")
    assert browser.find_element(By.ID, "question").get_attribute("disabled") is not None



def test_a_file_dropped_on_the_page_is_read(browser: Any, live: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    browser.get(live.url + "/")
    browser.execute_script(
        """
        const file = new File([arguments[0]], arguments[1], {type: 'text/csv'});
        const transfer = new DataTransfer();
        transfer.items.add(file);
        const zone = document.getElementById('dropzone');
        for (const type of ['dragenter', 'dragover', 'drop']) {
          zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }
        """,
        EXAMPLE.read_text(encoding="utf-8"),
        EXAMPLE.name,
    )
    _wait(browser, lambda d: d.find_element(By.ID, "report").is_displayed())
    assert "budget_vs_actual.csv" in browser.find_element(By.ID, "report").text
    assert browser.find_element(By.ID, "question").get_attribute("disabled") is None


def test_a_model_failure_is_shown_and_the_stream_closed(browser: Any, live: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    live.scenario = "fail"
    _open_and_upload(browser, live)
    _ask_with_keyboard(browser, "Why is marketing over budget?")
    _wait(browser, lambda d: _answer_state(d) == "error")
    state_line = browser.find_element(By.CSS_SELECTOR, "article.answer .answer-state")
    assert state_line.is_displayed() and state_line.text and "Traceback" not in state_line.text
    assert browser.execute_script("return window.__sources.map(s => s.readyState)") == [2]
    assert browser.find_element(By.ID, "ask").is_enabled()
