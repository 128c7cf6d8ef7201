"""The store as a Twisted service: history pruned on a schedule, everything flushed on shutdown."""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from twistedchat.storage.base import Store

log = Logger()


class StoreService(Service):
    """Owns an open store for the daemon's lifetime.

    While running it prunes history every ``prune_interval`` seconds (when ``history_days`` or
    ``history_lines`` is set); ``stopService`` (SIGTERM) flushes every queued change and closes the
    store, giving up after ``close_timeout`` seconds if the database does not answer.
    """

    def __init__(
        self,
        store: Store,
        clock: IReactorTime | None = None,
        history_days: float | None = None,
        history_lines: int | None = None,
        prune_interval: float = 3600.0,
        close_timeout: float = 30.0,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.store = store
        self.clock = clock
        self.history_days = history_days
        self.history_lines = history_lines
        self.prune_interval = prune_interval
        self.close_timeout = close_timeout
        self._pruning: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        if self.history_days is not None or self.history_lines is not None:
            self._pruning = LoopingCall(self.prune)
            self._pruning.clock = self.clock
            self._pruning.start(self.prune_interval, now=True)

    def prune(self) -> Deferred[Any]:
        """Apply the retention settings once; a failure is logged and the schedule goes on."""
        d = self.store.prune_history(self.clock.seconds(), self.history_days, self.history_lines)

        def pruned(count: int) -> None:
            if count:
                log.info("storage: pruned {count} history lines", count=count)

        def failed(failure: Any) -> None:
            log.failure("storage: pruning history failed", failure)

        return d.addCallbacks(pruned, failed)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._pruning is not None and self._pruning.running:
            self._pruning.stop()
        return self.store.close(self.close_timeout)
