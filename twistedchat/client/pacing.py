"""Client-side pacing: outgoing lines kept under a server's flood limit.

Nothing here does I/O; :class:`RateLimiter` takes any ``IReactorTime`` (a ``task.Clock`` in tests).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from twistedchat.wire.flood import TokenBucket

#: What a limiter carries: bytes, text or a message object, as its ``send`` takes them.
LineT = TypeVar("LineT")


class RateLimiter(Generic[LineT]):
    """Sends lines through ``send`` no faster than ``burst`` at once then ``rate`` per second.

    Lines beyond the budget wait in order; ``urgent`` lines (``PONG``) go before waiting ones.
    The defaults stay well inside the daemon's own flood limit (20 at once, then 5 per second).
    """

    def __init__(
        self,
        send: Callable[[LineT], None],
        clock: IReactorTime,
        burst: int = 10,
        rate: float = 2.0,
    ) -> None:
        self._send = send
        self._clock = clock
        self._bucket = TokenBucket(burst, rate, clock.seconds())
        self._waiting: deque[LineT] = deque()
        self._call: IDelayedCall | None = None

    @property
    def waiting(self) -> int:
        """How many lines are queued."""
        return len(self._waiting)

    def __call__(self, line: LineT, urgent: bool = False) -> None:
        if urgent:
            self._waiting.appendleft(line)
        else:
            self._waiting.append(line)
        if self._call is None:
            self._drain()

    def _drain(self) -> None:
        self._call = None
        while self._waiting:
            wait = self._bucket.take(self._clock.seconds())
            if wait > 0:
                self._call = self._clock.callLater(wait, self._drain)
                return
            self._send(self._waiting.popleft())

    def stop(self) -> None:
        """Drop the queued lines (the connection is gone)."""
        self._waiting.clear()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
