"""Several chat nodes as one network on a real Redis (issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_twisted
from cluster_kit import Node, RedisServer, all_know, all_see_member
from helpers import connect, register, wait_until


@pytest_twisted.async_yield_fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest_twisted.async_yield_fixture
async def network(redis: RedisServer) -> AsyncIterator[list[Node]]:
    nodes = [Node(name, redis.url) for name in ("a.node", "b.node", "c.node")]
    for node in nodes:
        await node.start()
    yield nodes
    for node in nodes:
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_a_conversation_across_three_nodes(network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register(b, "bob")
    carol = await register(c, "carol")
    await all_know(network, "alice", "bob", "carol")

    alice.send("JOIN #room")
    await alice.expect("JOIN", "#room")
    await all_see_member(network, "#room", "alice")
    bob.send("JOIN #room")
    names = await bob.expect("353", "bob", "=", "#room")
    assert set(names.params[-1].split()) == {"@alice", "bob"}
    await alice.expect("JOIN", "#room", source="bob!")
    await all_see_member(network, "#room", "bob")
    carol.send("JOIN #room")
    await alice.expect("JOIN", "#room", source="carol!")
    await bob.expect("JOIN", "#room", source="carol!")

    bob.send("PRIVMSG #room :hello from b")
    await alice.expect("PRIVMSG", "#room", "hello from b", source="bob!")
    await carol.expect("PRIVMSG", "#room", "hello from b", source="bob!")

    alice.send("TOPIC #room :news from a")
    await bob.expect("TOPIC", "#room", "news from a", source="alice!")
    await carol.expect("TOPIC", "#room", "news from a")
    carol.send("TOPIC #room")
    await carol.expect("332", "carol", "#room", "news from a")

    alice.send("MODE #room +o bob")
    await carol.expect("MODE", "#room", "+o", "bob", source="alice!")
    await bob.expect("MODE", "#room", "+o", "bob")
    bob.send("NAMES #room")
    names = await bob.expect("353", "bob", None, "#room")
    assert set(names.params[-1].split()) == {"@alice", "@bob", "carol"}

    carol.send("WHO #room")
    who = [m.params[5] for m in (await carol.collect_until("315")) if m.command == "352"]
    assert sorted(who) == ["alice", "bob", "carol"]
    carol.send("WHOIS alice")
    whois = await carol.expect("311", "carol", "alice")
    assert whois.params[2] == "~alice"
    await carol.expect("318")
    carol.send("LIST")
    listed = await carol.expect("322", "carol", "#room")
    assert listed.params[2:] == ("3", "news from a")

    bob.send("KICK #room carol :out")
    await carol.expect("KICK", "#room", "carol", "out", source="bob!")
    await alice.expect("KICK", "#room", "carol", "out")
    await wait_until(lambda: not any(n.member("#room", "carol") for n in network),
                     "carol left #room everywhere")

    carol.send("PRIVMSG alice :psst")
    await alice.expect("PRIVMSG", "alice", "psst", source="carol!")
    alice.send("NOTICE carol :heard")
    await carol.expect("NOTICE", "carol", "heard", source="alice!")

    bob.send("NICK robert")
    await alice.expect("NICK", "robert", source="bob!")
    await all_know(network, "robert")
    carol.send("WHOIS robert")
    await carol.expect("311", "carol", "robert")
    assert not any(n.knows("bob") for n in network)

    bob.send("PART #room :later")
    await alice.expect("PART", "#room", "later", source="robert!")

    carol.send("JOIN #side")
    await all_see_member(network, "#side", "carol")
    alice.send("JOIN #side")
    await carol.expect("JOIN", "#side", source="alice!")
    alice.send("QUIT :bye now")
    await carol.expect("QUIT", "Quit: bye now", source="alice!")
    await wait_until(lambda: not any(n.knows("alice") for n in network), "alice is gone")
    # Her nick is free again, network-wide.
    again = await register(c, "alice")
    again.close()


@pytest_twisted.ensureDeferred
async def test_forty_way_nick_race_has_one_winner(network: list[Node]) -> None:
    racers = []
    for index in range(40):
        client = await connect(network[index % 3].client_endpoint)
        racers.append(client)
    for client in racers:
        client.send("NICK racer", "USER racer 0 * :Racer")
    outcomes = []
    for client in racers:
        reply = await client.expect(where=lambda m: m.command in ("001", "433"))
        outcomes.append(reply.command)
    assert outcomes.count("001") == 1, outcomes
    assert outcomes.count("433") == 39
    await all_know(network, "racer")
    for client in racers:
        client.close()

