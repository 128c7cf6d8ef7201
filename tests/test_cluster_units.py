"""The cluster's parts that need no Redis: the wire format, URLs, the bound on waiting commands."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from helpers import wait_until
from twisted.internet import endpoints
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport

from twistedchat.cluster import resp
from twistedchat.server import fastpath


def test_commands_are_encoded_as_resp_arrays() -> None:
    assert resp.encode_command(("SET", "k", 12, b"\x00\xff")) == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$2\r\n\x00\xff\r\n")
    assert resp.encode_command(("PUBLISH", "ch", "é")) == b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\n\xc3\xa9\r\n"


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://localhost", ("localhost", 6379, 0)),
    ("redis://10.0.0.5:7000/3", ("10.0.0.5", 7000, 3)),
])
def test_redis_urls(url: str, expected: tuple[str, int, int]) -> None:
    assert resp.parse_url(url) == expected


@pytest.mark.parametrize("url", ["http://h", "redis://", "redis://h:x/0", "redis://h/zero"])
def test_bad_redis_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        resp.parse_url(url)


def test_replies_come_back_in_order_and_errors_as_errors() -> None:
    protocol = resp.RedisProtocol()
    protocol.makeConnection(StringTransport())
    got: list[object] = []
    protocol.execute("GET", "a").addBoth(got.append)
    protocol.execute("NOPE").addBoth(got.append)
    protocol.dataReceived(b"$2\r\nhi\r\n-ERR unknown command\r\n")
    assert got[0] == b"hi"
    assert isinstance(got[1].value, resp.RedisError)


def test_commands_never_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound, or once the connection is gone, a command fails at once."""
    monkeypatch.setattr(resp, "MAX_IN_FLIGHT", 3)
    protocol = resp.RedisProtocol()
    protocol.makeConnection(StringTransport())
    waiting = [protocol.execute("PING") for _ in range(3)]
    refused: list[object] = []
    protocol.execute("PING").addErrback(refused.append)
    assert refused and refused[0].check(resp.RedisUnavailable)
    lost: list[object] = []
    for deferred in waiting:
        deferred.addErrback(lost.append)
    protocol.connectionLost()
    assert len(lost) == 3 and all(f.check(resp.RedisUnavailable) for f in lost)
    after: list[object] = []
    protocol.execute("PING").addErrback(after.append)
    assert after[0].check(resp.RedisUnavailable)


def test_pubsub_messages_go_to_the_listener_not_to_a_waiting_command() -> None:
    protocol = resp.RedisProtocol()
    protocol.makeConnection(StringTransport())
    heard: list[tuple[bytes, bytes]] = []
    protocol.listen(lambda channel, data: heard.append((channel, data)))
    pong: list[object] = []
    protocol.execute("PING").addCallback(pong.append)
    protocol.dataReceived(b"*3\r\n$7\r\nmessage\r\n$2\r\nev\r\n$3\r\nabc\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n")
    assert heard == [(b"ev", b"abc")]
    assert pong == [[b"pong", b""]]


def test_a_mode_line_names_each_thing_it_sets() -> None:
    from twistedchat.cluster.order import line_things, mode_things

    things = list(mode_things("#Room", "+kl-o+b", ["key", "5", "Bob", "x"]))
    assert things == [(("#room", "k", ""), 1), (("#room", "l", ""), 2), (("#room", "o", "bob"), 4),
                      (("#room", "b", "x!*@*"), 6)]
    assert line_things("KICK", "alice", ["#Room", "Bob", "out"]) == [
        ("#room", "member", "bob"), ("#room", "o", "bob"), ("#room", "v", "bob")]
    assert line_things("TOPIC", "alice", ["#room", "t"]) == [("#room", "topic", "")]


def test_a_remote_change_is_stale_until_the_nodes_own_batch_comes_back() -> None:
    from twistedchat.cluster.order import StreamOrder

    order = StreamOrder()
    assert order.seal("a") == (1, None)  # a batch that changes nothing carries no marker
    order.wrote([("#room", "k", "")])
    number, marker = order.seal("a")
    assert marker == ["N", "a", number]
    order.wrote([("#room", "l", "")])
    later, _ = order.seal("a")
    assert order.stale(("#room", "k", "")) and not order.stale(("#room", "i", ""))
    order.passed(number)
    assert not order.stale(("#room", "k", "")) and order.stale(("#room", "l", ""))
    order.passed(later)
    assert not order.pending


class _Recorder(Protocol):
    """The far end of a loopback connection: keeps every byte it reads."""

    def connectionMade(self) -> None:
        self.factory.ends.append(self)
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data


async def _loopback_redis(direct_write: bool) -> tuple[resp.RedisProtocol, list[_Recorder], Any]:
    from twisted.internet import reactor

    far = Factory.forProtocol(_Recorder)
    far.ends = []
    port = reactor.listenTCP(0, far, interface="127.0.0.1")
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
    protocol = await endpoint.connect(resp._RedisFactory(direct_write))
    await wait_until(lambda: far.ends, "the far end")
    return protocol, far.ends, port


@pytest.mark.parametrize("direct_write", [True, False])
@pytest_twisted.ensureDeferred
async def test_a_command_goes_straight_to_an_idle_socket(direct_write: bool) -> None:
    """With the fast path a command leaves at once: Twisted holds nothing and the socket is not
    registered for writing (no extra reactor turn); without it, Twisted's buffer takes it."""
    from twisted.internet import reactor

    protocol, ends, port = await _loopback_redis(direct_write)
    try:
        transport = protocol.transport
        protocol.execute("PING").addErrback(lambda failure: None)
        protocol.execute("ECHO", "second").addErrback(lambda failure: None)
        waiting = fastpath.pending_bytes(transport) > 0
        registered = transport in reactor.getWriters()
        assert waiting is registered is (not direct_write)
        expected = resp.encode_command(("PING",)) + resp.encode_command(("ECHO", "second"))
        await wait_until(lambda: ends[0].data == expected, "both commands, in order")
    finally:
        protocol.abort()
        await port.stopListening()


def test_a_script_is_loaded_when_redis_lacks_it() -> None:
    """EVALSHA first; on NOSCRIPT the same call again as EVAL; other errors stay errors."""
    protocol = resp.RedisProtocol()
    transport = StringTransport()
    protocol.makeConnection(transport)
    script = resp.Script("return ARGV[1]")
    got: list[object] = []
    script.run(protocol, "x").addBoth(got.append)
    protocol.dataReceived(b"-NOSCRIPT No matching script\r\n")
    assert transport.value().endswith(resp.encode_command(("EVAL", script.source, 0, "x")))
    protocol.dataReceived(b"$1\r\nx\r\n")
    assert got == [b"x"]
    script.run(protocol, "y").addBoth(got.append)
    protocol.dataReceived(b"-ERR something else\r\n")
    assert isinstance(got[1].value, resp.RedisError)


def _published_batches(transport: StringTransport) -> list[list[Any]]:
    """The payloads of the PUBLISH script calls written so far, decoded."""
    import json

    import hiredis

    reader = hiredis.Reader()
    reader.feed(transport.value())
    batches = []
    while (command := reader.gets()) is not False:
        if command[0] == b"EVALSHA":
            batches.append([event[2] for event in json.loads(command[-1])])
    return batches


@pytest.mark.parametrize("window", [0.0, 0.002])
@pytest.mark.filterwarnings("ignore:Passing HostnameEndpoint a reactor:DeprecationWarning")
def test_a_gather_window_holds_close_lines_in_one_ordered_batch(window: float) -> None:
    """After a quiet spell a line leaves in the same turn; lines within the window of the last
    batch wait for its end and leave together, in order; with no window every turn's go at once."""
    from twisted.internet import task

    from twistedchat.cluster.node import ClusterNode
    from twistedchat.server.config import ServerConfig
    from twistedchat.server.core import ServerCore

    clock = task.Clock()
    core = ServerCore(ServerConfig(name="here.test", cluster_gather=window), clock=clock.seconds)
    node = ClusterNode(core, "redis://127.0.0.1:1/0", clock, node_id="here/1")
    link = resp.RedisProtocol()
    transport = StringTransport()
    link.makeConnection(transport)
    node.control.current = link
    node.emit(["X", "here/1", 1])
    clock.advance(0)
    assert _published_batches(transport) == [[1]]
    node.emit(["X", "here/1", 2])
    clock.advance(0.001)
    node.emit(["X", "here/1", 3])
    if window:
        assert _published_batches(transport) == [[1]]  # 2 waits for the window's end
        clock.advance(0.001)
        assert _published_batches(transport) == [[1], [2, 3]]
    else:
        clock.advance(0)
        assert _published_batches(transport) == [[1], [2], [3]]
    clock.advance(1)
    node.emit(["X", "here/1", 4])
    clock.advance(0)  # a quiet spell: no wait
    assert _published_batches(transport)[-1] == [4]


@pytest.mark.parametrize("value", ["-0.001", "0.5", "soon", True])
def test_a_gather_window_out_of_bounds_is_refused(value: object) -> None:
    from twistedchat.cluster.service import gather_window
    from twistedchat.server.config import ConfigError

    with pytest.raises(ConfigError):
        gather_window(value)
    assert gather_window("0.002") == 0.002


class _Written:
    """A transport or outlet that notes, in one shared list, who was written to, in order."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def write(self, data: bytes) -> int | None:
        self.log.append(self.name)
        return None

    def abort(self) -> None:
        """(An outlet's: never called here.)"""

    def close(self) -> None:
        """(An outlet's: never called here.)"""


@pytest.mark.filterwarnings("ignore:Passing HostnameEndpoint a reactor:DeprecationWarning")
def test_the_batch_leaves_before_the_local_fan_out_is_written() -> None:
    """A channel line with members on another node goes to Redis at the start of the next
    turn's output flush, before the local members' sends, not after them (the other node then
    starts its own fan-out at once); still one batch for the lines of one turn."""
    from twisted.internet import task

    from twistedchat.cluster.node import ClusterNode
    from twistedchat.server.config import ServerConfig
    from twistedchat.server.net import ChatFactory

    clock = task.Clock()
    factory = ChatFactory(ServerConfig(name="here.test", flood_rate=0), clock=clock)
    written: list[str] = []
    senders = [factory.open_pipeline("192.0.2.1", _Written("alice", written)),
               factory.open_pipeline("192.0.2.2", _Written("bob", written))]
    for pipeline, nick in zip(senders, ("alice", "bob"), strict=True):
        for line in (f"NICK {nick}", f"USER {nick} 0 * :{nick}", "JOIN #c"):
            pipeline.line_received(line.encode())
    clock.advance(0)
    node = ClusterNode(factory.core, "redis://127.0.0.1:1/0", clock, node_id="here/1")
    link = resp.RedisProtocol()
    link.makeConnection(StringTransport())
    link._write = _Written("redis", written).write
    node.control.current = link
    ghost = node._ghost("there/1", ["carol", "c", "192.0.2.9", "Carol", 1.0, None, "", {}])
    assert ghost is not None
    factory.core.state.join(ghost, "#c", 1.0)
    for _ in range(2):  # (the first turn also sends each sender's idle time, once a minute)
        written.clear()
        senders[0].line_received(b"PRIVMSG #c :one")
        senders[1].line_received(b"PRIVMSG #c :two")
        clock.advance(0)
        assert written == ["redis", "bob", "alice"]


@pytest.mark.filterwarnings("ignore:Passing HostnameEndpoint a reactor:DeprecationWarning")
def test_a_nodes_own_batch_coming_back_is_not_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its own batch (even one whose text looks like an order marker) is dropped before JSON
    decoding; one that carries an order marker, or another node's, is still decoded and applied."""
    import json
    from types import SimpleNamespace

    from twisted.internet import task

    from twistedchat.cluster import incoming
    from twistedchat.cluster.node import ClusterNode
    from twistedchat.server.config import ServerConfig
    from twistedchat.server.core import ServerCore

    clock = task.Clock()
    core = ServerCore(ServerConfig(name="here.test"), clock=clock.seconds)
    node = ClusterNode(core, "redis://127.0.0.1:1/0", clock, node_id='here/1 "x"')
    decoded: list[bytes] = []

    def loads(payload: bytes) -> Any:
        decoded.append(payload)
        return json.loads(payload)

    monkeypatch.setattr(incoming, "json", SimpleNamespace(loads=loads))
    node.emit(["L", node.node_id, "a!a@h", "PRIVMSG", ["#c", '["N",1] ["N", 2]'], None, None,
               1.0, None, None])
    plain = node._take_batch()[1]
    node.apply_batch(plain)
    assert decoded == []
    node.order.wrote([("#c", "topic", "")])
    node.emit(["L", node.node_id, "a!a@h", "TOPIC", ["#c", "new"], None, None, 1.0, None, None])
    number, marked = node._take_batch()
    assert node.order.stale(("#c", "topic", ""))
    node.apply_batch(marked)
    assert decoded == [marked] and not node.order.stale(("#c", "topic", ""))
    theirs = plain.replace(json.dumps(node.node_id).encode(), b'"there/1"')
    node.apply_batch(theirs)
    assert decoded == [marked, theirs]
    assert node.applied_batches == 3


@pytest.mark.filterwarnings("ignore:Passing HostnameEndpoint a reactor:DeprecationWarning")
def test_a_remote_channel_message_walks_only_this_nodes_members() -> None:
    """A channel message from another node reaches the local members; the fan-out does not walk
    the replicas of remote members (a remote member's outbox swapped after its join stays empty)."""
    from twisted.internet import task

    from twistedchat.cluster.node import ClusterNode
    from twistedchat.server.config import ServerConfig
    from twistedchat.server.net import ChatFactory

    clock = task.Clock()
    factory = ChatFactory(ServerConfig(name="here.test", flood_rate=0), clock=clock)
    written: list[str] = []
    bob = factory.open_pipeline("192.0.2.2", _Written("bob", written))
    for line in ("NICK bob", "USER bob 0 * :bob", "JOIN #c"):
        bob.line_received(line.encode())
    clock.advance(0)
    node = ClusterNode(factory.core, "redis://127.0.0.1:1/0", clock, node_id="here/1")
    state = factory.core.state
    for nick in ("carol", "dave"):
        ghost = node._ghost("there/1", [nick, "x", "192.0.2.9", nick, 1.0, None, "", {}])
        assert ghost is not None
        state.join(ghost, "#c", 1.0)
    carol = state.find_user("carol")
    assert carol is not None
    looked_at: list[bytes] = []
    carol.outbox = looked_at  # a walk over remote members would now queue the line here
    written.clear()
    node.apply_batch(b'[["L","there/1","dave!x@192.0.2.9","PRIVMSG",["#c","hi"],null,null,1.0,'
                     b'null,null]]')
    clock.advance(0)
    assert written == ["bob"] and looked_at == []
