"""What a network settles after a partition, an empty Redis or a long absence (issue 14's
remaining gaps): channels made on both sides, server bans, claims on every path that creates a
channel, remote idle times, private messages lost past an inbox's cap. Three nodes, a real
``redis-server``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cluster_kit
import pytest
import pytest_twisted
from cluster_kit import Node, RedisServer, all_know, all_see_member
from core_peers import FakeClock, commands, make_core
from core_peers import register as register_peer
from helpers import LineClient, register, wait_until
from twisted.internet.testing import MemoryReactorClock

from twistedchat.cluster.idle import IDLE_FRESH, IDLE_WAIT, MAX_ASKING
from twistedchat.cluster.inbox import INBOX_LOST
from twistedchat.cluster.node import ClusterNode
from twistedchat.server.metrics import COUNTERS
from twistedchat.wire import numerics as N

redis = cluster_kit.redis
network = cluster_kit.network
services_network = cluster_kit.services_network

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
    # its cap does for a node away longer than ~2,000 batches).
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
async def test_sajoin_creates_a_channel_through_its_claim(services_network: list[Node]) -> None:
    a, b, c = services_network
    root = await oper(a, "root")
    target = await register(a, "target")
    carol = await register(c, "carol")
    await all_know(services_network, "root", "target", "carol")
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
                                 for n in services_network), "every replica has both")
    for node in services_network:
        assert channel_view(node, "#sa") == {"carol": "o", "target": ""}, node
    assert len({n.core.state.find_channel("#sa").created for n in services_network}) == 1
    # SAJOIN of a user on another node is refused (that node's operator runs it).
    root.send("SAJOIN carol #elsewhere")
    refusal = await root.expect("NOTICE", None, where=lambda m: "carol" in m.params[1])
    assert "c.node" in refusal.params[1]
    assert all(n.core.state.find_channel("#elsewhere") is None for n in services_network)


def channel_state(node: Node, name: str) -> tuple[object, ...]:
    """What a replica says of a channel: creation time, modes, topic, members' prefixes."""
    channel = node.core.state.find_channel(name)
    assert channel is not None, node
    return (channel.created, sorted(channel.modes), channel.key, channel.topic,
            channel_view(node, name))


def modes_shown(client: LineClient, server: str) -> list[str]:
    """Every MODE change ``client`` was shown by ``server``: ``["-o bob", "+m", ...]``."""
    shown = []
    for message in client.messages:
        if message.command != "MODE" or message.source != server:
            continue
        params = list(message.params[2:])
        sign = "+"
        for letter in message.params[1]:
            if letter in "+-":
                sign = letter
            elif letter in "ovbeIk" or (letter == "l" and sign == "+"):
                shown.append(f"{sign}{letter} {params.pop(0)}")
            else:
                shown.append(f"{sign}{letter}")
    return shown


@pytest.mark.parametrize("redis_lost_data", [True, False], ids=["redis-empty", "partition"])
@pytest.mark.parametrize("cut_off_first", [True, False], ids=["cut-off-side-older",
                                                               "cut-off-side-newer"])
@pytest_twisted.ensureDeferred
async def test_a_channel_made_on_both_sides_keeps_the_older_sides_ops(
        redis: RedisServer, network: list[Node], cut_off_first: bool,
        redis_lost_data: bool) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register(b, "bob")
    carol = await register(c, "carol")
    await all_know(network, "alice", "bob", "carol")
    # a is cut off (and Redis comes back empty, or keeps its data): b and c carry on without
    # a's users once it is declared dead.
    await a.cluster.control.stop()
    await a.cluster.subscriber.stop()
    if redis_lost_data:
        redis.kill()
        redis.start()
    await wait_until(lambda: not b.knows("alice") and not c.knows("alice"),
                     "b and c split a's users", timeout=15)

    async def on_a() -> None:  # created at once on a (Redis is away for it), with a's modes
        alice.send("JOIN #p", "MODE #p +m", "TOPIC #p :alice's topic")
        await alice.expect("TOPIC", "#p", "alice's topic")

    async def on_b() -> None:  # created through the claim in the empty Redis, with b's modes
        bob.send("JOIN #p", "MODE #p +s", "TOPIC #p :bob's topic")
        await bob.expect("TOPIC", "#p", "bob's topic")
        carol.send("JOIN #p")
        await carol.expect("366", None, "#p")
        await wait_until(lambda: b.member("#p", "carol"), "b has carol in #p")

    first, second = (on_a, on_b) if cut_off_first else (on_b, on_a)
    await first()
    await second()
    assert channel_view(a, "#p") == {"alice": "o"}
    assert channel_view(b, "#p") == channel_view(c, "#p") == {"bob": "o", "carol": ""}
    older = (a if cut_off_first else b).core.state.find_channel("#p").created
    a.cluster.subscriber.start()
    a.cluster.control.start()
    await wait_until(lambda: all(set(channel_view(n, "#p")) == {"alice", "bob", "carol"}
                                 for n in network), "every replica has the three", timeout=10)
    if cut_off_first:  # a's channel is older: b's side loses its ops, modes and topic
        expected = (older, ["m", "n", "t"], None, "alice's topic",
                    {"alice": "o", "bob": "", "carol": ""})
    else:  # b's channel is older: a's side loses
        expected = (older, ["n", "s", "t"], None, "bob's topic",
                    {"alice": "", "bob": "o", "carol": ""})
    try:
        await wait_until(lambda: all(channel_state(n, "#p") == expected for n in network),
                         "every replica settled on the older channel", timeout=10)
    except AssertionError:
        raise AssertionError([expected] + [channel_state(n, "#p") for n in network]) from None
    for node in network:
        assert channel_state(node, "#p") == expected, node
    assert float(redis.cli("HGET", PREFIX + "chans", "#p")) == older
    # The losing side's users were shown the change by their own server, as in a netjoin.
    if cut_off_first:
        losers = [(bob, "b.node"), (carol, "c.node")]
        lost, gained, topic = ["-s", "-o bob"], ["+m", "+o alice"], "alice's topic"
        assert not [m for m in alice.messages if m.command == "MODE" and m.source == "a.node"]
    else:
        losers = [(alice, "a.node")]
        lost, gained, topic = ["-m", "-o alice"], ["+s", "+o bob"], "bob's topic"
    for client, server in losers:
        await client.expect("TOPIC", "#p", topic, source=server)
        await wait_until(lambda client=client, server=server: set(lost + gained) <= set(
            modes_shown(client, server)), f"{client.nick} was shown the merge")
    # The network goes on as one: the older side's operator acts on everyone.
    op, other = (alice, "bob") if cut_off_first else (bob, "alice")
    op.send(f"MODE #p +v {other}")
    await wait_until(lambda: all(channel_view(n, "#p")[other] == "v" for n in network),
                     f"{other} voiced everywhere")


@pytest_twisted.ensureDeferred
async def test_a_channel_older_than_the_split_joins_both_sides_views(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register(b, "bob")
    await all_know(network, "alice", "bob")
    alice.send("JOIN #eq")
    await all_see_member(network, "#eq", "alice")
    bob.send("JOIN #eq")
    await all_see_member(network, "#eq", "bob")
    alice.send("MODE #eq +o bob")
    await wait_until(lambda: all(channel_view(n, "#eq") == {"alice": "o", "bob": "o"}
                                 for n in network), "bob is op everywhere")
    created = a.core.state.find_channel("#eq").created
    await a.cluster.control.stop()
    await a.cluster.subscriber.stop()
    await wait_until(lambda: not b.knows("alice") and not c.knows("alice"),
                     "b and c split a's users", timeout=15)
    # Each side changes the channel on its own during the split ...
    alice.send("MODE #eq +m", "TOPIC #eq :alice's topic")
    await alice.expect("TOPIC", "#eq", "alice's topic")
    bob.send("MODE #eq +s", "MODE #eq +b *!*@spam.example")
    await bob.expect("MODE", "#eq", "+b")
    await wait_until(lambda: "s" in c.core.state.find_channel("#eq").modes, "c has +s")
    a.cluster.subscriber.start()
    a.cluster.control.start()
    # ... and the two views of a channel of the same age join, the same on every replica.
    expected = (created, ["m", "n", "s", "t"], None, "alice's topic",
                {"alice": "o", "bob": "o"})
    try:
        await wait_until(lambda: all(channel_state(n, "#eq") == expected for n in network),
                         "every replica joined both views", timeout=10)
    except AssertionError:
        raise AssertionError([channel_state(n, "#eq") for n in network]) from None
    assert all(set(n.core.state.find_channel("#eq").bans) == {"*!*@spam.example"}
               for n in network)
    await wait_until(lambda: "+s" in modes_shown(alice, "a.node")
                     and "+b *!*@spam.example" in modes_shown(alice, "a.node"),
                     "alice was shown b's side")
    await wait_until(lambda: "+m" in modes_shown(bob, "b.node"), "bob was shown a's side")
    # Later lines still settle by the stream's order: a burst does not bring back -m.
    bob.send("MODE #eq -m")
    await wait_until(lambda: all("m" not in n.core.state.find_channel("#eq").modes
                                 for n in network), "-m everywhere")


def test_merging_views_of_a_channel_ends_equal_in_any_order() -> None:
    """InspIRCd's rule on records alone: the lower creation time wins, equal times merge, and
    every order of the same views gives the same channel."""
    from itertools import permutations

    from twistedchat.cluster.merge import adopt, merge
    from twistedchat.server.channel import Channel
    from twistedchat.server.limits import MAXLIST

    def record(created: float, modes: str, key: str | None, limit: int | None,
               topic: tuple[str, str, float], bans: list[list[object]]) -> list[object]:
        return ["#m", created, topic[0], topic[1], topic[2], modes, key, limit, bans]

    many = [[f"*!*@h{i}", "op", 100.0 + i] for i in range(MAXLIST)]
    views = [
        record(10.0, "nt", "alpha", 5, ("first", "x", 20.0), many[:60])
        + [[["*!*@friend", "x", 5.0]], []],
        record(10.0, "ntm", "beta", 3, ("second", "y", 30.0), many[40:] + [["*!*@late", "y", 500.0]]),
        record(10.0, "s", None, None, ("", "", 0.0), [["*!*@early", "z", 1.0]]),
        record(50.0, "ntiC", "zeta", 99, ("newer side", "w", 90.0), [["*!*@other", "w", 2.0]])
        + [[["*!*@loser", "w", 2.0]], [["*!*@invited", "w", 2.0]]],
    ]
    results = set()
    for order in permutations(views):
        channel = Channel("#m")  # the first view seen makes the replica
        adopt(channel, order[0])
        for info in order[1:]:
            merge(channel, info)
        results.add((channel.created, frozenset(channel.modes), channel.key, channel.limit,
                     channel.topic, frozenset(channel.bans), frozenset(channel.excepts),
                     frozenset(channel.invex)))
    assert len(results) == 1, results
    created, modes, key, limit, topic, bans, excepts, invex = results.pop()
    assert (excepts, invex) == ({"*!*@friend"}, set())
    assert (created, modes, key, limit, topic) == (10.0, {"n", "t", "m", "s"}, "beta", 5,
                                                   "second")
    assert len(bans) == MAXLIST and "*!*@early" in bans and "*!*@late" not in bans
    assert "*!*@other" not in bans
    # Outside a split, views of equal age do not join (the stream's order settled them): only
    # a newer topic is taken.
    channel = Channel("#m", 10.0)
    assert merge(channel, views[1], join=False) is True
    assert (channel.modes, channel.key, channel.bans, channel.topic) == ({"n", "t"}, None, {},
                                                                         "second")
    # A view that lost keeps nothing of itself: its members' prefixes do not count either.
    channel = Channel("#m", 10.0)
    assert merge(channel, views[3]) is False and channel.modes == {"n", "t"}


@pytest_twisted.ensureDeferred
async def test_bans_a_node_holds_reach_the_network_when_it_registers(
        redis: RedisServer, services_network: list[Node], tmp_path: Path) -> None:
    a, b, c = services_network
    root = await oper(a, "root")
    boss = await oper(b, "boss")
    await all_know(services_network, "root", "boss")
    published: list[list[Any]] = []
    for node in services_network:
        emit = node.cluster._emit
        node.cluster._emit = lambda event, emit=emit: (published.append(event), emit(event))
    # A K-line set on a while it is cut off from Redis reaches no other node then ...
    await a.cluster.control.stop()
    root.send("KLINE *alone@10.1.1.1 :set while alone")
    await root.expect("NOTICE", None, where=lambda m: "*alone@10.1.1.1" in m.params[1])
    assert not b.core.bans.klines and not c.core.bans.klines
    # ... but when a registers again it announces every ban it holds ...
    a.cluster.control.start()
    await wait_until(lambda: all("*alone@10.1.1.1" in n.core.bans.klines for n in (b, c)),
                     "a's K-line reached b and c")
    # ... as does a node that starts with bans in its bans file (set while it was down): every
    # node ends with the union.
    bans_file = tmp_path / "d.bans"
    d = Node("d.node", redis.url, bans_file=str(bans_file))
    d.core.bans.add("D", "10.7.0.0/16", "set while down", "admin", d.core.clock(), 3600)
    d.core.bans.add("K", "*old@10.2.2.2", "in the file", "admin", d.core.clock())
    await d.start()
    nodes = [*services_network, d]
    try:
        wanted = {("K", "*alone@10.1.1.1"), ("K", "*old@10.2.2.2"), ("D", "10.7.0.0/16")}

        def held(node: Node) -> set[tuple[str, str]]:
            return {(ban.kind, ban.mask) for ban in node.core.bans.all()}

        await wait_until(lambda: all(held(n) == wanted for n in nodes), "the union everywhere")
        dline = [n.core.bans.dlines["10.7.0.0/16"][1] for n in nodes]
        assert all(ban == dline[0] for ban in dline) and dline[0].expires > 0
        # Applied from Redis, a ban is written to the node's file and never published again.
        assert ("D", "10.7.0.0/16") in {(ban.kind, ban.mask)
                                        for ban in d.core.bans.store.load()}
        senders = {(event[1], event[4]) for event in published if event[0] == "X"}
        assert senders == {("a.node", "*alone@10.1.1.1")}, senders
        assert d.cluster.ban_sync.announced >= 2  # its own two (and what it learnt first)
        # Lifting one on any node lifts it everywhere (the file too).
        boss.send("UNKLINE *old@10.2.2.2")
        await boss.expect("NOTICE", None, "K-line for *old@10.2.2.2 lifted")
        wanted.discard(("K", "*old@10.2.2.2"))
        await wait_until(lambda: all(held(n) == wanted for n in nodes), "lifted everywhere")
        assert "*old@10.2.2.2" not in {ban.mask for ban in d.core.bans.store.load()}
        # One lifted while its node is cut off from Redis is lifted in Redis, and everywhere,
        # when it returns (it does not come back from Redis's list).
        await b.cluster.control.stop()
        boss.send("UNDLINE 10.7.0.0/16")
        await boss.expect("NOTICE", None, "D-line for 10.7.0.0/16 lifted")
        b.cluster.control.start()
        wanted.discard(("D", "10.7.0.0/16"))
        await wait_until(lambda: all(held(n) == wanted for n in nodes), "lifted everywhere again")
        assert redis.cli("HKEYS", PREFIX + "bans").split("\n")[:-1] == ["K *alone@10.1.1.1"]
        # A node that starts now takes the network's bans from Redis.
        e = Node("e.node", redis.url)
        await e.start()
        nodes.append(e)
        assert held(e) == wanted
    finally:
        for late in nodes[3:]:
            await late.stop()


async def whois_idle(client: LineClient, nick: str) -> int:
    """The idle seconds WHOIS shows ``client`` for ``nick``."""
    client.send(f"WHOIS {nick}")
    replies = await client.collect_until("318")
    return [int(m.params[2]) for m in replies if m.command == N.RPL_WHOISIDLE][0]


@pytest_twisted.ensureDeferred
async def test_whois_idle_of_a_remote_user_is_asked_of_its_node(network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    carol = await register(c, "carol")
    await all_know(network, "alice", "carol")
    alice.send("PRIVMSG alice :hello me")
    await alice.expect("PRIVMSG", "alice", "hello me")
    ghost = c.core.state.find_user("alice")
    await wait_until(lambda: ghost.last_message >= a.core.state.find_user("alice").last_message,
                     "c has alice's idle time")
    # c's replica falls behind, as when alice spoke again within the minute of her last ``I``.
    ghost.last_message -= 1000
    assert await whois_idle(carol, "alice") < 100
    assert c.cluster.idle_queries.questions == 1
    # A WHOIS flood asks nothing more while the answer is fresh.
    carol.send(*["WHOIS alice"] * 50)
    for _ in range(50):
        await carol.expect("318")
    assert c.cluster.idle_queries.questions <= 2
    # An owner that does not answer holds the WHOIS at most IDLE_WAIT: the replica answers.
    await a.cluster.subscriber.stop()
    c.cluster.idle_queries.asked.clear()
    ghost.last_message -= 1000
    assert await whois_idle(carol, "alice") >= 1000
    assert not c.cluster.idle_queries.waiting
    a.cluster.subscriber.start()


@pytest_twisted.ensureDeferred
async def test_a_registered_channel_chanserv_revives_goes_through_the_claim(
        redis: RedisServer, services_network: list[Node]) -> None:
    a, b, c = services_network
    store = a.core.accounts.store
    await store.create_account("founder", "a long password", a.core.clock())
    store.register_channel("#reg", "founder", a.core.clock())
    alice = await register(a, "alice")
    bob = await register(b, "bob")
    await all_know(services_network, "alice", "bob")
    # b has not heard of alice's JOIN when bob joins: each node revives the registered channel.
    await b.cluster.subscriber.stop()
    alice.send("JOIN #reg")
    await alice.expect("366", None, "#reg")
    bob.send("JOIN #reg")
    await bob.expect("366", None, "#reg")
    b.cluster.subscriber.start()
    await wait_until(lambda: all(set(channel_view(n, "#reg")) == {"alice", "bob"}
                                 for n in services_network), "every replica has both")
    # One creation, the one Redis's claim recorded, on every replica; nobody got @ by joining.
    recorded = float(redis.cli("HGET", PREFIX + "chans", "#reg"))
    for node in services_network:
        assert node.core.state.find_channel("#reg").created == recorded, node
        assert channel_view(node, "#reg") == {"alice": "", "bob": ""}, node


def test_whois_idle_questions_are_bounded(clock: FakeClock) -> None:
    """One question per remote user, at most MAX_ASKING at once, none again while the answer is
    fresh; a WHOIS waits IDLE_WAIT at most (task.Clock time, no Redis: questions wait in the
    outbox)."""
    core = make_core(clock)
    asker = register_peer(core, "asker")
    fake_reactor = MemoryReactorClock()
    node = ClusterNode(core, "redis://127.0.0.1:1/0", fake_reactor, node_id="here")
    node.control.current = object()  # as if Redis were there, so questions are asked
    count = MAX_ASKING + 10
    for i in range(count):
        node._ghost("there", [f"far{i}", "u", "h.example", "Far", clock.now - 500, None, "", {},
                              {"server": "there.node"}])
    answered = [asker.say(f"WHOIS far{i}", f"WHOIS far{i}") for i in range(count)]
    # The first MAX_ASKING wait for their answer; past the bound WHOIS answers at once.
    assert [N.RPL_ENDOFWHOIS in commands(replies) for replies in answered] == (
        [False] * MAX_ASKING + [True] * 10)
    assert node.idle_queries.questions == MAX_ASKING
    assert node.outboxes.count == MAX_ASKING
    assert all(event[:3] == ["Q", "here", "there"] for event in node.outboxes.waiting["there"])
    # An answer lets its WHOISes go on at once, with the exact idle time.
    node._apply(["I", "there", "far0", clock.now - 7])
    idle = [m.params[2] for m in asker.take() if m.command == N.RPL_WHOISIDLE]
    assert idle == ["7", "7"]
    # The others are answered from the replica once IDLE_WAIT has passed without an answer.
    node.control.current = None
    fake_reactor.advance(IDLE_WAIT - 0.01)
    assert not asker.take()
    fake_reactor.advance(0.01)
    assert commands(asker.take()).count(N.RPL_ENDOFWHOIS) == 2 * (MAX_ASKING - 1)
    assert not node.idle_queries.waiting
    # Within IDLE_FRESH nothing is asked again.
    node.control.current = object()
    assert N.RPL_ENDOFWHOIS in commands(asker.say("WHOIS far1"))
    assert node.idle_queries.questions == MAX_ASKING
    fake_reactor.advance(IDLE_FRESH)
    assert N.RPL_ENDOFWHOIS not in commands(asker.say("WHOIS far1"))
    assert node.idle_queries.questions == MAX_ASKING + 1
    node.control.current = None


def test_channel_records_carry_checked_exception_lists() -> None:
    """A burst's channel record carries +e and +I (after the bans); bad ones are refused."""
    from twistedchat.cluster.checks import BadEvent, check_channel_record
    from twistedchat.server.limits import MAXLIST

    base = ["#m", 10.0, "", "", 0.0, "nt", None, None, []]
    check_channel_record(base)  # an older node's record, without them
    check_channel_record([*base, [["*!*@friend", "x", 5.0]], [["*!*@guest", "x", 5.0]]])
    for bad in ([["*!*@friend", "x"]], [["a b", "x", 5.0]], "*!*@friend",
                [["*!*@h", "x", 1.0]] * (MAXLIST + 1)):
        with pytest.raises(BadEvent):
            check_channel_record([*base, bad])
        with pytest.raises(BadEvent):
            check_channel_record([*base, [], bad])
