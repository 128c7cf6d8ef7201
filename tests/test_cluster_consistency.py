"""The network stays one network when things happen at once (issue 14's consistency gaps)."""

from __future__ import annotations

import cluster_kit
import pytest_twisted
from cluster_kit import Node, RedisServer, all_know, all_see_member, drop_next
from helpers import LineClient, register, wait_until

redis = cluster_kit.redis
network = cluster_kit.network

PREFIX = "twistedchat:ClusterNet:"


@pytest_twisted.ensureDeferred
async def test_redis_restarted_with_its_data_reaps_nobody(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    carol = await register(c, "carol")
    alice.send("JOIN #room")
    await all_see_member(network, "#room", "alice")
    carol.send("JOIN #room")
    await alice.expect("JOIN", "#room", source="carol!")
    # c is slow to come back after the restart.
    await c.cluster.control.stop()
    # The outage outlasts a node's dead time in Redis's clock: every heartbeat kept on disk is
    # made 10 s old (the reactor does not turn between these blocking calls, so no node beats).
    redis.cli("EVAL", "for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
              "redis.call('ZINCRBY', KEYS[1], -10000, n) end", "1", PREFIX + "hb")
    redis.shutdown_saving()
    redis.start(keep_data=True)
    beats = a.cluster.beats, b.cluster.beats
    await wait_until(lambda: a.cluster.beats > beats[0] + 1 and b.cluster.beats > beats[1] + 1,
                     "a and b beat twice in the restarted Redis", timeout=10)
    c.cluster.control.start()
    await wait_until(lambda: c.cluster.control.current is not None, "c is back", timeout=10)
    beats = a.cluster.beats, b.cluster.beats, c.cluster.beats
    await wait_until(lambda: all(n.cluster.beats > old + 1 for n, old in zip(network, beats, strict=True)),
                     "every node beat twice more", timeout=10)
    assert not [m for m in alice.messages if m.command == "QUIT"]
    assert sorted(redis.cli("HKEYS", PREFIX + "nodes").split()) == ["a.node", "b.node", "c.node"]
    await all_know(network, "alice", "carol")
    carol.send("PRIVMSG #room :still one network")
    await alice.expect("PRIVMSG", "#room", "still one network", source="carol!")


@pytest_twisted.ensureDeferred
async def test_after_redis_lost_its_data_the_older_signon_keeps_a_nick(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, c = network
    older = await register(a, "alice")
    await all_know(network, "alice")
    # a is cut off from Redis while Redis restarts empty; the others see a's users leave ...
    await a.cluster.control.stop()
    redis.kill()
    redis.start()
    await wait_until(lambda: not b.knows("alice") and not c.knows("alice"),
                     "b and c split a's users", timeout=15)
    # ... so a newer alice can sign on at b: two nodes now each hold a user named alice.
    newer = await register(b, "alice")
    newer.send("JOIN #room")
    await wait_until(lambda: c.member("#room", "alice"), "c knows b's alice")
    assert a.core.state.find_user("alice") not in a.cluster.ghost_node
    a.cluster.control.start()
    renamed = await newer.expect("NICK", source="alice!", timeout=10)
    guest = renamed.params[0]
    assert guest.startswith("Guest")
    notice = await newer.expect("NOTICE", guest)
    assert "alice" in notice.params[1] and guest in notice.params[1]
    await all_know(network, "alice", guest)
    for node in (b, c):
        await wait_until(lambda node=node: node.cluster.ghost_node.get(
            node.core.state.find_user("alice")) == "a.node", f"{node} has a's alice")
        await wait_until(lambda node=node: node.member("#room", guest), f"{node} has {guest}")
    await wait_until(lambda: a.member("#room", guest), "a learnt b's renamed user")
    assert a.cluster.ghost_node.get(a.core.state.find_user(guest)) == "b.node"
    assert c.cluster.ghost_node.get(c.core.state.find_user(guest)) == "b.node"
    assert redis.cli("HGET", PREFIX + "nicks", "alice").strip() == "a.node"
    assert not [m for m in older.messages if m.command == "NICK"]
    older.send(f"PRIVMSG {guest} :hello newcomer")
    await newer.expect("PRIVMSG", guest, "hello newcomer", source="alice!")


def channel_view(node: Node, name: str) -> dict[str, str]:
    """One replica of a channel: nick -> prefixes."""
    channel = node.core.state.find_channel(name)
    return {} if channel is None else {u.nick: p for u, p in channel.members.items()}


@pytest_twisted.ensureDeferred
async def test_racing_to_create_a_channel_makes_one_operator(
        redis: RedisServer, network: list[Node]) -> None:
    racers = [await register(network[i % 3], f"racer{i}") for i in range(30)]
    nicks = {f"racer{i}" for i in range(30)}
    await all_know(network, *nicks)
    for client in racers:
        client.send("JOIN #race")
    for client in racers:
        await client.expect("366", None, "#race")
    await wait_until(lambda: all(set(channel_view(n, "#race")) == nicks for n in network),
                     "every replica has every racer", timeout=10)
    views = [channel_view(n, "#race") for n in network]
    assert views[0] == views[1] == views[2]
    assert [nick for nick, prefixes in views[0].items() if "o" in prefixes] != []
    assert len([nick for nick, prefixes in views[0].items() if prefixes]) == 1, views[0]
    assert len({n.core.state.find_channel("#race").created for n in network}) == 1
    # Each racer was told the same: one @ in the channel.
    for client in racers:
        names = [m for m in client.messages if m.command == "353"][-1].params[-1].split()
        assert len([n for n in names if n.startswith("@")]) <= 1, names
    # The last to leave frees the name: the next to join creates the channel afresh, as op.
    for client in racers:
        client.send("PART #race")
    await wait_until(lambda: all(n.core.state.find_channel("#race") is None for n in network),
                     "#race is gone everywhere")
    await wait_until(lambda: not redis.cli("HGETALL", PREFIX + "chans").strip(),
                     "the claim of #race is gone")
    assert not any(n.cluster.channel_claims.noted for n in network)
    racers[4].send("JOIN #race")
    names = await racers[4].expect("353", None, None, "#race")
    assert names.params[-1] == "@racer4"
    await all_see_member(network, "#race", "racer4")
    for node in network:
        assert channel_view(node, "#race") == {"racer4": "o"}


def channel_state(node: Node, name: str) -> tuple[object, ...]:
    """What a replica says of a channel: modes, key, limit, topic, members' prefixes."""
    channel = node.core.state.find_channel(name)
    assert channel is not None
    return (sorted(channel.modes), channel.key, channel.limit, channel.topic,
            sorted(channel.bans), channel_view(node, name))


@pytest_twisted.ensureDeferred
async def test_conflicting_channel_changes_at_once_leave_every_replica_equal(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register(b, "bob")
    carol = await register(c, "carol")
    alice.send("JOIN #room")
    await all_see_member(network, "#room", "alice")
    for client in (bob, carol):
        client.send("JOIN #room")
        await client.expect("366")
    await all_see_member(network, "#room", "carol")
    alice.send("MODE #room +o bob")
    await wait_until(lambda: all(channel_view(n, "#room").get("bob") == "o" for n in network),
                     "bob is op everywhere")
    for turn in range(15):
        # Two operators on two nodes change the same things at the same instant.
        alice.send(f"MODE #room +kl a{turn} {10 + turn}", f"TOPIC #room :from a {turn}",
                   f"MODE #room {'+-'[turn % 2]}o carol", f"MODE #room +b x{turn}!*@*")
        bob.send(f"MODE #room +kl b{turn} {50 + turn}", f"TOPIC #room :from b {turn}",
                 f"MODE #room {'-+'[turn % 2]}o carol", f"MODE #room -b x{turn}!*@*")
    await alice.sync()
    await bob.sync()

    def settled() -> bool:
        seq = int(redis.cli("GET", PREFIX + "seq"))
        return all(not n.cluster._outgoing and n.cluster.events.last_seq == seq for n in network) and (
            channel_state(a, "#room") == channel_state(b, "#room") == channel_state(c, "#room"))

    await wait_until(settled, "every replica of #room is the same", timeout=10)
    key = a.core.state.find_channel("#room").key
    # What each member was shown ends where the replicas did.
    for client in (alice, bob, carol):
        def last_key(client: LineClient = client) -> str:
            return [m.params[2] for m in client.messages
                    if m.command == "MODE" and "k" in m.params[1]][-1]

        await wait_until(lambda: last_key() == key, f"{client} was shown the key {key}")


@pytest_twisted.ensureDeferred
async def test_private_messages_go_to_the_target_node_alone_in_order(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register(b, "bob")
    await all_know(network, "alice", "bob")
    events = redis.cli("GET", PREFIX + "seq")
    applied_by_c = c.cluster.applied_batches

    def said(client: LineClient, source: str) -> list[str]:
        return [m.params[1] for m in client.messages
                if m.command in ("PRIVMSG", "NOTICE") and m.source.startswith(source)]

    alice.send(*(f"PRIVMSG bob :m{i}" for i in range(100)))
    b.cluster.subscriber.cut()  # mid-traffic: what was in flight to b is lost on the wire
    alice.send(*(f"PRIVMSG bob :m{i}" for i in range(100, 200)))
    bob.send(*(f"NOTICE alice :r{i}" for i in range(50)))
    await wait_until(lambda: len(said(bob, "alice!")) >= 200, "bob has 200 lines", timeout=10)
    await wait_until(lambda: len(said(alice, "bob!")) >= 50, "alice has 50 lines", timeout=10)

    # Messages that pub/sub never delivers are read back from the inbox's stream.
    dropped = drop_next(b, 2, b"inbox:b.node")
    for i in range(200, 205):
        alice.send(f"PRIVMSG bob :m{i}")
        await alice.sync()
    await wait_until(lambda: len(said(bob, "alice!")) >= 205, "bob has 205 lines")
    await bob.sync()
    await alice.sync()
    assert said(bob, "alice!") == [f"m{i}" for i in range(205)]
    assert said(alice, "bob!") == [f"r{i}" for i in range(50)]
    assert len(dropped) == 2 and b.cluster.inbox.gaps_filled >= 1
    # Nobody else decoded them: not one event for the whole network, nothing applied at c.
    assert redis.cli("GET", PREFIX + "seq") == events
    assert c.cluster.applied_batches == applied_by_c


@pytest_twisted.ensureDeferred
async def test_kicks_racing_parts_and_joins_leave_every_replica_equal(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    carol = await register(c, "carol")
    alice.send("JOIN #room")
    await all_see_member(network, "#room", "alice")
    carol.send("JOIN #room")
    await all_see_member(network, "#room", "carol")
    for turn in range(15):
        alice.send("KICK #room carol :again", f"MODE #room {'+-'[turn % 2]}v carol")
        carol.send("PART #room", "JOIN #room")
    await alice.sync()
    await carol.sync()

    def settled() -> bool:
        seq = int(redis.cli("GET", PREFIX + "seq"))
        return all(not n.cluster._outgoing and n.cluster.events.last_seq == seq
                   for n in network) and (
            channel_view(a, "#room") == channel_view(b, "#room") == channel_view(c, "#room"))

    await wait_until(settled, "every replica of #room has the same members", timeout=10)


@pytest_twisted.ensureDeferred
async def test_redis_restored_from_an_older_snapshot_loses_no_later_line(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, _ = network
    alice = await register(a, "alice")
    bob = await register(b, "bob")
    alice.send("JOIN #room")
    await all_see_member(network, "#room", "alice")
    bob.send("JOIN #room")
    await alice.expect("JOIN", "#room", source="bob!")
    alice.send("PRIVMSG bob :private first")
    await bob.expect("PRIVMSG", "bob", "private first")
    redis.cli("SAVE")
    # Batches after the snapshot: a Redis killed now comes back with older sequence numbers
    # than the nodes have seen.
    for i in range(10):  # more batches than the nodes' registrations will publish again
        alice.send(f"PRIVMSG #room :before {i}", f"PRIVMSG bob :private before {i}")
        await bob.expect("PRIVMSG", "bob", f"private before {i}")
    incarnations = [n.cluster.incarnation for n in network]
    redis.kill()
    redis.start(keep_data=True)
    await wait_until(lambda: all(n.cluster.incarnation != old and n.cluster.is_ready
                                 and n.cluster.control.current is not None
                                 for n, old in zip(network, incarnations, strict=True)),
                     "every node registered again", timeout=10)
    alice.send("PRIVMSG #room :after", "PRIVMSG bob :private after")
    # (The channel line and the private one travel apart: either may come first.)
    await wait_until(lambda: {("#room", "after"), ("bob", "private after")} <= {
        m.params for m in bob.messages if m.command == "PRIVMSG"}, "bob has both lines")
