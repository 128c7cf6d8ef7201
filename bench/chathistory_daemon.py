"""CHATHISTORY LATEST 100 answered per second by the whole daemon over loopback (issue 10).

The daemon (``ChatService`` on SQLite in a temp dir, flood control off) in this process; a channel
of ``--lines`` lines said by one client; then ``--clients`` clients each keep one
``CHATHISTORY LATEST #bench * 100`` in flight for ``--seconds`` (a client's next line waits behind
its query, as the server orders them), counting whole batches received.

    python -m bench.chathistory_daemon               # 1,000 lines, 8 clients, 5 s
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from twisted.internet import defer, endpoints, protocol, task

from twistedchat.server.config import ServerConfig
from twistedchat.server.service import ChatService

QUERY = b"CHATHISTORY LATEST #bench * 100\r\n"


class Reader(protocol.Protocol):
    """Registers, then asks again as soon as each batch ends."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.buffer = b""
        self.batches = 0
        self.lines = 0
        self.asking = False
        self.ready: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(f"CAP REQ :batch\r\nNICK {self.nick}\r\nUSER b 0 * :b\r\nCAP END\r\n"
                             .encode())

    def dataReceived(self, data: bytes) -> None:
        *lines, self.buffer = (self.buffer + data).split(b"\r\n")
        for line in lines:
            if b" 001 " in line and not self.ready.called:
                self.ready.callback(None)
            elif line.startswith(b"@batch="):
                self.lines += 1
            elif b" BATCH -" in line and self.asking:
                self.batches += 1
                self.transport.write(QUERY)

    def start(self) -> None:
        self.asking = True
        self.transport.write(QUERY)


async def run(args: argparse.Namespace, reactor) -> None:
    directory = tempfile.mkdtemp(prefix="chathistory-bench-")
    config = ServerConfig(name="bench", db=f"sqlite:{os.path.join(directory, 'bench.sqlite3')}",
                          ports=["tcp:0:interface=127.0.0.1"], no_flood_control=True,
                          max_per_ip=0)
    service = ChatService(config, reactor=reactor)
    service.privilegedStartService()
    service.startService()
    while service.store is None:
        await task.deferLater(reactor, 0.01, lambda: None)
    port = service.ports[0].getHost().port
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    talker = Reader("talker")
    await endpoints.connectProtocol(endpoint, talker)
    await talker.ready
    talker.transport.write(b"JOIN #bench\r\n" + b"".join(
        f"PRIVMSG #bench :line {n} of the benchmark, about as long as a chat line is\r\n".encode()
        for n in range(args.lines)))
    await service.store.flush()
    readers = [Reader(f"r{n}") for n in range(args.clients)]
    for reader in readers:
        await endpoints.connectProtocol(endpoint, reader)
        await reader.ready
    for reader in readers:
        reader.start()
    began = time.perf_counter()
    await task.deferLater(reactor, args.seconds, lambda: None)
    elapsed = time.perf_counter() - began
    batches = sum(r.batches for r in readers)
    lines = sum(r.lines for r in readers)
    print(f"CHATHISTORY LATEST 100 through the daemon (SQLite): {batches / elapsed:,.0f} answers/s, "
          f"{lines / elapsed:,.0f} lines/s ({args.clients} clients, {elapsed:.1f} s, "
          f"{os.cpu_count()} CPUs)")
    for reader in readers:
        reader.transport.loseConnection()
    await service.stopService()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(run(args, reactor)))


if __name__ == "__main__":
    main()
