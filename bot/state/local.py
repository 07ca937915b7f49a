"""The one-process twins of the shared registry and dataset sources: with one instance, the in-process
``RunningAnswers`` and ``ConversationStore`` already hold everything, so these do nothing."""

from __future__ import annotations

from collections.abc import Callable

from bot.files import SlackFile
from bot.state.registry import AnswerRecord


class LocalRegistry:
    """No other instance runs answers: Stop and orphans are handled by ``RunningAnswers`` alone."""

    instance = "local"

    async def add(self, record: AnswerRecord, *, hand_over: Callable[[], object] | None = None) -> None:
        return None

    def hand_over_all(self) -> int:
        return 0  # no instance to hand over to: the answers end with the restart note

    async def placed(self, answer_id: str, message_ts: str) -> None:
        return None

    async def remove(self, answer_id: str) -> None:
        return None

    def local_ids(self) -> list[str]:
        return []

    async def get(self, answer_id: str) -> AnswerRecord | None:
        return None

    async def heartbeat(self) -> None:
        return None

    async def request_stop(self, answer_id: str, by_user: str) -> bool:
        return False

    async def orphans(self) -> list[AnswerRecord]:
        return []

    async def release(self, answer_id: str) -> None:
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class LocalSources:
    """One instance keeps its datasets in ``ConversationStore``: a miss there is a miss."""

    async def remember(self, conversation_id: str, file: SlackFile, *, owner: str | None, channel: str | None) -> None:
        return None

    async def file_for(self, conversation_id: str) -> SlackFile | None:
        return None

    async def latest_in_channel(self, channel: str) -> SlackFile | None:
        return None

    async def forget(self, place: str, user: str | None) -> None:
        return None

    async def drop_files(self, file_ids: set[str]) -> None:
        return None
