"""The Twisted side of the daemon: the factory that admits connections and fans output out.

:class:`ChatFactory` builds a :class:`~twistedchat.server.connection.ChatConnection` per client
stream (framing, handshake, back-pressure: see that module), counts connections against the
limits, and writes every queued outbox once per reactor turn. The daemon behind its listeners is
:class:`~twistedchat.server.service.ChatService`.
"""

from __future__ import annotations

from twisted.internet import defer, interfaces, task
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory, ServerFactory
from twisted.logger import Logger

from twistedchat.server import fastpath
from twistedchat.server.audit import audit
from twistedchat.server.bans import ServerBan
from twistedchat.server.classes import Throttle, address_key, cidr_key, limits_for
from twistedchat.server.config import ServerConfig
from twistedchat.server.connection import (
    CLOSE_GRACE,
    TLS_HANDSHAKE_TIMEOUT,
    Admitted,
    ChatConnection,
    StreamTransport,
    display_host,
    show_address,
    stream_of,
)
from twistedchat.server.core import ServerCore
from twistedchat.server.pipeline import LinePipeline, Outlet, line_too_long
from twistedchat.server.state import User

__all__ = ["CLOSE_GRACE", "TLS_HANDSHAKE_TIMEOUT", "AddressFromHeader", "Admitted",
           "ChatConnection", "ChatFactory", "StreamTransport", "direct_write_allowed",
           "display_host", "line_too_long", "show_address", "stream_of"]

log = Logger()


def direct_write_allowed(config: ServerConfig) -> bool:
    """Whether connections may use the direct-write fast path (logged once when Twisted lacks it)."""
    if not config.direct_write:
        return False
    global _direct_write_problem
    if _direct_write_problem is None:
        _direct_write_problem = fastpath.direct_write_problem() or ""
        if _direct_write_problem:
            log.warn("direct socket writes are off ({problem}); every write goes through "
                     "transport.write", problem=_direct_write_problem)
    return not _direct_write_problem


_direct_write_problem: str | None = None


class ChatFactory(ServerFactory):
    """Builds :class:`ChatConnection` s around one shared :class:`ServerCore`; fans output out."""

    protocol = ChatConnection

    def __init__(self, config: ServerConfig | None = None,
                 clock: interfaces.IReactorTime | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor
            clock = reactor
        self.config = config or ServerConfig()
        self.clock = clock
        self.core = ServerCore(self.config, clock=clock.seconds)
        self.core.timer = clock
        self.direct_write = direct_write_allowed(self.config)
        self.connections: set[Admitted] = set()
        #: open connections by address key and by CIDR group (both kinds of key in one dict)
        self._per_host: dict[str, int] = {}
        self._throttle = Throttle()
        self._closed_waiters: list[defer.Deferred[None]] = []
        self._dirty: list[User] = []
        self._retrying: set[User] = set()
        self._flush_call: IDelayedCall | None = None
        self._sweeper = task.LoopingCall(self._sweep)
        self._sweeper.clock = clock

    def open_pipeline(self, host: str, outlet: Outlet) -> LinePipeline:
        """A new client session for any transport: its pipeline, whose ``user`` the core knows."""
        return LinePipeline(self.core, self.clock, outlet, host, self.wake)

    def wake(self, user: User) -> None:
        """A user's outbox got its first line: write it out on the next reactor turn.

        Everything the core queues while handling this turn's input goes out together, one
        ``transport.write`` per connection however many lines it got.
        """
        self._dirty.append(user)
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Write every queued outbox to its connection; one failing write stops no other."""
        self._flush_call = None
        for hook in self.core.bus.before_output:
            try:
                hook()
            except Exception:
                log.failure("a hook before the output flush failed")
        dirty, self._dirty = self._dirty, []
        retrying = self._retrying  # (changed in place only, so this sees every change)
        for user in dirty:
            outbox = user.outbox
            if outbox:
                data = b"".join(outbox)  # one line: the same bytes object, not a copy
                outbox.clear()
                link = user.link
                try:
                    assert link is not None, "a user with output has a link"
                    link.transmit(data)
                except Exception:
                    self._transmit_failed(user, data)
                    continue
                if retrying:
                    retrying.discard(user)

    def _transmit_failed(self, user: User, data: bytes) -> None:
        """A write raised: try once more on the next turn, then drop that connection.

        The retry keeps the user's lines and their order; a write that raised part-way may repeat
        what it sent, which beats losing lines without a word.
        """
        log.failure("writing to {host} failed", host=user.host)
        if user in self._retrying:
            self._retrying.discard(user)
            abort = getattr(user.link, "abort", None)  # a LinePipeline's; another Link is closed
            if abort is not None:
                abort("its writes keep failing")
            else:
                user.close()
            return
        self._retrying.add(user)
        user.outbox.insert(0, data)
        self.wake(user)

    def _sweep(self) -> None:
        """The periodic timeouts; an error is logged and the next sweep still runs."""
        try:
            self._throttle.prune(self.clock.seconds(), self.config.throttle_window)
            self.core.sweep()
        except Exception:
            log.failure("the timeout sweep failed")

    def buildProtocol(self, addr: interfaces.IAddress | None) -> ChatConnection:
        return ChatConnection(self)

    def startFactory(self) -> None:
        if not self._sweeper.running:
            period = max(0.5, min(15.0, self.config.ping_interval / 4,
                                  self.config.registration_timeout / 4))
            self._sweeper.start(period, now=False)

    def stopFactory(self) -> None:
        if self._sweeper.running:
            self._sweeper.stop()

    def hold(self, connection: Admitted) -> str | None:
        """Count a connection whose address is not known yet, or say why it is refused."""
        if self.config.max_clients and len(self.connections) >= self.config.max_clients:
            return "Server is full, try again later"
        self.connections.add(connection)
        return None

    def admit(self, connection: Admitted) -> str | None:
        """Count a connection under the limits of its class (by ``connection.host``), or say
        why it is refused: the throttle, per address (IPv6: per /64), per CIDR group."""
        held = connection in self.connections
        if not held:
            refusal = self.hold(connection)
            if refusal:
                return refusal
        ban = self.dlined(connection.host)  # (a TCP connection has been checked already)
        refusal = f"D-lined: {ban.reason}" if ban is not None else None
        refusal = refusal or self._class_refusal(connection.host)
        if refusal:
            self.connections.discard(connection)
            if held:
                self._fire_if_closed()
            return refusal
        keys = (address_key(connection.host), cidr_key(self.config, connection.host))
        for key in keys:
            if key is not None:
                self._per_host[key] = self._per_host.get(key, 0) + 1
        connection.counted_keys = keys
        return None

    def dlined(self, host: str) -> ServerBan | None:
        """The D-line refusing a connection from ``host``, counted and logged; None if none."""
        ban = self.core.bans.dline_for(host, self.clock.seconds())
        if ban is not None:
            self.core.counters["bans_hit"] += 1
            audit("ban-hit", kind=ban.kind, mask=ban.mask, address=host, nick="*")
        return ban

    def _class_refusal(self, host: str) -> str | None:
        limits = limits_for(self.config, host)
        if limits.exempt:
            return None
        config = self.config
        address = address_key(host)
        if not self._throttle.allow(address, self.clock.seconds(), config.throttle_count,
                                    config.throttle_window, config.throttle_duration):
            self.core.counters["throttled"] += 1
            audit("throttled", address=host)
            return "Too many connections from your address recently; try again later"
        if limits.max_per_ip and self._per_host.get(address, 0) >= limits.max_per_ip:
            return "Too many connections from your address"
        group = cidr_key(config, host)
        if (limits.max_per_cidr and group is not None
                and self._per_host.get(group, 0) >= limits.max_per_cidr):
            return "Too many connections from your network"
        return None

    def forget(self, connection: Admitted) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            for key in getattr(connection, "counted_keys", ()):
                if key is not None:
                    left = self._per_host.get(key, 1) - 1
                    if left:
                        self._per_host[key] = left
                    else:
                        self._per_host.pop(key, None)
            self._fire_if_closed()

    def shutdown(self, reason: str = "Server shutting down") -> defer.Deferred[None]:
        """Tell every client why, close every connection; fires when all are gone."""
        waiter: defer.Deferred[None] = defer.Deferred()
        self._closed_waiters.append(waiter)
        self.core.shutdown(reason)
        for connection in list(self.connections):
            if connection.pipeline is None:  # not admitted yet (waiting for a PROXY header)
                connection.close()
        self._fire_if_closed()
        return waiter

    def _fire_if_closed(self) -> None:
        if not self.connections:
            waiters, self._closed_waiters = self._closed_waiters, []
            for waiter in waiters:
                waiter.callback(None)


class AddressFromHeader(Factory):
    """The chat factory as a ``haproxy:`` listener sees it.

    Twisted's PROXY-protocol wrapper connects our protocol before it has read the header, so
    ``getPeer()`` gives the proxy's address until the first data arrives; connections made here
    are admitted (host, per-address limit) on their first data instead of on connect. Until then
    they count against ``--max-clients``; one that never speaks is cut after the registration
    timeout.
    """

    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory

    def doStart(self) -> None:
        self.factory.doStart()  # type: ignore[no-untyped-call]  # Twisted's Factory.doStart is unannotated

    def doStop(self) -> None:
        self.factory.doStop()  # type: ignore[no-untyped-call]  # Twisted's Factory.doStop is unannotated

    def buildProtocol(self, addr: interfaces.IAddress | None) -> ChatConnection:
        connection = self.factory.buildProtocol(addr)
        connection.address_from_first_data = True
        return connection
