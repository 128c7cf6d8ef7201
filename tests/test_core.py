"""The server's rules, exercised without sockets: users are list sinks, time is a fake clock."""

from __future__ import annotations

import pytest
from core_peers import FakeClock, Peer, commands, make_core, register

from twistedchat.server.commands import COMMANDS
from twistedchat.server.commands.modes import CHANNEL_MODES
from twistedchat.server.config import ServerConfig
from twistedchat.server.core import ServerCore
from twistedchat.server.relay import Relay, Variant
from twistedchat.server.state import (
    FLAG_MODES,
    LIST_MODES,
    PARAM_MODES,
    PREFIX_MODES,
    SET_PARAM_MODES,
)
from twistedchat.wire import numerics as N
from twistedchat.wire.message import Message, parse


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def core(clock: FakeClock) -> ServerCore:
    return make_core(clock)


# -- registration -----------------------------------------------------------------------------


def test_welcome_burst(core):
    peer = Peer(core)
    burst = peer.say("NICK alice", "USER alice 0 * :Alice A")
    got = commands(burst)
    assert got[:5] == ["001", "002", "003", "004", "005"]
    assert "251" in got and "255" in got
    assert got[-4:] == ["375", "372", "372", "376"]
    welcome = burst[0]
    assert welcome.params[0] == "alice"
    assert "alice!~alice@127.0.0.1" in welcome.params[1]


def test_isupport_is_truthful(core):
    tokens = core.isupport_tokens()
    assert "CASEMAPPING=rfc1459" in tokens
    assert "PREFIX=(ov)@+" in tokens
    assert "CHANMODES=beI,k,l,imnst" in tokens
    assert "MAXLIST=b:100,e:100,I:100" in tokens
    assert "NETWORK=Test" in tokens


def test_missing_motd_gives_422(clock):
    core = ServerCore(ServerConfig(), clock=clock)
    peer = Peer(core)
    assert commands(peer.say("NICK a", "USER a 0 * :a"))[-1] == N.ERR_NOMOTD


def test_cap_negotiation_holds_registration(core):
    peer = Peer(core)
    got = peer.say("CAP LS 302", "NICK bob", "USER bob 0 * :Bob")
    assert commands(got) == ["CAP"]
    assert got[0].params[:2] == ("*", "LS")
    offered = got[0].params[2].split()
    assert "server-time" in offered and "multi-prefix" in offered
    ack = peer.say("CAP REQ :multi-prefix server-time")
    assert ack[0].params[1:] == ("ACK", "multi-prefix server-time")
    assert not peer.user.registered
    assert commands(peer.say("CAP END"))[0] == "001"
    assert peer.user.caps == {"multi-prefix", "server-time"}


def test_cap_req_unknown_is_nakked_whole(core):
    peer = Peer(core)
    got = peer.say("CAP REQ :multi-prefix fancy-unknown")
    assert got[0].params[1] == "NAK"
    assert peer.user.caps == frozenset()


def test_invalid_cap_subcommand(core):
    peer = register(core, "a")
    assert peer.say("CAP FOO")[0].command == N.ERR_INVALIDCAPCMD


def test_commands_before_registration_get_451(core):
    peer = Peer(core)
    assert commands(peer.say("JOIN #a")) == [N.ERR_NOTREGISTERED]
    assert commands(peer.say("BOGUS")) == [N.ERR_NOTREGISTERED]


def test_nick_validation_and_collisions(core):
    register(core, "Alice")
    peer = Peer(core)
    assert commands(peer.say("NICK 1abc")) == [N.ERR_ERRONEUSNICKNAME]
    assert commands(peer.say("NICK")) == [N.ERR_NONICKNAMEGIVEN]
    assert commands(peer.say("NICK alice")) == [N.ERR_NICKNAMEINUSE]
    assert commands(peer.say("NICK ALICE")) == [N.ERR_NICKNAMEINUSE]
    # rfc1459 casemapping: [ ] \ ~ fold to { } | ^
    register(core, "x[y]")
    assert commands(peer.say("NICK X{Y}")) == [N.ERR_NICKNAMEINUSE]


def test_password_required(clock):
    core = ServerCore(ServerConfig(password="pw"), clock=clock)
    bad = Peer(core)
    got = bad.say("PASS nope", "NICK a", "USER a 0 * :a")
    assert commands(got) == [N.ERR_PASSWDMISMATCH, "ERROR"]
    assert bad.closed and not bad.user.registered
    good = Peer(core)
    assert commands(good.say("PASS pw", "NICK a", "USER a 0 * :a"))[0] == "001"


def test_reregistration_refused(core):
    peer = register(core, "a")
    assert commands(peer.say("USER a 0 * :a")) == [N.ERR_ALREADYREGISTERED]
    assert commands(peer.say("PASS x")) == [N.ERR_ALREADYREGISTERED]


def test_unknown_command_421(core):
    peer = register(core, "a")
    got = peer.say("FROB x")
    assert commands(got) == [N.ERR_UNKNOWNCOMMAND]
    assert got[0].params[1] == "FROB"


# -- channels -------------------------------------------------------------------------------


def test_join_everyone_sees_it_and_first_is_op(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    got = alice.say("JOIN #lobby")
    assert commands(got) == ["JOIN", N.RPL_NAMREPLY, N.RPL_ENDOFNAMES]
    assert got[1].params[-1] == "@alice"
    got = bob.say("JOIN #Lobby")
    assert got[0].params == ("#lobby",)
    assert got[1].params[-1] == "@alice bob"
    seen = alice.take()
    assert seen[0].command == "JOIN" and seen[0].source.startswith("bob!")


def test_join_several_with_keys_and_join_zero(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #a,#b", "MODE #b +k sesame")
    assert N.ERR_BADCHANNELKEY in commands(bob.say("JOIN #a,#b"))
    bob.say("PART #a")
    got = bob.say("JOIN #a,#b x,sesame")
    assert [m.params[0] for m in got if m.command == "JOIN"] == ["#a", "#b"]
    got = bob.say("JOIN 0")
    assert [m.params[0] for m in got if m.command == "PART"] == ["#a", "#b"]
    assert bob.user.channels == {}


def test_bad_channel_names(core):
    alice = register(core, "alice")
    assert commands(alice.say("JOIN lobby")) == [N.ERR_BADCHANNAME]
    assert commands(alice.say("JOIN #" + "x" * 60)) == [N.ERR_BADCHANNAME]
    assert commands(alice.say("PART #nowhere")) == [N.ERR_NOSUCHCHANNEL]
    assert commands(alice.say("JOIN")) == [N.ERR_NEEDMOREPARAMS]


def test_messages_reach_everyone_else_in_the_channel(core):
    alice, bob, carol = (register(core, n) for n in ("alice", "bob", "carol"))
    for peer in (alice, bob, carol):
        peer.say("JOIN #lobby")
    alice.take(), bob.take()
    assert alice.say("PRIVMSG #lobby :hello all") == []
    for peer in (bob, carol):
        (msg,) = peer.take()
        assert msg.command == "PRIVMSG"
        assert msg.params == ("#lobby", "hello all")
        assert msg.source == "alice!~alice@127.0.0.1"


def test_relayed_line_is_encoded_once(core):
    alice, bob, carol = (register(core, n) for n in ("alice", "bob", "carol"))
    for peer in (alice, bob, carol):
        peer.say("JOIN #lobby")
    bob.take(), carol.take()
    alice.say("PRIVMSG #lobby :same bytes")
    assert bob.user.outbox[0] is carol.user.outbox[0]


def test_private_messages_several_targets_and_errors(core):
    alice, bob, carol = (register(core, n) for n in ("alice", "bob", "carol"))
    got = alice.say("PRIVMSG bob,carol,nobody :hi")
    assert commands(got) == [N.ERR_NOSUCHNICK]
    assert bob.take()[0].params == ("bob", "hi")
    assert carol.take()[0].params == ("carol", "hi")
    assert commands(alice.say("PRIVMSG")) == [N.ERR_NORECIPIENT]
    assert commands(alice.say("PRIVMSG bob")) == [N.ERR_NOTEXTTOSEND]
    assert commands(alice.say("PRIVMSG a,b,c,d,e :x"))[0] == N.ERR_TOOMANYTARGETS


def test_notice_never_gets_automatic_replies(core):
    alice = register(core, "alice")
    assert alice.say("NOTICE nobody :x", "NOTICE #none :x", "NOTICE") == []


def test_away_reply(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    assert commands(bob.say("AWAY :lunch")) == [N.RPL_NOWAWAY]
    got = alice.say("PRIVMSG bob :you there?")
    assert commands(got) == [N.RPL_AWAY]
    assert got[0].params[1:] == ("bob", "lunch")
    assert commands(bob.say("AWAY")) == [N.RPL_UNAWAY]
    assert alice.say("PRIVMSG bob :back?") == []


def test_echo_message_cap(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("CAP REQ echo-message", "JOIN #c")
    bob.say("JOIN #c")
    got = alice.say("PRIVMSG #c :mine")
    assert [m.params for m in got if m.command == "PRIVMSG"] == [("#c", "mine")]


def test_server_time_and_client_tags(core, clock):
    alice, bob = register(core, "alice"), register(core, "bob")
    bob.say("CAP REQ :server-time message-tags")
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    core.handle(alice.user, parse("@+draft/react=x;secret=y PRIVMSG #c :tagged"))
    (msg,) = bob.take()
    assert msg.tags["+draft/react"] == "x"
    assert "secret" not in msg.tags
    assert msg.tags["time"].endswith("Z")


def test_nick_change_seen_by_channel_and_self(core):
    alice, bob, loner = (register(core, n) for n in ("alice", "bob", "loner"))
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    alice.take()
    got = bob.say("NICK robert")
    assert got[0].command == "NICK" and got[0].source.startswith("bob!")
    assert alice.take()[0].params == ("robert",)
    assert loner.take() == []
    assert core.state.find_user("robert") is bob.user
    assert core.state.find_user("bob") is None


def test_quit_with_reason_is_seen(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    alice.take()
    got = bob.say("QUIT :gone fishing")
    assert got[-1].command == "ERROR"
    assert bob.closed
    (quit_msg,) = alice.take()
    assert quit_msg.command == "QUIT" and quit_msg.params == ("Quit: gone fishing",)
    assert core.state.find_user("bob") is None


def test_connection_lost_announces_quit_once(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c,#d")
    bob.say("JOIN #c,#d")
    alice.take()
    core.connection_lost(bob.user, "Connection closed")
    core.connection_lost(bob.user, "Connection closed")
    assert commands(alice.take()) == ["QUIT"]


def test_topic_rules(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    assert commands(bob.say("TOPIC #c")) == [N.RPL_NOTOPIC]
    assert commands(bob.say("TOPIC #c :mine")) == [N.ERR_CHANOPRIVSNEEDED]
    alice.say("TOPIC #c :Welcome here")
    assert bob.take()[0].params == ("#c", "Welcome here")
    assert commands(bob.say("TOPIC #c")) == [N.RPL_TOPIC, N.RPL_TOPICWHOTIME]
    alice.say("MODE #c -t")
    bob.say("TOPIC #c :now mine")
    assert core.state.find_channel("#c").topic == "now mine"


def test_names_with_multi_prefix(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    alice.say("MODE #c +v alice")
    bob.say("CAP REQ multi-prefix")
    got = bob.say("NAMES #c")
    assert got[0].params[-1] == "@+alice bob"
    got = alice.say("NAMES #c")
    assert got[0].params[-1] == "@alice bob"


def test_names_split_across_lines(core):
    alice = register(core, "alice")
    alice.say("JOIN #big")
    for i in range(80):
        register(core, f"user{i:03d}_longer_nickname").say("JOIN #big")
    got = [m for m in alice.say("NAMES #big") if m.command == N.RPL_NAMREPLY]
    assert len(got) > 1
    assert all(len(m.to_bytes()) <= 512 for m in got)
    assert sum(len(m.params[-1].split()) for m in got) == 81


def test_list_hides_secret_channels(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #open,#hidden", "TOPIC #open :about", "MODE #hidden +s")
    got = bob.say("LIST")
    listed = [m.params[1:] for m in got if m.command == N.RPL_LIST]
    assert listed == [("#open", "1", "about")]
    assert got[0].command == N.RPL_LISTSTART and got[-1].command == N.RPL_LISTEND


def test_who_and_whois(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c")
    bob.say("JOIN #c", "AWAY :away")
    got = alice.say("WHO #c")
    rows = {m.params[5]: m.params[6] for m in got if m.command == N.RPL_WHOREPLY}
    assert rows == {"alice": "H@", "bob": "G"}
    got = alice.say("WHOIS bob")
    assert commands(got) == [
        N.RPL_WHOISUSER, N.RPL_WHOISCHANNELS, N.RPL_WHOISSERVER, N.RPL_AWAY,
        N.RPL_WHOISIDLE, N.RPL_ENDOFWHOIS,
    ]
    assert commands(alice.say("WHOIS ghost")) == [N.ERR_NOSUCHNICK, N.RPL_ENDOFWHOIS]


def test_invite_only_and_invite(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c", "MODE #c +i")
    assert commands(bob.say("JOIN #c")) == [N.ERR_INVITEONLYCHAN]
    assert commands(alice.say("INVITE bob #c")) == [N.RPL_INVITING]
    assert bob.take()[0].command == "INVITE"
    assert bob.say("JOIN #c")[0].command == "JOIN"
    assert commands(alice.say("INVITE bob #c")) == [N.ERR_USERONCHANNEL]
    assert commands(bob.say("INVITE alice #nowhere")) == [N.ERR_NOSUCHCHANNEL]


def test_kick(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    assert commands(bob.say("KICK #c alice")) == [N.ERR_CHANOPRIVSNEEDED]
    alice.say("KICK #c bob :behave")
    kick = bob.take()[-1]
    assert kick.command == "KICK" and kick.params == ("#c", "bob", "behave")
    assert bob.user.channels == {}
    assert commands(alice.say("KICK #c bob")) == [N.ERR_USERNOTINCHANNEL]


def test_moderated_and_no_external(core):
    alice, bob, outsider = (register(core, n) for n in ("alice", "bob", "out"))
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    assert commands(outsider.say("PRIVMSG #c :hi")) == [N.ERR_CANNOTSENDTOCHAN]
    alice.say("MODE #c +m")
    assert commands(bob.say("PRIVMSG #c :hi")) == [N.ERR_CANNOTSENDTOCHAN]
    alice.say("MODE #c +v bob")
    assert bob.say("PRIVMSG #c :hi") == []


def test_key_limit_and_ban(core):
    alice, bob, carol = (register(core, n) for n in ("alice", "bob", "carol"))
    alice.say("JOIN #c")
    got = alice.say("MODE #c +l 2")
    assert got[0].params == ("#c", "+l", "2")
    bob.say("JOIN #c")
    assert commands(carol.say("JOIN #c")) == [N.ERR_CHANNELISFULL]
    alice.say("MODE #c -l+b carol")
    assert core.state.find_channel("#c").bans.keys() == {"carol!*@*"}
    assert commands(carol.say("JOIN #c")) == [N.ERR_BANNEDFROMCHAN]
    got = alice.say("MODE #c b")
    assert commands(got) == [N.RPL_BANLIST, N.RPL_ENDOFBANLIST]
    alice.say("MODE #c +b bob")
    assert commands(bob.say("PRIVMSG #c :x")) == [N.ERR_CANNOTSENDTOCHAN]


def test_mode_query_and_errors(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c", "MODE #c +k key")
    got = alice.say("MODE #c")
    assert got[0].params[1:] == ("#c", "+ntk", "key")
    bob_view = bob.say("MODE #c")
    assert bob_view[0].params[-1] == "*"
    assert commands(alice.say("MODE #c +z")) == [N.ERR_UNKNOWNMODE]
    assert commands(alice.say("MODE #c +o ghost")) == [N.ERR_NOSUCHNICK]
    assert commands(alice.say("MODE #c +o bob")) == [N.ERR_USERNOTINCHANNEL]
    assert commands(alice.say("MODE #c +l abc")) == [N.ERR_INVALIDMODEPARAM]
    assert commands(alice.say("MODE #nope")) == [N.ERR_NOSUCHCHANNEL]


def test_op_and_voice_prefixes(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    got = alice.say("MODE #c +ov bob bob")
    assert got[0].params == ("#c", "+ov", "bob", "bob")
    channel = core.state.find_channel("#c")
    assert channel.members[bob.user] == "ov"
    alice.say("MODE #c -o bob")
    assert channel.members[bob.user] == "v"


def test_user_modes(core):
    alice, _bob = register(core, "alice"), register(core, "bob")
    assert alice.say("MODE alice +i")[0].params == ("alice", "+i")
    assert alice.say("MODE alice")[0].params[1] == "+i"
    assert commands(alice.say("MODE bob +i")) == [N.ERR_USERSDONTMATCH]
    assert commands(alice.say("MODE alice +o")) == []
    assert commands(alice.say("MODE alice +x")) == [N.ERR_UMODEUNKNOWNFLAG]


def test_oper_and_kill(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    assert commands(alice.say("KILL bob :no")) == [N.ERR_NOPRIVILEGES]
    assert commands(alice.say("OPER admin wrong")) == [N.ERR_PASSWDMISMATCH]
    assert commands(alice.say("OPER admin secret")) == ["MODE", N.RPL_YOUREOPER]
    alice.say("KILL bob :spamming")
    got = bob.take()
    assert got[0].command == "KILL" and got[-1].command == "ERROR"
    assert bob.closed
    assert core.state.find_user("bob") is None


def test_no_olines(clock):
    core = ServerCore(ServerConfig(), clock=clock)
    alice = register(core, "alice")
    assert commands(alice.say("OPER a b")) == [N.ERR_NOOPERHOST]


def test_ping_pong_and_simple_queries(core):
    alice = register(core, "alice")
    assert alice.say("PING token")[0].params == ("irc.test", "token")
    assert commands(alice.say("PING")) == [N.ERR_NEEDMOREPARAMS]
    assert commands(alice.say("TIME")) == [N.RPL_TIME]
    assert commands(alice.say("VERSION"))[0] == N.RPL_VERSION
    assert commands(alice.say("MOTD")) == [N.RPL_MOTDSTART, N.RPL_MOTD, N.RPL_MOTD,
                                          N.RPL_ENDOFMOTD]
    assert alice.say("ISON alice ghost")[0].params[-1] == "alice"
    assert commands(alice.say("LUSERS"))[0] == N.RPL_LUSERCLIENT


def test_sweep_pings_then_drops_idle_users(core, clock):
    alice = register(core, "alice")
    pending = Peer(core)
    clock.now += core.config.ping_interval
    core.sweep()
    assert commands(alice.take()) == ["PING"]
    alice.say("PONG irc.test")
    alice.user.last_seen = clock.now
    clock.now += core.config.ping_interval + core.config.ping_timeout
    core.sweep()
    got = alice.take()
    assert got[-1].command == "ERROR" and "Ping timeout" in got[-1].params[0]
    assert pending.closed and "Registration timed out" in pending.take()[-1].params[0]


def test_shutdown_tells_everyone(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    core.shutdown("Server shutting down")
    for peer in (alice, bob):
        assert peer.take()[-1].params[0].endswith("(Server shutting down)")
        assert peer.closed
    assert core.state.users == {}


def test_mode_params_that_cannot_be_relayed_are_refused(core):
    alice = register(core, "alice")
    alice.say("JOIN #c")
    got = alice.say("MODE #c +b ::x", "MODE #c +b y", "MODE #c +k ::k")
    assert commands(got) == [N.ERR_INVALIDMODEPARAM, "MODE", N.ERR_INVALIDMODEPARAM]
    assert core.state.find_channel("#c").bans.keys() == {"y!*@*"}


def test_echoed_names_stay_well_formed(core):
    alice = register(core, "alice")
    alice.say("JOIN #c")
    (reply,) = alice.say("KICK #c ::x")
    assert reply.command == N.ERR_USERNOTINCHANNEL
    assert reply.params[1] == "*"


def test_names_chunks_cut_at_spaces_within_room():
    from twistedchat.wire.fitting import chunks as _chunks

    text = " ".join(f"nick{i}" for i in range(200))
    pieces = _chunks(text, 50)
    assert " ".join(pieces) == text
    assert all(len(p) <= 50 for p in pieces)
    assert _chunks("", 50) == []
    assert _chunks("é" * 30 + " x", 40) == ["é" * 30, "x"]


def test_whowas_remembers_quits_and_nick_changes(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    bob.say("NICK robert")
    bob.say("QUIT :bye")
    got = alice.say("WHOWAS bob")
    assert commands(got) == [N.RPL_WHOWASUSER, N.RPL_WHOISSERVER, N.RPL_ENDOFWHOWAS]
    assert got[0].params[1:4] == ("bob", "~bob", "127.0.0.1")
    assert commands(alice.say("WHOWAS robert"))[0] == N.RPL_WHOWASUSER
    assert commands(alice.say("WHOWAS nobody")) == [N.ERR_WASNOSUCHNICK, N.RPL_ENDOFWHOWAS]
    assert commands(alice.say("WHOWAS")) == [N.ERR_NONICKNAMEGIVEN]


def test_lusers_counts_follow_modes_and_quits(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    Peer(core)  # an unregistered connection
    alice.say("MODE alice +i", "OPER admin secret")
    got = {m.command: m.params for m in bob.say("LUSERS")}
    assert got[N.RPL_LUSERCLIENT][-1] == "There are 1 users and 1 invisible on 1 servers"
    assert got[N.RPL_LUSEROP][1] == "1"
    assert got[N.RPL_LUSERUNKNOWN][1] == "1"
    alice.say("QUIT")
    got = {m.command: m.params for m in bob.say("LUSERS")}
    assert got[N.RPL_LUSERCLIENT][-1] == "There are 1 users and 0 invisible on 1 servers"
    assert N.RPL_LUSEROP not in got


def test_long_messages_are_cut_to_fit_when_relayed(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    text = "é" * 300  # 600 bytes: more than a line can carry
    core.handle(alice.user, Message("PRIVMSG", ("bob", text)))
    (line,) = bob.user.outbox
    assert len(line) <= 512
    relayed = parse(line).params[1]
    assert text.startswith(relayed) and len(relayed) > 200


def test_counts_that_are_digits_but_not_ascii_are_refused_not_crashed_on(core):
    """``"²".isdigit()`` is True but ``int("²")`` raises: found by the fuzz test (WHOWAS #c ²)."""
    alice, bob = register(core, "alice"), register(core, "bob")
    bob.say("QUIT :bye")
    assert commands(alice.say("WHOWAS bob ²")) == [
        N.RPL_WHOWASUSER, N.RPL_WHOISSERVER, N.RPL_ENDOFWHOWAS]
    alice.say("JOIN #c")
    assert commands(alice.say("MODE #c +l ²")) == [N.ERR_INVALIDMODEPARAM]
    assert commands(alice.say("MODE #c +l ١٢")) == [N.ERR_INVALIDMODEPARAM]  # Arabic-Indic


# -- the command table ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_handler_docstring_is_its_syntax_line(name):
    spec = COMMANDS[name]
    assert spec.syntax.split()[0] == name
    assert spec.handler.__doc__.strip().splitlines()[0] == spec.syntax


@pytest.mark.parametrize("name", sorted(n for n, c in COMMANDS.items() if c.min_params))
def test_missing_parameters_get_461_from_the_table(core, name):
    alice = register(core, "alice")
    if COMMANDS[name].oper_only:
        alice.say("OPER admin secret")
    got = alice.say(name)
    assert commands(got) == [N.ERR_NEEDMOREPARAMS]
    assert got[0].params[1:] == (name, "Not enough parameters")


@pytest.mark.parametrize("name", sorted(n for n, c in COMMANDS.items() if not c.pre_registration))
def test_commands_after_registration_only_get_451_before(core, name):
    assert commands(Peer(core).say(f"{name} x y z")) == [N.ERR_NOTREGISTERED]


def test_operator_commands_get_481_from_the_table(core):
    alice, _bob = register(core, "alice"), register(core, "bob")
    for name in (n for n, c in COMMANDS.items() if c.oper_only):
        assert commands(alice.say(f"{name} bob x")) == [N.ERR_NOPRIVILEGES]


def test_channel_mode_table_covers_what_isupport_announces():
    announced = LIST_MODES + PARAM_MODES + SET_PARAM_MODES + FLAG_MODES + PREFIX_MODES
    assert sorted(CHANNEL_MODES) == sorted(announced)


#: For each channel mode: the MODE line that sets it, the one that unsets it, and how to see it.
MODE_CASES = {
    "i": ("+i", "-i", lambda ch: "i" in ch.modes),
    "m": ("+m", "-m", lambda ch: "m" in ch.modes),
    "n": ("+n", "-n", lambda ch: "n" in ch.modes),
    "s": ("+s", "-s", lambda ch: "s" in ch.modes),
    "t": ("+t", "-t", lambda ch: "t" in ch.modes),
    "b": ("+b bad", "-b bad!*@*", lambda ch: "bad!*@*" in ch.bans),
    "e": ("+e good", "-e good!*@*", lambda ch: "good!*@*" in ch.excepts),
    "I": ("+I *!*@guest", "-I *!*@guest", lambda ch: "*!*@guest" in ch.invex),
    "k": ("+k sesame", "-k sesame", lambda ch: ch.key == "sesame"),
    "l": ("+l 5", "-l", lambda ch: ch.limit == 5),
    "o": ("+o bob", "-o bob", lambda ch: "o" in ch.members[next(u for u in ch.members
                                                                 if u.nick == "bob")]),
    "v": ("+v bob", "-v bob", lambda ch: "v" in ch.members[next(u for u in ch.members
                                                                 if u.nick == "bob")]),
}


@pytest.mark.parametrize("letter", sorted(CHANNEL_MODES))
def test_each_channel_mode_sets_unsets_and_is_relayed(core, letter):
    set_line, unset_line, is_set = MODE_CASES[letter]
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c", "MODE #c -nt")
    bob.say("JOIN #c")
    channel = core.state.find_channel("#c")
    assert not is_set(channel)
    bob.take()
    assert commands(bob.say(f"MODE #c {set_line}")) == [N.ERR_CHANOPRIVSNEEDED]
    alice.say(f"MODE #c {set_line}")
    assert is_set(channel)
    (seen,) = bob.take()
    assert seen.command == "MODE" and seen.params[1] == "+" + letter
    if letter not in "kl":  # setting again changes nothing and says nothing (k, l: new value)
        assert alice.say(f"MODE #c {set_line}") == []
    bob.take()
    alice.say(f"MODE #c {unset_line}")
    assert not is_set(channel)
    (seen,) = bob.take()
    assert seen.params[1] == "-" + letter


def test_variant_follows_capabilities(core):
    alice = register(core, "alice")
    assert alice.user.variant is Variant.PLAIN
    alice.say("CAP REQ :server-time message-tags")
    assert alice.user.variant == Variant.SERVER_TIME | Variant.MESSAGE_TAGS
    alice.say("CAP REQ -server-time")
    assert alice.user.variant == Variant.MESSAGE_TAGS


def test_relay_bus_hears_each_relayed_line_once(core):
    heard: list[Relay] = []
    core.bus.subscribe(heard.append)
    peers = [register(core, f"u{n}") for n in range(5)]
    for peer in peers:
        peer.say("JOIN #c")
    heard.clear()
    peers[0].say("PRIVMSG #c :to all")
    (relay,) = heard
    assert relay.message.params == ("#c", "to all") and relay.msgid
    assert all(peer.take()[-1].params == ("#c", "to all") for peer in peers[1:])
    core.bus.unsubscribe(heard.append)
    peers[0].say("PRIVMSG #c :unheard")
    assert len(heard) == 1
