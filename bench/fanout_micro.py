"""Micro-benchmark of the daemon's Python work per delivery: one PRIVMSG to a channel of N members.

The real core, command table, line pipeline, relay bus, factory flush and direct writer run in one
process on a ``task.Clock``; only the socket is fake (its ``send`` takes everything at once and
costs nothing), so the figure is the Python cost the server adds to each kernel ``send`` — the
part of the fixed-load CPU that is ours to cut. Optionally with a store attached (accounts and
the history recorder on the relay bus, as the daemon runs by default).

``python -m bench.fanout_micro`` prints ns per delivery for this checkout. With ``--base DIR``
(another checkout's root, e.g. ``git archive main | tar -x -C /tmp/base``) it alternates runs of both in
fresh processes and prints each one's median and the ratio, so before/after come from one run on
one machine state. No figure here is asserted by a test; bench/README.md keeps the results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD_FLAG = "--child"


class FakeHandle:
    """A socket whose ``send`` takes every byte at once (``len`` returns what was "sent")."""

    send = staticmethod(len)


_FAKE_TCP: list[type] = []


def fake_tcp_transport(number: int) -> object:
    """A plain ``tcp.Connection`` as the daemon sees one, with nothing in its buffers and a
    socket that takes everything; made without a real socket or reactor.

    Every one is of the same class, as the daemon's transports are: a class per connection
    would defeat the interpreter's attribute caches and measure that instead.
    """
    if not _FAKE_TCP:
        from twisted.internet import tcp

        class FakeTCP(tcp.Connection):
            def __init__(self, host: str) -> None:  # (no socket, no reactor)
                from twisted.internet.address import IPv4Address

                self.dataBuffer = b""
                self.offset = 0
                self._tempDataLen = 0
                self.connected = 1
                self.disconnecting = 0
                self.peer = IPv4Address("TCP", host, 40000)
                self.written: list[bytes] = []

            def getHandle(self) -> FakeHandle:
                return FakeHandle()

            def getPeer(self) -> object:
                return self.peer

            def registerProducer(self, producer: object, streaming: bool) -> None:
                pass

            def write(self, data: bytes) -> None:  # (only when bytes are "held": the check)
                self.written.append(data)

        _FAKE_TCP.append(FakeTCP)
    return _FAKE_TCP[0](f"10.0.{number // 250}.{number % 250 + 1}")


def measure(members: int, messages: int, history: bool, tagged: int) -> dict[str, object]:
    """CPU ns per delivery for ``messages`` PRIVMSGs, each flushed, to ``members`` members.

    Each member is a real ``ChatConnection`` (framing, admission, the direct-write wiring) on a
    fake transport; a line goes in through ``dataReceived`` as it does from the reactor.
    """
    from twisted.internet import task

    from twistedchat.server.config import ServerConfig
    from twistedchat.server.net import ChatFactory

    clock = task.Clock()
    config = ServerConfig(name="bench.local", no_flood_control=True, max_per_ip=0,
                          cloak_secret="bench", sendq=1 << 30)
    factory = ChatFactory(config, clock=clock)
    if history:
        from twistedchat.server.accounts import attach_store
        from twistedchat.storage.memory import MemoryStore

        attach_store(factory.core, MemoryStore(), clock)
    connections = []
    for number in range(members):
        connection = factory.buildProtocol(None)
        connection.makeConnection(fake_tcp_transport(number))
        caps = b"CAP REQ :server-time message-tags\r\n" if number < tagged else b""
        connection.dataReceived(
            caps + f"NICK m{number}\r\nUSER m{number} 0 * :member {number}\r\n".encode()
            + (b"CAP END\r\n" if caps else b"") + b"JOIN #bench\r\n")
        clock.advance(0)
        connections.append(connection)
    assert len(factory.core.state.find_channel("#bench").members) == members
    sender = connections[0]
    lines = [f"PRIVMSG #bench :message {n} with some ordinary text in it\r\n".encode()
             for n in range(messages)]
    for line in lines[:20]:  # warm up
        sender.dataReceived(line)
        clock.advance(0)
    started = time.process_time_ns()
    for line in lines:
        sender.dataReceived(line)
        clock.advance(0)
    spent = time.process_time_ns() - started
    deliveries = messages * (members - 1)
    # Untimed: one more line, with every transport holding a byte so output goes through
    # transport.write, where it can be seen: each member but the sender got it.
    for connection in connections:
        connection.transport._tempDataLen = 1
    sender.dataReceived(b"PRIVMSG #bench :seen by all?\r\n")
    clock.advance(0)
    seen = [c for c in connections if any(b"seen by all?" in data for data in c.transport.written)]
    assert len(seen) == members - 1, f"{len(seen)} of {members - 1} members got the line"
    import twistedchat

    return {"ns_per_delivery": spent / deliveries, "deliveries": deliveries,
            "package": str(Path(twistedchat.__file__).parent)}


def child(args: argparse.Namespace) -> int:
    result: dict[str, object] = dict(measure(args.members, args.messages, args.history,
                                             args.tagged))
    print(json.dumps(result))
    return 0


def run_tree(root: Path, args: argparse.Namespace) -> float:
    """One measurement in a fresh process importing twistedchat from ``root``."""
    command = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG,
               "--members", str(args.members), "--messages", str(args.messages),
               "--tagged", str(args.tagged), *(["--history"] if args.history else [])]
    # PYTHONPATH comes before the editable install's path: that tree's twistedchat is imported.
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600,
                          env=env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["package"] == str(root / "twistedchat"), result["package"]
    return float(result["ns_per_delivery"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--tagged", type=int, default=0,
                        help="members that enabled server-time and message-tags")
    parser.add_argument("--history", action="store_true",
                        help="attach an in-memory store (accounts, history recorder)")
    parser.add_argument("--base", type=Path, help="another checkout to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    if args.child:
        return child(args)
    here = Path(__file__).resolve().parent.parent
    trees = [("this checkout", here)] + ([("base", args.base.resolve())] if args.base else [])
    figures: dict[str, list[float]] = {name: [] for name, _ in trees}
    for _ in range(args.rounds):
        for name, root in trees:
            figures[name].append(run_tree(root, args))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    for name, values in figures.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name}: median {medians[name]:.0f} ns per delivery ({shown})")
    if args.base:
        print(f"ratio this/base: {medians['this checkout'] / medians['base']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
