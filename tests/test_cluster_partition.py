"""What a network settles after a partition, an empty Redis or a long absence (issue 14's
remaining gaps): channels made on both sides, server bans, claims on every path that creates a
channel, remote idle times, private messages lost past an inbox's cap. Three nodes, a real
``redis-server``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import cluster_kit
import pytest_twisted
from cluster_kit import Node, RedisServer, all_know
from helpers import LineClient, register, wait_until

from twistedchat.cluster.inbox import INBOX_LOST
from twistedchat.server.metrics import COUNTERS
from twistedchat.wire import numerics as N

redis = cluster_kit.redis
network = cluster_kit.network

PREFIX = "twistedchat:ClusterNet:"


def said(client: LineClient, source: str) -> list[str]:
    """The PRIVMSG texts ``client`` received from ``source``."""
    return [m.params[1] for m in client.messages
            if m.command == "PRIVMSG" and m.source.startswith(source)]


@pytest_twisted.ensureDeferred
async def test_private_messages_lost_past_the_inbox_cap_are_counted(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register(b, "bob")
    await all_know(network, "alice", "bob")
    alice.send("PRIVMSG bob :before")
    await wait_until(lambda: said(bob, "alice!") == ["before"], "bob has the first line")
    # b stops reading its inbox; while it is away the inbox's stream drops what it held (as
    # its cap does for a node away longer than ~500 batches).
    await b.cluster.subscriber.stop()
    for i in range(3):
        alice.send(f"PRIVMSG bob :lost {i}")
        await alice.sync()
    await wait_until(lambda: redis.cli("GET", f"{PREFIX}is:b.node").strip() == "4",
                     "the three batches are in b's inbox")
    redis.cli("XTRIM", f"{PREFIX}inbox:b.node", "MAXLEN", "0")
    assert b.core.counters.get(INBOX_LOST, 0) == 0
    b.cluster.subscriber.start()
    await wait_until(lambda: b.core.counters.get(INBOX_LOST, 0) == 3,
                     "b counted three lost batches")
    assert b.cluster.inbox.lost_batches == 3
    # What follows arrives as before, and nothing is counted twice.
    alice.send("PRIVMSG bob :after")
    await wait_until(lambda: said(bob, "alice!") == ["before", "after"], "bob has the next line")
    assert b.core.counters[INBOX_LOST] == 3
    assert ("cluster_inbox_batches_lost", "twistedchat_cluster_inbox_batches_lost") in [
        counter[:2] for counter in COUNTERS]


@pytest_twisted.async_yield_fixture
async def opers_network(redis: RedisServer) -> AsyncIterator[list[Node]]:
    """Three nodes with an operator account (SAJOIN, KLINE)."""
    nodes = [Node(name, redis.url, opers={"root": "s3cret"})
             for name in ("a.node", "b.node", "c.node")]
    for node in nodes:
        await node.start()
    yield nodes
    for node in nodes:
        await node.stop()


async def oper(node: Node, nick: str) -> LineClient:
    client = await register(node, nick)
    client.send("OPER root s3cret")
    await client.expect(N.RPL_YOUREOPER)
    return client


def channel_view(node: Node, name: str) -> dict[str, str]:
    """One replica of a channel: nick -> prefixes."""
    channel = node.core.state.find_channel(name)
    return {} if channel is None else {u.nick: p for u, p in channel.members.items()}


@pytest_twisted.ensureDeferred
async def test_sajoin_creates_a_channel_through_its_claim(opers_network: list[Node]) -> None:
    a, b, c = opers_network
    root = await oper(a, "root")
    target = await register(a, "target")
    carol = await register(c, "carol")
    await all_know(opers_network, "root", "target", "carol")
    # a does not hear of #sa yet (its subscriber is away) when carol creates it on c ...
    await a.cluster.subscriber.stop()
    carol.send("JOIN #sa")
    await carol.expect("366", None, "#sa")
    assert channel_view(c, "#sa") == {"carol": "o"}
    # ... so SAJOIN there would create it again, with a second operator, without the claim.
    root.send("SAJOIN target #sa")
    await target.expect("366", None, "#sa")
    a.cluster.subscriber.start()
    await wait_until(lambda: all(set(channel_view(n, "#sa")) == {"carol", "target"}
                                 for n in opers_network), "every replica has both")
    for node in opers_network:
        assert channel_view(node, "#sa") == {"carol": "o", "target": ""}, node
    assert len({n.core.state.find_channel("#sa").created for n in opers_network}) == 1
    # SAJOIN of a user on another node is refused (that node's operator runs it).
    root.send("SAJOIN carol #elsewhere")
    refusal = await root.expect("NOTICE", None, where=lambda m: "carol" in m.params[1])
    assert "c.node" in refusal.params[1]
    assert all(n.core.state.find_channel("#elsewhere") is None for n in opers_network)
