"""CHATHISTORY LATEST 100 answered per second by the whole daemon over loopback (issue 10).

The daemon (``ChatService``, flood control off, SQLite in a temp dir or ``--db URL``) runs in this
process; the readers run in a child process (``--drive``), so their parsing does not share the
daemon's reactor. ``--channels`` channels of ``--lines`` stored lines each are filled through the
store; then ``--clients`` readers each keep one ``CHATHISTORY LATEST <channel> * 100`` in flight
for ``--seconds`` (a client's next line waits behind its query, as the server orders them), each
walking the channels in turn, with ``batch``, ``server-time`` and ``message-tags`` on, counting
whole batches received.

Three workloads, run one after the other on one daemon (``--workload`` picks one):

- ``window``: every reader asks the one busiest channel, whose newest lines the store keeps in
  memory (the recent window): no query reaches the database.
- ``database``: the readers walk ``--channels`` channels, more than the window holds (1,000
  conversations), in order, so every read misses the window and is a query in the database.
- ``reconnect``: every reader asks one channel for what follows a line 30 lines back
  (``LATEST <channel> msgid=... 100``, what a client asks after a reconnect).

    python -m bench.chathistory_daemon                      # SQLite, both workloads, 5 s each
    python -m bench.chathistory_daemon --db postgresql://...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

from twisted.internet import defer, endpoints, protocol, task, utils

from twistedchat.server.config import ServerConfig
from twistedchat.server.service import ChatService
from twistedchat.storage import HistoryLine, HistoryQuery, channel_conversation

#: The store's recent window holds this many conversations (``SQLStore``'s default).
WINDOW_CONVERSATIONS = 1000
#: Channels one talker may join (the server's CHANLIMIT).
CHANNELS_PER_TALKER = 100
TEXT = "line {n} of the benchmark conversation, about as long as a chat line is"


class Reader(protocol.Protocol):
    """Registers with the history caps, then asks again as soon as each batch ends."""

    def __init__(self, nick: str, channels: list[str], query: str) -> None:
        self.nick = nick
        self.channels = channels
        self.query = query
        self.turn = 0
        self.tail = b""
        self.batches = 0
        self.lines = 0
        self.asking = False
        self.ready: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(
            f"CAP REQ :batch server-time message-tags\r\nNICK {self.nick}\r\nUSER b 0 * :b\r\n"
            "CAP END\r\n".encode()
        )

    def ask(self) -> None:
        channel = self.channels[self.turn % len(self.channels)]
        self.turn += 1
        self.transport.write(self.query.format(channel=channel).encode() + b"\r\n")

    def dataReceived(self, data: bytes) -> None:
        # The last 7 bytes go before the next chunk: an 8-byte mark split between two chunks is
        # found once, and none is found twice.
        seen = self.tail + data
        self.tail = seen[-7:]
        if not self.ready.called:
            if b" 001 " in seen:
                self.ready.callback(None)
            return
        if not self.asking:
            return
        self.lines += seen.count(b"\n@batch=")
        if b" BATCH -" in seen:  # one query in flight: at most one batch ends per chunk
            self.batches += 1
            self.ask()

    def start(self) -> None:
        self.asking = True
        self.ask()


async def drive(reactor: Any, args: argparse.Namespace) -> None:
    """The child process: connect the readers, read for ``--seconds``, print the counts as JSON."""
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", args.drive)
    channels = [f"#bench{n}" for n in range(args.channels)]
    readers = []
    for n in range(args.clients):
        # Reader n asks channels n, n + clients, ...: together they walk every channel in order,
        # so a channel comes round again only after all the others (a miss in the window).
        reader = Reader(f"r{n}", channels[n::args.clients] or channels, args.query)
        await endpoints.connectProtocol(endpoint, reader)
        await reader.ready
        readers.append(reader)
    for reader in readers:
        reader.start()
    began = time.perf_counter()
    await task.deferLater(reactor, args.seconds, lambda: None)
    elapsed = time.perf_counter() - began
    print(json.dumps({
        "batches": sum(r.batches for r in readers), "lines": sum(r.lines for r in readers),
        "elapsed": elapsed,
    }))
    for reader in readers:
        reader.transport.loseConnection()


class Talker(protocol.Protocol):
    """Keeps channels alive (a channel with nobody in it is gone, and so is its history's reader)."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.buffer = b""
        self.ready: defer.Deferred[None] = defer.Deferred()
        self.joined = 0
        self.wanted = 0
        self.all_joined: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(f"NICK {self.nick}\r\nUSER t 0 * :t\r\n".encode())

    def join(self, channels: list[str]) -> defer.Deferred[None]:
        self.wanted = len(channels)
        for start in range(0, len(channels), 10):
            self.transport.write(f"JOIN {','.join(channels[start:start + 10])}\r\n".encode())
        return self.all_joined

    def dataReceived(self, data: bytes) -> None:
        *lines, self.buffer = (self.buffer + data).split(b"\r\n")
        for line in lines:
            if b" 001 " in line and not self.ready.called:
                self.ready.callback(None)
            elif b" 366 " in line:  # end of NAMES: one channel joined
                self.joined += 1
                if self.joined == self.wanted:
                    self.all_joined.callback(None)


async def run(reactor: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Start the daemon, fill the channels, run each workload's readers in a child process."""
    directory = tempfile.mkdtemp(prefix="chathistory-bench-")
    db = args.db or f"sqlite:{os.path.join(directory, 'bench.sqlite3')}"
    config = ServerConfig(name="bench", db=db, ports=["tcp:0:interface=127.0.0.1"],
                          no_flood_control=True, max_per_ip=0)
    service = ChatService(config, reactor=reactor)
    service.privilegedStartService()
    service.startService()
    while service.store is None:
        await task.deferLater(reactor, 0.01, lambda: None)
    store = service.store
    port = service.ports[0].getHost().port
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    channels = [f"#bench{n}" for n in range(args.channels)]
    for start in range(0, len(channels), CHANNELS_PER_TALKER):
        talker = Talker(f"talker{start // CHANNELS_PER_TALKER}")
        await endpoints.connectProtocol(endpoint, talker)
        await talker.ready
        await talker.join(channels[start:start + CHANNELS_PER_TALKER])
    began = time.time() - args.lines
    for channel in channels:
        conversation = channel_conversation(channel)
        for n in range(args.lines):
            store.append_history(HistoryLine(
                f"{channel}-{n}", began + n, conversation, channel, f"u{n % 50}!u@h", "PRIVMSG",
                TEXT.format(n=n),
            ))
    await store.flush()
    latest = "CHATHISTORY LATEST {channel} * 100"
    # What a client reconnecting asks: the lines after the last one it saw, 30 lines back.
    since = f"CHATHISTORY LATEST {{channel}} msgid={{channel}}-{args.lines - 30} 100"
    workloads = {"window": (1, latest), "database": (args.channels, latest), "reconnect": (1, since)}
    results = []
    for workload in ([args.workload] if args.workload else ["window", "database", "reconnect"]):
        channel_count, query = workloads[workload]
        if channel_count == 1:
            # The channel's newest lines in the window (the database workload may have pushed
            # them out), as the first client joining it would ask.
            await store.history(channel_conversation(channels[0]), HistoryQuery("LATEST", None, 100))
        cpu_before = time.process_time()
        output = await utils.getProcessOutput(
            sys.executable,
            ["-m", "bench.chathistory_daemon", "--drive", str(port), "--clients", str(args.clients),
             "--seconds", str(args.seconds), "--channels", str(channel_count), "--query", query],
            env=os.environ, reactor=reactor, errortoo=False,
        )
        counts = json.loads(output.decode().strip().splitlines()[-1])
        counts["workload"] = workload
        # The daemon's CPU (all its threads) per answer: steadier than answers/s on a busy machine.
        # It includes the readers' start (connecting, registering), a small part of a run.
        counts["daemon_cpu_us"] = (time.process_time() - cpu_before) * 1e6 / max(1, counts["batches"])
        results.append(counts)
        rate = counts["batches"] / counts["elapsed"]
        print(f"{workload:>8} ({db.split(':')[0]}): {rate:8,.0f} answers/s "
              f"({counts['lines'] / counts['elapsed']:10,.0f} lines/s, {args.clients} clients, "
              f"{counts['elapsed']:.1f} s, {os.cpu_count()} CPUs); daemon CPU "
              f"{counts['daemon_cpu_us']:,.0f} µs an answer", flush=True)
    await service.stopService()
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a --db URL (default: a fresh SQLite file in a temp dir)")
    parser.add_argument("--lines", type=int, default=120, help="stored lines per channel")
    parser.add_argument("--channels", type=int, default=WINDOW_CONVERSATIONS + 500,
                        help="channels the database workload walks (more than the window holds)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workload", choices=["window", "database", "reconnect"])
    parser.add_argument("--query", default="CHATHISTORY LATEST {channel} * 100",
                        help=argparse.SUPPRESS)  # the readers' line
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)  # the readers' child process
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    if args.drive:
        task.react(lambda reactor: defer.ensureDeferred(drive(reactor, args)))
    else:
        task.react(lambda reactor: defer.ensureDeferred(run(reactor, args)))


if __name__ == "__main__":
    main()
