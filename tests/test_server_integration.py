"""The real daemon over loopback, with several raw clients at once (issue 2).

Each test talks plain IRC lines to the in-process daemon of the ``chat_server`` fixture (or to
``oper_server`` below, the same daemon with operators, a MOTD and a password-free config) and
checks what every client sees.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest_twisted
from conftest import RunningServer
from helpers import connect, register
from twisted.internet import reactor, task

from twistedchat.server.config import ServerConfig
from twistedchat.server.core import CAPABILITIES
from twistedchat.server.state import CASEMAPPING, CHANLIMIT, MODES_PER_COMMAND, NICKLEN, TOPICLEN

ensure = pytest_twisted.ensureDeferred


@pytest_twisted.async_yield_fixture
async def oper_server():
    """The daemon with an operator account and a MOTD."""
    server = RunningServer(ServerConfig(
        name="oper.server", network="OperNet", opers={"root": "s3cret"},
        motd=["Welcome to the test network.", "Be nice."],
    ))
    await server.start()
    yield server
    await server.stop()


@pytest_twisted.async_yield_fixture
async def password_server():
    server = RunningServer(ServerConfig(name="pass.server", password="letmein"))
    await server.start()
    yield server
    await server.stop()


async def in_lobby(server, *nicks: str, channel: str = "#lobby"):
    """Register each nick and join them to ``channel`` in order; every JOIN is seen by all."""
    clients = []
    for nick in nicks:
        client = await register(server, nick)
        client.send(f"JOIN {channel}")
        await client.expect("366", nick, channel)
        for other in clients:
            await other.expect("JOIN", channel, source=f"{nick}!")
        clients.append(client)
    return clients


def close_all(*clients) -> None:
    for client in clients:
        if not client.is_closed:
            client.close()


# -- registration ------------------------------------------------------------------------------


@ensure
async def test_registration_with_cap_negotiation(chat_server):
    client = await connect(chat_server.client_endpoint)
    client.send("CAP LS 302", "NICK capper", "USER capper 0 * :Cap Per")
    ls = await client.expect("CAP", "*", "LS")
    offered = dict(item.partition("=")[::2] for item in ls.params[-1].split())
    assert set(offered) == set(CAPABILITIES)
    # Registration waits for CAP END.
    pending = await client.sync()
    assert not [m for m in pending if m.command == "001"]
    client.send("CAP REQ :server-time multi-prefix")
    ack = await client.expect("CAP", None, "ACK")
    assert ack.params[-1].split() == ["server-time", "multi-prefix"]
    client.send("CAP REQ :no-such-cap")
    await client.expect("CAP", None, "NAK")
    client.send("CAP END")
    welcome = await client.expect("001", "capper")
    assert "capper!~capper@127.0.0.1" in welcome.params[-1]
    client.send("CAP LIST")
    listed = await client.expect("CAP", "capper", "LIST")
    assert set(listed.params[-1].split()) == {"server-time", "multi-prefix"}
    # server-time tags relayed messages.
    client.send("JOIN #caps")
    join = await client.expect("JOIN", "#caps")
    assert join.tags["time"].endswith("Z")
    client.close()


@ensure
async def test_welcome_burst_isupport_lusers_and_no_motd(chat_server):
    client = await connect(chat_server.client_endpoint)
    client.send("NICK plain", "USER plain 0 * :Plain Client")
    burst = await client.collect_until("422")
    codes = [m.command for m in burst]
    assert codes[:4] == ["001", "002", "003", "004"]
    assert all(m.source == "test.server" and m.params[0] == "plain" for m in burst)
    assert "Welcome to the TestNet Network, plain!~plain@127.0.0.1" in burst[0].params[-1]
    myinfo = burst[3]
    assert myinfo.params[1] == "test.server"
    tokens = dict(
        token.partition("=")[::2]
        for m in burst if m.command == "005" for token in m.params[1:-1]
    )
    assert tokens["NETWORK"] == "TestNet"
    assert tokens["CASEMAPPING"] == CASEMAPPING == "rfc1459"
    assert tokens["CHANTYPES"] == "#"
    assert tokens["PREFIX"] == "(ov)@+"
    assert tokens["NICKLEN"] == str(NICKLEN)
    assert tokens["CHANMODES"] == "beI,k,l,imnst"
    assert tokens["MONITOR"] == "100" and "WHOX" in tokens and tokens["BOT"] == "B"
    # Every mode ISUPPORT announces is one MODE accepts (truthful ISUPPORT, checked below).
    for code in ("251", "255", "265", "266"):
        assert code in codes
    assert codes.index("005") < codes.index("251") < codes.index("422")
    lusers = next(m for m in burst if m.command == "251")
    assert "1 users" in lusers.params[-1]
    client.send("LUSERS")
    second = await client.collect_until("266")
    assert [m.command for m in second][-1] == "266"
    client.close()


@ensure
async def test_isupport_is_truthful(chat_server):
    """NICKLEN, CHANNELLEN, MAXTARGETS and CHANMODES are enforced as announced."""
    client = await register(chat_server, "truth")
    client.send("NICK " + "n" * NICKLEN)
    await client.expect("NICK", "n" * NICKLEN)
    client.send("NICK " + "m" * (NICKLEN + 1))
    await client.expect("432")
    client.send("JOIN #" + "c" * 49)
    await client.expect("JOIN", "#" + "c" * 49)
    client.send("JOIN #" + "c" * 50)
    await client.expect("479")
    client.send("MODE #" + "c" * 49 + " +imnstk-k+l-l+b-b+o-o+v-v key key 5 a!*@* a!*@*")
    mode = await client.expect("MODE")
    assert set(mode.params[1]) >= set("imsk+-")
    client.send("PRIVMSG a,b,c,d,e :hi")
    await client.expect("407")
    # TOPICLEN: a longer topic is cut to it.
    client.send("TOPIC #" + "c" * 49 + " :" + "t" * (TOPICLEN + 10))
    topic = await client.expect("TOPIC")
    assert topic.params[-1] == "t" * TOPICLEN
    # MODES: at most that many parameter modes per command.
    client.send("MODE #" + "c" * 49 + " +bbbbbbbb " + " ".join(f"m{n}" for n in range(8)))
    bans = await client.expect("MODE")
    assert bans.params[1] == "+" + "b" * MODES_PER_COMMAND
    # CHANLIMIT: one JOIN line past the limit; the channels after it are refused with 405.
    names = ",".join(f"#{n}" for n in range(CHANLIMIT))
    client.send(f"JOIN {names}")
    refused = await client.expect("405")
    assert refused.params[1] == f"#{CHANLIMIT - 1}"  # truth already holds #ccc...: 100th is over
    client.send("JOIN #one-more")
    await client.expect("405", None, "#one-more")
    client.close()


@ensure
async def test_motd_is_sent(oper_server):
    client = await connect(oper_server.client_endpoint)
    client.send("NICK reader", "USER reader 0 * :Reader")
    burst = await client.collect_until("376")
    motd = [m.params[-1] for m in burst if m.command == "372"]
    assert motd == ["- Welcome to the test network.", "- Be nice."]
    assert any(m.command == "375" for m in burst)
    client.send("MOTD")
    await client.expect("375")
    await client.expect("376")
    client.close()


@ensure
async def test_server_password(password_server):
    wrong = await connect(password_server.client_endpoint)
    wrong.send("PASS nope", "NICK intruder", "USER x 0 * :x")
    await wrong.expect("464")
    error = await wrong.expect("ERROR")
    assert "Bad password" in error.params[0]
    await wrong.wait_closed()
    missing = await connect(password_server.client_endpoint)
    missing.send("NICK nopass", "USER x 0 * :x")
    await missing.expect("464")
    await missing.wait_closed()
    right = await register(password_server, "member", password="letmein")
    right.close()


# -- channels: everyone sees everything ----------------------------------------------------------


@ensure
async def test_channel_traffic_seen_by_everyone(chat_server):
    alice, bob, carol = await in_lobby(chat_server, "alice", "bob", "carol")
    # NAMES on join lists everyone, the creator as operator.
    names = [m for m in carol.messages if m.command == "353"]
    assert set(names[-1].params[-1].split()) == {"@alice", "bob", "carol"}

    alice.send("PRIVMSG #lobby :hello all")
    for other in (bob, carol):
        await other.expect("PRIVMSG", "#lobby", "hello all", source="alice!~alice@")
    assert not [m for m in await alice.sync() if m.command == "PRIVMSG"]  # no echo by default

    bob.send("NOTICE #lobby :a notice")
    await alice.expect("NOTICE", "#lobby", "a notice", source="bob!")
    await carol.expect("NOTICE", "#lobby", "a notice", source="bob!")

    carol.send("NICK carla")
    for client in (alice, bob, carol):
        await client.expect("NICK", "carla", source="carol!")
    carol.nick = "carla"

    bob.send("PART #lobby :see you")
    for client in (alice, bob, carol):
        await client.expect("PART", "#lobby", "see you", source="bob!")

    carol.send("QUIT :gone fishing")
    await alice.expect("QUIT", "Quit: gone fishing", source="carla!")
    error = await carol.expect("ERROR")
    assert "gone fishing" in error.params[0]
    await carol.wait_closed()
    # bob left the channel: he shares none with carla and sees no QUIT.
    assert not [m for m in await bob.sync() if m.command == "QUIT"]

    bob.send("JOIN #lobby")
    await alice.expect("JOIN", "#lobby", source="bob!")
    bob.close()  # a dropped connection is a QUIT too
    quit_ = await alice.expect("QUIT", source="bob!")
    assert quit_.params[0]
    close_all(alice)


@ensure
async def test_messages_to_several_targets_and_away(chat_server):
    alice, bob = await in_lobby(chat_server, "alice", "bob")
    carol = await register(chat_server, "carol")
    alice.send("PRIVMSG #lobby,carol,Bob :to all of you")
    await bob.expect("PRIVMSG", "#lobby", "to all of you")
    await bob.expect("PRIVMSG", "bob", "to all of you", source="alice!")
    await carol.expect("PRIVMSG", "carol", "to all of you", source="alice!")
    alice.send("PRIVMSG nobody,#nowhere :hello?")
    await alice.expect("401", "alice", "nobody")
    await alice.expect("401", "alice", "#nowhere")
    alice.send("NOTICE carol,bob :psst")
    await carol.expect("NOTICE", "carol", "psst")
    await bob.expect("NOTICE", "bob", "psst")

    carol.send("AWAY :out to lunch")
    await carol.expect("306")
    alice.send("PRIVMSG carol :are you there?")
    away = await alice.expect("301", "alice", "carol")
    assert away.params[-1] == "out to lunch"
    await carol.expect("PRIVMSG", "carol", "are you there?")
    # No 301 for NOTICE.
    alice.send("NOTICE carol :fyi")
    assert not [m for m in await alice.sync() if m.command == "301"]
    carol.send("AWAY")
    await carol.expect("305")
    alice.send("PRIVMSG carol :back?")
    assert not [m for m in await alice.sync() if m.command == "301"]
    # 411/412
    alice.send("PRIVMSG", "PRIVMSG carol")
    await alice.expect("411")
    await alice.expect("412")
    close_all(alice, bob, carol)


@ensure
async def test_topic_list_who_whois(chat_server):
    alice, bob = await in_lobby(chat_server, "alice", "bob")
    bob.send("TOPIC #lobby :not allowed")  # +t by default: only ops
    await bob.expect("482", "bob", "#lobby")
    alice.send("TOPIC #lobby :Welcome to the lobby")
    for client in (alice, bob):
        await client.expect("TOPIC", "#lobby", "Welcome to the lobby", source="alice!")
    bob.send("TOPIC #lobby")
    await bob.expect("332", "bob", "#lobby", "Welcome to the lobby")
    whotime = await bob.expect("333", "bob", "#lobby")
    assert whotime.params[2].startswith("alice!")
    carol = await register(chat_server, "carol")
    carol.send("JOIN #lobby")
    await carol.expect("332", "carol", "#lobby", "Welcome to the lobby")
    carol.send("PART #lobby")
    await carol.expect("PART")

    bob.send("JOIN #other")
    await bob.expect("366")
    carol.send("LIST")
    listing = await carol.collect_until("323")
    rows = {m.params[1]: (m.params[2], m.params[3]) for m in listing if m.command == "322"}
    assert rows == {"#lobby": ("2", "Welcome to the lobby"), "#other": ("1", "")}
    assert listing[0].command == "321"

    carol.send("WHO #lobby")
    who = await carol.collect_until("315")
    replies = {m.params[5]: m for m in who if m.command == "352"}
    assert set(replies) == {"alice", "bob"}
    assert replies["alice"].params[6] == "H@"
    assert replies["bob"].params[2:4] == ("~bob", "127.0.0.1")
    assert replies["alice"].params[-1] == "0 alice Tester"

    bob.send("AWAY :busy")
    await bob.expect("306")
    carol.send("WHOIS bob")
    whois = await carol.collect_until("318")
    by_code = {m.command: m for m in whois}
    assert by_code["311"].params[1:4] == ("bob", "~bob", "127.0.0.1")
    assert set(by_code["319"].params[-1].split()) == {"#lobby", "@#other"}
    assert by_code["312"].params[2] == "test.server"
    assert by_code["301"].params[-1] == "busy"
    assert "317" in by_code
    carol.send("WHOIS ghost")
    await carol.expect("401", "carol", "ghost")
    await carol.expect("318")
    close_all(alice, bob, carol)


@ensure
async def test_invite_and_invite_only(chat_server):
    (alice,) = await in_lobby(chat_server, "alice")
    bob = await register(chat_server, "bob")
    alice.send("MODE #lobby +i")
    await alice.expect("MODE", "#lobby", "+i")
    bob.send("JOIN #lobby")
    await bob.expect("473", "bob", "#lobby")
    alice.send("INVITE bob #lobby")
    await alice.expect("341", "alice", "bob", "#lobby")
    await bob.expect("INVITE", "bob", "#lobby", source="alice!")
    bob.send("JOIN #lobby")
    await bob.expect("JOIN", "#lobby")
    await alice.expect("JOIN", "#lobby", source="bob!")
    bob.send("INVITE alice #lobby")
    await bob.expect("482")  # only ops invite to a +i channel
    alice.send("INVITE bob #lobby")
    await alice.expect("443")
    close_all(alice, bob)


@ensure
async def test_kick(chat_server):
    alice, bob, carol = await in_lobby(chat_server, "alice", "bob", "carol")
    bob.send("KICK #lobby carol :no")
    await bob.expect("482")
    alice.send("KICK #lobby carol :behave")
    for client in (alice, bob, carol):
        kick = await client.expect("KICK", "#lobby", "carol", source="alice!")
        assert kick.params[2] == "behave"
    alice.send("PRIVMSG #lobby :carol is out")
    await bob.expect("PRIVMSG", "#lobby", "carol is out")
    assert not [m for m in await carol.sync() if m.command == "PRIVMSG"]
    alice.send("KICK #lobby carol")
    await alice.expect("441")
    close_all(alice, bob, carol)


@ensure
async def test_channel_modes(chat_server):
    alice, bob = await in_lobby(chat_server, "alice", "bob")
    outsider = await register(chat_server, "outsider")

    # +n (default): outsiders cannot speak; -n lets them.
    outsider.send("PRIVMSG #lobby :from outside")
    await outsider.expect("404", "outsider", "#lobby")
    alice.send("MODE #lobby -n")
    await bob.expect("MODE", "#lobby", "-n")
    outsider.send("PRIVMSG #lobby :from outside")
    await bob.expect("PRIVMSG", "#lobby", "from outside", source="outsider!")

    # +t (default): only ops set the topic; -t lets anyone in the channel.
    bob.send("TOPIC #lobby :by bob")
    await bob.expect("482", "bob", "#lobby")
    alice.send("MODE #lobby -t")
    await bob.expect("MODE", "#lobby", "-t")
    bob.send("TOPIC #lobby :by bob")
    await alice.expect("TOPIC", "#lobby", "by bob", source="bob!")
    alice.send("MODE #lobby +t")
    await bob.expect("MODE", "#lobby", "+t")

    # +m: only voiced/ops speak; +v gives voice.
    alice.send("MODE #lobby +m")
    await bob.expect("MODE", "#lobby", "+m")
    bob.send("PRIVMSG #lobby :muted?")
    await bob.expect("404", "bob", "#lobby")
    alice.send("MODE #lobby +v bob")
    await bob.expect("MODE", "#lobby", "+v", "bob")
    bob.send("PRIVMSG #lobby :voiced")
    await alice.expect("PRIVMSG", "#lobby", "voiced")

    # +o shares operator status; the new op can set modes.
    bob.send("MODE #lobby +t")
    await bob.expect("482")
    alice.send("MODE #lobby +o bob")
    await bob.expect("MODE", "#lobby", "+o", "bob")
    bob.send("MODE #lobby -m")
    await alice.expect("MODE", "#lobby", "-m", source="bob!")
    bob.send("NAMES #lobby")
    names = await bob.expect("353")
    assert set(names.params[-1].split()) == {"@alice", "@bob"}

    # +k: key needed to join.
    alice.send("MODE #lobby +k sesame")
    await bob.expect("MODE", "#lobby", "+k", "sesame")
    outsider.send("JOIN #lobby")
    await outsider.expect("475")
    outsider.send("JOIN #lobby wrong")
    await outsider.expect("475")
    outsider.send("JOIN #lobby sesame")
    await outsider.expect("JOIN", "#lobby")
    outsider.send("PART #lobby")
    await outsider.expect("PART")
    alice.send("MODE #lobby -k *")
    await bob.expect("MODE", "#lobby", "-k")

    # +l: a full channel refuses.
    alice.send("MODE #lobby +l 2")
    await bob.expect("MODE", "#lobby", "+l", "2")
    outsider.send("JOIN #lobby")
    await outsider.expect("471")
    alice.send("MODE #lobby -l")
    await bob.expect("MODE", "#lobby", "-l")

    # +b: a banned mask cannot join; the ban list is queryable.
    alice.send("MODE #lobby +b outsider")
    await bob.expect("MODE", "#lobby", "+b", "outsider!*@*")
    outsider.send("JOIN #lobby")
    await outsider.expect("474")
    outsider.send("MODE #lobby +b")
    ban = await outsider.expect("367", "outsider", "#lobby")
    assert ban.params[2] == "outsider!*@*"
    await outsider.expect("368")
    alice.send("MODE #lobby -b outsider!*@*")
    await bob.expect("MODE", "#lobby", "-b", "outsider!*@*")

    # +s: hidden from LIST and WHOIS for outsiders.
    alice.send("MODE #lobby +s")
    await bob.expect("MODE", "#lobby", "+s")
    outsider.send("LIST")
    listing = await outsider.collect_until("323")
    assert not [m for m in listing if m.command == "322"]
    outsider.send("WHOIS alice")
    whois = await outsider.collect_until("318")
    assert not [m for m in whois if m.command == "319"]

    # +i on a channel, then the mode query shows all flags.
    alice.send("MODE #lobby +i")
    await bob.expect("MODE", "#lobby", "+i")
    bob.send("MODE #lobby")
    modeis = await bob.expect("324", "bob", "#lobby")
    assert set(modeis.params[2].lstrip("+")) == set("ist")

    # Unknown mode char, and user modes.
    alice.send("MODE #lobby +z")
    await alice.expect("472", "alice", "z")
    alice.send("MODE alice +i")
    await alice.expect("MODE", "alice", "+i")
    alice.send("MODE bob +i")
    await alice.expect("502")
    close_all(alice, bob, outsider)


@ensure
async def test_oper_and_kill(oper_server):
    alice, victim = await in_lobby(oper_server, "alice", "victim")
    alice.send("KILL victim :no")
    await alice.expect("481")
    alice.send("OPER root wrong")
    await alice.expect("464")
    alice.send("OPER root s3cret")
    await alice.expect("MODE", "alice", "+o")
    await alice.expect("381")
    victim.send("WHOIS alice")
    whois = await victim.collect_until("318")
    assert any(m.command == "313" for m in whois)
    alice.send("KILL victim :spamming")
    killed = await victim.expect("KILL", "victim", source="alice!")
    assert "spamming" in killed.params[-1]
    error = await victim.expect("ERROR")
    assert "Killed" in error.params[0]
    await victim.wait_closed()
    quit_ = await alice.expect("QUIT", source="victim!")
    assert "Killed (alice (spamming))" in quit_.params[0]
    alice.send("KILL ghost")
    await alice.expect("401")
    close_all(alice)


@ensure
async def test_join_zero_parts_everything(chat_server):
    alice, bob = await in_lobby(chat_server, "alice", "bob")
    alice.send("JOIN #second,#third")
    await alice.expect("366", "alice", "#third")
    alice.send("JOIN 0")
    parts = [await alice.expect("PART") for _ in range(3)]
    assert {p.params[0] for p in parts} == {"#lobby", "#second", "#third"}
    await bob.expect("PART", "#lobby", source="alice!")
    alice.send("WHOIS alice")
    whois = await alice.collect_until("318")
    assert not [m for m in whois if m.command == "319"]
    close_all(alice, bob)


# -- names and errors ----------------------------------------------------------------------------


@ensure
async def test_casemapping(chat_server):
    alice = await register(chat_server, "Alice")
    other = await connect(chat_server.client_endpoint)
    other.send("NICK alice", "NICK ALICE")
    await other.expect("433", "*", "alice")
    await other.expect("433", "*", "ALICE")
    # rfc1459: [ ] \ ~ are the upper case of { } | ^
    weird = await register(chat_server, "x[a]")
    other.send("NICK X{A}")
    await other.expect("433", "*", "X{A}")
    # Channels fold too.
    alice.send("JOIN #Lobby")
    await alice.expect("366")
    weird.send("JOIN #LOBBY")
    join = await weird.expect("JOIN")
    assert join.params[0] == "#Lobby"  # the channel keeps the name it was created with
    weird.send("PRIVMSG ALICE :hi")
    await alice.expect("PRIVMSG", "Alice", "hi")
    # A nick change that only changes case is allowed.
    alice.send("NICK ALICE")
    await alice.expect("NICK", "ALICE", source="Alice!")
    close_all(alice, other, weird)


@ensure
async def test_bad_names_and_unknown_command(chat_server):
    client = await connect(chat_server.client_endpoint)
    client.send("NICK 9lives", "NICK -dash", "NICK #chan")
    await client.expect("432", "*", "9lives")
    await client.expect("432", "*", "-dash")
    await client.expect("432", "*", "#chan")
    client.send("PRIVMSG x :y")
    await client.expect("451")
    client.send("NICK good", "USER good 0 * :Good")
    await client.expect("001")
    client.send("JOIN lobby", "JOIN #bad\x07name")
    await client.expect("479", "good", "lobby")
    await client.expect("479")
    client.send("PART #nowhere", "TOPIC #nowhere", "MODE #nowhere")
    for _ in range(3):
        await client.expect("403", "good", "#nowhere")
    client.send("FROBNICATE now")
    await client.expect("421", "good", "FROBNICATE")
    client.send("USER again 0 * :x")
    await client.expect("462")
    client.close()


@ensure
async def test_long_line_gets_417_and_connection_stays(chat_server):
    client = await register(chat_server, "talker")
    listener = await register(chat_server, "listener")
    client.send("PRIVMSG listener :" + "x" * 600)
    await client.expect("417", "talker")
    # Far beyond any buffer: still one 417, and the line is discarded, not split.
    client.send(b"PRIVMSG listener :" + b"y" * 20000)
    await client.expect("417", "talker")
    client.send("PRIVMSG listener :still here")
    await listener.expect("PRIVMSG", "listener", "still here")
    assert not [m for m in listener.messages if "x" * 10 in m.to_line() or "yyyy" in m.to_line()]
    # Exactly 510 bytes + CR LF is accepted; relayed with the sender's prefix it is cut to fit
    # the 512-byte line the listener may rely on.
    head = "PRIVMSG listener :"
    client.send(head + "z" * (510 - len(head)))
    got = await listener.expect("PRIVMSG")
    assert set(got.params[-1]) == {"z"} and len(got.params[-1]) > 400
    assert len(got.to_bytes()) <= 512
    assert not client.since("417")
    close_all(client, listener)


@ensure
async def test_lf_only_line_endings(chat_server):
    client = await connect(chat_server.client_endpoint)
    client.transport.write(b"NICK lfonly\nUSER lf 0 * :LF Only\nJOIN #lf\n")
    await client.expect("001", "lfonly")
    await client.expect("JOIN", "#lf", source="lfonly!")
    # A line split across writes is reassembled.
    client.transport.write(b"PRIVMSG #lf")
    client.transport.write(b" :x\nPING :par")
    client.transport.write(b"tial\r\n")
    await client.expect("PONG", None, "partial")
    client.close()


@ensure
async def test_invalid_utf8_is_refused(chat_server):
    client = await register(chat_server, "sender")
    listener = await register(chat_server, "listener")
    client.send(b"PRIVMSG listener :caf\xe9")
    fail = await client.expect("FAIL", "PRIVMSG", "INVALID_UTF8")
    assert "UTF-8" in fail.params[-1]
    client.send("PRIVMSG listener :caf\u00e9")
    got = await listener.expect("PRIVMSG", "listener")
    assert got.params[-1] == "caf\u00e9"
    close_all(client, listener)


@ensure
async def test_endless_line_gets_one_417(chat_server):
    """A line with no end, arriving in many reads, is answered once and skipped to its end."""
    client = await register(chat_server, "endless")
    client.send("PING :before")
    await client.expect("PONG", None, "before")
    client.transport.write(b"PRIVMSG endless :")
    for _ in range(12):
        client.transport.write(b"w" * 30000)
        await task.deferLater(reactor, 0.01, lambda: None)  # let each piece be its own read
    client.send(" the end", "PING :after")
    got = await client.collect_until("PONG", None, "after")
    assert [m.command for m in got] == ["417", "PONG"]
    client.close()


@ensure
async def test_ipv6_client_host_is_shown_in_who_and_whois(chat_server):
    """``::1`` cannot be a middle parameter; it is shown as ``0::1`` the way IRC servers do."""
    from twisted.internet import endpoints

    listening = await endpoints.TCP6ServerEndpoint(reactor, 0, interface="::1").listen(
        chat_server.factory)
    try:
        port = listening.getHost().port
        six = await register(SimpleNamespace(client_endpoint=f"tcp:host=\\:\\:1:port={port}"),
                             "six")
        welcome = [m for m in six.messages if m.command == "001"][0]
        assert welcome.params[-1].endswith("six!~six@0::1")
        six.send("JOIN #v6", "WHO #v6", "WHOIS six")
        who = await six.expect("352")
        assert who.params[2:6] == ("~six", "0::1", "test.server", "six")
        whois = await six.expect("311")
        assert whois.params[1:4] == ("six", "~six", "0::1")
        six.close()
    finally:
        await listening.stopListening()


# -- issue 8 through real connections ------------------------------------------------------------


@ensure
async def test_a_pathological_ban_mask_does_not_stall_the_server(chat_server):
    """``*a*a…*b`` against a 30-letter nick: a backtracking matcher would hold the reactor for
    hours; every client's PING is still answered within the bounded wait."""
    op, bystander = await register(chat_server, "op"), await register(chat_server, "bystander")
    op.send("JOIN #trap", "MODE #trap +b " + "*a" * 20 + "*b")
    await op.expect("MODE", "#trap", "+b")
    victim = await register(chat_server, "a" * 30)
    victim.send("JOIN #trap", "WHO " + "*a" * 20 + "*b")
    await victim.expect("JOIN", "#trap")
    await victim.expect("315")
    bystander.send("PING :still-here")
    await bystander.expect("PONG", None, "still-here")
    close_all(op, bystander, victim)


@ensure
async def test_without_the_password_a_connection_holds_no_nick(password_server):
    squatter = await connect(password_server.client_endpoint)
    squatter.send("NICK admin")
    await squatter.sync()
    owner = await register(password_server, "admin", password="letmein")
    owner.send("WHOIS admin")
    await owner.expect("311", "admin", "admin")
    close_all(squatter, owner)


@ensure
async def test_secret_channels_and_long_lines_over_the_wire(chat_server):
    """A +s channel is 403 to outsiders; replies to long multi-byte input stay within 512 bytes."""
    op, outsider = await register(chat_server, "op"), await register(chat_server, "outsider")
    op.send("JOIN #hush", "MODE #hush +sk key")
    await op.expect("MODE", "#hush")
    outsider.send("MODE #hush", "MODE #hush b", "TOPIC #hush")
    for _ in range(3):
        await outsider.expect("403", "outsider", "#hush")
    op.send("TOPIC #hush :" + "é" * 240, "AWAY :" + "ü" * 240, "KICK #hush " + "x" * 300 + " :y")
    outsider.send("PRIVMSG op,#" + "x" * 400 + " :" + "ö" * 40, "WHOIS op")
    await op.expect("PRIVMSG", "op", "ö" * 40)
    await outsider.expect("318")
    await op.sync()
    assert all(len(line) <= 510 for client in (op, outsider) for line in client.raw)
    close_all(op, outsider)


@ensure
async def test_modern_irc_over_loopback(chat_server):
    """Issue 13 through real sockets: MONITOR, metadata to a subscriber, MARKREAD, WHOX, +B."""
    watcher = await register(chat_server, "watcher")
    watcher.send("CAP REQ :draft/metadata-2 draft/read-marker message-tags",
                 "METADATA * SUB avatar", "MONITOR + robot")
    await watcher.expect("770", "watcher", "avatar")
    await watcher.expect("731", "watcher", "robot")
    robot = await register(chat_server, "robot")
    await watcher.expect("730", "watcher", where=lambda m: m.params[1].startswith("robot!"))
    robot.send("MODE robot +B", "JOIN #lab")
    await robot.expect("366")
    watcher.send("JOIN #lab")
    await watcher.expect("MARKREAD", "#lab", "*")
    await watcher.expect("366")
    robot.send("METADATA * SET avatar :https://example.org/robot.png", "PRIVMSG #lab :beep")
    await robot.expect("761", "robot", "robot", "avatar", "*")
    await watcher.expect("METADATA", "robot", "avatar", "*", "https://example.org/robot.png")
    said = await watcher.expect("PRIVMSG", "#lab", "beep")
    assert "bot" in said.tags
    watcher.send("WHO #lab %tnaf,42", "MARKREAD #lab timestamp=2026-11-30T10:00:00.000Z")
    whox = await watcher.expect("354", "watcher", "42", "robot")
    assert whox.params[3:] == ("HB@", "0")  # fixed order: t n f a
    await watcher.expect("MARKREAD", "#lab", "timestamp=2026-11-30T10:00:00.000Z")
    robot.send("QUIT")
    await watcher.expect("731", "watcher", "robot")
    close_all(watcher, robot)


@ensure
async def test_a_twistedchat_bot_is_marked_a_bot_on_the_daemon(bot_runner, chat_user):
    """The daemon says BOT=B, so ``twistedchat.bot`` sets +B by default: WHOIS shows 335."""
    from twistedchat.bot import Bot
    from twistedchat.bot.testing import wait_until

    class Quiet(Bot):
        nickname = "quietbot"
        channels = ["#lobby"]

    await bot_runner(Quiet())
    alice = await chat_user("alice", "#lobby")
    await wait_until(lambda: any(u.is_bot for u in bot_runner.daemon.factory.core.state.users
                                 .values()), "the bot sets +B")
    alice.send("WHOIS quietbot")
    await alice.expect("335", "alice", "quietbot")
