"""A stateful fuzz of the whole line pipeline: several real ``ChatConnection`` s, random lines.

Each connection is the real protocol on a ``StringTransport`` with a ``task.Clock``, so a run is
exact and fast. The machine opens and drops connections, sends valid and broken lines (CR, NUL,
bad UTF-8, stray tags, overlong lines, whole bursts), lets time pass and stops reading; after every
step it checks: no traceback was logged, every line the server wrote parses and fits 512 bytes
(plus tags), and the chat state is consistent (mutual membership, no ghost users). At the end every
connection still open answers PING, and NAMES agrees with the state.

``FUZZ_EXAMPLES`` sets how many runs (CI keeps it small; ``make fuzz`` runs many more).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher

from twistedchat.server.config import ServerConfig
from twistedchat.server.net import ChatConnection, ChatFactory
from twistedchat.wire.message import MAX_LINE_BYTES, parse

NICKS = ["alice", "bob", "carol", "dave"]
CHANNELS = ["#c", "#d"]
COMMANDS = ["NICK", "USER", "JOIN", "PART", "PRIVMSG", "NOTICE", "TAGMSG", "TOPIC", "MODE", "AWAY",
            "QUIT", "PING", "WHO", "WHOIS", "WHOWAS", "NAMES", "LIST", "KICK", "INVITE", "CAP",
            "ISON", "USERHOST", "LUSERS", "OPER", "KILL", "FOO"]
_words = st.sampled_from(NICKS + CHANNELS + ["*", "0", "+o", "-v", "+b", "+k", "+l", "+imnst",
                                             "+ov", "LS", "302", "REQ", "END", "message-tags",
                                             "#c,#d", "alice,bob", "admin", "secret", "x!*@*"])
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """A line as a hostile client might send it, without its line ending."""
    command = draw(st.sampled_from(COMMANDS))
    params = draw(st.lists(_words, max_size=3))
    text = draw(st.one_of(st.none(), _text))
    line = " ".join([command, *params] + ([":" + text] if text is not None else []))
    data = line.encode("utf-8", "replace")
    if draw(st.booleans()):
        tags = draw(st.sampled_from([b"@+x=1", b"@+a;+b=c\\sd", b"@+bad!key=1", b"@msgid=z",
                                     b"@+" + b"t" * 300 + b"=v"]))
        data = tags + b" " + data
    damage = draw(st.sampled_from(["none", "none", "cr", "nul", "utf8", "long", "huge"]))
    where = draw(st.integers(0, len(data)))
    if damage == "cr":
        data = data[:where] + b"\r" + data[where:]
    elif damage == "nul":
        data = data[:where] + b"\0" + data[where:]
    elif damage == "utf8":
        data = data[:where] + b"\xff\xfe" + data[where:]
    elif damage == "long":
        data += b" " + b"x" * 600
    elif damage == "huge":
        data += b" " + b"y" * 6000
    return data.replace(b"\n", b"")


class Client:
    """One connection: the real ChatConnection on a StringTransport."""

    def __init__(self, factory: ChatFactory, port: int) -> None:
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.protocol: ChatConnection = factory.buildProtocol(None)
        self.protocol.makeConnection(self.transport)
        self.received: list[bytes] = []

    @property
    def open(self) -> bool:
        return not (self.transport.disconnecting or self.transport.disconnected)

    def collect(self) -> list[bytes]:
        data = self.transport.value()
        self.transport.clear()
        assert not data or data.endswith(b"\r\n"), data[-80:]
        new = data.split(b"\r\n")[:-1] if data else []
        self.received.extend(new)
        return new


class PipelineMachine(RuleBasedStateMachine):
    """Random traffic from several connections through the real protocol and pipeline."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = task.Clock()
        self.clock.advance(1_800_000_000)
        config = ServerConfig(name="fuzz.server", flood_burst=8, flood_rate=4, flood_queue=30,
                              sendq=16 * 1024, opers={"admin": "secret"})
        self.factory = ChatFactory(config, clock=self.clock)
        self.factory.startFactory()
        self.clients: list[Client] = []
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)

    def teardown(self) -> None:
        try:
            self._everyone_answers_ping()
            self._names_agree_with_the_state()
        finally:
            globalLogPublisher.removeObserver(self.events.append)
            self.factory.stopFactory()

    def _client(self, index: int) -> Client:
        return self.clients[index % len(self.clients)]

    def _turn(self) -> None:
        self.clock.advance(0)
        for client in self.clients:
            for line in client.collect():
                self._check_line(line)

    @staticmethod
    def _check_line(line: bytes) -> None:
        assert b"\r" not in line and b"\0" not in line, line
        body = line.split(b" ", 1)[1] if line.startswith(b"@") else line
        assert len(body) <= MAX_LINE_BYTES - 2, (len(body), line[:120])
        assert parse(line).command

    @initialize()
    def two_members(self) -> None:
        self.connect("alice", True)
        self.connect("bob", True)

    @precondition(lambda self: len(self.clients) < 5)
    @rule(nick=st.sampled_from(NICKS), join=st.booleans())
    def connect(self, nick: str, join: bool) -> None:
        client = Client(self.factory, 40000 + len(self.clients))
        self.clients.append(client)
        lines_ = [f"NICK {nick}", f"USER {nick} 0 * :{nick}"] + (["JOIN #c"] if join else [])
        client.protocol.dataReceived("".join(f"{line}\r\n" for line in lines_).encode())
        self._turn()

    @rule(index=st.integers(0, 9), batch=st.lists(lines(), min_size=1, max_size=6),
          ending=st.sampled_from([b"\r\n", b"\n"]), split=st.integers(0, 50))
    def send(self, index: int, batch: list[bytes], ending: bytes, split: int) -> None:
        client = self._client(index)
        if not client.open:
            return
        data = b"".join(line + ending for line in batch)
        client.protocol.dataReceived(data[:split])  # reads arrive cut anywhere
        client.protocol.dataReceived(data[split:])
        self._turn()

    @rule(index=st.integers(0, 9), count=st.integers(20, 60))
    def burst(self, index: int, count: int) -> None:
        client = self._client(index)
        if client.open:
            client.protocol.dataReceived(b"PRIVMSG #c :burst\r\n" * count)
            self._turn()

    @rule(seconds=st.sampled_from([0.1, 1.0, 5.0, 61.0, 200.0]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self._turn()

    @rule(index=st.integers(0, 9))
    def stop_reading(self, index: int) -> None:
        client = self._client(index)
        if client.open:
            client.protocol.pauseProducing()  # what a full transport says, again and again

    @rule(index=st.integers(0, 9))
    def hang_up(self, index: int) -> None:
        client = self._client(index)
        if client.open:
            client.transport.loseConnection()
            client.protocol.connectionLost(None)
            self._turn()

    @invariant()
    def no_traceback(self) -> None:
        failures = [formatEvent(e) for e in self.events if "log_failure" in e]
        assert not failures, failures[0]

    @invariant()
    def state_is_consistent(self) -> None:
        state = self.factory.core.state
        live = {client.protocol.user for client in self.clients
                if client.protocol.pipeline is not None and not client.protocol.pipeline.closing}
        for user in state.connections:
            assert user in live or user.link is None or user.link.closing, f"ghost {user}"
        for channel in state.channels.values():
            assert channel.members
            for member in channel.members:
                assert member in state.connections
                assert member.channels[channel.folded] is channel

    def _everyone_answers_ping(self) -> None:
        for number, client in enumerate(self.clients):
            if not client.open or client.protocol.pipeline is None:
                continue
            client.protocol.resumeProducing()
            token = f"end-{number}"
            client.protocol.dataReceived(f"PING :{token}\r\n".encode())
            self.clock.advance(0)
            for _ in range(40):  # the flood queue may hold lines before it (30 at 4 a second)
                self.clock.advance(0.5)
            self._turn()
            if client.open:
                assert any(parse(line).command == "PONG" and parse(line).params[-1] == token
                           for line in client.received), f"{token} got no PONG"

    def _names_agree_with_the_state(self) -> None:
        for client in self.clients:
            user = client.protocol.user
            if not client.open or user is None or not user.registered or not user.channels:
                continue
            channel = next(iter(user.channels.values()))
            client.received.clear()
            client.protocol.dataReceived(f"NAMES {channel.name}\r\n".encode())
            for _ in range(40):
                self.clock.advance(0.5)
            self._turn()
            names = set()
            for line in client.received:
                message = parse(line)
                if message.command == "353":
                    names.update(name.lstrip("@+").split("!")[0] for name in message.params[-1].split())
            assert names == {member.nick for member in channel.members}
            return


PipelineMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), stateful_step_count=30,
    deadline=None, suppress_health_check=[HealthCheck.too_slow])
test_pipeline_fuzz = PipelineMachine.TestCase
