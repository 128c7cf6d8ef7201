"""What a cluster carries beyond relayed lines (issue 14): user modes, AWAY, MONITOR, METADATA,
SETNAME, KILL, accounts, the server each user is on and network-wide LUSERS, WHOWAS; on three
nodes and a real Redis, and bad carried events dropped without harm."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import cluster_kit
import pytest_twisted
from cluster_kit import Node, RedisServer, all_know, all_see_member
from core_peers import FakeClock, make_core
from core_peers import register as register_peer
from helpers import LineClient, connect, register, wait_until
from twisted.internet.testing import MemoryReactorClock

from twistedchat.cluster.carry import IDLE_REFRESH
from twistedchat.cluster.node import ClusterNode
from twistedchat.server.commands.registration import VERSION
from twistedchat.server.config import ServerConfig
from twistedchat.server.core import ServerCore
from twistedchat.server.state import METADATA_MAX_KEYS, METADATA_MAX_VALUE_BYTES
from twistedchat.wire import numerics as N

#: The real Redis of cluster_kit; the network here shares an account store and has an operator.
redis = cluster_kit.redis
services_network = cluster_kit.services_network


@pytest_twisted.async_yield_fixture
async def network(services_network: list[Node]) -> AsyncIterator[list[Node]]:
    """cluster_kit's three nodes with a shared account store and an operator."""
    yield services_network


async def register_with_caps(node: Node, nick: str, caps: str) -> LineClient:
    """Register ``nick`` on ``node`` having asked for ``caps`` first."""
    client = await connect(node.client_endpoint)
    client.nick = nick
    client.send(f"CAP REQ :{caps}", f"NICK {nick}", f"USER {nick} 0 * :{nick} Tester", "CAP END")
    await client.expect("001")
    await client.expect(where=lambda m: m.command in ("376", "422"))
    return client


def everywhere(network: list[Node], nick: str, check: Any) -> Any:
    """True once ``check(user)`` holds for ``nick``'s replica (or user) on every node."""
    def holds() -> bool:
        found = [node.core.state.find_user(nick) for node in network]
        return all(user is not None and check(user) for user in found)
    return holds


async def share_room(network: list[Node], first: LineClient, second: LineClient) -> None:
    """``first`` then ``second`` join #room, and every node has both in it."""
    first.send("JOIN #room")
    await all_see_member(network, "#room", first.nick)
    second.send("JOIN #room")
    await first.expect("JOIN", "#room", source=f"{second.nick}!")
    await all_see_member(network, "#room", second.nick)


async def replies(client: LineClient, line: str, end: str) -> list[Any]:
    client.send(line)
    return await client.collect_until(end)


@pytest_twisted.ensureDeferred
async def test_user_modes_show_on_every_node_at_once(network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register(b, "bob")
    carol = await register(c, "carol")
    await share_room(network, alice, bob)

    alice.send("MODE alice +iB")
    await alice.expect("MODE", "alice")
    await wait_until(everywhere(network, "alice", lambda u: {"i", "B"} <= u.modes),
                     "every node has alice +iB")
    # carol shares no channel with alice: +i hides her from WHO, NAMES and LUSERS' visible count.
    who = await replies(carol, "WHO *", "315")
    assert sorted(m.params[5] for m in who if m.command == "352") == ["bob", "carol"]
    names = await replies(carol, "NAMES #room", "366")
    assert [m.params[-1].split() for m in names if m.command == "353"] == [["bob"]]
    lusers = await replies(carol, "LUSERS", "266")
    assert lusers[0].params[-1] == "There are 2 users and 1 invisible on 3 servers"
    whois = await replies(carol, "WHOIS alice", "318")
    assert N.RPL_WHOISBOT in [m.command for m in whois]
    # bob shares #room: he sees her, with the bot flag.
    who = await replies(bob, "WHO #room", "315")
    flags = {m.params[5]: m.params[6] for m in who if m.command == "352"}
    assert flags["alice"] == "HB@"

    alice.send("OPER root s3cret")
    await alice.expect(N.RPL_YOUREOPER)
    alice.send("MODE alice -i")
    await alice.expect("MODE", "alice", "-i")
    await wait_until(everywhere(network, "alice", lambda u: "i" not in u.modes and u.is_oper),
                     "every node has alice -i +o")
    who = await replies(carol, "WHO alice", "315")
    assert [m.params[6] for m in who if m.command == "352"] == ["H*B"]
    lusers = await replies(carol, "LUSERS", "266")
    assert lusers[0].params[-1] == "There are 3 users and 0 invisible on 3 servers"
    assert [m.params[1] for m in lusers if m.command == N.RPL_LUSEROP] == ["1"]
    # +w on any node hears an operator's WALLOPS from any other.
    carol.send("MODE carol +w")
    await carol.expect("MODE", "carol", "+w")
    alice.send("WALLOPS :maintenance at noon")
    wallops = await carol.expect("WALLOPS", "maintenance at noon")
    assert wallops.source.startswith("alice!")


@pytest_twisted.ensureDeferred
async def test_away_is_carried_without_away_notify_neighbours(network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register_with_caps(b, "bob", "away-notify")
    carol = await register_with_caps(c, "carol", "away-notify extended-join")
    await all_know(network, "alice", "bob", "carol")

    alice.send("AWAY :at lunch")
    await alice.expect(N.RPL_NOWAWAY)
    await wait_until(everywhere(network, "alice", lambda u: u.away == "at lunch"),
                     "every node knows alice is away")
    whois = await replies(carol, "WHOIS alice", "318")
    assert [m.params[-1] for m in whois if m.command == N.RPL_AWAY] == ["at lunch"]
    who = await replies(bob, "WHO alice", "315")
    assert [m.params[6] for m in who if m.command == "352"] == ["G"]
    # Sharing a channel now: a remote joiner's away message follows its JOIN.
    carol.send("JOIN #room")
    await all_see_member(network, "#room", "carol")
    bob.send("JOIN #room")
    await carol.expect("JOIN", "#room", source="bob!")
    alice.send("JOIN #room")
    await carol.expect("JOIN", "#room", "*", "alice Tester", source="alice!")
    await carol.expect("AWAY", "at lunch", source="alice!")
    await bob.expect("JOIN", "#room", source="alice!")
    await bob.expect("AWAY", "at lunch", source="alice!")
    # Back: the neighbours that asked are told once.
    alice.send("AWAY")
    await carol.expect("AWAY", source="alice!", where=lambda m: not m.params)
    await bob.expect("AWAY", source="alice!", where=lambda m: not m.params)
    await wait_until(everywhere(network, "alice", lambda u: u.away is None), "alice is back")
    await bob.sync()
    assert len([m for m in bob.messages if m.command == "AWAY"]) == 2


@pytest_twisted.ensureDeferred
async def test_monitor_sees_remote_users_come_rename_and_go(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, c = network
    watcher = await register(a, "watcher")
    watcher.send("MONITOR + alice,robert,dora")
    await watcher.expect(N.RPL_MONOFFLINE)
    alice = await register(b, "alice")
    online = await watcher.expect(N.RPL_MONONLINE)
    assert online.params[1].startswith("alice!~alice@")
    alice.send("NICK robert")
    await watcher.expect(N.RPL_MONOFFLINE, None, "alice")
    await watcher.expect(N.RPL_MONONLINE, where=lambda m: m.params[1].startswith("robert!"))
    alice.send("QUIT :done")
    await watcher.expect(N.RPL_MONOFFLINE, None, "robert")
    # A node that leaves takes its users with it: 731 for each watched one.
    d = Node("d.node", redis.url)
    await d.start()
    try:
        await register(d, "dora")
        await watcher.expect(N.RPL_MONONLINE, where=lambda m: m.params[1].startswith("dora!"))
    finally:
        await d.stop()
    await watcher.expect(N.RPL_MONOFFLINE, None, "dora")
    watcher.send("MONITOR S")
    status = await watcher.expect(N.RPL_MONOFFLINE)
    assert set(status.params[1].split(",")) == {"alice", "robert", "dora"}


@pytest_twisted.ensureDeferred
async def test_metadata_and_setname_reach_every_node(network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register_with_caps(b, "bob", "draft/metadata-2 setname")
    carol = await register(c, "carol")
    bob.send("METADATA * SUB avatar topic-url")
    await bob.expect(N.RPL_METADATASUBOK)
    await share_room(network, alice, bob)

    alice.send("METADATA * SET avatar :https://example.org/a.png")
    await alice.expect(N.RPL_KEYVALUE)
    note = await bob.expect("METADATA", "alice", "avatar")
    assert note.params[-1] == "https://example.org/a.png"
    carol.send("METADATA alice GET avatar")
    value = await carol.expect(N.RPL_KEYVALUE, None, "alice", "avatar")
    assert value.params[-1] == "https://example.org/a.png"
    alice.send("METADATA #room SET topic-url :https://example.org/room")
    await bob.expect("METADATA", "#room", "topic-url")
    carol.send("METADATA #room GET topic-url")
    await carol.expect(N.RPL_KEYVALUE, None, "#room", "topic-url")
    alice.send("METADATA * SET avatar")
    await bob.expect("METADATA", "alice", "avatar", where=lambda m: len(m.params) == 3)
    carol.send("METADATA alice GET avatar")
    await carol.expect(N.RPL_KEYNOTSET, None, "alice", "avatar")

    alice.send("SETNAME :Alice Liddell")
    await bob.expect("SETNAME", "Alice Liddell", source="alice!")
    await wait_until(everywhere(network, "alice", lambda u: u.realname == "Alice Liddell"),
                     "every node has the new real name")
    carol.send("WHOIS alice")
    whois = await carol.expect(N.RPL_WHOISUSER, None, "alice")
    assert whois.params[-1] == "Alice Liddell"
    # A user who joins later learns the remote member's metadata from its own node.
    alice.send("METADATA * SET avatar :again")
    await bob.expect("METADATA", "alice", "avatar", "*", "again")
    dave = await register_with_caps(c, "dave", "draft/metadata-2")
    dave.send("METADATA * SUB avatar")
    await dave.expect(N.RPL_METADATASUBOK)
    dave.send("JOIN #room")
    await dave.expect("METADATA", "alice", "avatar", "*", "again")


@pytest_twisted.ensureDeferred
async def test_kill_of_a_user_on_another_node(network: list[Node]) -> None:
    a, b, c = network
    root = await register(a, "root")
    victim = await register(b, "victim")
    carol = await register(c, "carol")
    await share_room(network, victim, carol)
    root.send("OPER root s3cret")
    await root.expect(N.RPL_YOUREOPER)
    # An operator sees a remote user's real address, as on one server (others see the cloak).
    whois = await replies(root, "WHOIS victim", "318")
    assert [m.params[-1] for m in whois if m.command == N.RPL_WHOISHOST] == [
        "is connecting from ~victim@127.0.0.1 127.0.0.1"]
    assert [m.params[3] for m in whois if m.command == N.RPL_WHOISUSER] != ["127.0.0.1"]
    root.send("KILL victim :spamming")
    kill = await victim.expect("KILL", "victim", "spamming")
    assert kill.source.startswith("root!")
    await victim.expect("ERROR")
    await victim.closed
    quit_ = await carol.expect("QUIT", source="victim!")
    assert quit_.params == ("Killed (root (spamming))",)
    await wait_until(lambda: not any(n.knows("victim") for n in network), "victim is gone")
    await carol.sync()
    assert len([m for m in carol.messages if m.command == "QUIT"]) == 1
    # The nick is free network-wide.
    again = await register(a, "victim")
    again.close()


@pytest_twisted.ensureDeferred
async def test_nickserv_ghost_of_a_session_on_another_node(network: list[Node]) -> None:
    a, b, c = network
    await a.core.accounts.store.create_account("alice", "correct-horse-battery", 0.0)
    old = await register(b, "alice")
    carol = await register(c, "carol")
    await share_room(network, old, carol)
    me = await register(a, "alice2")
    a.core.accounts.log_in(a.core.state.find_user("alice2"), "alice")
    me.send("PRIVMSG NickServ :GHOST alice")
    await me.expect("NOTICE", where=lambda m: "has been disconnected" in m.params[-1])
    await old.expect("ERROR")
    quit_ = await carol.expect("QUIT", source="alice!")
    assert quit_.params == ("GHOST command used by alice2",)
    await wait_until(lambda: not any(n.knows("alice") for n in network), "alice is gone")


@pytest_twisted.ensureDeferred
async def test_accounts_travel_to_other_nodes(network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    bob = await register_with_caps(b, "bob", "account-notify extended-join")
    carol = await register(c, "carol")
    # erin, beside alice on a, asked for extended-join: a relays alice's JOIN twice, carries it once.
    erin = await register_with_caps(a, "erin", "extended-join")
    await share_room(network, bob, carol)
    erin.send("JOIN #room")
    await all_see_member(network, "#room", "erin")
    a.core.accounts.log_in(a.core.state.find_user("alice"), "alice")
    await wait_until(everywhere(network, "alice", lambda u: u.account == "alice"),
                     "every node knows alice's account")
    alice.send("JOIN #room")
    join = await bob.expect("JOIN", "#room", source="alice!")
    assert join.params == ("#room", "alice", "alice Tester")
    join = await erin.expect("JOIN", "#room", source="alice!")
    assert join.params == ("#room", "alice", "alice Tester")
    join = await carol.expect("JOIN", "#room", source="alice!")
    assert join.params == ("#room",)
    for client in (bob, carol):
        await client.sync()
        assert len([m for m in client.messages
                    if m.command == "JOIN" and m.source.startswith("alice!")]) == 1
    whois = await replies(carol, "WHOIS alice", "318")
    assert [m.params[2] for m in whois if m.command == N.RPL_WHOISACCOUNT] == ["alice"]
    a.core.set_account(a.core.state.find_user("alice"), None)
    await bob.expect("ACCOUNT", "*", source="alice!")
    a.core.accounts.log_in(a.core.state.find_user("alice"), "alice")
    await bob.expect("ACCOUNT", "alice", source="alice!")
    # NickServ DROP on one node logs out the account's sessions on the others.
    await a.core.accounts.store.create_account("shared", "correct-horse-battery", 0.0)
    b.core.accounts.log_in(b.core.state.find_user("bob"), "shared")
    a.core.accounts.log_in(a.core.state.find_user("alice"), "shared")
    await bob.expect("ACCOUNT", "shared", source="alice!")
    await wait_until(everywhere(network, "bob", lambda u: u.account == "shared"), "bob is shared")
    alice.send("PRIVMSG NickServ :DROP correct-horse-battery")
    await alice.expect("NOTICE", where=lambda m: "has been dropped" in m.params[-1])
    await bob.expect("ACCOUNT", "*", source="alice!")
    await wait_until(everywhere(network, "bob", lambda u: u.account is None),
                     "bob's session was logged out by its own node")
    # A later user learns the account in the introduction, not from a change.
    dave = await register(c, "dave")
    c.core.accounts.log_in(c.core.state.find_user("dave"), "dave")
    await wait_until(everywhere(network, "dave", lambda u: u.account == "dave"), "dave's account")
    dave.close()


@pytest_twisted.ensureDeferred
async def test_whois_names_the_node_and_lusers_counts_the_network(
        redis: RedisServer, network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    await register(b, "bob")
    carol = await register(c, "carol")
    await all_know(network, "alice", "bob", "carol")
    for nick, server in (("alice", "a.node"), ("bob", "b.node"), ("carol", "c.node")):
        whois = await replies(carol, f"WHOIS {nick}", "318")
        assert [m.params[2] for m in whois if m.command == N.RPL_WHOISSERVER] == [server]
    who = await replies(alice, "WHO * %nst", "315")
    assert sorted(m.params[2:4] for m in who if m.command == N.RPL_WHOSPCRPL) == [
        ("a.node", "alice"), ("b.node", "bob"), ("c.node", "carol")]
    lusers = {m.command: m.params for m in await replies(alice, "LUSERS", "266")}
    assert lusers[N.RPL_LUSERCLIENT][-1] == "There are 3 users and 0 invisible on 3 servers"
    assert lusers[N.RPL_LUSERME][-1] == "I have 1 clients and 2 servers"
    assert lusers[N.RPL_LOCALUSERS][1:3] == ("1", "1")
    assert lusers[N.RPL_GLOBALUSERS][1] == "3"
    # A node with no users counts once the heartbeat lists it; LINKS names every node.
    d = Node("d.node", redis.url)
    await d.start()
    try:
        await wait_until(lambda: "d.node" in a.cluster.live_nodes, "a heard d's heartbeat",
                         timeout=10)
        links = await replies(alice, "LINKS", "365")
        assert [m.params[2:] for m in links if m.command == N.RPL_LINKS] == [
            ("a.node", "0 ClusterNet: " + VERSION), ("b.node", "1 ClusterNet: " + VERSION),
            ("c.node", "1 ClusterNet: " + VERSION), ("d.node", "1 ClusterNet: " + VERSION)]
        lusers = {m.command: m.params for m in await replies(alice, "LUSERS", "266")}
        assert lusers[N.RPL_LUSERCLIENT][-1] == "There are 3 users and 0 invisible on 4 servers"
    finally:
        await d.stop()


@pytest_twisted.ensureDeferred
async def test_whois_idle_time_of_a_remote_user(network: list[Node]) -> None:
    a, b, c = network
    alice = await register(a, "alice")
    carol = await register(c, "carol")
    await all_know(network, "alice")
    ghost = c.core.state.find_user("alice")
    ghost.last_message -= 1000  # as if she had said nothing for a while, as c sees her
    # A message no other node needs (to herself) still tells them she is not idle.
    alice.send("PRIVMSG alice :note to self")
    await alice.expect("PRIVMSG", "alice", "note to self")
    await wait_until(lambda: c.core.clock() - ghost.last_message < 100, "c saw alice speak")
    whois = await replies(carol, "WHOIS alice", "318")
    assert [int(m.params[2]) < 100 for m in whois if m.command == N.RPL_WHOISIDLE] == [True]


@pytest_twisted.ensureDeferred
async def test_whowas_of_a_remote_user(network: list[Node]) -> None:
    a, b, c = network
    gone = await register(a, "gone")
    carol = await register(c, "carol")
    await all_know(network, "gone")
    gone.send("QUIT :bye")
    await wait_until(lambda: not c.knows("gone"), "c forgot gone")
    gone_too = await register(b, "renamed")
    await all_know(network, "renamed")
    gone_too.send("NICK newer")
    await wait_until(lambda: c.knows("newer"), "c knows newer")
    for nick, server in (("gone", "a.node"), ("renamed", "b.node")):
        whowas = await replies(carol, f"WHOWAS {nick}", "369")
        assert [m.params[1:3] for m in whowas if m.command == N.RPL_WHOWASUSER] == [
            (nick, f"~{nick}")]
        assert [m.params[2] for m in whowas if m.command == N.RPL_WHOISSERVER] == [server]


def test_what_one_client_line_makes_its_node_publish_is_bounded(clock: FakeClock) -> None:
    """One event per line, of bounded size, whatever the client sends (no Redis needed: the
    events wait in the batch)."""
    core = make_core(clock)
    peer = register_peer(core, "alice")
    node = ClusterNode(core, "redis://127.0.0.1:1/0", MemoryReactorClock(), node_id="here")
    lines = ["AWAY :" + "x" * 480, "SETNAME :" + "y" * 100, "MODE alice +iBw",
             "MODE alice -i+i-i+i-i+i-i+i-i", "AWAY"]
    lines += [f"METADATA * SET key{i} :" + "v" * METADATA_MAX_VALUE_BYTES for i in range(30)]
    lines += ["METADATA * CLEAR", "METADATA * CLEAR"]
    peer.say(*lines)
    kinds = [event[0] for event in node._outgoing]
    assert kinds == ["P"] * 5 + ["M"] * METADATA_MAX_KEYS * 2
    assert max(len(json.dumps(event)) for event in node._outgoing) < 1024
    # Messages tell the network the sender's idle time at most once a minute.
    node._outgoing.clear()
    peer.say(*[f"PRIVMSG alice :{i}" for i in range(50)])
    clock.now += IDLE_REFRESH - 1
    peer.say("PRIVMSG alice :still within the minute")
    clock.now += 1
    peer.say("PRIVMSG alice :a minute on")
    assert [event[0] for event in node._outgoing] == ["I", "I"]


def line(source: str, command: str, params: list[str], tags: dict[str, str] | None = None,
         extra: str | None = None) -> list[Any]:
    """An ``L`` event from node ``there`` as a node publishes it."""
    return ["L", "there", source, command, params, tags, "m1", 1.0, extra, None]


def test_bad_carried_events_are_logged_and_dropped() -> None:
    """Events from Redis are checked field by field: a bad one changes nothing and raises
    nothing; it is counted and logged."""
    core = ServerCore(ServerConfig(name="here.node", network="Net"))
    node = ClusterNode(core, "redis://127.0.0.1:1/0", MemoryReactorClock(), node_id="here")
    record = ["eve", "eve", "host", "Eve", 1.0, None, "", {}, {"server": "there.node",
                                                               "account": None,
                                                               "real_host": "10.0.0.1",
                                                               "metadata": {"k": "v"}}]
    node._apply(["U", "there", record])
    eve = core.state.find_user("eve")
    assert eve is not None and node.server_of(eve) == "there.node"
    assert eve.real_host == "10.0.0.1" and core.state.metadata.values(eve.owner) == {"k": "v"}
    bad_events = [
        ["P", "there", "eve", "iX", None, "Eve", None],  # an unknown mode
        ["P", "there", "eve", "i", "a\r\nQUIT :x", "Eve", None],  # CR LF in the away text
        ["P", "there", "eve", "i", None, "x" * 1000, None],  # a real name too long
        ["P", "there", "eve", "i", None, "Eve", "two words"],  # an account with a space
        ["P", "there", ["eve"], "i", None, "Eve", None],  # a nick that is not a string
        ["P", "there", "eve"],  # fields missing
        ["M", "there", "eve", "eve", "BAD KEY", "v"],
        ["M", "there", "eve", "eve", "k", "v" * 5000],
        ["M", "there", "eve", "someone-else", "k", "v"],
        ["K", "there", "here", "eve", None, None, 7],
        ["O", "there", "here", "two words"],
        ["I", "there", "eve", "yesterday"],
        ["U", "there", ["mallory", "m", "h", "M", 1.0, None, "", {}, {"server": "a b"}]],
        ["U", "there", ["bad nick", "m", "h", "M", 1.0, None, "", {}]],
        ["U", "there", ["trudy", "m", "h", "M\r\nQUIT", 1.0, None, "", {}]],
        ["U", "there", ["trudy", "m", "h", "M", 1.0, None, "", {"#a": "q"}]],
        ["U", "there", ["trudy", "m", "h", "M", "soon", None, "", {}]],
        ["B", "there", [record, ["trudy", "m", "h", "M", 1.0, None, "X", {}]], []],
        # Relayed lines that would not make one well-formed line, and a channel record with a
        # key that has a space in it.
        line("eve!e@h", "PRIVMSG", ["#x", "hi\r\nQUIT :injected"]),
        line("eve!e@h", "MODE", ["#x", "+k key with spaces", ""]),
        line("eve e@h", "PRIVMSG", ["#x", "hi"]),
        line("eve!e@h", "PRIVMSG", ["#x", "hi"], tags={"bad key": "v"}),
        line("eve!e@h", "privmsg", ["#x", "hi"]),
        line("eve!e@h", "JOIN", ["#x"], extra="@"),
        ["B", "there", [record], [["#x", 1.0, "", "", 0.0, "nt", "a b", None, []]]],
    ]
    for event in bad_events:
        node._apply(event)
    assert node.bad_events == len(bad_events)
    assert core.state.find_user("trudy") is None and core.state.find_user("bad nick") is None
    assert core.state.find_user("eve") is eve
    assert not core.state.channels
    # A good relayed line and channel record apply.
    node._apply(line("eve!e@h", "JOIN", ["#x"], extra="o"))
    node._apply(["B", "there", [record[:7] + [{"#y": ""}] + record[8:]],
                 [["#y", 1.0, "a topic", "eve", 2.0, "nt", "key", 5, [["*!*@bad", "eve", 3.0]]]]])
    assert set(core.state.channels) == {"#y"} and core.state.find_channel("#y").key == "key"
    assert eve.modes == set() and eve.away is None and eve.realname == "Eve"
    assert core.state.metadata.values(eve.owner) == {"k": "v"}
    # An event about a user of another node than the one that sent it changes nothing either.
    node._apply(["P", "elsewhere", "eve", "i", "away", "Eve", None])
    assert eve.modes == set() and eve.away is None
    # A good one applies.
    node._apply(["P", "there", "eve", "iB", "away", "Eve", "eve"])
    assert eve.modes == {"i", "B"} and eve.away == "away" and eve.account == "eve"
    assert node.network_counts().invisible == 1


async def refused(node: Node, nick: str, username: str) -> Any:
    """Connect to ``node`` as ``nick`` with ``username``: its 465 once the server refuses it."""
    client = await connect(node.client_endpoint)
    client.send(f"NICK {nick}", f"USER {username} 0 * :{nick} Tester")
    banned = await client.expect(N.ERR_YOUREBANNEDCREEP)
    await client.expect("ERROR")
    await client.closed
    return banned


@pytest_twisted.ensureDeferred
async def test_klines_and_unklines_travel_to_every_node(network: list[Node]) -> None:
    a, b, c = network
    root = await register(a, "root")
    boss = await register(b, "boss")
    victim = await register(b, "victim")
    carol = await register(c, "carol")
    await share_room(network, victim, carol)
    for oper in (root, boss):
        oper.send("OPER root s3cret")
        await oper.expect(N.RPL_YOUREOPER)
    root.send("KLINE 5 *victim@127.0.0.1 :spamming everyone")
    await root.expect("NOTICE", None, "K-line for *victim@127.0.0.1 (5 minutes): "
                      "spamming everyone; 0 connection(s) removed")
    # Its own node disconnects the user with the ban's reason; the others see one QUIT.
    banned = await victim.expect(N.ERR_YOUREBANNEDCREEP)
    assert banned.params[-1] == "You are banned from this server: spamming everyone"
    error = await victim.expect("ERROR")
    assert error.params[-1].endswith("(K-lined: spamming everyone)")
    await victim.closed
    await carol.expect("QUIT", "K-lined", source="victim!")
    await wait_until(lambda: not any(n.knows("victim") for n in network), "victim is gone")
    await carol.sync()
    assert len([m for m in carol.messages if m.command == "QUIT"]) == 1
    # Every node holds the same ban (expiry, reason, setter) and refuses a new match.
    bans = [n.core.bans.klines.get("*victim@127.0.0.1") for n in network]
    assert bans[0] is not None and bans[0].expires == bans[0].set_at + 300
    assert bans[1:] == [bans[0], bans[0]]
    banned = await refused(c, "victim2", "victim")
    assert banned.params[-1] == "You are banned from this server: spamming everyone"
    # UNKLINE on another node lifts it everywhere.
    boss.send("UNKLINE *victim@127.0.0.1")
    await boss.expect("NOTICE", None, "K-line for *victim@127.0.0.1 lifted")
    await wait_until(lambda: not any(n.core.bans.klines for n in network), "lifted everywhere")
    again = await register(a, "victim")
    again.close()
    assert root.is_closed is False and carol.is_closed is False


@pytest_twisted.ensureDeferred
async def test_dlines_travel_and_are_not_published_again(network: list[Node]) -> None:
    a, b, c = network
    root = await register(a, "root")
    root.send("OPER root s3cret")
    await root.expect(N.RPL_YOUREOPER)
    published: list[list[Any]] = []
    for node in network:
        emit = node.cluster._emit
        node.cluster._emit = lambda event, emit=emit: (published.append(event), emit(event))
    root.send("DLINE 10.9.8.0/24 :a bad network")
    await wait_until(lambda: all("10.9.8.0/24" in n.core.bans.dlines for n in network),
                     "the D-line everywhere")
    root.send("UNDLINE 10.9.8.0/24")
    await wait_until(lambda: not any(n.core.bans.dlines for n in network), "lifted everywhere")
    # Only the operator's node published them: the nodes that applied them did not (no loop).
    assert [event[:3] for event in published if event[0] == "X"] == [
        ["X", a.cluster.node_id, "+"], ["X", a.cluster.node_id, "-"]]


def test_bad_ban_events_are_logged_and_dropped() -> None:
    """A ban event from Redis is parsed as a local KLINE/DLINE is: a bad one changes nothing."""
    core = ServerCore(ServerConfig(name="here.node", network="Net"))
    node = ClusterNode(core, "redis://127.0.0.1:1/0", MemoryReactorClock(), node_id="here")
    now = core.clock()
    good = ["X", "there", "+", "K", "*bad@10.0.0.1", "spam", "root", now, 0]
    bad_events = [
        ["X", "there", "+", "Q", "*bad@10.0.0.1", "spam", "root", now, 0],  # unknown kind
        ["X", "there", "+", "K", "*@*", "spam", "root", now, 0],  # matches every host
        ["X", "there", "+", "K", "a b@c", "spam", "root", now, 0],  # a space in the mask
        ["X", "there", "+", "D", "not-an-address", "spam", "root", now, 0],
        ["X", "there", "+", "D", "10.0.0.0/4", "spam", "root", now, 0],  # too wide
        ["X", "there", "+", "K", "*bad@10.0.0.1", "x" * 5000, "root", now, 0],  # reason too long
        ["X", "there", "+", "K", "*bad@10.0.0.1", "a\r\nQUIT", "root", now, 0],
        ["X", "there", "+", "K", "*bad@10.0.0.1", "spam", "two words", now, 0],
        ["X", "there", "+", "K", "*bad@10.0.0.1", "spam", "root", "soon", 0],
        ["X", "there", "*", "K", "*bad@10.0.0.1"],  # neither set nor lift
        ["X", "there", "+", "K", "*bad@10.0.0.1"],  # fields missing
        ["X", "there", "-", "K", ["*bad@10.0.0.1"]],
    ]
    for event in bad_events:
        node._apply(event)
    assert node.bad_events == len(bad_events)
    assert not core.bans.all()
    # An expired one is ignored; a good one applies, and is not published again.
    node._apply(good[:7] + [now - 120, now - 60])
    assert not core.bans.all()
    node._apply(good)
    ban = core.bans.klines["*bad@10.0.0.1"]
    assert (ban.reason, ban.set_by, ban.set_at, ban.expires) == ("spam", "root", now, 0)
    node._apply(["X", "there", "-", "K", "*BAD@10.0.0.1"])
    assert not core.bans.all() and node.bad_events == len(bad_events)
    assert not node._outgoing
