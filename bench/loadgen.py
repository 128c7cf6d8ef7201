"""IRC load generator: N clients in one channel, a fixed-rate run and a saturation run.

Built to stay out of the way of the server it measures: raw non-blocking sockets on one epoll,
one shared receive buffer (``recv_into``), and no per-line parsing on the hot path. Received data is
counted with ``bytes.count``; latency comes from messages that carry their send time as
``Lts=<19 digits>`` and are found with ``bytes.find``. Only lines that are not PRIVMSGs (rare once
everyone has joined: PING, ERROR, ...) are split and looked at one by one.

With ``--tls`` every client speaks TLS: non-blocking ``ssl`` sockets on the same epoll, each
handshake driven by the loop and bounded by ``HANDSHAKE_SECONDS``, and a handshake storm measured
first (``--handshakes`` fresh connections that complete a handshake and close; server CPU and
handshakes/s). Certificates are not verified: the load is the point, not the trust.

Every phase is bounded in time; the whole run talks to one loopback address. Run it as
``python -m bench.loadgen --port P --server-pid PID --clients N`` (see ``--help``); it prints one
JSON object with every figure, which ``bench.run`` turns into tables.

With ``--websocket-port W --websocket-clients K``, K of the clients (spread evenly among the
others) connect over IRC-over-WebSocket (``text.ircv3.net`` at ``/ws``) instead: their frames are
unwrapped into lines as they arrive, so every count and timing treats both kinds alike.
"""

from __future__ import annotations

import argparse
import base64
import errno
import gc
import json
import os
import resource
import select
import socket
import ssl
import sys
import time
from dataclasses import asdict, dataclass, field

from bench.servers import proc_cpu_seconds, proc_rss_bytes, raise_nofile

CHANNEL = b"#bench"
MARKER = b"Lts="
STAMP_DIGITS = 19
PRIVMSG = b" PRIVMSG "
TEXT_LENGTH = 48  # bytes of message text after "PRIVMSG #bench :"
RECV_BUFFER = 1 << 18
QUIET_SECONDS = 0.5
JOIN_WINDOW = 64  # clients waiting for their 366 at once
HANDSHAKE_SECONDS = 10.0  # a TLS handshake not done by then counts as failed
#: What a non-blocking socket (plain or TLS) raises when it cannot go on right now.
WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def client_tls_context() -> ssl.SSLContext:
    """A TLS client context that accepts any certificate (the bench's are self-signed)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def websocket_frames(data: bytes) -> bytes:
    """Whole CR LF lines as client WebSocket text frames, one line each.

    A client must mask its frames; the all-zero mask key is a valid one that leaves the payload
    as it is, so the generator spends nothing on masking.
    """
    frames = []
    for line in data[:-2].split(b"\r\n"):
        size = len(line)
        if size < 126:
            frames.append(bytes((0x81, 0x80 | size)) + b"\0\0\0\0" + line)
        else:
            frames.append(bytes((0x81, 0xFE)) + size.to_bytes(2, "big") + b"\0\0\0\0" + line)
    return b"".join(frames)


def websocket_lines(data: bytes) -> tuple[bytes, bytes, bool]:
    """Server frames (unmasked) as LF-terminated lines; (lines, unfinished frame, closed)."""
    out = []
    pos, size = 0, len(data)
    while pos + 2 <= size:
        opcode, length = data[pos] & 0x0F, data[pos + 1] & 0x7F
        head = 2
        if length == 126:
            if pos + 4 > size:
                break
            length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if pos + 10 > size:
                break
            length, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
        end = pos + head + length
        if end > size:
            break
        if opcode == 0x8:
            return b"".join(out), b"", True
        if opcode in (0x1, 0x2):
            out.append(data[pos + head : end] + b"\n")
        pos = end
    return b"".join(out), data[pos:], False


def percentile(sorted_values: list[int], fraction: float) -> float:
    """The nearest-rank percentile of an already sorted list (0 for an empty list)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return float(sorted_values[rank])


#: One letter per port (node) a client connects to; a stamped message carries its sender's right
#: after the stamp, so a receiver tells deliveries that crossed between nodes from local ones.
NODE_MARKS = b"abcdefghijklmnop"
#: Where the sender's mark sits, counted from the start of ``MARKER``.
MARK_OFFSET = len(MARKER) + STAMP_DIGITS + 1


def message_line(stamp_ns: int | None, mark: int = NODE_MARKS[0]) -> bytes:
    """One PRIVMSG line to the bench channel; its text carries ``stamp_ns`` (and the sender's
    node ``mark``) if given."""
    text = MARKER + str(stamp_ns).zfill(STAMP_DIGITS).encode() if stamp_ns is not None else b"x"
    text = text + b" " + bytes((mark,)) + b"y" * (TEXT_LENGTH - len(text) - 2)
    return b"PRIVMSG " + CHANNEL + b" :" + text + b"\r\n"


@dataclass
class PhaseResult:
    """What one message phase measured."""

    seconds: float = 0.0
    senders: int = 0
    sent: int = 0
    expected: int = 0
    received: int = 0
    lost: int = 0
    deliveries_per_s: float = 0.0
    server_cpu_s: float = 0.0
    server_cpu_percent: float = 0.0
    server_cpu_us_per_delivery: float = 0.0
    generator_cpu_percent: float = 0.0
    latency_samples: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    disconnects: int = 0
    #: Each server process's CPU seconds (in ``--server-pid`` order).
    server_cpu_s_each: list[float] = field(default_factory=list)
    #: With several ports: deliveries between clients of one node, and across nodes.
    latency_local_samples: int = 0
    latency_local_p50_ms: float = 0.0
    latency_local_p99_ms: float = 0.0
    latency_remote_samples: int = 0
    latency_remote_p50_ms: float = 0.0
    latency_remote_p99_ms: float = 0.0
    #: With ``--redis-port``: Redis's own count of script calls (EVALSHA) and their time.
    redis_script_calls: int = 0
    redis_script_usec: int = 0


@dataclass
class RunResult:
    """Everything one load-generator run measured against one server."""

    clients: int = 0
    connected: int = 0
    registered: int = 0
    joined: int = 0
    tls: bool = False
    tls_version: str = ""
    tls_cipher: str = ""
    handshakes: int = 0
    handshake_failures: int = 0
    handshake_seconds: float = 0.0
    handshakes_per_s: float = 0.0
    handshake_server_cpu_s: float = 0.0
    handshake_server_cpu_us_each: float = 0.0
    resumed_handshakes_per_s: float = 0.0
    resumed_fraction: float = 0.0
    resumed_server_cpu_us_each: float = 0.0
    register_seconds: float = 0.0
    registered_per_s: float = 0.0
    register_server_cpu_s: float = 0.0
    register_generator_cpu_percent: float = 0.0
    join_seconds: float = 0.0
    joined_per_s: float = 0.0
    join_server_cpu_s: float = 0.0
    join_generator_cpu_percent: float = 0.0
    total_seconds: float = 0.0
    settle_seconds: float = 0.0
    rss_base_bytes: int = 0
    rss_idle_bytes: int = 0
    rss_per_client_bytes: float = 0.0
    fixed: PhaseResult = field(default_factory=PhaseResult)
    saturation: PhaseResult = field(default_factory=PhaseResult)
    errors: list[str] = field(default_factory=list)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LoadGenerator:
    """N IRC clients on raw sockets, driven from one epoll loop."""

    def __init__(self, host: str, port: int, server_pids: tuple[int, ...], tls: bool = False,
                 websocket_port: int = 0, websocket_clients: int = 0,
                 other_ports: tuple[int, ...] = (), redis_port: int = 0) -> None:  # fmt: skip
        self.address = (host, port)
        #: Client i connects to ``addresses[i % len(addresses)]`` (the nodes of one network).
        self.addresses = [(host, p) for p in (port, *other_ports)]
        self.redis_address = (host, redis_port) if redis_port else None
        #: The server's processes (a TLS-terminating proxy in front counts with the server).
        self.server_pids = server_pids
        self.tls = client_tls_context() if tls else None
        #: Clients whose TLS handshake is under way, and when it must be done by.
        self.handshaking: dict[int, float] = {}
        self.websocket_address = (host, websocket_port)
        self.websocket_clients = websocket_clients
        self.websocket: list[bool] = []
        self.frame_tails: dict[int, bytes] = {}
        self.epoll = select.epoll()
        self.socks: list[socket.socket] = []
        self.index_of_fd: dict[int, int] = {}
        self.tails: list[bytes] = []
        self.pending_out: dict[int, bytes] = {}
        self.buf = bytearray(RECV_BUFFER)
        self.view = memoryview(self.buf)
        self.disconnects = 0
        self.errors: list[str] = []
        self.result = RunResult()

    def server_cpu(self) -> float:
        return sum(proc_cpu_seconds(pid) for pid in self.server_pids)

    def server_cpu_each(self) -> list[float]:
        return [proc_cpu_seconds(pid) for pid in self.server_pids]

    def node_mark(self, index: int) -> int:
        """The mark of the node (port) client ``index`` is connected to."""
        return NODE_MARKS[index % len(self.addresses)]

    def redis_script_stats(self) -> tuple[int, int]:
        """(calls, µs) of Redis's EVALSHA so far (``INFO commandstats``); (0, 0) without Redis."""
        if self.redis_address is None:
            return 0, 0
        with socket.create_connection(self.redis_address, 5) as sock:
            sock.sendall(b"INFO commandstats\r\n")
            data = b""
            while b"\r\n" not in data or len(data) < data.index(b"\r\n") + 4 + int(
                    data[1:data.index(b"\r\n")]):  # a bulk reply: $LENGTH CR LF text CR LF
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        for line in data.split(b"\r\n"):
            if line.startswith(b"cmdstat_evalsha:"):
                fields = dict(f.split(b"=", 1) for f in line.split(b":", 1)[1].split(b","))
                return int(fields[b"calls"]), int(fields[b"usec"])
        return 0, 0

    def server_rss(self) -> int:
        return sum(proc_rss_bytes(pid) for pid in self.server_pids)

    # --- sockets -----------------------------------------------------------------------------
    def over_websocket(self, index: int, clients: int) -> bool:
        """Whether client ``index`` of ``clients`` is one of the evenly spread WebSocket ones."""
        share = self.websocket_clients
        return (index + 1) * share // clients - index * share // clients == 1

    def _connect(self, timeout: float, websocket: bool = False) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.websocket_address if websocket
                     else self.addresses[len(self.socks) % len(self.addresses)])
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        early = self._websocket_handshake(sock) if websocket else b""
        sock.setblocking(False)
        index = len(self.socks)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, do_handshake_on_connect=False)
            self.handshaking[index] = time.monotonic() + HANDSHAKE_SECONDS
        self.socks.append(sock)
        self.websocket.append(websocket)
        if websocket:
            self.frame_tails[index] = early
        self.tails.append(b"")
        self.index_of_fd[sock.fileno()] = index
        self.epoll.register(sock.fileno(), select.EPOLLIN)
        if self.tls is not None:
            self._handshake(index)
        return index

    def _handshake(self, index: int) -> bool:
        """Drive client ``index``'s TLS handshake on; True once it is done."""
        sock = self.socks[index]
        try:
            sock.do_handshake()  # type: ignore[attr-defined]
        except WOULD_BLOCK:
            if time.monotonic() > self.handshaking[index]:
                self._note(f"TLS handshake not done in {HANDSHAKE_SECONDS:g} s")
                del self.handshaking[index]
                self._drop(index, sock.fileno())
            return False
        except OSError as err:
            self._note(f"TLS handshake failed: {err}")
            del self.handshaking[index]
            self._drop(index, sock.fileno())
            return False
        del self.handshaking[index]
        if not self.result.tls_version:
            self.result.tls_version = sock.version() or ""  # type: ignore[attr-defined]
            self.result.tls_cipher = (sock.cipher() or ("",))[0]  # type: ignore[attr-defined]
        return True

    def _websocket_handshake(self, sock: socket.socket) -> bytes:
        """The opening handshake (blocking, under the socket's timeout); returns bytes after it."""
        key = base64.b64encode(os.urandom(16))
        host = f"{self.websocket_address[0]}:{self.websocket_address[1]}".encode()
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: " + host + b"\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
                     b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: text.ircv3.net\r\n\r\n")
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            if not chunk:
                raise OSError("WebSocket handshake: connection closed")
            response += chunk
        head, _, rest = response.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise OSError(f"WebSocket handshake refused: {head[:80]!r}")
        return rest

    def _send(self, index: int, data: bytes) -> None:
        """Send now; keep what the kernel did not take and flush it in the loop."""
        if self.websocket[index]:
            data = websocket_frames(data)
        if index in self.pending_out or index in self.handshaking:
            self.pending_out[index] = self.pending_out.get(index, b"") + data
            return
        try:
            sent = self.socks[index].send(data)
        except WOULD_BLOCK:
            sent = 0
        except OSError as err:
            self._note(f"send failed: {err}")
            return
        if sent < len(data):
            self.pending_out[index] = data[sent:]

    def _flush_pending(self) -> None:
        for index in list(self.handshaking):  # a handshake that waited to write, or overdue
            self._handshake(index)
        for index, data in list(self.pending_out.items()):
            if index in self.handshaking:
                continue
            try:
                sent = self.socks[index].send(data)
            except WOULD_BLOCK:
                continue
            except OSError as err:
                self._note(f"send failed: {err}")
                sent = len(data)
            if sent >= len(data):
                del self.pending_out[index]
            else:
                self.pending_out[index] = data[sent:]

    def _read(self, fd: int) -> tuple[int, int]:
        """recv into the shared buffer after the saved tail; return (client index, end).

        ``end`` is the length of the complete lines now at the start of ``self.buf`` (-1 when
        nothing could be read); the partial last line is saved as the client's tail.
        """
        index = self.index_of_fd[fd]
        if index in self.handshaking:
            if self._handshake(index) and index in self.pending_out:
                self._flush_pending()
            return index, -1
        if self.websocket[index]:
            return index, self._read_frames(index, fd)
        tail = self.tails[index]
        start = len(tail)
        if start:
            self.buf[:start] = tail
        sock = self.socks[index]
        try:
            got = sock.recv_into(self.view[start:])
        except WOULD_BLOCK:
            return index, -1
        except ssl.SSLZeroReturnError:  # the server's close_notify
            got = 0
        except OSError as err:
            got = 0
            self._note(f"recv failed: {err}")
        if got == 0:
            self._drop(index, fd)
            return index, -1
        size = start + got
        if self.tls is not None:
            # One TLS read returns at most one record; take the rest of a record already
            # decrypted now (more records still in the kernel wake the epoll again).
            while size < RECV_BUFFER and sock.pending():  # type: ignore[attr-defined]
                try:
                    size += sock.recv_into(self.view[size:])
                except (*WOULD_BLOCK, ssl.SSLZeroReturnError):
                    break
        end = self.buf.rfind(b"\n", 0, size) + 1
        self.tails[index] = bytes(self.buf[end:size]) if end < size else b""
        return index, end

    def _read_frames(self, index: int, fd: int) -> int:
        """A WebSocket client's read: its messages into ``self.buf`` as lines; their length."""
        try:
            data = self.socks[index].recv(RECV_BUFFER // 2)
        except BlockingIOError:
            return -1
        except OSError as err:
            data = b""
            self._note(f"recv failed: {err}")
        if not data:
            self._drop(index, fd)
            return -1
        lines, self.frame_tails[index], closed = websocket_lines(self.frame_tails[index] + data)
        if closed:
            self._drop(index, fd)
        end = len(lines)
        self.buf[:end] = lines
        return end

    def _drop(self, index: int, fd: int) -> None:
        self.disconnects += 1
        self.epoll.unregister(fd)
        del self.index_of_fd[fd]
        self.socks[index].close()

    def _note(self, error: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(error)

    def _other_lines(self, index: int, end: int) -> None:
        """Handle the non-PRIVMSG lines in buf[:end]: answer PING, note errors."""
        for line in bytes(self.buf[:end]).split(b"\n"):
            if not line or PRIVMSG in line:
                continue
            words = line.rstrip(b"\r").split(b" ")
            if words[0].startswith(b":") and len(words) > 1:
                words = words[1:]
            if words[0] == b"PING":
                self._send(index, b"PONG " + b" ".join(words[1:]) + b"\r\n")
            elif words[0] in (b"ERROR", b"KILL") or (words[0][:1] == b"4" and words[0] != b"422"):
                self._note(line.decode(errors="replace")[:200])

    # --- phases ------------------------------------------------------------------------------
    def session_ticket(self, timeout: float = 2.0) -> ssl.SSLSession | None:
        """A TLS session from one handshake, to resume (None if the server sent no ticket)."""
        assert self.tls is not None
        with socket.create_connection(self.address, timeout) as raw:
            sock = self.tls.wrap_socket(raw)
            try:  # TLS 1.3 tickets come after the handshake: read until the server goes quiet
                sock.recv(1)
            except (OSError, ValueError):
                pass
            session = sock.session
            sock.close()
        return session if session is not None and session.has_ticket else None

    def handshake_storm(self, count: int, window: int, timeout: float,
                        session: ssl.SSLSession | None = None) -> tuple[float, float, float]:
        """Connect ``count`` fresh TLS clients, at most ``window`` at once, each completing its
        handshake and closing (resuming ``session`` if given): (handshakes/s, server CPU µs per
        handshake, fraction of handshakes that resumed).

        These connections never register; they are the cost of a connect storm's TLS alone.
        """
        assert self.tls is not None
        epoll = select.epoll()
        inflight: dict[int, tuple[ssl.SSLSocket, float]] = {}
        started = done = failed = reused = 0
        cpu0, t0 = self.server_cpu(), time.monotonic()
        deadline = t0 + timeout

        def finish(fd: int, ok: bool) -> None:
            nonlocal done, failed, reused
            sock, _ = inflight.pop(fd)
            epoll.unregister(fd)
            if ok:
                done += 1
                reused += sock.session_reused
            else:
                failed += 1
            sock.close()

        try:
            while done + failed < count and time.monotonic() < deadline:
                while started < count and len(inflight) < window:
                    raw = socket.create_connection(self.address, max(0.1, deadline - time.monotonic()))
                    raw.setblocking(False)
                    sock = self.tls.wrap_socket(raw, do_handshake_on_connect=False,
                                                session=session)
                    inflight[sock.fileno()] = (sock, time.monotonic() + HANDSHAKE_SECONDS)
                    epoll.register(sock.fileno(), select.EPOLLOUT)
                    started += 1
                for fd, _ in epoll.poll(0.05):
                    sock, _ = inflight[fd]
                    try:
                        sock.do_handshake()
                    except ssl.SSLWantReadError:
                        epoll.modify(fd, select.EPOLLIN)
                    except ssl.SSLWantWriteError:
                        epoll.modify(fd, select.EPOLLOUT)
                    except OSError as err:
                        self._note(f"TLS handshake failed: {err}")
                        finish(fd, False)
                    else:
                        finish(fd, True)
                now = time.monotonic()
                for fd in [fd for fd, (_, due) in inflight.items() if now > due]:
                    self._note(f"TLS handshake not done in {HANDSHAKE_SECONDS:g} s")
                    finish(fd, False)
        except OSError as err:
            self._note(f"connect failed during the handshake storm: {err}")
        finally:
            for fd in list(inflight):
                finish(fd, False)
            epoll.close()
        seconds, cpu = time.monotonic() - t0, self.server_cpu() - cpu0
        if session is None:
            res = self.result
            res.handshakes, res.handshake_failures = done, failed
            res.handshake_seconds, res.handshake_server_cpu_s = seconds, cpu
        return done / seconds, 1e6 * cpu / max(1, done), reused / max(1, done)

    def register(self, clients: int, window: int, timeout: float) -> None:
        """Connect and register ``clients`` clients, then have them all JOIN the channel.

        Registration: NICK/USER pipelined in each client's first write, at most ``window``
        clients waiting for their 001 (so the server's accept queue never overflows). Then JOIN:
        at most ``JOIN_WINDOW`` clients waiting for their 366 (end of NAMES). Both together are
        bounded by ``timeout``; RSS is read once everyone is in and the server has gone quiet.
        """
        res = self.result
        res.clients = clients
        res.rss_base_bytes = self.server_rss()
        deadline = time.monotonic() + timeout
        cpu0, own0, t0 = self.server_cpu(), own_cpu_seconds(), time.monotonic()
        res.registered = self._register_phase(clients, window, deadline)
        t1 = time.monotonic()
        res.register_seconds = t1 - t0
        res.connected = len(self.socks)
        res.registered_per_s = res.registered / res.register_seconds
        cpu1, own1 = self.server_cpu(), own_cpu_seconds()
        res.register_server_cpu_s = cpu1 - cpu0
        res.register_generator_cpu_percent = 100 * (own1 - own0) / res.register_seconds
        if res.registered < clients:
            self._note(f"only {res.registered} of {clients} registered within {timeout:.0f} s")
            return
        res.joined = self._join_phase(clients, JOIN_WINDOW, deadline)
        res.join_seconds = time.monotonic() - t1
        res.joined_per_s = res.joined / res.join_seconds
        res.join_server_cpu_s = self.server_cpu() - cpu1
        res.join_generator_cpu_percent = 100 * (own_cpu_seconds() - own1) / res.join_seconds
        res.total_seconds = res.register_seconds + res.join_seconds
        if res.joined < clients:
            self._note(f"only {res.joined} of {clients} joined within {timeout:.0f} s")
        t2 = time.monotonic()
        self.drain_until_quiet(QUIET_SECONDS, timeout)
        res.settle_seconds = time.monotonic() - t2
        res.rss_idle_bytes = self.server_rss()
        if res.joined:
            res.rss_per_client_bytes = (res.rss_idle_bytes - res.rss_base_bytes) / res.joined

    def _register_phase(self, clients: int, window: int, deadline: float) -> int:
        """Connect and send NICK/USER; return how many got their 001 before ``deadline``."""
        welcomed = [False] * clients
        waiting = registered = 0
        poll, events_max, buf = self.epoll.poll, clients + 16, self.buf
        while registered < clients and time.monotonic() < deadline and not self.disconnects:
            while len(self.socks) < clients and waiting < window:
                try:
                    index = self._connect(max(0.1, deadline - time.monotonic()),
                                          self.over_websocket(len(self.socks), clients))
                except OSError as err:
                    self._note(f"connect failed after {len(self.socks)} clients: {err}")
                    return registered
                self._send(index, b"NICK b%d\r\nUSER b%d 0 * :bench\r\n" % (index, index))
                waiting += 1
            self._flush_pending()
            for fd, _ in poll(0.05, events_max):
                index, end = self._read(fd)
                if end <= 0 or welcomed[index]:
                    continue
                if buf.find(b" 001 ", 0, end) >= 0:
                    welcomed[index] = True
                    registered += 1
                    waiting -= 1
                elif buf.find(b"ERROR", 0, end) >= 0 or buf.find(b" 4", 0, end) >= 0:
                    self._other_lines(index, end)
        if self.disconnects:
            self._note(f"{self.disconnects} clients disconnected while registering")
        return registered

    def _join_phase(self, clients: int, window: int, deadline: float) -> int:
        """Every client JOINs the channel; return how many got their 366 before ``deadline``."""
        joined_flags = [False] * clients
        asked = waiting = joined = 0
        poll, events_max, buf = self.epoll.poll, clients + 16, self.buf
        join = b"JOIN " + CHANNEL + b"\r\n"
        while joined < clients and time.monotonic() < deadline and not self.disconnects:
            while asked < clients and waiting < window:
                self._send(asked, join)
                asked += 1
                waiting += 1
            self._flush_pending()
            for fd, _ in poll(0.05, events_max):
                index, end = self._read(fd)
                if end <= 0 or joined_flags[index] or index >= asked:
                    continue
                if buf.find(b" 366 ", 0, end) >= 0:
                    joined_flags[index] = True
                    joined += 1
                    waiting -= 1
                elif buf.find(b"ERROR", 0, end) >= 0 or buf.find(b" 4", 0, end) >= 0:
                    self._other_lines(index, end)
        if self.disconnects:
            self._note(f"{self.disconnects} clients disconnected while joining")
        return joined

    def drain_until_quiet(self, quiet: float, timeout: float) -> int:
        """Read (and answer PINGs) until nothing arrived for ``quiet`` seconds; return bytes read."""
        deadline = time.monotonic() + timeout
        total = 0
        last = time.monotonic()
        while time.monotonic() - last < quiet and time.monotonic() < deadline:
            events = self.epoll.poll(quiet / 5, len(self.socks) + 16)
            if events:
                last = time.monotonic()
            for fd, _ in events:
                index, end = self._read(fd)
                if end > 0:
                    total += end
                    if self.buf.find(b"PING", 0, end) >= 0 or self.buf.find(b"ERROR", 0, end) >= 0:
                        self._other_lines(index, end)
            self._flush_pending()
        return total

    def message_phase(
        self,
        senders: int,
        seconds: float,
        *,
        rate: float | None = None,
        window: int = 0,
        stamp_every: int = 1,
        latency_every_client: int = 1,
        drain_timeout: float = 60.0,
    ) -> PhaseResult:
        """Senders post to the channel for ``seconds``; everyone else counts what arrives.

        With ``rate`` (messages/s per sender) the load is fixed; without it the senders keep
        ``window`` messages in flight (sent, not yet seen by an observer client), which saturates
        the server without piling up an unbounded backlog. Every ``stamp_every``-th message
        carries its send time; clients whose index is a multiple of ``latency_every_client`` time
        them.
        """
        clients = len(self.socks)
        senders = max(1, min(senders, clients - 1))
        observer = clients - 1
        per_message = clients - 1
        phase = PhaseResult(senders=senders)
        poll, events_max, buf = self.epoll.poll, clients + 16, self.buf
        read = self._read
        latencies: list[int] = []
        #: Deliveries that crossed between nodes (only with several ports).
        remote: list[int] = []
        nodes = len(self.addresses)
        marks = [self.node_mark(i) for i in range(clients)]
        now_ns = time.monotonic_ns
        sent = received = observed = 0
        received_at_warm = 0
        disconnects0 = self.disconnects
        cpu_each0, own0 = self.server_cpu_each(), own_cpu_seconds()
        cpu0 = sum(cpu_each0)
        redis0 = self.redis_script_stats()
        start = now_ns()
        stop_sending = start + int(seconds * 1e9)
        warm = start + int(min(0.5, seconds / 10) * 1e9)
        warm_at: int | None = None
        stop_at: int | None = None
        received_at_stop = 0
        interval = int(1e9 / (senders * rate)) if rate else 0
        next_sender = 0
        deadline = stop_sending + int(drain_timeout * 1e9)
        last_arrival = start
        while True:
            now = now_ns()
            if now < stop_sending:
                if rate:
                    while start + sent * interval <= now:
                        self._send(next_sender, message_line(
                            now_ns() if sent % stamp_every == 0 else None, marks[next_sender]))
                        sent += 1
                        next_sender = (next_sender + 1) % senders
                    timeout = max(0.0, (start + sent * interval - now_ns()) / 1e9)
                else:
                    free = window - (sent - observed)
                    share = -(-free // senders)
                    while free > 0:
                        count = min(share, free)
                        mark = marks[next_sender]
                        self._send(next_sender, b"".join(
                            message_line(now_ns() if (sent + j) % stamp_every == 0 else None, mark)
                            for j in range(count)
                        ))  # fmt: skip
                        sent += count
                        free -= count
                        next_sender = (next_sender + 1) % senders
                    timeout = 0.005
                if warm_at is None and now >= warm:
                    warm_at, received_at_warm = now, received
            else:
                if received >= sent * per_message or now > deadline:
                    break
                if now - last_arrival > 1e9 and now - stop_sending > 1e9:
                    break  # a second of silence after the last message: the rest is lost
                timeout = 0.05
            if self.pending_out:
                self._flush_pending()
            events = poll(min(timeout, 0.05), events_max)
            if events:
                last_arrival = now_ns()
            for fd, _ in events:
                index, end = read(fd)
                if end <= 0:
                    continue
                got = buf.count(PRIVMSG, 0, end)
                received += got
                if index == observer:
                    observed += got
                if index % latency_every_client == 0:
                    # Other lines (PING, ERROR) are looked for on the sampled clients only: a
                    # second pass over every byte costs the generator a quarter of its time, and
                    # the servers only PING after an hour of silence.
                    if got != buf.count(b"\n", 0, end):
                        self._other_lines(index, end)
                    pos = buf.find(MARKER, 0, end)
                    if pos >= 0:
                        arrived = now_ns()
                        mine = marks[index]
                        while pos >= 0:
                            stamp = int(buf[pos + 4 : pos + 4 + STAMP_DIGITS])
                            if nodes > 1 and buf[pos + MARK_OFFSET] != mine:
                                remote.append(arrived - stamp)
                            else:
                                latencies.append(arrived - stamp)
                            pos = buf.find(MARKER, pos + 4 + STAMP_DIGITS, end)
            if stop_at is None and now_ns() >= stop_sending:
                stop_at, received_at_stop = now_ns(), received
        elapsed = (now_ns() - start) / 1e9
        if stop_at is not None:
            warm_at = start if warm_at is None else warm_at
            busy = max(1e-9, (stop_at - warm_at) / 1e9)
            phase.deliveries_per_s = (received_at_stop - received_at_warm) / busy
        cpu_each = self.server_cpu_each()
        cpu = sum(cpu_each) - cpu0
        phase.server_cpu_s_each = [round(b - a, 3) for a, b in zip(cpu_each0, cpu_each, strict=True)]
        redis1 = self.redis_script_stats()
        phase.redis_script_calls, phase.redis_script_usec = (redis1[0] - redis0[0],
                                                             redis1[1] - redis0[1])
        phase.seconds = round(elapsed, 3)
        phase.sent, phase.expected, phase.received = sent, sent * per_message, received
        phase.lost = phase.expected - received
        phase.server_cpu_s = cpu
        phase.server_cpu_percent = 100 * cpu / elapsed
        phase.server_cpu_us_per_delivery = 1e6 * cpu / received if received else 0.0
        phase.generator_cpu_percent = 100 * (own_cpu_seconds() - own0) / elapsed
        phase.disconnects = self.disconnects - disconnects0
        if nodes > 1:
            local = sorted(latencies)
            remote.sort()
            phase.latency_local_samples, phase.latency_remote_samples = len(local), len(remote)
            phase.latency_local_p50_ms = percentile(local, 0.50) / 1e6
            phase.latency_local_p99_ms = percentile(local, 0.99) / 1e6
            phase.latency_remote_p50_ms = percentile(remote, 0.50) / 1e6
            phase.latency_remote_p99_ms = percentile(remote, 0.99) / 1e6
            latencies = local + remote
        latencies.sort()
        phase.latency_samples = len(latencies)
        phase.latency_p50_ms = percentile(latencies, 0.50) / 1e6
        phase.latency_p99_ms = percentile(latencies, 0.99) / 1e6
        phase.latency_max_ms = (latencies[-1] / 1e6) if latencies else 0.0
        return phase

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.epoll.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--other-ports", default="",
                   help="more ports (nodes of one network), comma-separated: client i connects "
                        "to the (i mod number of ports)-th of --port and these")
    p.add_argument("--redis-port", type=int, default=0,
                   help="the network's Redis, on the same host: its script calls per phase")
    p.add_argument("--server-pid", required=True,
                   help="for /proc CPU and RSS figures: PID or PID,PID,... (summed)")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--connect-window", type=int, default=8, help="connections awaiting 001")
    p.add_argument("--register-timeout", type=float, default=120.0)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rate", type=float, default=5.0, help="messages/s per sender, fixed run")
    p.add_argument("--fixed-seconds", type=float, default=5.0)
    p.add_argument("--saturation-seconds", type=float, default=5.0)
    p.add_argument("--window", type=int, default=0, help="messages in flight at saturation")
    p.add_argument("--tls", action="store_true", help="every client speaks TLS")
    p.add_argument("--handshakes", type=int, default=0,
                   help="with --tls: a storm of this many handshake-only connections first")
    p.add_argument("--websocket-port", type=int, default=0, help="the server's --websocket port")
    p.add_argument("--websocket-clients", type=int, default=0,
                   help="how many of the clients connect over WebSocket")
    args = p.parse_args(argv)
    if args.websocket_clients and not args.websocket_port:
        p.error("--websocket-clients needs --websocket-port")
    if args.websocket_clients and args.tls:
        p.error("--tls and --websocket-clients: WebSocket clients over TLS are not built")
    return args


def saturation_window(clients: int, senders: int) -> int:
    """Messages in flight at saturation: ~500k deliveries (at most 5,000 messages, >= 2 a sender).

    Smaller windows leave the servers idle part of the time (waiting on the round trip through
    the observer, which delayed ACKs stretch), so they measured the window, not the server; at
    this depth every server runs its core at ~100 % (the tables show that CPU figure).
    """
    return max(2 * senders, min(5_000, 500_000 // max(1, clients - 1)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile()
    gc.disable()  # nothing here makes cycles; collections would only add pauses
    pids = tuple(int(pid) for pid in args.server_pid.split(","))
    others = tuple(int(p) for p in args.other_ports.split(",") if p)
    gen = LoadGenerator(args.host, args.port, pids, args.tls, args.websocket_port,
                        min(args.websocket_clients, args.clients), others, args.redis_port)
    res = gen.result
    res.tls = args.tls
    try:
        if args.tls and args.handshakes > 0:
            res.handshakes_per_s, res.handshake_server_cpu_us_each, _ = gen.handshake_storm(
                args.handshakes, args.connect_window, args.register_timeout)
            time.sleep(QUIET_SECONDS)  # let the server see the storm's connections close
            session = gen.session_ticket()
            if session is not None:
                (res.resumed_handshakes_per_s, res.resumed_server_cpu_us_each,
                 res.resumed_fraction) = gen.handshake_storm(
                    args.handshakes, args.connect_window, args.register_timeout, session)
                time.sleep(QUIET_SECONDS)
        gen.register(args.clients, args.connect_window, args.register_timeout)
        if res.joined == args.clients and args.clients > 1:
            if args.fixed_seconds > 0:
                res.fixed = gen.message_phase(args.senders, args.fixed_seconds, rate=args.rate)
                gen.drain_until_quiet(QUIET_SECONDS, 30)
            if args.saturation_seconds > 0:
                window = args.window or saturation_window(args.clients, args.senders)
                res.saturation = gen.message_phase(
                    args.senders, args.saturation_seconds, window=window, stamp_every=16,
                    latency_every_client=8,
                )  # fmt: skip
    except OSError as err:
        gen._note(f"{type(err).__name__}: {err} ({errno.errorcode.get(err.errno or 0, '')})")
    finally:
        res.errors = gen.errors
        gen.close()
    json.dump(asdict(res), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
