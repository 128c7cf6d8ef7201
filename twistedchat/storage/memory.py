"""The ``memory:`` store: everything in this process, nothing kept across a restart."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed

from twistedchat.storage.base import Store
from twistedchat.storage.history import HistoryQuery, MemoryHistory, TargetActivity, run_query
from twistedchat.storage.model import HistoryLine


class MemoryStore(Store):
    """A store whose writes are done the moment they are made (so ``flush`` has nothing to wait for)."""

    def __init__(self) -> None:
        super().__init__()
        self._history = MemoryHistory()
        #: owner -> {key: value}, owner -> {target: timestamp}
        self._owner_metadata: dict[str, dict[str, str]] = {}
        self._owner_markers: dict[str, dict[str, str]] = {}

    def _changed(self, kind: str, key: Any, value: Any) -> None:
        if kind == "owner":
            self._owner_metadata.pop(key, None)
            self._owner_markers.pop(key, None)
        elif kind in ("metadata", "marker"):
            rows = self._owner_metadata if kind == "metadata" else self._owner_markers
            owner, name = key
            if value is None:
                rows.get(owner, {}).pop(name, None)
            else:
                rows.setdefault(owner, {})[name] = value

    def owner_data(self, owner: str) -> Deferred[tuple[dict[str, str], dict[str, str]]]:
        return succeed(
            (dict(self._owner_metadata.get(owner, {})), dict(self._owner_markers.get(owner, {})))
        )

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
