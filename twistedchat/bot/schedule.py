"""A bot's timers on its own clock: one-off calls and repeating jobs, all cancelled at stop.

The clock is any ``IReactorTime`` (the reactor, or a ``task.Clock`` in tests) and is not the one
the output pacer uses, so a test can move a bot's timers without draining its output, and back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure


class Scheduler:
    """Timers of one bot; errors in a job are logged and the job keeps its schedule."""

    def __init__(self, clock: IReactorTime, log: Logger) -> None:
        self.clock = clock
        self.log = log
        self._calls: set[IDelayedCall] = set()
        self._loops: list[task.LoopingCall] = []

    def call_later(self, seconds: float, function: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> IDelayedCall:
        """Call ``function(*args, **kwargs)`` after ``seconds``; returns the ``IDelayedCall``."""

        def fire() -> None:
            self._calls.discard(call)
            self._guarded(function, *args, **kwargs)

        call = self.clock.callLater(max(0.0, seconds), fire)
        self._calls.add(call)
        return call

    def every(self, seconds: float, function: Callable[[], Any], now: bool = False) -> task.LoopingCall:
        """Call ``function()`` every ``seconds`` until :meth:`stop`."""
        loop = task.LoopingCall(self._guarded, function)
        loop.clock = self.clock
        loop.start(seconds, now=now)
        self._loops.append(loop)
        return loop

    def _guarded(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        name = getattr(function, "__name__", repr(function))

        def failed(failure: Failure) -> None:
            self.log.failure("scheduled {job} failed", failure, job=name)

        result = defer.maybeDeferred(function, *args, **kwargs)
        result.addCallback(lambda value: defer.ensureDeferred(value)
                           if hasattr(value, "__await__") and not isinstance(value, defer.Deferred)
                           else value)
        result.addErrback(failed)

    @property
    def pending(self) -> int:
        """How many one-off calls are waiting."""
        return len(self._calls)

    def stop(self) -> None:
        """Cancel every waiting call and stop every job."""
        for call in list(self._calls):
            if call.active():
                call.cancel()
        self._calls.clear()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
