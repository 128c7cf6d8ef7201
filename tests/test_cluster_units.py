"""The cluster's parts that need no Redis: the wire format, URLs, the bound on waiting commands."""

from __future__ import annotations

import pytest
from twisted.internet.testing import StringTransport

from twistedchat.cluster import resp


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
