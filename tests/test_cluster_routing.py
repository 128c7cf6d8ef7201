"""Channel messages go only to the nodes with members in the channel, in order with the events
(issue 14): three nodes on a real Redis, and one node's script calls read off the wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import cluster_kit
import hiredis
import pytest_twisted
from cluster_kit import Node, all_know, all_see_member, drop_next
from core_peers import FakeClock, make_core
from core_peers import register as register_peer
from helpers import LineClient, register, wait_until
from twisted.internet import reactor
from twisted.internet.testing import MemoryReactorClock, StringTransport

from twistedchat.cluster import resp, scripts
from twistedchat.cluster.node import ClusterNode
from twistedchat.server.accounts import attach_store
from twistedchat.storage.memory import MemoryStore

redis = cluster_kit.redis
network = cluster_kit.network


def record_received(node: Node) -> list[bytes]:
    """Everything ``node``'s subscriber connection receives from now on (and still applies)."""
    received: list[bytes] = []
    deliver = node.cluster._on_message

    def spy(channel: bytes, data: bytes) -> None:
        received.append(data)
        deliver(channel, data)

    node.cluster.subscriber.current.listen(spy)
    return received


async def in_room(network: list[Node], *clients: LineClient) -> None:
    """Each client joins #room in turn; every node has them all in it."""
    for client in clients:
        client.send("JOIN #room")
        await all_see_member(network, "#room", client.nick)


async def one_on_each(network: list[Node], *nicks: str) -> list[LineClient]:
    """A user registered on each node in turn (the first nick on the first node...)."""
    return [await register(node, nick) for node, nick in zip(network, nicks, strict=True)]


def said(client: LineClient, command: str = "PRIVMSG") -> list[str]:
    return [m.params[-1] for m in client.messages if m.command == command]


@pytest_twisted.ensureDeferred
async def test_a_node_with_no_members_receives_none_of_a_channels_lines(
        network: list[Node]) -> None:
    a, b, c = network
    alice, bob, carol = await one_on_each(network, "alice", "bob", "carol")
    await in_room(network, alice, bob)
    carol.send("JOIN #elsewhere")
    await all_see_member(network, "#elsewhere", "carol")
    received = record_received(c)
    applied = c.cluster.applied_batches

    for i in range(30):
        alice.send(f"PRIVMSG #room :a{i}", f"NOTICE #room :n{i}")
        bob.send(f"PRIVMSG #room :b{i}")
    await wait_until(lambda: len(said(bob)) == 30 and len(said(alice)) == 30,
                     "alice and bob have each other's lines")
    # A private message to carol after them: C receives (in publish order) all it was sent.
    alice.send("PRIVMSG carol :after the room")
    await carol.expect("PRIVMSG", "carol", "after the room")

    assert said(bob) == [f"a{i}" for i in range(30)] and said(bob, "NOTICE")[-30:] == [
        f"n{i}" for i in range(30)]
    assert said(alice) == [f"b{i}" for i in range(30)]
    assert not [data for data in received if b"#room" in data]
    # The private message, and at most one idle time (``I``) from each sender.
    assert 1 <= c.cluster.applied_batches - applied <= 3
    assert not [m for m in carol.messages if "#room" in m.params]


@pytest_twisted.ensureDeferred
async def test_a_users_lines_reach_other_nodes_in_the_order_sent(network: list[Node]) -> None:
    """Events (JOIN, PART, NICK, QUIT) and channel lines (inboxes) sent in one turn keep their
    order on the other nodes: the turn goes in one script call, in the order it was made."""
    a, b, _ = network
    alice, bob = await register(a, "alice"), await register(b, "bob")
    await in_room(network, alice, bob)
    dave = await register(a, "dave")
    await all_know(network, "dave")

    def seen() -> list[tuple[str, str]]:
        return [(m.command, m.source.split("!")[0] + ":" + m.params[-1])
                for m in bob.messages if m.command in ("JOIN", "PART", "PRIVMSG", "NICK", "QUIT")
                and m.source.split("!")[0] in ("dave", "davey")]

    dave.send("JOIN #room", "PRIVMSG #room :hello")  # one read: one turn
    dave.send("PRIVMSG #room :brb", "PART #room :away")
    dave.send("JOIN #room", "PRIVMSG #room :back")
    dave.send("NICK davey")  # (waits for its claim in Redis: the next lines go in a later turn)
    await dave.expect("NICK", "davey")
    dave.send("PRIVMSG #room :renamed")
    await bob.expect("PRIVMSG", "#room", "renamed")
    dave.send("PRIVMSG #room :last", "QUIT :gone")
    await bob.expect("QUIT", source="davey!")
    assert seen() == [
        ("JOIN", "dave:#room"), ("PRIVMSG", "dave:hello"),
        ("PRIVMSG", "dave:brb"), ("PART", "dave:away"),
        ("JOIN", "dave:#room"), ("PRIVMSG", "dave:back"),
        ("NICK", "dave:davey"), ("PRIVMSG", "davey:renamed"),
        ("PRIVMSG", "davey:last"), ("QUIT", "davey:Quit: gone"),
    ]


@pytest_twisted.ensureDeferred
async def test_a_member_joining_on_another_node_receives_later_lines(
        network: list[Node]) -> None:
    a, b, c = network
    alice, bob, carol = await one_on_each(network, "alice", "bob", "carol")
    await in_room(network, alice, bob)
    received = record_received(c)
    alice.send("PRIVMSG #room :before carol")
    await bob.expect("PRIVMSG", "#room", "before carol")
    await in_room(network, carol)
    alice.send("PRIVMSG #room :for carol too")
    bob.send("PRIVMSG #room :from bob")
    await wait_until(lambda: sorted(said(carol)) == ["for carol too", "from bob"],
                     "carol has alice's and bob's lines")
    assert not [data for data in received if b"before carol" in data]
    carol.send("PART #room")
    await all_see_member(network[:2], "#room", "bob")
    await wait_until(lambda: not a.member("#room", "carol") and not b.member("#room", "carol"),
                     "carol left #room everywhere")
    received.clear()
    alice.send("PRIVMSG #room :after carol")
    await bob.expect("PRIVMSG", "#room", "after carol")
    alice.send("PRIVMSG carol :barrier")
    await carol.expect("PRIVMSG", "carol", "barrier")
    assert not [data for data in received if b"after carol" in data]


def sent_segments(transport: StringTransport) -> list[list[Any]]:
    """The SEND script calls written so far: each a list of segments, either the network's
    events or {target node: its inbox events} (each event summed up)."""
    reader = hiredis.Reader()
    reader.feed(transport.value())
    calls = []
    while (command := reader.gets()) is not False:
        if command[0] == b"EVALSHA" and command[1] == scripts.SEND.sha.encode():
            pairs = command[7:]
            segments: list[Any] = []
            for target, payload in zip(pairs[::2], pairs[1::2], strict=True):
                if payload.startswith(b"="):  # the same as ARGV[n] (sent once)
                    payload = command[int(payload[1:]) + 2]
                events = [(e[0], e[3], e[4][-1]) if e[0] == "L" else (e[0],)
                          for e in json.loads(payload)]
                if not target:
                    segments.append(events)
                elif segments and isinstance(segments[-1], dict):
                    segments[-1][target.decode()] = events
                else:
                    segments.append({target.decode(): events})
            calls.append(segments)
    return calls


def test_one_turn_goes_in_one_call_with_its_segments_in_order() -> None:
    """PRIVMSG, PART, JOIN, PRIVMSG in one turn: inbox batches for the nodes with members, then
    the events, then inbox batches again, all in one SEND call; a node with no member in the
    channel gets nothing (the test fails if the inboxes were sent before or after the events)."""
    clock = FakeClock()
    core = make_core(clock)
    alice = register_peer(core, "alice")
    reactor = MemoryReactorClock()
    node = ClusterNode(core, "redis://127.0.0.1:1/0", reactor, node_id="here")
    for nick, there, channel in (("bob", "b", "#room"), ("carl", "c", "#room"),
                                 ("dan", "d", "#other")):
        node._apply(["U", there, [nick, nick, "host", nick, 1.0, None, "", {}]])
        node._apply(["L", there, f"{nick}!{nick}@host", "JOIN", [channel], None, "m", 1.0, "",
                     None])
    alice.say("JOIN #room")
    reactor.advance(0)  # (no Redis: dropped)
    link = resp.RedisProtocol()
    transport = StringTransport()
    link.makeConnection(transport)
    node.control.current = link
    alice.say("PRIVMSG #room :one", "PART #room", "JOIN #room", "PRIVMSG #room :two",
              "PRIVMSG bob :private", "PRIVMSG dan :to d")
    assert not sent_segments(transport)  # it waits for the end of the turn
    reactor.advance(0)
    calls = sent_segments(transport)
    assert len(calls) == 1 and transport.value().count(b'"one"') == 1  # (sent once for b and c)
    message = [("L", "PRIVMSG", "one")]
    assert calls[0] == [
        [("I",)],  # alice's idle time (WHOIS), before her first message
        {"b": message, "c": message},
        [("L", "PART", "#room"), ("L", "JOIN", "#room"), ("N",)],
        {"b": [("L", "PRIVMSG", "two"), ("L", "PRIVMSG", "private")],
         "c": [("L", "PRIVMSG", "two")], "d": [("L", "PRIVMSG", "to d")]},
    ]


def test_the_nodes_with_members_follow_every_change_of_membership() -> None:
    """The nodes a channel line goes to are kept on the channel; a member leaving, joining, or
    one leaving as another joins (the same count) is seen at the next line."""
    core = make_core(FakeClock())
    register_peer(core, "alice").say("JOIN #room")
    node = ClusterNode(core, "redis://127.0.0.1:1/0", MemoryReactorClock(), node_id="here")

    def arrives(nick: str, there: str, command: str = "JOIN") -> None:
        if command == "JOIN" and core.state.find_user(nick) is None:
            node._apply(["U", there, [nick, nick, "host", nick, 1.0, None, "", {}]])
        node._apply(["L", there, f"{nick}!{nick}@host", command, ["#room"], None, "m", 1.0, "",
                     None])

    assert node.message_nodes("#room") == []
    arrives("bob", "b")
    arrives("carl", "c")
    assert sorted(node.message_nodes("#room")) == ["b", "c"]
    arrives("carl", "c", "PART")
    assert node.message_nodes("#room") == ["b"]
    arrives("carl", "c")
    assert sorted(node.message_nodes("#room")) == ["b", "c"]
    arrives("bob", "b", "PART")  # one leaves, one comes: as many members as before
    arrives("dan", "d")
    assert sorted(node.message_nodes("#room")) == ["c", "d"]
    arrives("erin", "d")
    assert sorted(node.message_nodes("#room")) == ["c", "d"]
    assert node.message_nodes("carl") == ["c"] and node.message_nodes("alice") == []
    assert node.message_nodes("#nowhere") == [] and node.message_nodes("nobody") == []


@pytest_twisted.ensureDeferred
async def test_a_statusmsg_reaches_the_operators_on_other_nodes(network: list[Node]) -> None:
    """``PRIVMSG @#room`` goes to the nodes with members, and there to the operators only."""
    a, b, c = network
    alice, bob, carl = await one_on_each(network, "alice", "bob", "carl")
    await in_room(network, alice, bob, carl)  # alice made #room: she is its operator
    alice.send("MODE #room +o bob")
    await bob.expect("MODE", "#room", "+o", "bob")
    await wait_until(lambda: c.core.state.find_channel("#room").is_op(
        c.core.state.find_user("bob")), "c knows bob is an operator")
    carl.send("PRIVMSG @#room :ops only", "PRIVMSG #room :everyone")
    await bob.expect("PRIVMSG", "@#room", "ops only", source="carl!")
    await alice.expect("PRIVMSG", "@#room", "ops only", source="carl!")
    await alice.expect("PRIVMSG", "#room", "everyone")
    bob.send("PRIVMSG +#room :voiced and ops", "PRIVMSG #room :everyone too")
    await alice.expect("PRIVMSG", "+#room", "voiced and ops", source="bob!")
    await carl.expect("PRIVMSG", "#room", "everyone too")
    assert "ops only" not in said(carl) and "voiced and ops" not in said(carl)


@pytest_twisted.async_yield_fixture
async def shared_store(redis: cluster_kit.RedisServer) -> AsyncIterator[tuple[list[Node], list]]:
    """Three nodes with one store (as one PostgreSQL), and the history lines it records."""
    store = MemoryStore()
    recorded: list[tuple[str, str]] = []
    append = store.append_history

    def recording(line: Any) -> None:
        recorded.append((line.target, line.text))
        append(line)

    store.append_history = recording  # type: ignore[method-assign]
    nodes = [Node(name, redis.url) for name in ("a.node", "b.node", "c.node")]
    for node in nodes:
        attach_store(node.core, store, reactor)
        await node.start()
    yield nodes, recorded
    for node in nodes:
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_a_shared_store_records_each_channel_line_once(
        shared_store: tuple[list[Node], list]) -> None:
    """Only the node that took a line from its client records it: the nodes that deliver it
    from their inbox do not."""
    nodes, recorded = shared_store
    alice, bob, carol = await one_on_each(nodes, "alice", "bob", "carol")
    await in_room(nodes, alice, bob, carol)
    alice.send("PRIVMSG #room :from a")
    bob.send("NOTICE #room :from b")
    await wait_until(lambda: {"from a", "from b"} <= set(said(carol) + said(carol, "NOTICE")),
                     "carol has both lines")
    await bob.sync()
    await alice.sync()
    assert sorted(recorded) == [("#room", "from a"), ("#room", "from b")]


@pytest_twisted.ensureDeferred
async def test_a_channel_line_keeps_its_msgid_tags_and_account_on_other_nodes(
        shared_store: tuple[list[Node], list]) -> None:
    """The sender's echo and the other nodes' copies carry one msgid, the client tags and the
    account; a TAGMSG reaches only members with message-tags."""
    network, _ = shared_store
    a, b, c = network
    caps = "message-tags echo-message account-tag server-time"
    alice = await register(a, "alice", caps=caps)
    bob = await register(b, "bob", caps=caps)
    carol = await register(c, "carol")
    await in_room(network, alice, bob, carol)
    a.core.set_account(a.core.state.find_user("alice"), "alice")
    await wait_until(lambda: getattr(b.core.state.find_user("alice"), "account", None) == "alice",
                     "b knows alice's account")
    alice.send("@+example/mood=calm PRIVMSG #room :tagged", "@+example/react=ok TAGMSG #room")
    echo = await alice.expect("PRIVMSG", "#room", "tagged")
    got = await bob.expect("PRIVMSG", "#room", "tagged", source="alice!")
    assert got.tags["msgid"] == echo.tags["msgid"]
    assert got.tags["+example/mood"] == "calm" and got.tags["account"] == "alice"
    assert "time" in got.tags
    reaction = await bob.expect("TAGMSG", "#room", source="alice!")
    assert reaction.tags["+example/react"] == "ok"
    alice.send("PRIVMSG #room :barrier")
    await carol.expect("PRIVMSG", "#room", "barrier")
    assert [m.command for m in carol.messages if m.source and m.source.startswith("alice!")
            and m.command in ("PRIVMSG", "TAGMSG")] == ["PRIVMSG", "PRIVMSG"]



@pytest_twisted.ensureDeferred
async def test_a_cut_subscriber_loses_and_repeats_nothing_of_either_feed(
        network: list[Node]) -> None:
    """Channel lines (inbox) and joins and parts (events) sent while a node's subscriber is cut
    all arrive once; each feed keeps its own order (their order against each other across the
    gap is not kept: docs/cluster.md)."""
    a, b, _ = network
    alice, bob = await register(a, "alice"), await register(b, "bob")
    await in_room(network, alice, bob)
    dave = await register(a, "dave")
    await all_know(network, "dave")
    alice.send(*(f"PRIVMSG #room :m{i}" for i in range(50)))
    b.cluster.subscriber.cut()
    for i in range(5):
        dave.send("JOIN #room", f"PRIVMSG #room :d{i}", "PART #room")
    alice.send(*(f"PRIVMSG #room :m{i}" for i in range(50, 100)))
    await wait_until(lambda: len(said(bob)) >= 105 and len(
        [m for m in bob.messages if m.command == "PART"]) >= 5, "bob has every line", timeout=10)
    await bob.sync()
    assert [t for t in said(bob) if t.startswith("m")] == [f"m{i}" for i in range(100)]
    assert [t for t in said(bob) if t.startswith("d")] == [f"d{i}" for i in range(5)]
    assert [m.command for m in bob.messages if m.source and m.source.startswith("dave!")
            and m.command in ("JOIN", "PART")] == ["JOIN", "PART"] * 5
    assert b.cluster.inbox.gaps_filled >= 1 and b.cluster.events.gaps_filled >= 1


def inbox_node() -> tuple[ClusterNode, MemoryReactorClock, list[bytes]]:
    """A node (no Redis) whose applied batches are recorded, having seen event batch 1."""
    reactor_clock = MemoryReactorClock()
    node = ClusterNode(make_core(FakeClock()), "redis://127.0.0.1:1/0", reactor_clock,
                       node_id="here")
    applied: list[bytes] = []
    node.apply_batch = applied.append  # type: ignore[method-assign]
    events = b"twistedchat:Test:events"
    node._on_message(events, b"e1 1 [1]")
    return node, reactor_clock, applied


def test_an_inbox_batch_waits_for_the_events_before_it() -> None:
    """Pub/sub lost events 2 and 3 (a JOIN, say); the inbox batch written after them (a
    PRIVMSG) waits until they are read back, then follows them; later ones keep their order."""
    node, _, applied = inbox_node()
    inbox = node._inbox_name
    node._on_message(inbox, b"i1 1 3 [4]")
    node._on_message(inbox, b"i1 2 1 [5]")  # (written earlier than 3: still after [4])
    assert applied == [b"[1]"] and node.inbox_order.waited == 2
    events = b"twistedchat:Test:events"
    node._on_message(events, b"e1 3 [3]")  # held by the events feed: 2 is missing still
    node._on_message(events, b"e1 2 [2]")  # (as the gap fill would hand it over)
    assert applied == [b"[1]", b"[2]", b"[3]", b"[4]", b"[5]"]
    node._on_message(inbox, b"i1 3 3 [6]")
    node._on_message(inbox, b"i1 4 [7]")  # a batch written without the events' sequence
    assert applied[-2:] == [b"[6]", b"[7]"] and not node.inbox_order.waiting


def test_an_inbox_batch_waits_a_bounded_time() -> None:
    """Events that never come (gone from the stream, Redis away) hold nothing for long."""
    node, reactor_clock, applied = inbox_node()
    node._on_message(node._inbox_name, b"i1 1 9 [9]")
    assert applied == [b"[1]"]
    reactor_clock.advance(1.0)
    assert applied == [b"[1]", b"[9]"] and not node.inbox_order.waiting
    # Events gone for good (the stream no longer held them): what waited goes at once.
    node._on_message(node._inbox_name, b"i1 2 20 [20]")
    assert applied[-1] == b"[9]"
    node.events.held[30] = b"[30]"
    node.events.skip_gap("test")
    assert applied[-2:] == [b"[20]", b"[30]"]  # (the inbox batch came before event 30)
    assert not node.inbox_order.waiting and ["H", "here"] in node._outgoing


@pytest_twisted.ensureDeferred
async def test_a_lost_join_is_read_back_before_the_message_that_followed_it(
        network: list[Node]) -> None:
    """The JOIN (events) of a turn is lost on its way to b; the PRIVMSG (b's inbox) that
    followed it waits while the JOIN is read back from the stream."""
    a, b, _ = network
    alice, bob = await register(a, "alice"), await register(b, "bob")
    await in_room(network, alice, bob)
    dave = await register(a, "dave")
    await all_know(network, "dave")
    filled = b.cluster.events.gaps_filled
    dropped = drop_next(b, 1, b"events")
    dave.send("JOIN #room", "PRIVMSG #room :hello")
    await bob.expect("PRIVMSG", "#room", "hello", source="dave!")
    assert [m.command for m in bob.messages if m.source and m.source.startswith("dave!")] == [
        "JOIN", "PRIVMSG"]
    assert len(dropped) == 1 and b"JOIN" in dropped[0]
    assert b.cluster.inbox_order.waited >= 1 and b.cluster.events.gaps_filled > filled
