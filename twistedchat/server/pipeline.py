"""The per-line rules every transport shares: length, UTF-8, CR/NUL, flood, sendq, handler errors.

A transport (``ChatConnection`` for TCP, TLS and UNIX sockets; a WebSocket one later) frames its
input into lines and feeds them to one :class:`LinePipeline` per client, and gives the pipeline an
:class:`Outlet` to write to. In order, a line is

1. checked for length (417 ``ERR_INPUTTOOLONG``), then UTF-8, then CR/LF/NUL inside it (a ``FAIL``
   reply), so nothing that could not be sent on to another user is ever stored or queued;
2. passed through the flood token bucket: a burst goes through, the rest waits in a queue bounded in
   lines and in bytes (``Excess Flood`` past either bound);
3. handed to the core; a handler that raises is logged and answered once with 400, and the
   connection goes on. A handler that waits on something slow (OPER's password check in a
   thread; SASL later) calls :meth:`LinePipeline.hold` with its Deferred: the client's later
   lines wait in the flood queue, in order and under its bounds, until the Deferred fires.

Output goes the other way through :meth:`LinePipeline.transmit_checked`, which drops a client whose unsent
output passes ``sendq``. A refused line waits its turn in the flood queue as the small reply it
earned, never as the line itself.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from twistedchat.server.audit import audit
from twistedchat.server.classes import limits_for
from twistedchat.server.core import ServerCore
from twistedchat.server.state import User
from twistedchat.wire import numerics as N
from twistedchat.wire.flood import TokenBucket
from twistedchat.wire.message import MAX_LINE_BYTES, MAX_TAGS_BYTES, Message, ParseError, parse

log = Logger()

#: Bytes the flood queue may hold per line it may hold (``--flood-queue``): a queue of ordinary
#: lines reaches the line bound first, one of 4 KB tagged lines the byte bound.
QUEUE_BYTES_PER_LINE = MAX_LINE_BYTES
#: What a refused line counts for in the flood queue (the reply it is kept as).
REJECTION_BYTES = 64

_COMMAND_WORD = re.compile(rb"[A-Za-z]+|[0-9]{3}")


def line_too_long(line: bytes) -> bool:
    """Whether a line (without its line ending) is over the IRC limits (tags counted apart)."""
    if len(line) <= MAX_LINE_BYTES - 2:
        return False
    if line[:1] != b"@":
        return True
    space = line.find(b" ")
    if space == -1:
        return True
    return space + 1 > MAX_TAGS_BYTES or len(line) - space - 1 > MAX_LINE_BYTES - 2


def command_word(line: bytes) -> str:
    """The command a raw (possibly broken) line names, if it can be echoed in a reply, else ``*``."""
    words = [word for word in line.split(b" ") if word]
    index = 1 if words and words[0][:1] == b"@" else 0
    if index < len(words) and words[index][:1] == b":":
        index += 1
    if index < len(words) and _COMMAND_WORD.fullmatch(words[index]):
        return words[index].decode("ascii").upper()
    return "*"


def split_lines(data: bytes) -> list[bytes]:
    """The lines of some output (whole CR LF lines), without line endings: one message each for a
    message-based transport such as WebSocket."""
    return data[:-2].split(b"\r\n") if data else []


class Rejection:
    """A refused line, kept only as the reply it earned."""

    __slots__ = ("command", "code", "text")

    def __init__(self, command: str, code: str, text: str) -> None:
        self.command = command
        self.code = code
        self.text = text

    def answer(self, core: ServerCore, user: User) -> None:
        if self.code == N.ERR_INPUTTOOLONG:
            core.reply(user, N.ERR_INPUTTOOLONG, self.text)
        else:
            core.fail(user, self.command, self.code, self.text)


TOO_LONG = Rejection("*", N.ERR_INPUTTOOLONG, "Input line was too long")


class Outlet(Protocol):
    """What a transport gives its pipeline to write to."""

    def write(self, data: bytes) -> int | None:
        """Send whole lines; return the bytes now held unsent, or None if the transport can't say."""

    def abort(self) -> None:
        """Cut the connection now, dropping what is unsent."""

    def close(self) -> None:
        """Close the connection once what was written is sent."""


@implementer(IPushProducer)
class PipelineProducer:
    """What a transport's owner registers as its producer: a full write buffer pauses the output
    accounting of its :class:`LinePipeline` (the sendq), an emptied one resumes it."""

    pipeline: LinePipeline | None

    def pauseProducing(self) -> None:
        if self.pipeline is not None:
            self.pipeline.pause_output()

    def resumeProducing(self) -> None:
        if self.pipeline is not None:
            self.pipeline.resume_output()

    def stopProducing(self) -> None:
        pass


class LinePipeline:
    """One client's lines in and output out, under every per-line rule; any transport feeds it.

    The pipeline is the user's ``link``: the factory's fan-out calls :meth:`transmit` once per
    reactor turn with everything queued for the user.
    """

    def __init__(self, core: ServerCore, clock: IReactorTime, outlet: Outlet, host: str,
                 wake: Callable[[User], None]) -> None:
        config = core.config
        self.core = core
        self.clock = clock
        self.outlet = outlet
        self.host = host
        #: Writes output and returns the bytes held unsent (the outlet's, or a faster equivalent).
        self.write: Callable[[bytes], int | None] = outlet.write
        #: The fan-out's way out for this client (:meth:`transmit_checked`, or a faster
        #: equivalent that falls back to it: ``fastpath.DirectWriter.transmit``).
        self.transmit: Callable[[bytes], None] = self.transmit_checked
        limits = limits_for(config, host)
        self.sendq = limits.sendq
        self.closing = False
        self.dropped = False
        self.queued_bytes = 0
        self._queue_lines = config.flood_queue
        self._queue_bytes = config.flood_queue * QUEUE_BYTES_PER_LINE
        self._queue: deque[tuple[Message | Rejection, int]] = deque()
        self._bucket = (TokenBucket(limits.flood_burst, limits.flood_rate, clock.seconds())
                        if config.flood_control else None)
        self._drain_call: IDelayedCall | None = None
        #: A handler's unfinished work (see :meth:`hold`): input waits until it fires.
        self._holding: Deferred[object] | None = None
        self.output_paused = False
        self._unsent = 0
        self.user = core.connect(host, wake, self.close, link=self)

    # -- input -----------------------------------------------------------------------------------

    def client_fingerprint(self) -> str | None:
        """The SHA-256 fingerprint of the client's TLS certificate, if its transport has one."""
        fingerprint = getattr(self.outlet, "client_fingerprint", None)
        return fingerprint() if fingerprint is not None else None

    def touch(self) -> None:
        """Input arrived: the client is not idle."""
        self.user.last_seen = self.clock.seconds()

    def line_received(self, line: bytes) -> None:
        """One line from the client, without its line ending."""
        if line_too_long(line):
            self._admit(TOO_LONG, REJECTION_BYTES)
            return
        try:
            message = parse(line)
        except UnicodeDecodeError:
            self._admit(Rejection(command_word(line), "INVALID_UTF8",
                                  "Message rejected: lines must be UTF-8"), REJECTION_BYTES)
            return
        except ParseError as error:
            self._admit(Rejection(command_word(line), "INVALID_MESSAGE",
                                  f"Message rejected: {error}"), REJECTION_BYTES)
            return
        self._admit(message, len(line))

    def overlong_line(self) -> None:
        """The transport framed a line over the limit and dropped its bytes: answer 417."""
        self._admit(TOO_LONG, REJECTION_BYTES)

    def _admit(self, item: Message | Rejection, size: int) -> None:
        if self.closing:
            return
        bucket = self._bucket
        if self._holding is not None or self._queue:
            self._enqueue(item, size)
        elif bucket is None:
            self._run(item)
        else:
            wait = bucket.take(self.clock.seconds())
            if wait == 0.0:
                self._run(item)
            else:
                self._enqueue(item, size)
                self._drain_call = self.clock.callLater(wait, self._drain)

    def _enqueue(self, item: Message | Rejection, size: int) -> None:
        self._queue.append((item, size))
        self.queued_bytes += size
        if len(self._queue) > self._queue_lines or self.queued_bytes > self._queue_bytes:
            self._stop_input()
            self.core.counters["flood_drops"] += 1
            audit("flood-drop", nick=self.user.nick, address=self.user.real_host)
            try:
                self.core.quit(self.user, "Excess Flood")
            except Exception:
                log.failure("error ending the flood from {host}", host=self.host)
                self.abort("excess flood")

    def hold(self, work: Deferred[object]) -> None:
        """Handle no more of this client's lines until ``work`` fires (success or failure).

        Lines that arrive meanwhile wait in the flood queue (so its bounds still apply), then
        run in the order they came. For a handler whose answer comes from a thread or a store.
        """
        if work.called:
            return
        self._holding = work

        def release(result: object) -> object:
            if self._holding is work:
                self._holding = None
                if self._drain_call is None and not self.closing:
                    self._drain()
            return result

        work.addBoth(release)

    def _drain(self) -> None:
        self._drain_call = None
        bucket = self._bucket
        queue = self._queue
        while queue and not self.closing and self._holding is None:
            wait = bucket.take(self.clock.seconds()) if bucket is not None else 0.0
            if wait:
                self._drain_call = self.clock.callLater(wait, self._drain)
                return
            item, size = queue.popleft()
            self.queued_bytes -= size
            self._run(item)

    def _run(self, item: Message | Rejection) -> None:
        """Handle one line (or answer one refusal); nothing it raises leaves this method."""
        try:
            if isinstance(item, Rejection):
                item.answer(self.core, self.user)
            else:
                self.core.handle(self.user, item)
        except Exception:
            log.failure("error handling {command} from {host}", command=item.command,
                        host=self.host)
            try:
                self.core.reply(self.user, N.ERR_UNKNOWNERROR, item.command,
                                "Internal error; the server logged it")
            except Exception:
                log.failure("error answering a failed {command}", command=item.command)

    def _stop_input(self) -> None:
        self.closing = True
        self._queue.clear()
        self.queued_bytes = 0
        if self._drain_call is not None and self._drain_call.active():
            self._drain_call.cancel()
        self._drain_call = None

    # -- output ----------------------------------------------------------------------------------

    def transmit_checked(self, data: bytes) -> None:
        """Write output for the client; one whose unsent output passes ``sendq`` is dropped.

        This is :attr:`transmit` unless a faster equivalent replaced it (see ``fastpath``).
        """
        held = self.write(data)
        if not held:  # all sent (0), the common case; or the transport cannot say (None)
            if held is not None or not self.output_paused:
                return
            # The transport cannot say what it holds: count what was written since it asked us to
            # pause (it does once its own buffer is full), until it asks us to resume.
            self._unsent += len(data)
            held = self._unsent
        if held > self.sendq and not self.dropped:
            self.core.counters["sendq_drops"] += 1
            audit("sendq-drop", nick=self.user.nick, address=self.user.real_host, unsent=held)
            self.abort(f"send queue exceeded ({held} bytes unsent, sendq {self.sendq})")

    def pause_output(self) -> None:
        """The transport's buffer is full. Twisted says so on every write until it drains."""
        if not self.output_paused:
            self.output_paused = True
            self._unsent = 0

    def resume_output(self) -> None:
        """The transport's buffer drained."""
        self.output_paused = False
        self._unsent = 0

    # -- ending ----------------------------------------------------------------------------------

    def abort(self, why: str) -> None:
        """Cut the connection now (the client is gone from the chat when the transport says so)."""
        self.dropped = True
        self._stop_input()
        log.info("dropped {host}: {why}", host=self.host, why=why)
        self.outlet.abort()

    def close(self) -> None:
        """The core ended the session: write what is queued, then close the transport."""
        self._stop_input()
        outbox = self.user.outbox
        if outbox:
            data = b"".join(outbox)
            outbox.clear()
            self.transmit(data)
        self.outlet.close()

    def connection_lost(self) -> None:
        """The transport is gone: the user leaves the chat (a QUIT to its channels if needed)."""
        self._stop_input()
        reason = "Max SendQ exceeded" if self.dropped else "Connection closed"
        try:
            self.core.connection_lost(self.user, reason)
        except Exception:
            log.failure("error removing {host} from the chat", host=self.host)
