"""One client stream on Twisted: line framing, admission, TLS handshake, back-pressure, closing.

:class:`ChatConnection` frames a TCP, TLS or UNIX stream into lines and feeds them to its
:class:`~twistedchat.server.pipeline.LinePipeline`, which holds every per-line rule; it owns what
only a stream has. Its factory, which counts connections and fans output out, is
:class:`~twistedchat.server.net.ChatFactory`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from twisted.internet import interfaces
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IDelayedCall, IPushProducer
from twisted.internet.protocol import BaseProtocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from twistedchat.server import fastpath, tls
from twistedchat.server.bans import parse_address
from twistedchat.server.pipeline import LinePipeline, PipelineProducer
from twistedchat.server.state import User
from twistedchat.wire import numerics as N
from twistedchat.wire.message import MAX_LINE_BYTES, MAX_TAGS_BYTES, Message

if TYPE_CHECKING:
    from twistedchat.server.net import ChatFactory

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
            writer = fastpath.DirectWriter(self.transport, slow=pipeline.transmit_checked)
            pipeline.write = writer.write
            pipeline.transmit = writer.transmit
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
