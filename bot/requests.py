"""An answer request: what a listener decided to answer, how its writer delivers it, and its registry record.

Listeners (``bot/listeners``) build an :class:`AnswerRequest` and hand it to :func:`bot.answers.answer`.
:func:`writer_settings` chooses how the answer is delivered (placeholder timing, native stream, status).
:func:`answer_record` is what the running-answers registry keeps of a request, and :func:`rerun_request` turns
such a record back into a request when a survivor re-runs an orphaned answer (:mod:`bot.shared`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Literal

from bot import uploads
from bot.conversations import StoredDataset
from bot.files import SlackFile
from bot.render import WriterSettings
from bot.state.registry import AnswerRecord

if TYPE_CHECKING:
    from bot.deps import BotDeps

Entry = Literal["mention", "dm", "command", "assistant"]


@dataclass(slots=True)
class AnswerRequest:
    """What a listener decided: where to answer, about which conversation, and what."""

    entry: Entry
    team: str
    channel: str
    thread_ts: str | None  # reply in this thread; None for a top-level message
    conversation_id: str
    question: str  # empty: the deterministic report
    new_file: SlackFile | None = None  # a file to read first (replacing the conversation's dataset)
    stored: StoredDataset | None = None  # the dataset to use when no new file is given
    event_id: str | None = None
    user: str | None = None
    assistant_thread: bool = False  # a thread in Slack's assistant container (status, native stream)
    source_ts: str | None = None  # the user's message (its ts): a deleted message drops the turn it produced
    # A re-run of an answer whose instance died (bot.shared): its id, its message (written in place), and how
    # many times survivors adopted it.
    answer_id: str | None = None
    adopt_ts: str | None = None
    adoptions: int = 0

    @property
    def wants_report(self) -> bool:
        return not self.question.strip()


# The first text rides on the post; a placeholder appears only if none has come by then.
PLACEHOLDER_AFTER_S = 1.5
# A file being read: the 👀 reaction says the question was seen; "Reading <file>…" is posted only when reading
# (and the first text) takes longer than this, so for a small file the first text rides on the post. A big file
# (or one of unknown size) takes seconds to read: it says so at once.
FILE_PLACEHOLDER_AFTER_S = 1.0
BIG_FILE_BYTES = 1_000_000


def writer_settings(request: AnswerRequest) -> WriterSettings:
    """How this answer is delivered (bot.render.modes): native streams in DMs' and assistant threads, status
    in the assistant container, 👍/👎 under every finished answer. A re-run into an orphan's message waits for
    its final edit rather than repost it: the answer stays where the person saw it begin."""
    in_dm = request.entry == "dm" or request.channel.startswith("D")
    placeholder_after: float | None = None if request.assistant_thread else PLACEHOLDER_AFTER_S
    if request.new_file is not None and not request.assistant_thread:
        # Reading a file: said by a placeholder (with a Stop button) at once for a big one, else only when slow.
        size = request.new_file.size
        placeholder_after = 0.0 if size is None or size >= BIG_FILE_BYTES else FILE_PLACEHOLDER_AFTER_S
    if uploads.wants_pack(request.question) and not request.assistant_thread:
        # A month-end pack's progress: say so at once (with a Stop button).
        placeholder_after = 0.0
    # Native streams only for a reply in a thread (a DM thread or an assistant thread). chat.startStream's
    # reference calls thread_ts optional, but whether a top-level DM message can stream is not verified (and
    # streamed messages are documented as replies to a user request), so a top-level DM answer is one edited
    # message instead (bot.render.planner); it streams natively once the person asks in a thread.
    settings = WriterSettings(
        placeholder_after=placeholder_after,
        native_stream=(in_dm or request.assistant_thread) and request.thread_ts is not None,
        feedback_buttons=True,
        assistant_status=request.assistant_thread,
    )
    return replace(settings, repost_final_after=None) if request.adopt_ts is not None else settings


def dataset_source(request: AnswerRequest) -> SlackFile | None:
    """The Slack file the answer's dataset comes from (a re-run reads it again): the new file, or the stored
    dataset's (a stub: ``files.info`` completes it)."""
    if request.new_file is not None:
        return request.new_file
    stored = request.stored
    if stored is None or not stored.file_id:
        return None
    filetype = stored.filename.rsplit(".", 1)[-1].lower() if "." in stored.filename else ""
    return SlackFile(stored.file_id, stored.filename, filetype, None, None, True)


def answer_record(request: AnswerRequest, answer_id: str, instance: str) -> AnswerRecord:
    """What the running-answers registry keeps of ``request``: enough to re-run it elsewhere, no file content."""
    source = dataset_source(request)
    return AnswerRecord(
        answer_id=answer_id,
        instance=instance,
        team=request.team,
        channel=request.channel,
        conversation_id=request.conversation_id,
        entry=request.entry,
        user=request.user or "",
        thread_ts=request.thread_ts,
        message_ts=request.adopt_ts,
        question=request.question,
        source=asdict(source) if source is not None else None,
        source_ts=request.source_ts,
        assistant_thread=request.assistant_thread,
        asked_at=time.time(),
        adoptions=request.adoptions,
    )


def rerun_request(deps: BotDeps, record: AnswerRecord) -> AnswerRequest | None:
    """The request that re-runs an orphaned answer here, into its message; None when it can't be re-run (no
    dataset source known, or a record this version does not understand). The dataset is read again from its
    source unless this instance holds that very file for the conversation already."""
    if record.source is None or record.entry not in ("mention", "dm", "command", "assistant"):
        return None
    try:
        source = SlackFile(**{k: record.source[k] for k in SlackFile.__dataclass_fields__})
    except (KeyError, TypeError):
        return None
    stored = deps.store.get(record.conversation_id)
    reuse = stored is not None and stored.file_id == source.id
    return AnswerRequest(
        entry=record.entry,  # type: ignore[arg-type]  # checked above
        team=record.team,
        channel=record.channel,
        thread_ts=record.thread_ts,
        conversation_id=record.conversation_id,
        question=record.question,
        new_file=None if reuse else source,
        stored=stored if reuse else None,
        user=record.user or None,
        assistant_thread=record.assistant_thread,
        source_ts=record.source_ts,
        answer_id=record.answer_id,
        adopt_ts=record.message_ts,
        adoptions=record.adoptions,
    )
