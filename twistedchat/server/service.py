"""The daemon as a twistd service: its listeners, one :class:`ChatFactory`, reload, start and stop."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IReactorFromThreads,
    IReactorTime,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat.server.config import (
    ConfigError,
    ServerConfig,
    exposed_secrets,
    settings_of,
)
from twistedchat.server.net import AddressFromHeader, ChatFactory
from twistedchat.server.process import TwistdContext, raise_open_files_limit
from twistedchat.server.reload import ConfigReload
from twistedchat.server.store_start import StoreStart
from twistedchat.server.tls import (
    ListenRecorder,
    ReloadableTLS,
    stdlib_tls_factory,
)

log = Logger()


@dataclass(frozen=True)
class ServerStatus:
    """The figures an admin asks for (the STATS command to come, /metrics, /health).

    Built from sizes and integer counters only, so it may be read from any thread.
    """

    uptime: float
    connections: int
    registered_users: int
    operators: int
    channels: int
    users_peak: int
    listeners: int
    reloads_ok: int
    reloads_refused: int


class ChatService(ConfigReload, StoreStart, service.MultiService):
    """The daemon: one :class:`ChatFactory` behind any number of listening endpoints.

    Child services (a store, a history writer) start with it and stop after every client has
    been told the server is going, so what the goodbyes changed is flushed too.

    ``overrides`` are the command-line settings, which a reload keeps over the config file's.
    With ``owns_process`` (as under twistd) it also raises the open-files limit and reloads on
    SIGHUP. ``context`` carries twistd's own options (daemon or not, pidfile, ``--uid``).
    """

    def __init__(self, config: ServerConfig, ports: list[str] | None = None, reactor: IReactorTime | None = None,
                 overrides: Mapping[str, Any] | None = None,
                 context: TwistdContext | None = None, owns_process: bool = False) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # MultiService.__init__ is unannotated
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor
        self.reactor = reactor
        self.config = config
        if ports is not None:
            config.ports = list(ports)
        if overrides is None:
            # built in code, not from options: a reload keeps these values, re-reads the files
            overrides = {} if config.config_file else settings_of(config)
        self.overrides = dict(overrides)
        self.context = context
        self.owns_process = owns_process
        self.factory = ChatFactory(config, clock=reactor)
        self.factory.core.admin = self  # REHASH, DIE and RESTART reach reload() and stop_server()
        #: why the server stops (DIE and RESTART say; SIGTERM is the default)
        self.stop_reason = "Server shutting down"
        self.restart_requested = False
        self.descriptions = list(config.ports)
        #: the listening ports, once :meth:`privilegedStartService` has opened them
        self.ports: list[IListeningPort] = []
        self.metrics_port: IListeningPort | None = None
        #: the TLS settings of each ``ssl:`` listener, which :meth:`reload` replaces
        self.tls: dict[str, list[ReloadableTLS]] = {}
        self._previous_sighup: Any = None
        self.reloads_ok = 0
        self.reloads_refused = 0
        self.started: float | None = None
        #: the open store (accounts, registered channels, history) once :meth:`startService` has it
        self.store: Any = None
        self._stop_asked: list[int] = []  # SIGTERMs before the reactor runs (StoreStart)
        self._holding_sigterm = False
        self._previous_sigterm: Any = None

    # -- start ---------------------------------------------------------------------------------

    def privilegedStartService(self) -> None:
        """Open every listener while still privileged (ports under 1024), before ``--uid``."""
        if self.owns_process:
            limits = raise_open_files_limit()
            if limits is not None and limits[1] > limits[0]:
                log.info("open-files limit raised from {old} to {new}", old=limits[0],
                         new=limits[1])
            elif limits is not None:
                log.info("open-files limit is {limit} (about as many clients)", limit=limits[1])
            if self.context is not None:
                config = self.config
                reread = [path for path in (config.config_file, config.motd_file,
                                            config.oper_file) if path]
                for warning in self.context.privilege_warnings(reread):
                    log.warn("{warning}", warning=warning)
            self._early_sigterm()
        super().privilegedStartService()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        for description in self.descriptions:
            # Behind haproxy: the client's address arrives in the PROXY header, after connect.
            proxied = description.split(":", 1)[0].strip().lower() == "haproxy"
            factory = AddressFromHeader(self.factory) if proxied else self.factory
            self.ports.append(self._listen(description, factory))
        if self.config.metrics is not None:
            from twistedchat.server.metrics import metrics_site

            self.metrics_port = self._listen(self.config.metrics, metrics_site(self))
        self._listen_for_browsers()

    def _listen_for_browsers(self) -> None:
        """The ``web`` and ``websocket`` listeners (server/websocket.py), one site each kind."""
        config = self.config
        for descriptions, page, what in ((config.websocket, False, "WebSocket"),
                                         (config.web, True, "web client")):
            if not descriptions:
                continue
            from twistedchat.server.websocket import parse_networks, web_site

            site = web_site(self.factory, page=page, origins=config.websocket_origins,
                            proxies=parse_networks(config.trusted_proxies))
            for description in descriptions:
                self.ports.append(self._listen(description, site))
                label = f"{description} ({what})"
                if label not in self.descriptions:
                    self.descriptions.append(label)

    def _listen(self, description: str, factory: IProtocolFactory) -> IListeningPort:
        """Listen through the endpoint's public ``listen``; a failure stops the start-up.

        TCP, SSL and UNIX endpoints listen at once, so the Deferred has already fired here.
        """
        recorder = ListenRecorder(self.reactor)  # keeps TLS settings a reload can replace
        outcome: list[Any] = []
        lean = None
        if factory is self.factory:
            try:
                lean = stdlib_tls_factory(description, self.factory, self.reactor)
            except (ValueError, OSError) as error:
                raise self._startup_error(description, error) from None
        if lean is not None:  # ssl: on the standard library's TLS (twistedchat.server.tls)
            tcp, tls_factory = lean
            recorder.tls.append(tls_factory)  # type: ignore[arg-type]  # the same replace()
            factory = tls_factory
            endpoint = endpoints.serverFromString(self.reactor, tcp)
        else:
            endpoint = endpoints.serverFromString(recorder, description)
        endpoint.listen(factory).addBoth(outcome.append)
        if not outcome:
            raise self._startup_error(description, "the endpoint did not listen at once")
        if isinstance(outcome[0], Failure):
            raise self._startup_error(description, outcome[0].value)
        if recorder.tls:
            self.tls[description] = recorder.tls
        port: IListeningPort = outcome[0]
        return port

    def _startup_error(self, description: str, error: Any) -> BaseException:
        """The exception that ends a start whose listener failed, daemonized or not."""
        reason = getattr(getattr(error, "socketError", None), "strerror", None) or str(error)
        return self._failed_start(f"cannot listen on {description}: {error}",
                                  f"twistedchat: {error}", f"cannot listen on {description}: {reason}")

    def _failed_start(self, logged: str, foreground: str, daemonized: str) -> BaseException:
        """The exception that ends a failed start cleanly, whether twistd daemonized or not:
        ``logged`` goes to the log, the admin sees ``foreground`` (or, daemonized, ``daemonized``)."""
        for port in self.ports:
            port.stopListening()
        self.ports.clear()
        log.critical("{reason}", reason=logged)
        if self.context is None or self.context.nodaemon:
            # In the foreground twistd prints a SystemExit's message and exits 1, no traceback.
            # twistd already wrote its pidfile and does not remove it on SystemExit: we do.
            self._remove_own_pidfile()
            return SystemExit(foreground)
        # Daemonized, twistd reports an Exception (not SystemExit) through its status pipe: the
        # waiting parent prints it on stderr and exits 1, and the pidfile is removed. Only the
        # first 100 bytes cross the pipe, so the message is short and the class a builtin one.
        return RuntimeError(daemonized)

    def _remove_own_pidfile(self) -> None:
        pidfile = self.context.pidfile if self.context is not None else None
        if not pidfile:
            return
        try:
            with open(pidfile) as handle:
                ours = handle.read().strip() == str(os.getpid())
            if ours:
                os.unlink(pidfile)
        except OSError:
            pass

    def startService(self) -> None:
        if self.owns_process:
            self._prepare_store()
        super().startService()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.started = self.reactor.seconds()
        for description in self.descriptions:
            log.info("twistedchat listening on {description}", description=description)
        if self.metrics_port is not None:
            log.info("twistedchat metrics on {description} (/metrics, /health)",
                     description=self.config.metrics)
        exposed = exposed_secrets(self.config)
        if exposed:
            log.warn("{warning}", warning=exposed)
        if self.owns_process:
            self._previous_sighup = signal.signal(signal.SIGHUP, self._on_sighup)
        # on the reactor's first turn, once twistd has its SIGTERM handler (a stop meanwhile is clean)
        self.reactor.callLater(0, self._open_store)

    def status(self) -> ServerStatus:
        """The running figures: what STATS, the metrics and the health check report."""
        factory = self.factory
        state = factory.core.state
        return ServerStatus(
            uptime=self.reactor.seconds() - self.started if self.started is not None else 0.0,
            connections=len(factory.connections),
            registered_users=state.registered_count,
            operators=state.oper_count,
            channels=len(state.channels),
            users_peak=factory.core.max_seen_users,
            listeners=len(self.ports),
            reloads_ok=self.reloads_ok,
            reloads_refused=self.reloads_refused,
        )

    # -- reload --------------------------------------------------------------------------------

    def _on_sighup(self, number: int, frame: Any) -> None:
        # A signal handler runs between two bytecodes of whatever was running: hand the reload
        # to the reactor's next turn instead of touching chat state from here.
        IReactorFromThreads(self.reactor).callFromThread(self._reload_logged)

    def _reload_logged(self) -> None:
        if not self.running:
            log.info("SIGHUP ignored: the server is shutting down")
            return
        try:
            self.reload()
        except ConfigError:
            pass  # reload() has logged why

    def stop_server(self, reason: str, restart: bool) -> None:
        """DIE and RESTART: stop the reactor (every client is told ``reason``); with ``restart``
        the process then runs its own command line again."""
        log.info("stopping on an operator's request: {reason}", reason=reason)
        self.stop_reason = reason
        if restart and not self.restart_requested:
            self.restart_requested = True
            IReactorCore(self.reactor).addSystemEventTrigger("after", "shutdown", _exec_again)
        self.reactor.callLater(0, IReactorCore(self.reactor).stop)

    # -- stop ----------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        service.Service.stopService(self)  # not running: SIGHUP is now ignored (_reload_logged)
        # Close the listeners first so nobody new arrives, then say goodbye to everyone.
        ports, self.ports = self.ports, []
        if self.metrics_port is not None:
            ports.append(self.metrics_port)
            self.metrics_port = None
        yield defer.DeferredList([defer.maybeDeferred(port.stopListening) for port in ports])
        yield self.factory.shutdown(self.stop_reason)
        # Then the children, last added first (MultiService's order), e.g. a store's final flush.
        for child in reversed(list(self)):
            yield defer.maybeDeferred(child.stopService)
        if self._previous_sighup is not None:
            signal.signal(signal.SIGHUP, self._previous_sighup)
            self._previous_sighup = None
        # SIGTERM is how service managers ask us to stop; once every client has been told, that
        # is a clean exit (status 0), not death by signal. twistd re-raises the signal the reactor
        # recorded in ``_exitSignal`` (its private _ISupportsExitSignalCapturing interface; no
        # public way exists), so we clear it. tests/test_ops_lifecycle.py pins this attribute
        # against the installed Twisted, so an upgrade that renames it fails a test, not a stop.
        if getattr(self.reactor, "_exitSignal", None) == signal.SIGTERM:
            self.reactor._exitSignal = None  # type: ignore[attr-defined]  # private, see above


def _exec_again() -> None:
    """Replace this process with a new run of the same command line (RESTART)."""
    import sys

    log.info("restarting: {argv}", argv=" ".join(sys.argv))
    os.execv(sys.executable, [sys.executable, *sys.argv])
