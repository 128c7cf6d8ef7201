"""What a bot sends: fair per-target queues, the buffer kept while disconnected, and the commands
(kick, topic, mode, ban, join) whose server errors come back as failed Deferreds. No I/O here.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

#: Lines one target may have waiting, and lines all targets together.
PER_TARGET_LIMIT = 100
TOTAL_LIMIT = 2000
#: Messages (``say``/``notice`` calls) kept while the bot is disconnected.
OFFLINE_LIMIT = 100
#: Commands waiting for the server's verdict at once.
MAX_PENDING = 100


class FairQueues:
    """Message lines by target; :meth:`pop` takes the highest priority, then targets in turn.

    A 50-line reply to Alice cannot hold Bob's 3-line answer behind it: each target gets one
    line per round.
    """

    def __init__(self, per_target: int = PER_TARGET_LIMIT, total: int = TOTAL_LIMIT) -> None:
        self.per_target = per_target
        self.total = total
        self._queues: dict[str, deque[tuple[int, str]]] = {}
        self._order: list[str] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def room(self, target: str) -> int:
        """How many more lines ``target`` may queue."""
        queued = len(self._queues.get(target, ()))
        return max(0, min(self.per_target - queued, self.total - self._size))

    def put(self, target: str, line: str, priority: int = 0) -> bool:
        """Queue ``line`` for ``target`` (a folded name); False if a limit refused it."""
        if self.room(target) <= 0:
            return False
        queue = self._queues.get(target)
        if queue is None:
            queue = self._queues[target] = deque()
            self._order.append(target)
        queue.append((priority, line))
        self._size += 1
        return True

    def pop(self) -> str | None:
        """The next line to send, or None."""
        if not self._order:
            return None
        best = max(range(len(self._order)),
                   key=lambda i: (self._queues[self._order[i]][0][0], -i))
        target = self._order.pop(best)
        queue = self._queues[target]
        _, line = queue.popleft()
        self._size -= 1
        if queue:
            self._order.append(target)
        else:
            del self._queues[target]
        return line

    def drain(self) -> list[str]:
        """Every waiting line in sending order; the queues are empty afterwards."""
        lines = []
        while (line := self.pop()) is not None:
            lines.append(line)
        return lines

    def clear(self) -> None:
        """Drop every waiting line."""
        self._queues.clear()
        self._order.clear()
        self._size = 0


@dataclass
class Outgoing:
    """A message said while disconnected, sent once the bot is back."""

    command: str
    target: str
    text: str
    options: dict[str, Any] = field(default_factory=dict)


class OfflineBuffer:
    """The last :data:`OFFLINE_LIMIT` messages said while disconnected (older ones are dropped)."""

    def __init__(self, limit: int = OFFLINE_LIMIT) -> None:
        self._items: deque[Outgoing] = deque(maxlen=limit)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Outgoing) -> None:
        """Keep ``item``; the oldest one goes when the buffer is full."""
        if self._items.maxlen is not None and len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(item)

    def drain(self) -> list[Outgoing]:
        """Everything kept, oldest first; the buffer is empty afterwards."""
        items = list(self._items)
        self._items.clear()
        self.dropped = 0
        return items


class ServerError(Exception):
    """The server refused a command: ``code`` (``"482"``) and its text."""

    def __init__(self, code: str, params: list[str]) -> None:
        self.code = code
        self.params = params
        text = params[-1] if params else ""
        super().__init__(f"{code} {' '.join(params[1:-1])}: {text}".replace("  ", " "))

    @property
    def text(self) -> str:
        """The server's explanation (the last parameter of the numeric)."""
        return self.params[-1] if self.params else ""


@dataclass
class Pending:
    """A command sent whose answer is awaited: done at its PING barrier unless an error came."""

    token: str
    subjects: frozenset[str]
    codes: frozenset[str]
    result: defer.Deferred[None]


class PendingCommands:
    """Commands in flight, each followed by ``PING :token``; errors match them by subject."""

    def __init__(self, fold: Callable[[str], str]) -> None:
        self.fold = fold
        self._pending: dict[str, Pending] = {}
        self._tokens = itertools.count(1)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, subjects: Iterable[str], codes: Iterable[str]) -> Pending:
        """A new pending command about ``subjects`` (channel, nick) failing on ``codes``."""
        if len(self._pending) >= MAX_PENDING:
            raise ServerError("BUSY", ["*", f"more than {MAX_PENDING} commands are waiting"])
        token = f"tcbot{next(self._tokens)}"
        pending = Pending(token, frozenset(self.fold(s) for s in subjects), frozenset(codes),
                          defer.Deferred())
        self._pending[token] = pending
        return pending

    def pong(self, token: str) -> bool:
        """The barrier after a command came back: it succeeded. True if the token was ours."""
        pending = self._pending.pop(token, None)
        if pending is None:
            return False
        pending.result.callback(None)
        return True

    def error(self, code: str, params: list[str]) -> bool:
        """A numeric error: fail the oldest pending command it is about. True if one matched."""
        subjects = {self.fold(p) for p in params[1:-1]}
        for token, pending in self._pending.items():
            if code in pending.codes and (pending.subjects & subjects or not subjects):
                del self._pending[token]
                pending.result.errback(ServerError(code, params))
                return True
        return False

    def fail_all(self, reason: Exception) -> None:
        """Fail every pending command with ``reason`` (the connection is gone)."""
        pending, self._pending = self._pending, {}
        for item in pending.values():
            item.result.errback(reason)
