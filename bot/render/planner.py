"""The delivery planner: which of Slack's separate budgets carries an answer's next visible change.

Slack counts every method on its own, per app and workspace, so a writer that only edits has one budget
(``chat.update``, Tier 3, about 50 a minute for the whole workspace) where it could have several. The planner
spends them in this order (every decision reads the workspace's shared windows, :mod:`bot.render.pacing`):

**Going live** (the answer's first text, :meth:`bot.render.writer.AnswerWriter._go_live`):

1. A *native stream* where one may start (a reply in a thread of a DM or an assistant thread, admitted by the
   Tier-2 start/stop windows): ``chat.startStream`` carries the first text, ``chat.appendStream`` (Tier 4) the
   rest, ``chat.stopStream`` the tail and the final blocks. No ``chat.update`` at all.
2. An *edited message*: the first text rides on ``chat.postMessage`` (per-channel budget, about 1 a second; each
   answer usually has its own DM), later text and the final are coalesced edits. Chosen while the edit window
   has room for it (:func:`edits_short`: at least ``live_edit_room`` units beyond every live message's reserved
   final).
3. *Reposts* when it has not but the workspace's ``chat.delete`` window has plenty of room (:func:`rolls_fit`):
   one live message, replaced every ``repost_interval`` by a new post showing the text so far, the old one
   deleted. The thread ends with one message, like an edited answer; it costs a delete per change, so only a
   few answers at a time may go this way.
4. *Parts* when neither has room (a busy minute, or many answers at once): the complete blocks written so far are
   posted as a message that is final from birth (``markdown_text``, no Stop button), the next ones at most every
   ``part_interval`` (stretched by :meth:`SlackBudget.part_interval` so a workspace's posts stay around
   five a second), the rest with the final. Nothing is edited or deleted: an answer in parts costs only posts.
   Parts are cut at block boundaries (:func:`bot.render.markdown.last_block_cut`), so the thread is the answer
   split as overflow would split it, and only in a thread (never a run of top-level messages). Stop is the
   user typing "stop" in the thread (:mod:`bot.listeners.stop_words`), as there is no button to press.

**A placeholder** (an answer whose text is slow to come, e.g. a big file being read; the 👀 reaction or the
assistant status already acknowledges the question) costs a unit later: its first text is an edit, or a post
plus a ``chat.delete``. So it is posted only while the edit window can pay for its first text and its final
beyond what every live message holds (:func:`placeholder_fits`); otherwise the answer waits for its first text
to ride on the post. When a placeholder's first text is ready and the edit window can't serve one more live
message, the text is posted as the new live message (with its Stop button, exactly once by its marker) and the
placeholder deleted after it, while the delete window keeps room for others' finals
(:func:`first_text_by_repost`); the answer then goes on as an edited message (more reposts would spend the
deletes finals need). Otherwise the first text waits for its edit (first texts outrank progress).

**The final** of an edited message (:meth:`bot.render.finals.FinalDelivery._deliver_final`):

- an edit, when the ``chat.update`` window can take it now (:func:`final_waits` is False);
- else *post + delete*: the final is posted as a new message (exactly once, by its marker) and the live
  message retired with ``chat.delete`` (Tier 3, its own window), post first, delete after, so no text is
  ever lost and the beginning is shown twice only for the moment between the two calls. Only while the
  delete window has room; otherwise the edit is awaited (finals outrank every other edit).
- A native stream ends with ``chat.stopStream`` carrying the tail and the feedback blocks (no edit when the
  final text extends what was streamed).
- A message replaced by reposts ends the same way (an edit if the window has room, else a last repost).
- Parts already posted stay as they are; the rest is posted, 👍/👎 under the last.
- An answer whose final text is ready before any text was posted: the final rides on the first post.

Priorities hold across all of this: within the edit window finals outrank first texts, which outrank progress
(:mod:`bot.render.scheduler`); a first text rarely waits for the edit window (it rides on a post, a stream
start, a part, or replaces its placeholder by a post), so first texts are not starved whatever the window
holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.render.windows import PLACEHOLDER_UNITS

if TYPE_CHECKING:
    from bot.render.pacing import SlackBudget


async def edits_short(budget: SlackBudget, team_id: str, live_edit_room: int) -> bool:
    """Whether the edit window can't serve one more edited message (fewer than ``live_edit_room`` units beyond
    the finals live messages hold): the answer goes live by reposts or in parts (only a reply in a thread)."""
    if live_edit_room <= 0:
        return False
    updates = budget.scheduler(team_id, "chat.update")
    return await updates.room_beyond_reservations() < live_edit_room


# A 429 pause of the edit window longer than this (seconds left) lets a placeholder's first text be reposted.
LONG_PAUSE_S = 2.0
# Units of the chat.delete window an answer going live by reposts wants free (times the answers reposting now).
ROLL_DELETE_ROOM = 15
# Units every repost leaves free for the finals of other answers (each may need a post + delete).
ROLL_KEEP = 5


async def rolls_fit(budget: SlackBudget, team_id: str) -> bool:
    """Whether an answer the edit window can't serve may go live by reposts (see the module docstring)."""
    room = await budget.scheduler(team_id, "chat.delete").room()
    return room >= ROLL_DELETE_ROOM * (budget.live_in(team_id, "reposts") + 1)


async def roll_now(budget: SlackBudget, team_id: str) -> bool:
    """Whether one more live repost may spend a delete now."""
    room = await budget.scheduler(team_id, "chat.delete").room()
    return room > ROLL_KEEP + budget.live_in(team_id, "reposts")


async def placeholder_fits(budget: SlackBudget, team_id: str, live_edit_room: int) -> bool:
    """Whether a placeholder may be posted for an answer whose text is slow to come: the edit window can pay
    for its first text and its final beyond what every live message holds for both (claimed at once, for every
    instance). Otherwise the answer stays acknowledged by the 👀 reaction (or the assistant status) and its
    first text rides on the post. When True the placeholder counts as held until the writer's
    ``live_ended(team_id, "placeholders")``."""
    return await budget.claim_placeholder(team_id, max(live_edit_room, PLACEHOLDER_UNITS))


async def first_text_by_repost(budget: SlackBudget, team_id: str, live_edit_room: int) -> bool:
    """Whether a placeholder's first text goes out as a new post (the placeholder deleted after it) rather than
    as an edit: the edit window can't serve one more live message (or a 429 pauses it long), and the delete window has
    room beyond what the finals the edit window can't take now will need (each a post + delete)."""
    updates = budget.scheduler(team_id, "chat.update")
    # A 429 holds every edit until Retry-After has passed: a long pause counts as a spent window (a short one is
    # waited out: a repost moves the message and costs a delete).
    paused = updates.paused_until - budget.clock() > LONG_PAUSE_S
    if not paused and not await edits_short(budget, team_id, live_edit_room):
        return False
    # Finals the edit window can't take now (each a post + delete) keep their deletes.
    finals_over = max(0, -await updates.room_beyond_reservations())
    room = await budget.scheduler(team_id, "chat.delete").room()
    return room > ROLL_KEEP + budget.live_in(team_id, "reposts") + finals_over


async def final_waits(budget: SlackBudget, team_id: str) -> bool:
    """Whether a final edit queued now would wait for the ``chat.update`` window (it is spent, or every unit
    left is wanted by finals queued before it)."""
    return await budget.scheduler(team_id, "chat.update").final_room() < 0


async def delete_room(budget: SlackBudget, team_id: str) -> bool:
    """Whether the workspace's ``chat.delete`` window can retire a message now."""
    return await budget.scheduler(team_id, "chat.delete").room() > 0
