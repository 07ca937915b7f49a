"""Model text neutralised while it streams: whatever the split, the page receives neutralise(whole text)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.textfilter import neutralise
from bot.web.stream import InertText, sse_frame

PIECES = ["@channel", "@here", "evil.example.com", "https", "://", ":", "javascript", "<", "b>", "](", "[x]",
          "(", " ", "\n", "  ", "ok", "Q3", ".", "co", "m", "@", "all", "] (", "x.io/p", "Total", "1,234.56",
          "\u200b", "|", "---:", "**", "mailto", "tel", "ftp", "www", "a.b.c", "\t", "-", "<@U1>", "<!here>",
          "//", "foo", " : ", "]", "@john.doe", "q3.csv", "пример.рф"]


def stream(pieces: list[str]) -> str:
    inert = InertText()
    return "".join(inert.feed(p) for p in pieces) + inert.flush()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.data())
def test_any_split_gives_the_whole_texts_neutralisation(parts: list[str], data: st.DataObject) -> None:
    whole = "".join(parts)
    # Re-split the same text at arbitrary points, as a model's deltas would.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=10)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    assert stream(pieces) == neutralise(whole)


def test_text_streams_word_by_word_not_at_the_end() -> None:
    inert = InertText()
    assert inert.feed("Marketing is ") == "Marketing"  # the last complete word waits for the next one
    assert inert.feed("over budget") == " is"
    assert inert.feed(" by 4.8% ") == " over budget by"
    assert inert.flush() == " 4.8% "


def test_a_scheme_decided_by_the_next_word_is_never_sent_twice() -> None:
    inert = InertText()
    pieces = ["see https:", " ", "//x", " ok"]
    out = "".join(inert.feed(p) for p in pieces) + inert.flush()
    assert out == neutralise("see https: //x ok")


def test_a_split_domain_is_still_broken() -> None:
    inert = InertText()
    out = inert.feed("see evil.") + inert.feed("com now") + inert.flush()
    assert out == neutralise("see evil.com now") and "evil.com" not in out


def test_sse_frame_is_one_data_line() -> None:
    frame = sse_frame({"delta": "line one\nline two"})
    assert frame == b'data: {"delta":"line one\\nline two"}\n\n'
    assert sse_frame({"tool_name": "x", "status": "started"}, event="tool").startswith(b"event: tool\ndata: ")
