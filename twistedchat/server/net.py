"""The Twisted side of the daemon: bytes in, lines to the pipeline, bytes out.

:class:`ChatConnection` frames a TCP, TLS or UNIX stream into lines and feeds them to its
:class:`~twistedchat.server.pipeline.LinePipeline`, which holds every per-line rule; it also owns
what only a stream has: admission (connection limits, the PROXY header's address), the TLS
handshake timeout, back-pressure and closing. :class:`ChatFactory` fans output out once per
reactor turn. The daemon behind its listeners is :class:`~twistedchat.server.service.ChatService`.
"""

from __future__ import annotations

from typing import Protocol, cast

from twisted.internet import defer, interfaces, task
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IDelayedCall, IPushProducer
from twisted.internet.protocol import BaseProtocol, Factory, ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from twistedchat.server import fastpath, tls
from twistedchat.server.audit import audit
from twistedchat.server.bans import ServerBan, parse_address
from twistedchat.server.classes import Throttle, address_key, cidr_key, limits_for
from twistedchat.server.config import ServerConfig
from twistedchat.server.core import ServerCore
from twistedchat.server.pipeline import LinePipeline, Outlet, PipelineProducer, line_too_long
from twistedchat.server.state import User
from twistedchat.wire import numerics as N
from twistedchat.wire.message import MAX_LINE_BYTES, MAX_TAGS_BYTES, Message

__all__ = ["CLOSE_GRACE", "TLS_HANDSHAKE_TIMEOUT", "AddressFromHeader", "ChatConnection",
           "ChatFactory", "line_too_long"]

log = Logger()

#: Seconds a closing connection may take to flush before it is cut.
CLOSE_GRACE = 10.0
#: Seconds a TLS client has to finish its handshake; nothing else can happen before it does.
TLS_HANDSHAKE_TIMEOUT = 10.0


def display_host(address: object) -> str:
    """The host part of a peer address as users see it (``localhost`` for a UNIX socket)."""
    if not isinstance(address, (IPv4Address, IPv6Address)):
        return "localhost"
    return show_address(address.host)


def show_address(host: str) -> str:
    """An IP address as users see it: one spelling per address (a PROXY v2 header spells IPv6
    in full, the socket compressed; an IPv4-mapped IPv6 address is its IPv4 one), and ``::1``
    written ``0::1``, which can stand as a middle parameter (WHO, WHOIS) as IRC servers do."""
    parsed = parse_address(host)
    text = str(parsed) if parsed is not None else host
    return "0" + text if text.startswith(":") else text


class StreamTransport(Protocol):
    """What a connection needs of its transport: TCP, TLS and UNIX streams all provide it."""

    def write(self, data: bytes) -> None: ...
    def loseConnection(self) -> None: ...
    def abortConnection(self) -> None: ...
    def getPeer(self) -> IAddress: ...
    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...


def stream_of(protocol: BaseProtocol) -> StreamTransport:
    """A connected protocol's transport as the stream it is (Twisted types it ``ITransport``)."""
    assert protocol.transport is not None, "not connected"
    return cast(StreamTransport, protocol.transport)


class Admitted(Protocol):
    """A client connection as the factory's limits count it: a TCP stream or a WebSocket."""

    host: str
    counted_keys: tuple[str | None, ...]
    pipeline: LinePipeline | None

    def close(self) -> None: ...


@implementer(interfaces.IHandshakeListener)
class ChatConnection(PipelineProducer, LineOnlyReceiver):
    """One client stream: framing, admission, back-pressure and closing around a pipeline."""

    delimiter = b"\n"
    #: Tags plus a 512-byte line; the pipeline applies the exact rule (tags and body apart).
    MAX_LENGTH = MAX_TAGS_BYTES + MAX_LINE_BYTES

    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory
        self.clock = factory.clock
        self.host = "unknown"
        self.pipeline: LinePipeline | None = None
        #: Set by a ``haproxy:`` listener: the peer address is known once the PROXY header is read,
        #: so the connection is admitted on its first data rather than on connect.
        self.address_from_first_data = False
        #: What this connection counts against once admitted: its address (IPv6: its /64) and
        #: its CIDR group (None for a UNIX socket).
        self.counted_keys: tuple[str | None, ...] = ()
        self._discarding = False
        self._closing = False
        self._close_call: IDelayedCall | None = None
        self._handshake_call: IDelayedCall | None = None
        self._admission_call: IDelayedCall | None = None

    @property
    def user(self) -> User | None:
        return self.pipeline.user if self.pipeline is not None else None

    @property
    def stream(self) -> StreamTransport:
        """The transport, once connected, as the stream it is (Twisted types it ``ITransport``)."""
        return stream_of(self)

    # -- connection life cycle -----------------------------------------------------------------

    def connectionMade(self) -> None:
        if tls.is_tls(self.transport):
            self._handshake_call = self.clock.callLater(TLS_HANDSHAKE_TIMEOUT,
                                                        self._handshake_timed_out)
        if not self.address_from_first_data:
            self._admit()
            return
        refusal = self.factory.hold(self)
        if refusal:
            self._refuse(refusal)
        else:
            self._admission_call = self.clock.callLater(
                self.factory.config.registration_timeout, self._never_identified)

    def _admit(self) -> bool:
        """Admit the connection under the limits for its address; False if it was refused."""
        if self._admission_call is not None and self._admission_call.active():
            self._admission_call.cancel()
        self._admission_call = None
        self.host = display_host(self.stream.getPeer())
        ban = self.factory.dlined(self.host)
        if ban is not None:  # refused before any resource is given to it
            self._closing = True
            name = self.factory.config.name
            self.stream.write(
                Message(N.ERR_YOUREBANNEDCREEP, ("*", f"You are banned from this server: "
                                                      f"{ban.reason}"), name).to_bytes()
                + Message("ERROR", (f"Closing Link: {self.host} (D-lined)",)).to_bytes())
            self.stream.loseConnection()
            return False
        refusal = self.factory.admit(self)
        if refusal:
            self._refuse(refusal)
            return False
        pipeline = self.pipeline = self.factory.open_pipeline(self.host, self)
        self.stream.registerProducer(self, True)
        if self.factory.direct_write and fastpath.can_write_directly(self.transport):
            pipeline.write = fastpath.DirectWriter(self.transport).write
        elif isinstance(self.transport, tls.TLSConnection):
            pipeline.write = self.transport.write_counted
        return True

    def _refuse(self, refusal: str) -> None:
        self._closing = True
        self.stream.write(
            Message("ERROR", (f"Closing Link: {self.host} ({refusal})",)).to_bytes())
        self.stream.loseConnection()

    def _never_identified(self) -> None:
        self._admission_call = None
        log.info("cut a proxied connection that sent nothing (or no PROXY header) in {seconds:g} s",
                 seconds=self.factory.config.registration_timeout)
        self.abort()

    def handshakeCompleted(self) -> None:
        """The TLS handshake finished: the handshake timeout is over."""
        if self._handshake_call is not None and self._handshake_call.active():
            self._handshake_call.cancel()
        self._handshake_call = None

    def _handshake_timed_out(self) -> None:
        self._handshake_call = None
        log.info("cut {host}: TLS handshake not finished in {seconds:g} s", host=self.host,
                 seconds=TLS_HANDSHAKE_TIMEOUT)
        self.abort()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closing = True
        for call in (self._close_call, self._handshake_call, self._admission_call):
            if call is not None and call.active():
                call.cancel()
        if self.pipeline is not None:
            self.pipeline.connection_lost()
        self.factory.forget(self)

    # -- the pipeline's outlet -------------------------------------------------------------------

    def client_fingerprint(self) -> str | None:
        """The SHA-256 fingerprint (lower-case hex) of the client's TLS certificate, if any."""
        get_certificate = getattr(self.transport, "getPeerCertificate", None)
        certificate = get_certificate() if get_certificate is not None else None
        if certificate is None:
            return None
        fingerprint: str = certificate.digest("sha256").decode("ascii").replace(":", "").lower()
        return fingerprint

    def write(self, data: bytes) -> int | None:
        """Write through the transport; what it holds unsent is not known here (None)."""
        self.stream.write(data)
        return None

    def abort(self) -> None:
        """Cut the connection now."""
        self._closing = True
        self.stream.abortConnection()

    def close(self) -> None:
        """Close once the output is sent, or cut after :data:`CLOSE_GRACE` seconds."""
        if self._close_call is not None:
            return
        self._closing = True
        if self._handshake_call is not None:
            # Nothing can reach a client that has not finished its TLS handshake.
            self.abort()
            return
        # A transport that paused us would, once flushed, resume us instead of closing.
        self.stream.unregisterProducer()
        self.stream.loseConnection()
        self._close_call = self.clock.callLater(CLOSE_GRACE, self.stream.abortConnection)

    # -- input ---------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Frame lines as ``LineOnlyReceiver.dataReceived`` does, but read on past a long line.

        The stock method hands the first overlong line to ``lineLengthExceeded`` and returns,
        dropping every line after it in the same read (and its default hangs up). IRC answers a
        long line with 417 and goes on reading, so here an overlong line costs only itself, and
        the rest of an overlong unfinished line is skipped up to its line ending.
        """
        pipeline = self.pipeline
        if pipeline is None:
            if self._closing or not self.address_from_first_data or not self._admit():
                return
            pipeline = self.pipeline
            assert pipeline is not None
        if pipeline.closing:
            return
        pipeline.touch()
        lines = (self._buffer + data).split(b"\n") if self._buffer else data.split(b"\n")
        self._buffer = lines.pop()
        if self._discarding:
            if not lines:  # still inside the overlong line
                self._buffer = b""
                return
            del lines[0]  # its end
            self._discarding = False
        limit = self.MAX_LENGTH
        for line in lines:
            if len(line) > limit:
                self.lineLengthExceeded(line)
            else:
                self.lineReceived(line)
            if pipeline.closing:
                return
        if len(self._buffer) > limit:
            self._buffer = b""
            self._discarding = True
            self.lineLengthExceeded(b"")

    def lineReceived(self, line: bytes) -> None:
        """One line, LF removed: strip its CR and pass it on (empty lines are ignored)."""
        if line[-1:] == b"\r":
            line = line[:-1]
        if line and self.pipeline is not None:
            self.pipeline.line_received(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        """A line over ``MAX_LENGTH``: its bytes are dropped, the client gets 417."""
        if self.pipeline is not None:
            self.pipeline.overlong_line()


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
        dirty, self._dirty = self._dirty, []
        for user in dirty:
            outbox = user.outbox
            if outbox:
                data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
                outbox.clear()
                try:
                    assert user.link is not None, "a user with output has a link"
                    user.link.transmit(data)
                except Exception:
                    self._transmit_failed(user, data)
                    continue
                if self._retrying:
                    self._retrying.discard(user)

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
