"""The core as tests drive it: users are list sinks, time is a fake clock (no sockets)."""

from __future__ import annotations

from twistedchat.server.config import ServerConfig
from twistedchat.server.core import ServerCore
from twistedchat.wire.message import Message, parse


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Peer:
    """One connection as the core sees it, recording what it is sent."""

    def __init__(self, core: ServerCore, host: str = "127.0.0.1") -> None:
        self.core = core
        self.raw: list[bytes] = []
        self.closed = False
        self.user = core.connect(host, lambda user: None, self._close)

    @property
    def received(self) -> list[Message]:
        return [parse(line) for data in self.user.outbox for line in data.splitlines()]

    def _close(self) -> None:
        self.closed = True

    def say(self, *lines: str) -> list[Message]:
        self.user.outbox.clear()
        for line in lines:
            self.core.handle(self.user, parse(line))
        return self.take()

    def take(self) -> list[Message]:
        out = self.received
        self.raw.extend(self.user.outbox)
        self.user.outbox.clear()
        return out

    def codes(self) -> list[str]:
        return [m.command for m in self.take()]


def make_core(clock: FakeClock, **settings: object) -> ServerCore:
    """A core named ``irc.test`` with one oper (admin/secret) and a two-line MOTD.

    Hosts are shown as they are (cloaking off) unless ``cloak_hosts=True`` is given: the tests
    of cloaks are in test_admin_core.py; the others check other things about hosts.
    """
    options: dict = {"name": "irc.test", "network": "Test", "opers": {"admin": "secret"},
                     "motd": ["hello", "world"], "cloak_hosts": False, **settings}
    return ServerCore(ServerConfig(**options), clock=clock)


def register(core: ServerCore, nick: str, host: str = "127.0.0.1") -> Peer:
    """A registered connection with an empty outbox."""
    peer = Peer(core, host)
    peer.say(f"NICK {nick}", f"USER {nick} 0 * :Real {nick}")
    assert peer.user.registered, peer.received
    peer.take()
    return peer


def commands(messages: list[Message]) -> list[str]:
    return [m.command for m in messages]
