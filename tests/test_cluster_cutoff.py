"""A node cut off from Redis (issue 14): after DEAD_AFTER_MS without a working Redis it keeps
local delivery and shows the other nodes' users as split; when Redis returns (empty, with its
data, or after the others reaped the node) it rejoins and every replica ends equal. A blip
shorter than that splits nobody. A real ``redis-server``, and the node's reactor as its clock."""

from __future__ import annotations

from collections.abc import Callable

import cluster_kit
import pytest
import pytest_twisted
from cluster_kit import Node, RedisServer, all_know, all_see_member
from core_peers import FakeClock, commands, make_core
from core_peers import register as register_peer
from helpers import LineClient, register, wait_until
from twisted.internet.testing import MemoryReactorClock

from twistedchat.cluster.liveness import CUT_OFF, DEAD_AFTER_MS
from twistedchat.cluster.node import ClusterNode
from twistedchat.cluster.replicas import SPLIT_REASON
from twistedchat.server.metrics import COUNTERS
from twistedchat.wire import numerics as N

redis = cluster_kit.redis
network = cluster_kit.network

PREFIX = "twistedchat:ClusterNet:"
#: Seconds the tests give a split or a return to show (the threshold is 3 s; the machine is shared).
SLOW = 20


def record(nick: str, channels: dict[str, str]) -> list[object]:
    """A remote user's record as a burst carries it."""
    return [nick, "u", "far.example", "Far", 1_700_000_000.0, None, "", channels,
            {"server": "there.node"}]


def test_a_node_without_redis_for_the_dead_time_splits_the_others_users(
        clock: FakeClock) -> None:
    """The threshold on the node's reactor clock: a blip shorter than DEAD_AFTER_MS splits
    nobody; past it every remote user leaves as in a reap (QUIT, MONITOR, WHOWAS), channels
    keep the local members, and events wait for the node's next registration."""
    core = make_core(clock)
    watcher = register_peer(core, "watcher")
    other = register_peer(core, "other")  # (before the node: a registration waits for Redis)
    fake_reactor = MemoryReactorClock()
    node = ClusterNode(core, "redis://127.0.0.1:1/0", fake_reactor, node_id="here")
    channel = ["#room", 1_700_000_000.0, "", "", 0.0, "nt", None, None, []]
    node._apply_burst("there", [record("far", {"#room": "o"}), record("away", {})], [channel])
    watcher.say("JOIN #room", "MONITOR + far")
    assert {u.nick for u in core.state.find_channel("#room").members} == {"far", "watcher"}
    node.redis_answered()  # registered: Redis answered the last heartbeat
    dead = DEAD_AFTER_MS / 1000
    # Redis away (each heartbeat fails at once) a little less than the dead time, then an
    # answer: nobody is split.
    node._beat()
    fake_reactor.advance(dead - 0.5)
    node._beat()
    node.redis_answered()
    fake_reactor.advance(1)
    node._beat()  # Redis away again from here
    fake_reactor.advance(dead - 0.5)
    node._beat()
    assert core.state.find_user("far") is not None and not node.cut_off
    assert not core.counters.get(CUT_OFF)
    assert "QUIT" not in commands(watcher.take())
    # No answer for the dead time: the others' users leave, as a reap shows it.
    fake_reactor.advance(0.5)
    node._beat()
    assert node.cut_off and core.counters[CUT_OFF] == 1
    assert (CUT_OFF, "twistedchat_cluster_cut_off") in [counter[:2] for counter in COUNTERS]
    shown = watcher.take()
    quits = [m for m in shown if m.command == "QUIT"]
    assert [(m.source.split("!")[0], m.params) for m in quits] == [("far", (SPLIT_REASON,))]
    assert N.RPL_MONOFFLINE in commands(shown)
    assert core.state.find_user("far") is None and core.state.find_user("away") is None
    assert not node.ghosts and not node.ghost_node
    assert [u.nick for u in core.state.find_channel("#room").members] == ["watcher"]
    whowas = [m for m in watcher.say("WHOWAS far") if m.command == N.RPL_WHOISSERVER]
    assert whowas and whowas[0].params[2] == "there.node"
    assert node.live_nodes == {"here"}
    # Local delivery goes on.
    other.say("JOIN #room")
    other.say("PRIVMSG #room :still here")
    assert [m.params for m in watcher.take() if m.command == "PRIVMSG"] == [
        ("#room", "still here")]
    # Until it registers again, events (a burst answering someone else's H) bring nobody back.
    burst = (b'[["B","there",[["far","u","far.example","Far",1.0,null,"",{},'
             b'{"server":"there.node"}]],[]]]')
    node.inbox_order.apply_events(burst)
    assert core.state.find_user("far") is None
    # Splitting happens once; later beats do nothing more.
    fake_reactor.advance(dead)
    node._beat()
    assert core.counters[CUT_OFF] == 1


def said(client: LineClient, command: str, source: str, *params: str, after: int = 0) -> bool:
    """Whether ``client`` received ``command`` from nick ``source`` with these first params
    (in its messages from index ``after`` on)."""
    return any(m.command == command and m.source.split("!")[0] == source
               and m.params[:len(params)] == params for m in client.messages[after:])


def channel_view(node: Node, name: str) -> dict[str, str]:
    """One replica of a channel: nick -> prefixes."""
    channel = node.core.state.find_channel(name)
    return {} if channel is None else {u.nick: p for u, p in channel.members.items()}


def users(node: Node) -> dict[str, str]:
    """Every user a node knows: nick -> the node it is on."""
    return {u.nick: node.cluster.ghost_node.get(u, node.cluster.node_id)
            for u in node.core.state.users.values() if u.registered}


async def everyone_in_room(network: list[Node]) -> dict[str, LineClient]:
    """alice and anna on a, bob on b, carol on c, all in #room; alice watches bob."""
    a, b, c = network
    clients = {"alice": await register(a, "alice"), "anna": await register(a, "anna"),
               "bob": await register(b, "bob"), "carol": await register(c, "carol")}
    await all_know(network, *clients)
    for nick, client in clients.items():
        client.send("JOIN #room")
        await all_see_member(network, "#room", nick)
    clients["alice"].send("MONITOR + bob")
    await clients["alice"].expect(N.RPL_MONONLINE)
    return clients


HOMES = {"alice": "a.node", "anna": "a.node", "bob": "b.node", "carol": "c.node"}


def everyone_apart(one: str, other: str) -> bool:
    """Redis gone for every node: each is apart from each other one."""
    return one != other


def a_apart(one: str, other: str) -> bool:
    """Only a is cut off: b and c stay together."""
    return one != other and "a.node" in (one, other)


def monitor_replies(client: LineClient, numeric: str) -> int:
    """How many ``numeric`` (730/731) replies about bob ``client`` had."""
    return len([m for m in client.messages if m.command == numeric
                and m.params[1].split("!")[0] == "bob"])


async def all_split(clients: dict[str, LineClient], network: list[Node],
                    apart: Callable[[str, str], bool]) -> dict[str, int]:
    """Every user saw the users of the nodes it is apart from leave with ``*.net *.split``
    (and no one else); local conversation goes on meanwhile. Returns how many messages each
    client had then."""
    for nick, client in clients.items():
        others = [n for n in clients if apart(HOMES[n], HOMES[nick])]
        await wait_until(lambda client=client, others=others: all(
            said(client, "QUIT", other, SPLIT_REASON) for other in others),
            f"{nick} saw {others} split", timeout=SLOW)
    for nick, client in clients.items():
        together = [n for n in clients if n != nick and not apart(HOMES[n], HOMES[nick])]
        assert not [n for n in together if said(client, "QUIT", n)], nick
    a = network[0]
    assert channel_view(a, "#room") == {"alice": "o", "anna": ""}
    assert monitor_replies(clients["alice"], N.RPL_MONOFFLINE) == 1
    clients["anna"].send("PRIVMSG #room :just us", "PRIVMSG alice :still here")
    await clients["alice"].expect("PRIVMSG", "#room", "just us", source="anna!")
    await clients["alice"].expect("PRIVMSG", "alice", "still here", source="anna!")
    # A change on one side only: the views of #room (as old as before the split) join later.
    clients["alice"].send("MODE #room +s")
    await clients["alice"].expect("MODE", "#room", "+s")
    assert not any("s" in n.core.state.find_channel("#room").modes for n in network[1:])
    clients["alice"].send("WHOWAS bob")
    server = await clients["alice"].expect(N.RPL_WHOISSERVER, None, "bob")
    assert server.params[2] == "b.node"
    return {nick: len(client.messages) for nick, client in clients.items()}


async def all_back(clients: dict[str, LineClient], network: list[Node], redis: RedisServer,
                   apart: Callable[[str, str], bool], marks: dict[str, int]) -> None:
    """Everyone sees everyone it was apart from come back (JOIN, after its split at
    ``marks``), messages cross both ways, every replica is equal and no nick is held twice."""
    homes = HOMES
    for nick, client in clients.items():
        others = [n for n in clients if apart(homes[n], homes[nick])]
        await wait_until(lambda client=client, others=others, mark=marks[nick]: all(
            said(client, "JOIN", other, "#room", after=mark) for other in others),
            f"{nick} saw {others} come back", timeout=SLOW)
    await wait_until(lambda: monitor_replies(clients["alice"], N.RPL_MONONLINE) == 2,
                     "alice's MONITOR saw bob come back")
    await wait_until(lambda: all(users(n) == users(network[0]) for n in network)
                     and len(users(network[0])) == 4, "every node knows every user")
    assert users(network[0]) == homes
    wanted = {"alice": "o", "anna": "", "bob": "", "carol": ""}
    await wait_until(lambda: all(channel_view(n, "#room") == wanted for n in network),
                     "every replica of #room is equal", timeout=SLOW)
    await wait_until(lambda: all(n.core.state.find_channel("#room").modes == {"n", "t", "s"}
                                 for n in network), "+s reached every replica")
    await wait_until(lambda: any(m.command == "MODE" and m.source == "b.node"
                                 and m.params[1].startswith("+s")
                                 for m in clients["bob"].messages),
                     "bob was shown a's side of #room by his server")
    clients["bob"].send("PRIVMSG #room :across again", "PRIVMSG anna :to you")
    await clients["alice"].expect("PRIVMSG", "#room", "across again", source="bob!")
    await clients["carol"].expect("PRIVMSG", "#room", "across again", source="bob!")
    await clients["anna"].expect("PRIVMSG", "anna", "to you", source="bob!")
    clients["alice"].send("PRIVMSG #room :and back", "PRIVMSG carol :hi carol")
    await clients["bob"].expect("PRIVMSG", "#room", "and back", source="alice!")
    await clients["carol"].expect("PRIVMSG", "carol", "hi carol", source="alice!")
    for client in clients.values():
        client.send("NAMES #room")
        names = await client.expect(N.RPL_NAMREPLY, None, None, "#room")
        assert sorted(names.params[-1].split()) == ["@alice", "anna", "bob", "carol"]
    assert sorted(redis.cli("HKEYS", PREFIX + "nicks").split()) == list(homes)
    assert sorted(redis.cli("HKEYS", PREFIX + "nodes").split()) == ["a.node", "b.node", "c.node"]


@pytest.mark.parametrize("keeps_data", [False, True], ids=["back-empty", "back-with-its-data"])
@pytest_twisted.ensureDeferred
async def test_redis_gone_past_the_dead_time_every_node_splits_the_others_then_rejoins(
        redis: RedisServer, network: list[Node], keeps_data: bool) -> None:
    clients = await everyone_in_room(network)
    if keeps_data:  # a short outage, but longer than the dead time
        redis.shutdown_saving()
    else:
        redis.kill()
    marks = await all_split(clients, network, everyone_apart)
    assert all(n.core.counters[CUT_OFF] == 1 for n in network)
    redis.start(keep_data=keeps_data)
    await all_back(clients, network, redis, everyone_apart, marks)


@pytest_twisted.ensureDeferred
async def test_a_redis_blip_shorter_than_the_dead_time_splits_nobody(
        redis: RedisServer, network: list[Node]) -> None:
    clients = await everyone_in_room(network)
    a = network[0]
    before = a.cluster.incarnation
    a.cluster.control.cut()  # it redials at once (50 ms)
    await wait_until(lambda: a.cluster.incarnation != before and a.cluster.is_ready
                     and a.cluster.control.current is not None, "a registered again")
    beats = a.cluster.beats
    await wait_until(lambda: a.cluster.beats >= beats + 2, "a beat twice since", timeout=SLOW)
    clients["bob"].send("PRIVMSG #room :after the blip")
    await clients["alice"].expect("PRIVMSG", "#room", "after the blip", source="bob!")
    for client in clients.values():
        assert not [m for m in client.messages if m.command in ("QUIT", N.RPL_MONOFFLINE)]
    assert not any(n.core.counters.get(CUT_OFF, 0) for n in network)
    assert all(users(n) == users(a) for n in network) and len(users(a)) == 4


@pytest.mark.parametrize("subscriber_too", [True, False], ids=["both-links", "control-link"])
@pytest_twisted.ensureDeferred
async def test_a_node_cut_off_alone_splits_the_others_is_reaped_and_rejoins(
        redis: RedisServer, network: list[Node], subscriber_too: bool) -> None:
    a, b, c = network
    clients = await everyone_in_room(network)
    # a's Redis connections (or its control link alone: it still hears the others' events,
    # and applies none until it registers again) go and stay gone; the others go on.
    await a.cluster.control.stop()
    if subscriber_too:
        await a.cluster.subscriber.stop()
    marks = await all_split(clients, network, a_apart)
    assert a.core.counters[CUT_OFF] == 1
    assert not b.core.counters.get(CUT_OFF, 0) and not c.core.counters.get(CUT_OFF, 0)
    assert "a.node" not in redis.cli("HKEYS", PREFIX + "nodes").split()  # reaped
    await wait_until(lambda: sorted(redis.cli("HKEYS", PREFIX + "nicks").split())
                     == ["bob", "carol"], "a's nicks are free")
    clients["bob"].send("PRIVMSG #room :without a")
    await clients["carol"].expect("PRIVMSG", "#room", "without a", source="bob!")
    if subscriber_too:
        a.cluster.subscriber.start()
    else:  # events that reach a meanwhile (b's users in a burst) bring nobody back
        heard = a.cluster.events.last_seq or 0
        b.cluster.burst_again()
        await wait_until(lambda: (a.cluster.events.last_seq or 0) > heard, "a heard b's burst")
        assert not a.cluster.ghost_node and not a.knows("bob")
    a.cluster.control.start()
    await all_back(clients, network, redis, a_apart, marks)
