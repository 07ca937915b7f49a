"""Clean split points for long Markdown."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render.markdown import is_clean_cut, split_markdown, split_point


def test_short_text_is_not_cut() -> None:
    assert split_point("hello", 10) == 5
    assert split_markdown("hello", 10) == ["hello"]


def test_prefers_paragraph_break_in_the_second_half() -> None:
    text = "a" * 30 + "\n\n" + "b" * 30 + "\nc" * 5 + "\n\n" + "d" * 50
    cut = split_point(text, 80)
    assert text[:cut].endswith("\n\n") and cut > 40


def test_never_cuts_inside_a_code_block() -> None:
    intro = "Intro paragraph.\n\n"
    code = "```python\n" + "".join(f"x{i} = {i}\n" for i in range(30)) + "```\n"
    text = intro + code + "\nAfter the code.\n"
    cut = split_point(text, len(intro) + 100)
    assert cut == len(intro)  # before the fence, not inside it
    parts = split_markdown(text, len(intro) + len(code) - 10)
    assert len(parts) == 3
    assert "".join(parts) == text
    for part in parts:
        assert part.count("```") in (0, 2)


def test_never_cuts_between_table_rows() -> None:
    table = "| a | b |\n|---|---|\n" + "".join(f"| {i} | {i * 2} |\n" for i in range(40))
    text = "Some intro text here.\n" + table + "\nAfter."
    parts = split_markdown(text, len(text) - 20)
    assert parts[0] == "Some intro text here.\n"
    assert all(not p.startswith("| 1") for p in parts[1:])


def test_list_items_are_good_cut_points() -> None:
    text = "Drivers:\n" + "".join(f"- driver {i} contributed a lot of the variance\n" for i in range(20))
    cut = split_point(text, 300)
    assert text[cut:].startswith("- driver")


def test_long_line_falls_back_to_sentence_then_space_then_hard_cut() -> None:
    sentence = "This is one sentence. " * 20
    cut = split_point(sentence, 100)
    assert sentence[:cut].endswith(". ")
    words = "word " * 50
    assert words[: split_point(words, 23)].endswith(" ")
    assert split_point("x" * 50, 20) == 20


def test_hard_cut_when_one_code_block_is_bigger_than_the_limit() -> None:
    code = "```\n" + "y" * 300 + "\n```"
    parts = split_markdown(code, 100)
    assert "".join(parts) == code and all(len(p) <= 100 for p in parts)


markdown_pieces = st.lists(
    st.sampled_from(
        [
            "Plain paragraph with several words in it.\n\n",
            "- a list item\n",
            "1. numbered item\n",
            "## Heading\n\n",
            "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n",
            "```\ncode line one\ncode line two\n```\n\n",
            "A sentence. Another sentence! A third? ",
            "x" * 40,
            "\n",
        ]
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(pieces=markdown_pieces, limit=st.integers(min_value=30, max_value=400))
def test_split_is_lossless_bounded_and_clean_when_possible(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    parts = split_markdown(text, limit)
    assert "".join(parts) == text
    assert all(len(p) <= limit for p in parts)
    assert all(p for p in parts[:-1])
    pos = 0
    for part in parts[:-1]:
        pos += len(part)
        # Every cut is clean unless no clean cut existed within the limit (a hard cut).
        if not is_clean_cut(text, pos):
            assert len(part) == limit
