"""Opening the daemon's database at start: prepared before the reactor runs (a database that
cannot be used ends the start with one line and exit status 1), then opened and attached to the
core on the reactor's first turn.

:class:`StoreStart` is mixed into :class:`~twistedchat.server.service.ChatService`.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort, IReactorCore, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat.server.accounts import attach_store
from twistedchat.server.config import ServerConfig
from twistedchat.server.net import ChatFactory
from twistedchat.storage.model import StoreError
from twistedchat.storage.service import StoreService
from twistedchat.storage.url import open_store, prepare_store, redacted

log = Logger()


class StoreStart:
    """The service's store: prepared, held SIGTERMs, opened, attached (or a failed start)."""

    config: ServerConfig
    reactor: IReactorTime
    factory: ChatFactory
    ports: list[IListeningPort]
    owns_process: bool
    running: int
    #: the open store (accounts, registered channels, history) once :meth:`_open_store` has it
    store: Any
    #: SIGTERMs received while starting, before the reactor runs (see :meth:`_early_sigterm`)
    _stop_asked: list[int]
    _holding_sigterm: bool
    _previous_sigterm: Any
    #: the exception that ends a failed start (ChatService's, shared with its listeners)
    _failed_start: Callable[[str, str, str], BaseException]

    def _prepare_store(self) -> None:
        """Under twistd, before the reactor runs: a ``--db`` that cannot be used (no such
        directory, not a database, PostgreSQL refusing, a schema newer than this code) ends
        the start with one line and exit status 1."""
        try:
            prepare_store(self.config.db)
        except StoreError as error:
            url = redacted(self.config.db)
            self._end_early_sigterm()
            raise self._failed_start(
                f"cannot open the database {url}: {error}",
                f"twistedchat: cannot open the database {url}: {error}",
                f"cannot open the database: {error}") from None  # 100 bytes cross twistd's pipe
        IReactorCore(self.reactor).callWhenRunning(self._end_early_sigterm)

    def _early_sigterm(self) -> None:
        """From the first listener until the reactor runs (the database is prepared meanwhile),
        a SIGTERM is kept and honoured once it runs: a clean stop, not death."""
        self._previous_sigterm = signal.signal(signal.SIGTERM, self._hold_sigterm)
        self._holding_sigterm = True

    def _hold_sigterm(self, number: int, frame: Any) -> None:
        self._stop_asked.append(number)

    def _end_early_sigterm(self) -> None:
        """The reactor runs (twistd's reactor has put its own SIGTERM handler in place of ours,
        which stays then) or the start failed: stop now if a SIGTERM came meanwhile."""
        if not self._holding_sigterm:
            return
        self._holding_sigterm = False
        if signal.getsignal(signal.SIGTERM) == self._hold_sigterm:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        if self._stop_asked:
            log.info("SIGTERM received while starting: stopping")
            core = IReactorCore(self.reactor)
            core.callWhenRunning(core.stop)

    def _open_store(self) -> None:
        """Open ``--db`` (migrating it), then attach it to the core; the listeners accept no one
        until then, so every client sees the accounts and history capabilities."""
        paused = [port for port in self.ports if hasattr(port, "stopReading")]
        for port in paused:
            port.stopReading()
        config = self.config

        def opened(store: Any) -> Any:
            if not self.running:  # stopped while it opened
                return store.close()
            self.store = store
            attach_store(self.factory.core, store, self.reactor)
            keeper = StoreService(store, self.reactor, history_days=config.history_days or None,
                                  history_lines=config.history_lines_per_target or None)
            keeper.setServiceParent(self)  # type: ignore[no-untyped-call]  # unannotated
            log.info("twistedchat storage: {url}", url=redacted(config.db))
            for port in paused:
                if port in self.ports:
                    port.startReading()  # type: ignore[attr-defined]

        def failed(failure: Failure) -> None:
            reason = f"cannot open the database {redacted(config.db)}: {failure.getErrorMessage()}"
            log.critical("{reason}", reason=reason)
            core = IReactorCore(self.reactor)
            if self.owns_process:  # (the database went away since _prepare_store): exit 1
                core.addSystemEventTrigger("after", "shutdown", _exit_failed, reason)
            if core.running:
                core.stop()

        defer.maybeDeferred(open_store, config.db, self.reactor).addCallbacks(opened, failed)


def _exit_failed(reason: str) -> None:
    """After the reactor stopped because the store could not open: one line, exit status 1
    (twistd itself would exit 0 once its reactor returns)."""
    sys.stdout.flush()
    print(f"twistedchat: {reason}", file=sys.stderr, flush=True)
    os._exit(1)
