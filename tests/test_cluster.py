"""Several chat nodes as one network on a real Redis (issue 14)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import cluster_kit
import pytest
import pytest_twisted
from cluster_kit import Node, RedisServer, all_know, all_see_member, drop_next
from helpers import DaemonProcess, LineClient, connect, register, wait_until

from twistedchat.cluster import nicks

#: The fixtures every cluster test module shares (a real Redis, three nodes on it).
redis = cluster_kit.redis
network = cluster_kit.network


async def alice_and_bob_in_room(network: list[Node]) -> tuple[LineClient, LineClient]:
    """alice on the first node and bob on the second, both in #room on every node."""
    alice = await register(network[0], "alice")
    bob = await register(network[1], "bob")
    alice.send("JOIN #room")
    await all_see_member(network, "#room", "alice")
    bob.send("JOIN #room")
    await alice.expect("JOIN", "#room", source="bob!")
    await all_see_member(network, "#room", "bob")
    return alice, bob


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
    # A change of case keeps the nick claimed.
    carol.send("NICK Carol")
    await carol.expect("NICK", "Carol")
    copycat = await connect(a.client_endpoint)
    copycat.send("NICK carol", "USER x 0 * :x")
    await copycat.expect("433", None, "carol")
    copycat.close()


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



@pytest_twisted.ensureDeferred
async def test_a_killed_node_is_split_and_its_nicks_freed(
        redis: RedisServer, network: list[Node], tmp_path: Path) -> None:
    a, b, _ = network
    daemon = DaemonProcess(tmp_path, "--cluster", redis.url, "--name", "d.node",
                           "--network", "ClusterNet", "--max-per-ip", "0")
    try:
        await daemon.wait_listening()
        alice = await register(a, "alice")
        alice.send("JOIN #room")
        await all_see_member(network, "#room", "alice")
        doomed = await register(daemon, "doomed")
        doomed.send("JOIN #room", "JOIN #doomed")
        await alice.expect("JOIN", "#room", source="doomed!")
        await doomed.expect("366", None, "#doomed")
        chans = "twistedchat:ClusterNet:chans"
        assert redis.cli("HEXISTS", chans, "#doomed").strip() == "1"
        daemon.process.send_signal(signal.SIGKILL)
        quit_ = await alice.expect("QUIT", source="doomed!", timeout=10)
        assert quit_.params == ("*.net *.split",)
        await wait_until(lambda: not any(n.knows("doomed") for n in network),
                         "doomed is gone everywhere", timeout=10)
        again = await register(b, "doomed")
        # Its channels are freed too (a channel with members elsewhere is kept).
        await wait_until(lambda: redis.cli("HEXISTS", chans, "#doomed").strip() == "0",
                         "#doomed is free", timeout=10)
        assert redis.cli("HEXISTS", chans, "#room").strip() == "1"
        again.send("JOIN #doomed")
        names = await again.expect("353", None, None, "#doomed")
        assert names.params[-1] == "@doomed"
        again.close()
    finally:
        daemon.stop()


@pytest_twisted.ensureDeferred
async def test_redis_restarted_empty_network_comes_back(
        redis: RedisServer, network: list[Node], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = network
    alice, bob = await alice_and_bob_in_room(network)
    alice.send("TOPIC #room :kept")
    await bob.expect("TOPIC", "#room", "kept")
    await wait_until(lambda: c.core.state.find_channel("#room").topic == "kept", "c has the topic")

    redis.kill()
    # While Redis is away nothing queues: a new user is told to retry after a bounded wait, and a
    # line for remote members is dropped, not kept.
    monkeypatch.setattr(nicks, "CLAIM_WAIT", 0.2)
    await wait_until(lambda: c.cluster.control.current is None, "c saw Redis go")
    newcomer = await connect(c.client_endpoint)
    newcomer.send("NICK newcomer", "USER x 0 * :x")
    await newcomer.expect("437", None, "newcomer")
    newcomer.close()
    await wait_until(lambda: b.cluster.control.current is None, "b saw Redis go")
    dropped = b.cluster.dropped_batches
    bob.send("PRIVMSG #room :into the void")
    await bob.sync()
    await wait_until(lambda: b.cluster.dropped_batches > dropped, "b dropped the line")
    assert not b.cluster._outgoing
    # A new channel is made at once, its creator op (Redis settles it when it returns).
    alice.send("JOIN #offline")
    names = await alice.expect("353", None, None, "#offline")
    assert names.params[-1] == "@alice"
    redis.start()
    await wait_until(lambda: set(redis.cli("HKEYS", "twistedchat:ClusterNet:nicks").split())
                     == {"alice", "bob"}, "every node registered its users again", timeout=10)
    await wait_until(lambda: len(redis.cli("HKEYS", "twistedchat:ClusterNet:nodes").split()) == 3,
                     "every node is back", timeout=10)
    # Channels are claimed again by the nodes that have members in them.
    await wait_until(lambda: sorted(redis.cli("SMEMBERS", "twistedchat:ClusterNet:cn:#room")
                                    .split()) == ["a.node", "b.node"],
                     "#room is claimed again", timeout=10)
    await wait_until(lambda: redis.cli("SMEMBERS", "twistedchat:ClusterNet:cn:#offline").split()
                     == ["a.node"], "#offline is claimed", timeout=10)
    # No duplicate nick: alice is still held network-wide.
    late = await connect(c.client_endpoint)
    late.send("NICK alice", "USER x 0 * :x")
    await late.expect("433", None, "alice")
    late.close()
    # Channels intact on every node, and the conversation goes on.
    for node in network:
        await wait_until(lambda node=node: node.member("#room", "alice")
                         and node.member("#room", "bob"), f"{node} has #room")
        assert node.core.state.find_channel("#room").topic == "kept"
    bob.send("PRIVMSG #room :still here")
    await alice.expect("PRIVMSG", "#room", "still here", source="bob!")
    assert not [m for m in alice.messages if m.params[-1:] == ("into the void",)]


@pytest_twisted.ensureDeferred
async def test_a_fenced_node_registers_again_and_goes_on(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, _ = network
    alice, bob = await alice_and_bob_in_room(network)
    before = a.cluster.incarnation
    # As if the others had declared a dead: its incarnation is gone, so its writes are refused.
    redis.cli("HDEL", "twistedchat:ClusterNet:nodes", "a.node")
    await wait_until(lambda: a.cluster.incarnation != before
                     and a.cluster.control.current is not None, "a registered again", timeout=10)
    assert redis.cli("HGET", "twistedchat:ClusterNet:nicks", "alice").strip() == "a.node"
    alice.send("PRIVMSG #room :after the fence")
    await bob.expect("PRIVMSG", "#room", "after the fence", source="alice!")


@pytest_twisted.ensureDeferred
async def test_a_cut_subscriber_loses_and_repeats_nothing(network: list[Node]) -> None:
    a, b, _ = network
    alice, bob = await alice_and_bob_in_room(network)

    def said() -> list[str]:
        return [m.params[1] for m in bob.messages if m.command == "PRIVMSG"]

    alice.send(*(f"PRIVMSG #room :m{i}" for i in range(100)))
    b.cluster.subscriber.cut()  # mid-traffic: what was in flight to b is lost on the wire
    alice.send(*(f"PRIVMSG #room :m{i}" for i in range(100, 200)))
    await wait_until(lambda: len(said()) >= 200, "bob has 200 lines", timeout=10)

    # Batches that pub/sub never delivers are read back from the stream (channel lines travel
    # in the inboxes of the nodes with members).
    dropped = drop_next(b, 2, b"inbox:b.node")
    for i in range(200, 205):
        alice.send(f"PRIVMSG #room :m{i}")
        await alice.sync()
    await wait_until(lambda: len(said()) >= 205, "bob has 205 lines")
    await bob.sync()
    assert said() == [f"m{i}" for i in range(205)]
    assert len(dropped) == 2 and b.cluster.inbox.gaps_filled >= 1


@pytest_twisted.ensureDeferred
async def test_two_workers_share_one_port_and_talk(redis: RedisServer, tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, "--cluster", redis.url, "--workers", "2",
                           "--max-per-ip", "0", "--no-flood-control")
    try:
        await daemon.wait_listening()
        await wait_until(lambda: len(redis.cli("HKEYS", "twistedchat:twistedchat:nodes").split())
                         == 2, "both workers joined the network", timeout=15)
        # The kernel spreads connections by a hash of their addresses: 20 of them all landing
        # on one worker has a chance of 2 in a million.
        clients = [await register(daemon, f"user{i}") for i in range(20)]
        for client in clients:
            client.send("JOIN #w")
            await client.expect("366")
        nodes = set(redis.cli("HVALS", "twistedchat:twistedchat:nicks").split())
        assert len(nodes) == 2, nodes
        await wait_until(lambda: all(
            any(m.command == "JOIN" and m.source.startswith("user19!") for m in c.messages)
            for c in clients), "everyone saw the last join")
        clients[0].send("PRIVMSG #w :across workers")
        for client in clients[1:]:
            await client.expect("PRIVMSG", "#w", "across workers", source="user0!")
        # A worker that dies is started again by the supervisor.
        victim = int(sorted(nodes)[0].split("/")[1].split("-")[0])
        os.kill(victim, signal.SIGKILL)
        await wait_until(lambda: len(set(redis.cli("HKEYS", "twistedchat:twistedchat:nodes")
                                         .split()) - nodes) == 1, "a new worker joined",
                         timeout=15)
    finally:
        assert await daemon.terminate() == 0


def test_cluster_options_say_what_is_wrong() -> None:
    from twisted.python import usage

    from twistedchat.server.tap import Options

    for argv, problem in (
        (["--cluster", "http://x"], "--cluster: expected redis://host:port/db"),
        (["--cluster", "redis://h:99999/0"], "--cluster: bad port"),
        (["--cluster", "redis://h/db"], "--cluster: the database"),
        (["--workers", "2"], "--workers: each worker is a node"),
        (["--workers", "zero"], "--workers: expected a number"),
        (["--workers", "2", "--cluster", "redis://h/0", "--port", "unix:/tmp/x"],
         "--workers: only tcp: ports"),
    ):
        options = Options()
        with pytest.raises(usage.UsageError, match=problem):
            options.parseOptions(argv)


def test_workers_run_the_same_command_line_on_a_shared_port() -> None:
    from twistedchat.cluster.service import worker_arguments

    assert worker_arguments(
        ["--port", "6667", "--workers", "4", "--cluster", "redis://h/0", "-p", "7000"],
        ["tcp:6667", "tcp:7000:interface=127.0.0.1"],
    ) == ["--cluster", "redis://h/0", "--port", "reuseport:6667",
          "--port", "reuseport:7000:interface=127.0.0.1", "--workers", "1"]
    assert worker_arguments(["--workers=auto", "--name", "x", "--port=1"], ["tcp:1"]) == [
        "--name", "x", "--port", "reuseport:1", "--workers", "1"]


@pytest_twisted.ensureDeferred
async def test_one_nick_claim_at_a_time_per_connection(network: list[Node]) -> None:
    alice = await register(network[0], "alice")
    alice.send("NICK first", "NICK second")
    await alice.expect("437", None, "second")
    await alice.expect("NICK", "first", source="alice!")
    await all_know(network, "first")
    assert not any(n.knows("second") or n.knows("alice") for n in network)


@pytest_twisted.ensureDeferred
async def test_a_refused_nick_while_another_was_asked_for_registers_that_one(
        redis: RedisServer, network: list[Node]) -> None:
    # A nick held in Redis that this node has not heard of yet (as in a race).
    redis.cli("HSET", "twistedchat:ClusterNet:nicks", "elsewhere", "z.node")
    client = await connect(network[0].client_endpoint)
    client.send("NICK elsewhere", "USER x 0 * :x", "NICK instead")
    await client.expect("433", None, "elsewhere")
    welcome = await client.expect("001")
    assert welcome.params[0] == "instead"
    client.close()
