"""The network stays one network when things happen at once (issue 14's consistency gaps)."""

from __future__ import annotations

import cluster_kit
import pytest_twisted
from cluster_kit import Node, RedisServer, all_know, all_see_member
from helpers import register, wait_until

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
    await wait_until(lambda: all(n.cluster.beats > old + 1 for n, old in zip(network, beats)),
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
