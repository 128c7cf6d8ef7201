"""The standard library's TLS engine: server sessions on ``ssl.SSLObject`` + ``ssl.MemoryBIO``.

Twisted's own TLS (``TLSMemoryBIOProtocol`` over pyOpenSSL) runs several Python layers per write;
here one :meth:`TLSConnection.write` is one ``SSLObject.write`` (records built in C, up to 16 KB
each) and one write of the ciphertext to the TCP transport, which goes straight to the socket
through the direct-write fast path (``fastpath.DirectWriter``) when Twisted's buffer is empty.
Which descriptions it serves, and their contexts, are in :mod:`twistedchat.server.tls`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import interfaces, tcp
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twistedchat.server import fastpath

log = Logger()

#: Plaintext read from the TLS object per call (one record is at most 16 KB).
READ_SIZE = 65536


class TLSFactory(Factory):
    """Wraps a factory's protocols in :class:`TLSConnection` (one :class:`ssl.SSLContext`)."""

    def __init__(self, wrapped: Factory, context: ssl.SSLContext, direct_write: bool,
                 clock: interfaces.IReactorTime | None = None, write_interval: float = 0.0) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.wrapped = wrapped
        self.context = context
        self.direct_write = direct_write
        self.clock = clock
        #: Seconds a connection's output is gathered after a write before the next one (0: never).
        self.write_interval = write_interval
        self._held: list[TLSConnection] = []
        self._release_call: Any = None

    def replace(self, context: ssl.SSLContext) -> None:
        """Use ``context`` (freshly read by :func:`read_tls_settings`) for new connections."""
        self.context = context

    def hold(self, connection: TLSConnection) -> None:
        """``connection`` holds output: write it out at the end of the current interval."""
        self._held.append(connection)
        if self._release_call is None:
            self._release_call = self.clock.callLater(self.write_interval, self._release)

    def _release(self) -> None:
        self._release_call = None
        held, self._held = self._held, []
        for connection in held:
            try:
                connection.release()
            except Exception:
                log.failure("writing held TLS output to {peer} failed", peer=connection.getPeer())
                connection.abortConnection()

    def doStop(self) -> None:
        if self._release_call is not None and self._release_call.active():
            self._release_call.cancel()
        self._release_call = None
        self._release()
        self.wrapped.doStop()

    def doStart(self) -> None:
        self.wrapped.doStart()

    def buildProtocol(self, addr: interfaces.IAddress | None) -> TLSConnection | None:
        inner = self.wrapped.buildProtocol(addr)
        return None if inner is None else TLSConnection(self, inner)


@implementer(interfaces.ITCPTransport, interfaces.ISSLTransport, interfaces.IPushProducer)
class TLSConnection(Protocol):
    """A server TLS session over a TCP connection: the TCP transport's protocol, and the
    transport of the wrapped (chat) protocol."""

    #: The TCP connection under the TLS layer, once connected.
    transport: tcp.Connection

    def __init__(self, factory: TLSFactory, wrapped: Any) -> None:
        self.factory = factory
        self.wrapped = wrapped
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = factory.context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.handshake_done = False
        self.disconnecting = False
        self._lost = False
        self._early: list[bytes] = []  # plaintext written before the handshake finished
        self._direct: Callable[[bytes], int | None] | None = None
        self._last_write = 0.0
        self._held: list[bytes] | None = None  # output gathered until the factory releases it
        self._held_bytes = 0

    # -- the TCP side ----------------------------------------------------------------------------

    def connectionMade(self) -> None:
        if self.factory.direct_write and fastpath.can_write_directly(self.transport):
            self._direct = fastpath.DirectWriter(self.transport).write
        self.wrapped.makeConnection(self)

    def dataReceived(self, data: bytes) -> None:
        self._incoming.write(data)
        if not self.handshake_done and not self._handshake():
            return
        chunks: list[bytes] = []
        read = self._tls.read
        peer_closed = False
        failure: ssl.SSLError | None = None
        while True:
            try:
                chunk = read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                peer_closed = True
                break
            except ssl.SSLError as error:
                failure = error
                break
            if not chunk:  # the client's close_notify (Python's read() returns b"" for it)
                peer_closed = True
                break
            chunks.append(chunk)
        if chunks and not self._lost:
            self.wrapped.dataReceived(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if self._outgoing.pending:
            self._flush()
        if failure is not None:
            self._fail(failure)
        elif peer_closed:
            self.loseConnection()

    def _handshake(self) -> bool:
        """Drive the handshake on; True once it is done (then the early writes go out)."""
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except ssl.SSLError as error:
            self._flush()  # the alert telling the client why
            self._fail(error)
            return False
        self.handshake_done = True
        self._flush()
        if interfaces.IHandshakeListener.providedBy(self.wrapped):
            self.wrapped.handshakeCompleted()
        if self._early and not self._lost:
            early, self._early = self._early, []
            self._tls.write(b"".join(early))
            self._flush()
        if self.disconnecting and not self._lost:  # closed while the handshake was under way
            self.disconnecting = False
            self.loseConnection()
        return not self._lost

    def _fail(self, error: ssl.SSLError) -> None:
        log.info("TLS error from {peer}: {error}", peer=self.transport.getPeer(), error=error)
        self.disconnecting = True  # the TLS object is broken: nothing more is written to it
        self.transport.abortConnection()

    def _flush(self) -> int | None:
        """Hand the ciphertext made so far to the TCP transport; the bytes it holds unsent
        (None when that is not known)."""
        data = self._outgoing.read()
        if not data:
            return None
        if self._direct is not None:
            return self._direct(data)
        self.transport.write(data)
        return None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = True
        self.wrapped.connectionLost(reason)

    # -- the transport the chat protocol sees --------------------------------------------------

    def write(self, data: bytes) -> None:
        self.write_counted(data)

    def write_counted(self, data: bytes) -> int | None:
        """Encrypt and send ``data``; the ciphertext bytes held unsent, or None if not known."""
        if self._lost or not data:
            return None
        if not self.handshake_done:
            if not self.disconnecting:
                self._early.append(data)
            return None
        if self.disconnecting:
            return None
        factory = self.factory
        if factory.write_interval:
            if self._held is not None:
                self._held.append(data)
                self._held_bytes += len(data)
                return self._unsent()
            now = factory.clock.seconds()
            if now - self._last_write < factory.write_interval:
                self._held, self._held_bytes = [data], len(data)
                factory.hold(self)
                return self._unsent()
            self._last_write = now
        self._tls.write(data)
        return self._flush()

    def _unsent(self) -> int | None:
        """Plaintext held here plus the ciphertext Twisted holds (None if that is not known)."""
        if self._direct is None:
            return None
        return self._held_bytes + fastpath.pending_bytes(self.transport)

    def release(self) -> int | None:
        """Write the gathered output now, as one TLS write."""
        held, self._held, self._held_bytes = self._held, None, 0
        if not held or self._lost:
            return None
        self._last_write = self.factory.clock.seconds()
        self._tls.write(held[0] if len(held) == 1 else b"".join(held))
        return self._flush()

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """Send close_notify after what was written, then close the TCP connection."""
        if self.disconnecting or self._lost:
            return
        self.release()
        self.disconnecting = True
        if not self.handshake_done:
            return  # closes once the handshake is done (the chat side's timeout bounds that)
        try:
            self._tls.unwrap()
        except ssl.SSLError:  # the client's close_notify has not come: ours is queued anyway
            pass
        self._flush()
        self.transport.loseConnection()

    def abortConnection(self) -> None:
        self.disconnecting = True
        self.transport.abortConnection()

    def getPeer(self) -> IPv4Address | IPv6Address:
        peer: IPv4Address | IPv6Address = self.transport.getPeer()
        return peer

    def getHost(self) -> IPv4Address | IPv6Address:
        host: IPv4Address | IPv6Address = self.transport.getHost()
        return host

    def getPeerCertificate(self) -> bytes | None:
        """The client's certificate (DER), if it sent one."""
        return self._tls.getpeercert(binary_form=True) if self.handshake_done else None

    def getTcpNoDelay(self) -> bool:
        return self.transport.getTcpNoDelay()

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.transport.setTcpNoDelay(enabled)

    def getTcpKeepAlive(self) -> bool:
        return self.transport.getTcpKeepAlive()

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self.transport.setTcpKeepAlive(enabled)

    def loseWriteConnection(self) -> None:
        self.loseConnection()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        # Ciphertext is plaintext plus a few bytes a record: the TCP buffer's pauses fit both.
        self.transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.transport.unregisterProducer()

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        self.transport.stopProducing()


def is_tls(transport: object) -> bool:
    """Whether a chat connection's transport is TLS (either engine) and so has a handshake."""
    from twisted.protocols.tls import TLSMemoryBIOProtocol

    return isinstance(transport, (TLSConnection, TLSMemoryBIOProtocol))
