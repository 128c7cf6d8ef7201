"""The direct-write fast path: output for an idle plain-TCP socket goes straight to ``send()``.

``transport.write`` appends to Twisted's buffer and registers the socket for writing, so the bytes
leave one reactor turn later; when that buffer is empty, calling the socket's ``send`` at once is
the same thing done sooner and cheaper. To know the buffer is empty this module reads attributes of
``twisted.internet.abstract.FileDescriptor`` that are not public API, so it is guarded:

- :func:`direct_write_problem` checks at start-up that the installed Twisted still has them (a
  test pins them too); if not, the daemon logs it once and every connection uses
  ``transport.write``;
- only a plain ``tcp.Connection`` takes the path, never TLS: :class:`DirectWriter` checks the
  transport's TLS flag on every write, so an in-place ``startTLS`` switches it to the public path
  for good;
- ``twistd chat --no-direct-write`` turns it off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeGuard, cast

from twisted.internet import abstract, tcp
from twisted.internet.interfaces import IReactorFDSet, ITransport

#: Attributes of a plain TCP transport the fast path reads: Twisted's two write buffers and the
#: position in the first, whether the connection is open, and whether TLS was started in place.
REQUIRED_ATTRIBUTES: dict[str, type] = {
    "dataBuffer": bytes,
    "offset": int,
    "_tempDataLen": int,
    "connected": int,
    "disconnecting": int,
    "TLS": bool,
}


def direct_write_problem() -> str | None:
    """Why the fast path cannot run on the installed Twisted, or None when it can."""
    if not issubclass(tcp.Connection, abstract.FileDescriptor):
        return "tcp.Connection is no longer a FileDescriptor"
    probe = abstract.FileDescriptor.__new__(tcp.Connection)
    try:
        # The probe is never started, so its reactor is a stand-in that is never called.
        abstract.FileDescriptor.__init__(probe, reactor=cast(IReactorFDSet, _NoReactor()))
    except Exception as error:  # a changed constructor: don't guess
        return f"FileDescriptor() failed: {error}"
    for name, kind in REQUIRED_ATTRIBUTES.items():
        value = getattr(probe, name, None)
        if not isinstance(value, kind):
            return f"transport attribute {name} is missing or not {kind.__name__}"
    if not callable(getattr(tcp.Connection, "getHandle", None)):
        return "tcp.Connection.getHandle is missing"
    return None


class _NoReactor:
    """Stands in for the reactor while :func:`direct_write_problem` builds a probe transport."""


def pending_bytes(transport: tcp.Connection) -> int:
    """Bytes a plain TCP transport holds that the kernel has not taken yet."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def can_write_directly(transport: ITransport | None) -> TypeGuard[tcp.Connection]:
    """Whether ``transport`` is one the fast path may serve: plain TCP, TLS not started."""
    return isinstance(transport, tcp.Connection) and not transport.TLS


class DirectWriter:
    """Writes one connection's output, straight to its socket whenever Twisted's buffer is empty.

    :meth:`write` returns how many bytes Twisted now holds for the connection (its send queue),
    or None once TLS has been started on it (the bytes then went through ``transport.write`` and
    the caller counts them itself).
    """

    __slots__ = ("transport", "send", "slow")

    def __init__(self, transport: tcp.Connection,
                 slow: Callable[[bytes], None] | None = None) -> None:
        self.transport = transport
        self.send: Callable[[bytes], int] = transport.getHandle().send
        #: what :meth:`transmit` hands what it cannot send at once (the pipeline's own transmit)
        self.slow = slow

    def transmit(self, data: bytes) -> None:
        """A pipeline's transmit with the common case first: nothing pending, all sent at once.

        Anything else (bytes pending in Twisted's buffer, TLS started, a partial send) goes to
        ``slow``, the pipeline's transmit, which writes through :meth:`write` and minds the
        sendq; so this saves the fan-out one call per recipient and changes nothing else (after a
        partial send or ``EAGAIN``, :meth:`write` tries the socket once more before Twisted's
        buffer takes the rest: one extra system call when a client's socket has just filled).
        """
        transport = self.transport
        if (not transport.TLS and not transport._tempDataLen
                and len(transport.dataBuffer) == transport.offset
                and transport.connected and not transport.disconnecting):
            try:
                sent = self.send(data)
            except OSError:  # EAGAIN or a broken connection: the slow path deals with either
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        assert self.slow is not None, "transmit needs the pipeline's own transmit"
        self.slow(data)

    def write(self, data: bytes) -> int | None:
        """Send ``data`` (straight to the socket if it can); the bytes Twisted now holds, or None."""
        transport = self.transport
        if transport.TLS:  # startTLS in place: the raw socket now carries ciphertext only
            transport.write(data)
            return None
        # Nothing pending (``pending_bytes`` is 0: both of its terms are never negative) on an
        # open connection: the bytes can go straight to the socket, which skips the writer
        # registration and the extra reactor turn of transport.write().
        if (not transport._tempDataLen and len(transport.dataBuffer) == transport.offset
                and transport.connected and not transport.disconnecting):
            try:
                sent = self.send(data)
            except OSError:  # EAGAIN or a broken connection: the transport deals with either
                sent = 0
            if sent == len(data):
                return 0
            data = data[sent:]
            transport.write(data)
            return len(data)
        pending = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        transport.write(data)
        return pending + len(data)
