"""A thin pipelined Redis client on ``hiredis.Reader``: commands, Lua scripts and pub/sub.

Why not a general client library: the cluster needs three things a general client hides, and this
one is ~150 lines that say them plainly. Commands are pipelined (every command is written at once,
replies are matched in order), and the number in flight is bounded (:data:`MAX_IN_FLIGHT`); when
Redis is away a command fails at once with :class:`RedisUnavailable` instead of queueing, so the
chat never piles up work behind a dead link. Reconnection is Twisted's ``ClientService`` with a
50 ms to 1 s backoff, forever; each new connection is prepared (scripts, SUBSCRIBE, resync) before
it is used. ``hiredis.Reader`` parses replies in C. A command goes straight to the socket when
Twisted holds nothing for it (the fan-out's guarded fast path, ``server/fastpath.py``), so a quiet
network's lone batch costs no writer registration and no extra reactor turn.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import hiredis
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, endpoints
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from twistedchat.server.fastpath import DirectWriter, can_write_directly

log = Logger()

#: Commands awaiting a reply on one connection; past this a command fails rather than queue.
MAX_IN_FLIGHT = 10_000
#: Reconnection delays: from 50 ms up to 1 s, forever, each plus up to 50 ms of jitter (Twisted's
#: default adds up to 1 s, which would delay every return from a Redis blip by that much, and a
#: node that has no working Redis for 3 s splits the network: liveness.py).
RETRY = backoffPolicy(initialDelay=0.05, maxDelay=1.0, factor=2.0,
                      jitter=lambda: random.random() * 0.05)


class RedisUnavailable(Exception):
    """Redis cannot be reached now (or too many commands are waiting): nothing was queued."""


class RedisError(Exception):
    """Redis answered a command with an error."""


def parse_url(url: str) -> tuple[str, int, int]:
    """``redis://host:port/db`` -> (host, port, db); a clear ``ValueError`` when it is not one."""
    parsed = urlparse(url)
    if parsed.scheme != "redis" or not parsed.hostname:
        raise ValueError(f"expected redis://host:port/db, got {url!r}")
    try:
        port = parsed.port or 6379
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    path = parsed.path.strip("/") or "0"
    if not path.isdigit():
        raise ValueError(f"the database in {url!r} must be a number")
    return parsed.hostname, port, int(path)


def encode_command(args: tuple[Any, ...]) -> bytes:
    """One command in the RESP wire format."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode("utf-8")
        elif isinstance(arg, int):
            arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class RedisProtocol(Protocol):
    """One Redis connection: pipelined commands, replies in order; pub/sub pushes to a callback."""

    #: Whether commands may go straight to the socket when Twisted's buffer is empty (the link
    #: sets it from ``--no-direct-write`` and the start-up check of the installed Twisted).
    direct_write = False

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.pending: deque[defer.Deferred[Any]] = deque()
        #: Called with (channel, payload) for each pub/sub message once this connection subscribed.
        self.on_message: Callable[[bytes, bytes], None] | None = None
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.connected = False
        self._write: Callable[[bytes], object] = _not_connected

    def connectionMade(self) -> None:
        self.connected = True
        transport: Any = self.transport
        if self.direct_write and can_write_directly(transport):
            self._write = DirectWriter(transport).write
        else:
            self._write = transport.write

    def listen(self, on_message: Callable[[bytes, bytes], None]) -> None:
        """Deliver pub/sub messages to ``on_message`` (a method: ``ClientService`` hands the
        prepare step a proxy, on which setting an attribute would not reach the protocol)."""
        self.on_message = on_message

    def execute(self, *args: Any) -> defer.Deferred[Any]:
        """Send one command; the Deferred fires with its reply (or a :class:`RedisError`)."""
        if not self.connected:
            return defer.fail(RedisUnavailable("not connected"))
        if len(self.pending) >= MAX_IN_FLIGHT:
            return defer.fail(RedisUnavailable("too many commands waiting for Redis"))
        waiter: defer.Deferred[Any] = defer.Deferred()
        self.pending.append(waiter)
        self._write(encode_command(args))
        return waiter

    def dataReceived(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError:
                log.error("Redis sent a malformed reply; reconnecting")
                self.abort()
                return
            if reply is False:
                return
            if (self.on_message is not None and isinstance(reply, list) and reply
                    and reply[0] == b"message"):
                self.on_message(reply[1], reply[2])
                continue
            if not self.pending:
                continue  # a subscribe confirmation nobody waits for
            waiter = self.pending.popleft()
            if isinstance(reply, hiredis.ReplyError):
                waiter.errback(RedisError(str(reply)))
            else:
                waiter.callback(reply)

    def abort(self) -> None:
        """Drop the connection now."""
        transport: Any = self.transport
        transport.abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = False
        pending, self.pending = self.pending, deque()
        for waiter in pending:
            waiter.errback(RedisUnavailable("connection lost"))
        self.lost.callback(None)


def _not_connected(data: bytes) -> None:
    raise RedisUnavailable("not connected")


class _RedisFactory(Factory):
    """Builds :class:`RedisProtocol` connections, with or without the direct write."""

    protocol = RedisProtocol

    def __init__(self, direct_write: bool) -> None:
        self.direct_write = direct_write

    def buildProtocol(self, addr: Any) -> RedisProtocol:
        protocol = RedisProtocol()
        protocol.factory = self
        protocol.direct_write = self.direct_write
        return protocol


class Script:
    """A Lua script run with EVALSHA (loaded with EVAL the first time a connection lacks it)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def run(self, link: RedisProtocol, *args: Any) -> defer.Deferred[Any]:
        """Run with ARGV = ``args`` (no KEYS: one Redis, keys under one prefix)."""

        def load_it(failure: Failure) -> Any:
            failure.trap(RedisError)
            if "NOSCRIPT" not in str(failure.value):
                return failure
            return link.execute("EVAL", self.source, 0, *args)

        # Plain callbacks, not inlineCallbacks: this runs once per batch of events.
        return link.execute("EVALSHA", self.sha, 0, *args).addErrback(load_it)


class RedisLink:
    """A Redis connection kept up forever (50 ms -> 1 s backoff); ``prepare`` runs on each one."""

    def __init__(self, reactor: Any, url: str, name: str,
                 prepare: Callable[[RedisProtocol], Any], direct_write: bool = False) -> None:
        host, port, self.db = parse_url(url)
        self.name = name
        self.current: RedisProtocol | None = None
        self._prepare = prepare
        endpoint = endpoints.HostnameEndpoint(reactor, host, port, timeout=2)
        factory = _RedisFactory(direct_write)
        self.service = ClientService(endpoint, factory, retryPolicy=RETRY,
                                     prepareConnection=self._prepared, clock=reactor)

    @defer.inlineCallbacks
    def _prepared(self, protocol: Any) -> Any:
        if self.db:
            yield protocol.execute("SELECT", self.db)
        try:
            yield self._prepare(protocol)
        except Exception:
            log.failure("preparing the Redis {name} connection failed", name=self.name)
            protocol.abort()
            raise
        self.current = protocol
        protocol.lost.addCallback(self._lost, protocol)
        log.info("Redis {name} connection ready", name=self.name)

    def _lost(self, _: None, protocol: RedisProtocol) -> None:
        if self.current is protocol:
            self.current = None
            log.warn("Redis {name} connection lost; reconnecting", name=self.name)

    def execute(self, *args: Any) -> defer.Deferred[Any]:
        """A command on the current connection, or :class:`RedisUnavailable` at once."""
        if self.current is None:
            return defer.fail(RedisUnavailable("Redis is not connected"))
        return self.current.execute(*args)

    def run(self, script: Script, *args: Any) -> defer.Deferred[Any]:
        """A Lua script on the current connection, or :class:`RedisUnavailable` at once."""
        if self.current is None:
            return defer.fail(RedisUnavailable("Redis is not connected"))
        return script.run(self.current, *args)

    def start(self) -> None:
        self.service.startService()

    def stop(self) -> defer.Deferred[None]:
        return self.service.stopService()

    def cut(self) -> None:
        """Drop the current connection (it reconnects): for tests and for a stuck link."""
        if self.current is not None:
            self.current.abort()
