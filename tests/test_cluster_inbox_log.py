"""A turn's inbox batches are stored once, in the log every inbox shares (issue 14): one entry
per turn whatever its target nodes, read off a real Redis; gaps filled from that log for two
nodes with different gaps; a long gap read back a page at a time, keeping this node's batches."""

from __future__ import annotations

import socket
from typing import Any

import cluster_kit
import hiredis
import pytest_twisted
from cluster_kit import Node, RedisServer, all_see_member
from core_peers import FakeClock, make_core
from helpers import LineClient, register, wait_until
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from twistedchat.cluster import scripts
from twistedchat.cluster.inbox import READ_PAGE
from twistedchat.cluster.node import ClusterNode
from twistedchat.cluster.resp import encode_command

redis = cluster_kit.redis
network = cluster_kit.network

PREFIX = "twistedchat:ClusterNet:"


def call(server: RedisServer, *args: Any) -> Any:
    """One command's reply, on a connection of its own (blocking; for checks between waits)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(encode_command(args))
        reader = hiredis.Reader()
        while (reply := reader.gets()) is False:
            reader.feed(connection.recv(1 << 16))
        return reply


def entry_fields(entry: list[Any]) -> dict[bytes, bytes]:
    """A stream entry's fields, by name."""
    fields = entry[1]
    return dict(zip(fields[::2], fields[1::2], strict=True))


def test_one_turn_to_ten_nodes_is_one_log_entry(redis: RedisServer) -> None:
    """SEND to 10 inboxes writes one entry (its 10 deliveries, the payload once) and no stream
    per inbox, and publishes one message built for the first eight, another for the last two;
    the next turn is the next entry, each inbox's sequence moving on by one."""
    targets = [f"t{n}" for n in range(10)]
    for node in ["n1", *targets]:
        call(redis, "EVAL", scripts.REGISTER.source, 0, PREFIX, node, "i1", "e1")
    subscriber = socket.create_connection(("127.0.0.1", redis.port), timeout=10)
    subscriber.sendall(encode_command(("SUBSCRIBE", f"{PREFIX}inbox:t5", f"{PREFIX}inbox:t9")))
    reader = hiredis.Reader()

    def published() -> Any:
        while (reply := reader.gets()) is False:
            reader.feed(subscriber.recv(1 << 16))
        return reply

    assert published()[0] == published()[0] == b"subscribe"
    for turn in (1, 2):
        payload = f'[["L","n1","alice!a@h","PRIVMSG",["#room","turn {turn}"]]]'
        others = [x for target in targets[1:] for x in (target, "=6")]
        assert call(redis, "EVAL", scripts.SEND.source, 0, PREFIX, "n1", "i1", "e2",
                    targets[0], payload, *others) == 1
        entries = call(redis, "XRANGE", f"{PREFIX}ilog", "-", "+")
        assert len(entries) == turn and entries[-1][0] == f"0-{turn}".encode()
        fields = entry_fields(entries[-1])
        assert fields[b"6"] == payload.encode() and len(fields) == 2  # the payload stored once
        assert fields[b"d"].split(b"\n") == [
            f"{target} {turn} 0 6".encode() for target in targets]
        # One message for eight, built once, naming each with its epoch and sequence.
        for channel, group in (("t5", targets[:8]), ("t9", targets[8:])):
            message = published()
            assert message[:2] == [b"message", f"{PREFIX}inbox:{channel}".encode()]
            names = " ".join(f"{target} e2 {turn}" for target in group)
            assert message[2] == f"*{len(group)} {names} 0:{turn} {payload}".encode()
    assert call(redis, "KEYS", f"{PREFIX}inbox:*") == []
    assert call(redis, "MGET", *(f"{PREFIX}is:{target}" for target in targets)) == [b"2"] * 10
    subscriber.close()


def drop_inbox_batches(node: Node, *texts: bytes) -> list[bytes]:
    """Make pub/sub lose the inbox batches to ``node`` that carry one of ``texts``."""
    dropped: list[bytes] = []
    deliver = node.cluster._on_message

    def lossy(channel: bytes, data: bytes) -> None:
        if channel.endswith(b"inbox:" + node.cluster.node_id.encode()) and any(
                f'"{text.decode()}"'.encode() in data for text in texts):
            dropped.append(data)
        else:
            deliver(channel, data)

    node.cluster.subscriber.current.listen(lossy)
    return dropped


def said(client: LineClient) -> list[str]:
    return [m.params[-1] for m in client.messages if m.command == "PRIVMSG"]


@pytest_twisted.ensureDeferred
async def test_two_nodes_fill_different_gaps_from_the_shared_log(
        redis: RedisServer, network: list[Node]) -> None:
    """b loses one inbox batch, c the next two: each reads its own back from the one log (one
    entry per turn for both), in order, none lost or repeated."""
    a, b, c = network
    alice, bob, carol = (await register(a, "alice"), await register(b, "bob"),
                         await register(c, "carol"))
    for client in (alice, bob, carol):
        client.send("JOIN #room")
        await all_see_member(network, "#room", client.nick)
    alice.send("PRIVMSG #room :m0")
    await wait_until(lambda: said(bob) == ["m0"] and said(carol) == ["m0"], "both have m0")
    before = int(call(redis, "XLEN", f"{PREFIX}ilog"))
    filled_b, filled_c = b.cluster.inbox.gaps_filled, c.cluster.inbox.gaps_filled
    lost_b = drop_inbox_batches(b, b"m1")
    lost_c = drop_inbox_batches(c, b"m2", b"m3")
    for i in range(1, 5):
        alice.send(f"PRIVMSG #room :m{i}")
        await alice.sync()
    expected = [f"m{i}" for i in range(5)]
    await wait_until(lambda: said(bob) == expected and said(carol) == expected,
                     "both have every line")
    await bob.sync()
    await carol.sync()
    assert said(bob) == expected and said(carol) == expected
    assert len(lost_b) == 1 and len(lost_c) == 2
    assert b.cluster.inbox.gaps_filled > filled_b and c.cluster.inbox.gaps_filled > filled_c
    assert int(call(redis, "XLEN", f"{PREFIX}ilog")) == before + 4  # one entry per turn
    assert call(redis, "KEYS", f"{PREFIX}inbox:*") == []


class FakeLog:
    """XRANGE ... COUNT over an in-memory log (the control link of a node without Redis)."""

    def __init__(self, entries: list[tuple[int, list[bytes]]]) -> None:
        self.entries = entries
        self.calls: list[tuple[Any, ...]] = []

    def execute(self, *args: Any) -> defer.Deferred[Any]:
        self.calls.append(args)
        command, _, start, stop, _, count = args
        assert command == "XRANGE"
        low = 0 if start == "-" else int(start.split("-")[1])
        high = 10**18 if stop == "+" else int(stop.split("-")[1])
        found = [[f"0-{n}".encode(), fields] for n, fields in self.entries if low <= n <= high]
        return defer.succeed(found[:count])


def test_a_long_gap_is_read_back_page_by_page_keeping_this_nodes_batches() -> None:
    """A gap of 698 batches spread over ~1,400 entries of the shared log (every other one for
    another node, some for both): read in pages from the entry of the last batch applied to the
    entry of the batch held, only this node's batches kept, applied in order."""
    node = ClusterNode(make_core(FakeClock()), "redis://127.0.0.1:1/0", MemoryReactorClock(),
                       node_id="here")
    applied: list[bytes] = []
    node.apply_batch = applied.append  # type: ignore[method-assign]
    entries: list[tuple[int, list[bytes]]] = []
    for seq in range(1, 701):
        mine = 2 * seq + 10  # (entries 1-11 are older than this node's first batch)
        entries.append((mine - 1, [b"d", b"there 5 0 6", b"6", b"[0]"]))
        both = f"there {seq} 0 6\nhere {seq} 0 8".encode()
        entries.append((mine, [b"d", both, b"6", b"[0]", b"8", f"[{seq}]".encode()]))
    log = FakeLog(entries)
    node.inbox.control = log  # type: ignore[assignment]
    inbox = node._inbox_name
    node._on_message(inbox, b"i1 1 0:12 [1]")
    node._on_message(inbox, b"i1 700 0:1410 [700]")
    assert applied == [f"[{seq}]".encode() for seq in range(1, 701)]
    assert node.inbox.lost_batches == 0 and node.inbox.last_entry == 1410
    starts = [call[2] for call in log.calls]
    # Entries 12 to 1410 in pages: the second starts after the first page's last entry.
    assert starts == ["0-12", f"0-{12 + READ_PAGE}", f"0-{12 + 2 * READ_PAGE}"]
    assert {call[3] for call in log.calls} == {"0-1410"}


def test_a_node_that_left_gets_no_inbox_batch(redis: RedisServer) -> None:
    """Its inbox's epoch and sequence go with it (LEAVE), so SEND skips it: no sequence number,
    no log entry for a turn with no live target (SEND checks ``nodes`` only for a first batch)."""
    for node in ("n1", "t0", "t1"):
        call(redis, "EVAL", scripts.REGISTER.source, 0, PREFIX, node, "i1", "e1")
    send = ("EVAL", scripts.SEND.source, 0, PREFIX, "n1", "i1", "e2")
    assert call(redis, *send, "t0", "[1]", "t1", "=6") == 1
    assert call(redis, "EVAL", scripts.LEAVE.source, 0, PREFIX, "t0", "i1", "bye") == 1
    assert call(redis, "EXISTS", f"{PREFIX}ie:t0", f"{PREFIX}is:t0") == 0
    assert call(redis, *send, "t0", "[2]", "t1", "=6") == 1
    assert call(redis, *send, "t0", "[3]") == 1
    entries = call(redis, "XRANGE", f"{PREFIX}ilog", "-", "+")
    assert [entry_fields(entry)[b"d"] for entry in entries] == [
        b"t0 1 0 6\nt1 1 0 6", b"t1 2 1 6"]  # (LEAVE made event 1)
    assert call(redis, "EXISTS", f"{PREFIX}ie:t0", f"{PREFIX}is:t0") == 0


def test_a_node_takes_its_own_batch_from_a_message_to_several() -> None:
    """``*<count> <node> <epoch> <seq>...``: each node reads its own epoch and sequence (a gap
    between two such messages is read back like any other)."""
    node = ClusterNode(make_core(FakeClock()), "redis://127.0.0.1:1/0", MemoryReactorClock(),
                       node_id="here")
    applied: list[bytes] = []
    node.apply_batch = applied.append  # type: ignore[method-assign]
    inbox = node._inbox_name
    node._on_message(inbox, b"*2 there e9 5 here i1 1 0:3 [1]")
    node._on_message(inbox, b"*3 here i1 2 there e9 6 far e8 1 0:4 [2]")
    node._on_message(inbox, b"i1 3 0:5 [3]")
    assert applied == [b"[1]", b"[2]", b"[3]"]
    assert node.inbox.last_seq == 3 and node.inbox.last_entry == 5


def test_a_node_that_missed_its_first_batches_reads_the_log_from_its_start() -> None:
    """No batch applied yet in this epoch: no entry to start from, so the whole log is read (a
    page at a time), and a batch the log no longer holds is counted lost."""
    node = ClusterNode(make_core(FakeClock()), "redis://127.0.0.1:1/0", MemoryReactorClock(),
                       node_id="here")
    applied: list[bytes] = []
    node.apply_batch = applied.append  # type: ignore[method-assign]
    log = FakeLog([(5, [b"d", b"here 2 0 6", b"6", b"[2]"]),
                   (9, [b"d", b"there 1 0 6\nhere 3 0 8", b"6", b"[0]", b"8", b"[3]"])])
    node.inbox.control = log  # type: ignore[assignment]
    node._on_message(node._inbox_name, b"i1 4 0:12 [4]")
    assert [call[2:4] for call in log.calls] == [("-", "0-12")]
    assert applied == [b"[2]", b"[3]", b"[4]"]  # (batch 1 was trimmed away)
    assert node.inbox.lost_batches == 1
