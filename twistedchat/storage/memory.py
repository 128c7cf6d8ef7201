"""The ``memory:`` store: everything in this process, nothing kept across a restart."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed

from twistedchat.storage.base import Store
from twistedchat.storage.history import HistoryQuery, MemoryHistory, TargetActivity, run_query
from twistedchat.storage.model import HistoryLine


class MemoryStore(Store):
    """A store whose writes are done the moment they are made (so ``flush`` has nothing to wait for)."""

    def __init__(self) -> None:
        super().__init__()
        self._history = MemoryHistory()

    def append_history(self, line: HistoryLine) -> None:
        self._history.append(line)

    def history(self, conversation: str, query: HistoryQuery) -> Deferred[list[HistoryLine]]:
        try:
            return succeed(run_query(self._history, conversation, query))
        except Exception:
            return fail()

    def _targets(
        self, channels: set[str], account: str | None, start: float, end: float, limit: int
    ) -> Deferred[list[TargetActivity]]:
        return succeed(self._history.targets(channels, account, start, end, limit))

    def prune_history(
        self, now: float, days: float | None, lines_per_conversation: int | None
    ) -> Deferred[int]:
        before = None if days is None else now - days * 86400
        return succeed(self._history.prune(before, lines_per_conversation))
