"""The modern IRC the server speaks (issue 13): MONITOR, WHOX, bot mode, SETNAME, channel lists
and extbans, STATUSMSG, WALLOPS, HELP, LINKS, read markers and metadata. Sans-IO, exact."""

from __future__ import annotations

import pytest
from core_peers import Peer, commands, register

from twistedchat.server.core import ServerCore
from twistedchat.server.state import (
    METADATA_MAX_KEYS,
    METADATA_MAX_SUBS,
    METADATA_MAX_VALUE_BYTES,
    MONITOR_LIMIT,
    REALLEN,
)
from twistedchat.wire import numerics as N


def with_caps(core: ServerCore, nick: str, *caps: str) -> Peer:
    """A registered connection that negotiated ``caps``."""
    peer = Peer(core)
    peer.say("CAP LS 302", f"CAP REQ :{' '.join(caps)}", f"NICK {nick}", f"USER {nick} 0 * :R",
             "CAP END")
    assert peer.user.registered and set(caps) <= peer.user.caps
    peer.take()
    return peer


# -- MONITOR ------------------------------------------------------------------------------------


def test_monitor_add_reports_online_and_offline(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    got = alice.say("MONITOR + bob,carol")
    assert [(m.command, m.params[1]) for m in got] == [
        (N.RPL_MONONLINE, bob.user.source), (N.RPL_MONOFFLINE, "carol")]
    assert core.state.watchers["carol"] == {alice.user}


def test_monitor_notifies_on_connect_nick_change_and_quit(core):
    alice = register(core, "alice")
    alice.say("MONITOR + Carol,dave")
    carol = register(core, "carol")
    (online,) = alice.take()
    assert online.command == N.RPL_MONONLINE and online.params[1] == carol.user.source
    carol.say("NICK dave")
    assert [(m.command, m.params[1]) for m in alice.take()] == [
        (N.RPL_MONOFFLINE, "carol"), (N.RPL_MONONLINE, carol.user.source)]
    carol.say("NICK DAVE")  # the same nick under the casemapping: no news
    assert alice.take() == []
    carol.say("QUIT :bye")
    assert [(m.command, m.params[1]) for m in alice.take()] == [(N.RPL_MONOFFLINE, "DAVE")]


def test_monitor_list_status_remove_and_clear(core):
    alice = register(core, "alice")
    register(core, "bob")
    alice.say("MONITOR + bob,carol")
    got = alice.say("MONITOR L")
    assert commands(got) == [N.RPL_MONLIST, N.RPL_ENDOFMONLIST]
    assert sorted(got[0].params[1].split(",")) == ["bob", "carol"]
    assert commands(alice.say("MONITOR S")) == [N.RPL_MONONLINE, N.RPL_MONOFFLINE]
    alice.say("MONITOR - BOB")
    assert alice.say("MONITOR L")[0].params[1] == "carol"
    alice.say("MONITOR C")
    assert commands(alice.say("MONITOR L")) == [N.RPL_ENDOFMONLIST]
    assert core.state.watchers == {}


def test_monitor_limit_holds_with_734(core):
    alice = register(core, "alice")
    names = [f"n{i}" for i in range(MONITOR_LIMIT + 3)]
    got = alice.say("MONITOR + " + ",".join(names[:MONITOR_LIMIT - 1]))
    assert N.ERR_MONLISTFULL not in commands(got)
    got = alice.say("MONITOR + " + ",".join(names[MONITOR_LIMIT - 1:]))
    full = [m for m in got if m.command == N.ERR_MONLISTFULL]
    assert len(full) == 1
    assert full[0].params[1:3] == (str(MONITOR_LIMIT), ",".join(names[MONITOR_LIMIT:]))
    assert len(alice.user.monitoring) == MONITOR_LIMIT
    assert f"MONITOR={MONITOR_LIMIT}" in core.isupport_tokens()


def test_monitor_index_is_cleared_on_quit(core):
    alice = register(core, "alice")
    alice.say("MONITOR + bob,carol")
    alice.say("QUIT")
    assert core.state.watchers == {}


def test_monitor_bad_input(core):
    alice = register(core, "alice")
    assert commands(alice.say("MONITOR +")) == [N.ERR_NEEDMOREPARAMS]
    got = alice.say("MONITOR X bob")
    assert got[0].command == "FAIL" and got[0].params[:2] == ("MONITOR", "INVALID_PARAMS")
    assert alice.say("MONITOR + 1bad,#chan") == []  # not nicknames: nothing watched
    assert alice.user.monitoring == {}


def test_extended_monitor_gets_away_and_setname_without_a_shared_channel(core):
    watcher = with_caps(core, "watcher", "extended-monitor", "away-notify", "setname")
    plain = with_caps(core, "plain", "away-notify", "setname")  # monitors, no extended-monitor
    bob = register(core, "bob")
    watcher.say("MONITOR + bob")
    plain.say("MONITOR + bob")
    bob.say("AWAY :lunch", "SETNAME :Robert")
    assert [(m.command, m.params) for m in watcher.take()] == [
        ("AWAY", ("lunch",)), ("SETNAME", ("Robert",))]
    assert plain.take() == []


def test_extended_monitor_and_a_shared_channel_notify_once(core):
    watcher = with_caps(core, "watcher", "extended-monitor", "away-notify")
    bob = register(core, "bob")
    watcher.say("MONITOR + bob", "JOIN #c")
    bob.say("JOIN #c")
    watcher.take()
    bob.say("AWAY :gone")
    assert commands(watcher.take()) == ["AWAY"]


# -- WHOX ---------------------------------------------------------------------------------------


def test_whox_fields_come_in_fixed_order_with_token(core, clock):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c")
    bob.say("JOIN #c", "AWAY :out")
    clock.now += 7
    got = alice.say("WHO #c %rnaftcuhidlos,123")
    replies = [m for m in got if m.command == N.RPL_WHOSPCRPL]
    assert commands(got)[-1] == N.RPL_ENDOFWHO
    by_nick = {m.params[7]: m.params for m in replies}
    assert by_nick["bob"] == ("alice", "123", "#c", "~bob", "127.0.0.1", "127.0.0.1", "irc.test",
                              "bob", "G", "0", "7", "0", "n/a", "Real bob")
    assert by_nick["alice"][8] == "H@"


def test_whox_account_field_follows_the_user_account(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    core.state.set_account(bob.user, "Robert")
    got = alice.say("WHO bob %na")
    assert [m.params for m in got if m.command == N.RPL_WHOSPCRPL] == [("alice", "bob", "Robert")]


def test_whox_without_percent_is_plain_who_and_bad_token_is_zero(core):
    alice = register(core, "alice")
    assert commands(alice.say("WHO alice o")) == [N.RPL_WHOREPLY, N.RPL_ENDOFWHO]
    got = alice.say("WHO alice %tn,abcd")
    assert got[0].params == ("alice", "0", "alice")


def test_whox_is_announced(core):
    assert "WHOX" in core.isupport_tokens()


# -- bot mode -----------------------------------------------------------------------------------


def test_bot_mode_tag_whois_and_who_flag(core):
    bot = register(core, "bot")
    tagged = with_caps(core, "tagged", "message-tags")
    plain = register(core, "plain")
    for peer in (bot, tagged, plain):
        peer.say("JOIN #c")
    tagged.take(), plain.take()
    assert commands(bot.say("MODE bot +B")) == ["MODE"]
    assert "B" in bot.user.modes
    bot.say("PRIVMSG #c :beep", "NOTICE tagged :boop")
    got = tagged.take()
    assert [m.tags.get("bot") for m in got] == ["", ""] and "msgid" in got[0].tags
    assert [m.tags for m in plain.take()] == [{}]
    whois = commands(plain.say("WHOIS bot"))
    assert N.RPL_WHOISBOT in whois
    who = plain.say("WHO bot")[0]
    assert who.params[6] == "HB"
    assert "BOT=B" in core.isupport_tokens()
    bot.say("MODE bot -B", "PRIVMSG #c :human now")
    assert "bot" not in tagged.take()[0].tags


def test_user_mode_w_and_wallops_from_operators_only(core):
    admin, watcher, other = register(core, "admin"), register(core, "watcher"), register(core, "o")
    watcher.say("MODE watcher +w")
    assert commands(admin.say("WALLOPS :hi")) == [N.ERR_NOPRIVILEGES]
    admin.say("OPER admin secret")
    admin.say("WALLOPS :server restarts soon")
    (seen,) = watcher.take()
    assert seen.command == "WALLOPS" and seen.params == ("server restarts soon",)
    assert seen.source == admin.user.source
    assert other.take() == [] and admin.take() == []
    watcher.say("MODE watcher -w")
    admin.say("WALLOPS :again")
    assert watcher.take() == []
    watcher.say("QUIT")
    assert core.state.wallops == set()


# -- SETNAME ------------------------------------------------------------------------------------


def test_setname_goes_to_self_and_channels_with_the_cap(core):
    alice = with_caps(core, "alice", "setname")
    bob = with_caps(core, "bob", "setname")
    carol = register(core, "carol")
    for peer in (alice, bob, carol):
        peer.say("JOIN #c")
    bob.take(), carol.take()
    got = alice.say("SETNAME :Alice Liddell")
    assert [(m.command, m.params) for m in got] == [("SETNAME", ("Alice Liddell",))]
    assert [m.params for m in bob.take()] == [("Alice Liddell",)]
    assert carol.take() == []
    assert alice.user.realname == "Alice Liddell"
    assert carol.say("WHOIS alice")[0].params[-1] == "Alice Liddell"


def test_setname_too_long_is_refused_not_cut(core):
    alice = with_caps(core, "alice", "setname")
    got = alice.say("SETNAME :" + "é" * (REALLEN // 2 + 1))  # in bytes, over NAMELEN
    assert got[0].command == "FAIL" and got[0].params[:2] == ("SETNAME", "INVALID_REALNAME")
    assert alice.user.realname == "R"
    assert f"NAMELEN={REALLEN}" in core.isupport_tokens()
    assert commands(alice.say("SETNAME")) == [N.ERR_NEEDMOREPARAMS]


# -- channel lists: +e, +I, the mute extban ----------------------------------------------------


def test_ban_exception_lets_a_banned_user_join(core):
    op, guest = register(core, "op"), register(core, "guest")
    op.say("JOIN #c", "MODE #c +b *!*@127.0.0.1")
    assert commands(guest.say("JOIN #c")) == [N.ERR_BANNEDFROMCHAN]
    op.say("MODE #c +e guest")
    assert commands(guest.say("JOIN #c"))[0] == "JOIN"


def test_invite_exception_opens_invite_only(core):
    op, guest, stranger = register(core, "op"), register(core, "guest"), register(core, "x")
    op.say("JOIN #c", "MODE #c +i", "MODE #c +I guest!*@*")
    assert commands(stranger.say("JOIN #c")) == [N.ERR_INVITEONLYCHAN]
    assert commands(guest.say("JOIN #c"))[0] == "JOIN"


@pytest.mark.parametrize("spelling", ["m:loud", "~m:loud", "m:loud!*@*"])
def test_mute_extban_silences_but_lets_join(core, spelling):
    op, loud = register(core, "op"), register(core, "loud")
    op.say("JOIN #c")
    got = op.say(f"MODE #c +b {spelling}")
    assert got[0].params[1:] == ("+b", "m:loud!*@*")
    assert commands(loud.say("JOIN #c"))[0] == "JOIN"
    op.take()
    assert commands(loud.say("PRIVMSG #c :hello")) == [N.ERR_CANNOTSENDTOCHAN]
    assert op.take() == []
    op.say("MODE #c +v loud")  # voice speaks past a mute, as past +m
    loud.say("PRIVMSG #c :now I can")
    assert commands(op.take()) == ["PRIVMSG"]


def test_mute_exception(core):
    op, loud = register(core, "op"), register(core, "loud")
    op.say("JOIN #c", "MODE #c +b m:*!*@*", "MODE #c +e m:loud")
    loud.say("JOIN #c")
    assert commands(loud.say("PRIVMSG #c :excepted")) == []
    assert "EXTBAN=,m" in core.isupport_tokens()
    assert "EXCEPTS=e" in core.isupport_tokens() and "INVEX=I" in core.isupport_tokens()


def test_list_queries_for_each_list(core):
    op = register(core, "op")
    op.say("JOIN #c", "MODE #c +beI a b c")
    assert [(m.command, m.params[2]) for m in op.say("MODE #c e")] == [
        (N.RPL_EXCEPTLIST, "b!*@*"), (N.RPL_ENDOFEXCEPTLIST, "End of channel exception list")]
    assert [(m.command, m.params[2]) for m in op.say("MODE #c +I")] == [
        (N.RPL_INVITELIST, "c!*@*"), (N.RPL_ENDOFINVITELIST, "End of channel invite list")]
    assert commands(op.say("MODE #c b")) == [N.RPL_BANLIST, N.RPL_ENDOFBANLIST]


@pytest.mark.parametrize("letter", ["b", "e", "I"])
def test_each_list_holds_maxlist_then_478(core, letter):
    op = register(core, "op")
    op.say("JOIN #c")
    channel = core.state.find_channel("#c")
    for n in range(100):
        op.say(f"MODE #c +{letter} m{n}")
    assert len(channel.list_of(letter)) == 100
    got = op.say(f"MODE #c +{letter} one-more")
    assert [(m.command, m.params[2]) for m in got] == [(N.ERR_BANLISTFULL, letter)]
    assert len(channel.list_of(letter)) == 100


def test_invite_list_takes_no_mute(core):
    op = register(core, "op")
    op.say("JOIN #c")
    assert core.state.find_channel("#c").invex == {}
    op.say("MODE #c +I m:x")  # no extban on +I: an ordinary mask
    assert list(core.state.find_channel("#c").invex) == ["m:x!*@*"]


# -- STATUSMSG ----------------------------------------------------------------------------------


def test_statusmsg_reaches_only_that_status_and_up(core):
    op, voiced, plain = register(core, "op"), register(core, "voiced"), register(core, "plain")
    for peer in (op, voiced, plain):
        peer.say("JOIN #c")
    op.say("MODE #c +v voiced")
    for peer in (op, voiced, plain):
        peer.take()
    voiced.say("PRIVMSG @#c :ops only")
    assert [(m.command, m.params) for m in op.take()] == [("PRIVMSG", ("@#c", "ops only"))]
    assert voiced.take() == [] and plain.take() == []
    plain.say("NOTICE +#c :voiced and ops")
    assert commands(op.take()) == ["NOTICE"] and commands(voiced.take()) == ["NOTICE"]
    assert plain.take() == []
    assert "STATUSMSG=@+" in core.isupport_tokens()


def test_statusmsg_obeys_the_channel_rules_and_echo(core):
    op = with_caps(core, "op", "echo-message")
    outsider = register(core, "outsider")
    op.say("JOIN #c")
    assert commands(outsider.say("PRIVMSG @#c :hi")) == [N.ERR_CANNOTSENDTOCHAN]  # +n
    got = op.say("PRIVMSG +#c :echoed")
    assert [m.params for m in got] == [("+#c", "echoed")]
    assert commands(op.say("PRIVMSG @nobody :x")) == [N.ERR_NOSUCHNICK]


# -- HELP and LINKS ---------------------------------------------------------------------------


def test_help_answers_from_the_command_table(core):
    alice = register(core, "alice")
    got = alice.say("HELP privmsg")
    assert [(m.command, m.params[1:]) for m in got] == [
        (N.RPL_HELPSTART, ("PRIVMSG", core.commands["PRIVMSG"].syntax)),
        (N.RPL_ENDOFHELP, ("PRIVMSG", "End of /HELP"))]
    assert commands(alice.say("HELPOP nosuch")) == [N.ERR_HELPNOTFOUND]
    index = alice.say("HELP")
    listed = " ".join(m.params[2] for m in index if m.command == N.RPL_HELPTXT).split()
    assert listed == sorted(core.commands)
    assert commands(index)[0] == N.RPL_HELPSTART and commands(index)[-1] == N.RPL_ENDOFHELP


def test_links_shows_this_one_server(core):
    alice = register(core, "alice")
    got = alice.say("LINKS")
    assert [(m.command, m.params[1:3]) for m in got] == [
        (N.RPL_LINKS, ("*", "irc.test")), (N.RPL_ENDOFLINKS, ("*", "End of /LINKS list"))]
    assert got[0].params[3].startswith("0 ")
    assert commands(alice.say("LINKS *.elsewhere")) == [N.RPL_ENDOFLINKS]


# -- read markers -------------------------------------------------------------------------------

STAMP = "2026-11-30T10:00:00.123Z"


def test_markread_get_set_and_only_forward(core):
    alice = with_caps(core, "alice", "draft/read-marker")
    assert [m.params for m in alice.say("MARKREAD #c")] == [("#c", "*")]
    got = alice.say(f"MARKREAD #C timestamp={STAMP}")
    assert [(m.command, m.params) for m in got] == [("MARKREAD", ("#C", f"timestamp={STAMP}"))]
    older = alice.say("MARKREAD #c timestamp=2020-01-01T00:00:00.000Z")
    assert [m.params for m in older] == [("#c", f"timestamp={STAMP}")]
    assert [m.params for m in alice.say("MARKREAD #c")] == [("#c", f"timestamp={STAMP}")]
    newer = alice.say("MARKREAD bob timestamp=2027-01-15T00:00:00Z")  # canonical: .000
    assert [m.params for m in newer] == [("bob", "timestamp=2027-01-15T00:00:00.000Z")]


def test_markread_in_the_future_is_clamped_to_now(core, clock):
    alice = with_caps(core, "alice", "draft/read-marker")
    clock.now = 1_800_000_000.5  # 2027-01-15T08:00:00.500Z
    got = alice.say("MARKREAD #c timestamp=9999-12-31T23:59:59.999Z")
    assert [m.params for m in got] == [("#c", "timestamp=2027-01-15T08:00:00.500Z")]


def test_markread_on_join_comes_before_end_of_names(core):
    alice = with_caps(core, "alice", "draft/read-marker")
    got = alice.say("JOIN #c")
    codes = commands(got)
    assert codes.index("MARKREAD") < codes.index(N.RPL_ENDOFNAMES)
    assert got[codes.index("MARKREAD")].params == ("#c", "*")
    alice.say(f"MARKREAD #c timestamp={STAMP}", "PART #c")
    rejoined = alice.say("JOIN #c")
    assert [m.params for m in rejoined if m.command == "MARKREAD"] == [
        ("#c", f"timestamp={STAMP}")]
    assert "MARKREAD" not in commands(register(core, "bob").say("JOIN #c"))  # without the cap


@pytest.mark.parametrize("line", [
    "MARKREAD", "MARKREAD #c *", "MARKREAD #c timestamp=yesterday",
    "MARKREAD #c timestamp=2026-13-01T00:00:00.000Z", "MARKREAD #bad,name timestamp=x",
])
def test_markread_bad_input_gets_fail(core, line):
    alice = with_caps(core, "alice", "draft/read-marker")
    got = alice.say(line)
    assert [m.command for m in got] == ["FAIL"]
    assert got[0].params[0] == "MARKREAD"
    assert got[0].params[1] in ("NEED_MORE_PARAMS", "INVALID_PARAMS")


def test_markread_is_per_connection_without_an_account_and_gone_on_quit(core):
    alice = with_caps(core, "alice", "draft/read-marker")
    other = with_caps(core, "other", "draft/read-marker")
    alice.say(f"MARKREAD #c timestamp={STAMP}")
    assert other.take() == []
    assert [m.params for m in other.say("MARKREAD #c")] == [("#c", "*")]
    owner = alice.user.owner
    alice.say("QUIT")
    assert core.state.read_markers.get(owner, "#c") is None


def test_markread_reaches_the_accounts_other_connections(core):
    desktop = with_caps(core, "desktop", "draft/read-marker")
    browser = with_caps(core, "browser", "draft/read-marker")
    stranger = with_caps(core, "stranger", "draft/read-marker")
    for peer in (desktop, browser):
        core.state.set_account(peer.user, "alice")
    desktop.say(f"MARKREAD #c timestamp={STAMP}")
    assert [m.params for m in browser.take()] == [("#c", f"timestamp={STAMP}")]
    assert stranger.take() == []
    assert [m.params for m in browser.say("MARKREAD #c")] == [("#c", f"timestamp={STAMP}")]
    desktop.say("QUIT")  # the account still has a connection: its markers stay
    assert [m.params for m in browser.say("MARKREAD #c")] == [("#c", f"timestamp={STAMP}")]


def test_read_markers_per_owner_are_bounded(core):
    from twistedchat.server.state import MemoryReadMarkers

    markers = MemoryReadMarkers(keep=3)
    for n in range(5):
        markers.put("o", f"#c{n}", STAMP)
    assert markers.count("o") == 3 and markers.get("o", "#c0") is None
    assert markers.get("o", "#c4") == STAMP


# -- metadata -----------------------------------------------------------------------------------

META = "draft/metadata-2"


def test_metadata_cap_value_announces_the_limits(core):
    peer = Peer(core)
    (ls,) = peer.say("CAP LS 302")
    offered = dict(c.partition("=")[::2] for c in ls.params[2].split())
    assert offered[META] == (f"max-subs={METADATA_MAX_SUBS},max-keys={METADATA_MAX_KEYS},"
                             f"max-value-bytes={METADATA_MAX_VALUE_BYTES}")
    assert offered["draft/read-marker"] == "" and offered["extended-monitor"] == ""


def test_metadata_set_get_list_unset_on_self(core):
    foo = with_caps(core, "foo", META)
    got = foo.say("METADATA * SET display-name :Foo The First")
    assert [(m.command, m.params) for m in got] == [
        (N.RPL_KEYVALUE, ("foo", "foo", "display-name", "*", "Foo The First"))]
    got = foo.say("METADATA foo GET display-name avatar")
    assert [(m.command, m.params[1:3]) for m in got] == [
        (N.RPL_KEYVALUE, ("foo", "display-name")), (N.RPL_KEYNOTSET, ("foo", "avatar"))]
    assert [m.params[2] for m in foo.say("METADATA * LIST")] == ["display-name"]
    got = foo.say("METADATA * SET display-name")
    assert [(m.command, m.params[1:3]) for m in got] == [(N.RPL_KEYNOTSET, ("foo", "display-name"))]
    got = foo.say("METADATA * SET display-name")
    assert got[0].command == "FAIL" and got[0].params[:2] == ("METADATA", "KEY_NOT_SET")
    assert foo.say("METADATA * LIST") == []


def test_metadata_permissions_and_targets(core):
    foo, bar = with_caps(core, "foo", META), with_caps(core, "bar", META)
    foo.say("JOIN #chan")
    bar.say("JOIN #chan")
    fail = bar.say("METADATA foo SET display-name :Not Foo")[0]
    assert fail.params[:4] == ("METADATA", "KEY_NO_PERMISSION", "foo", "display-name")
    fail = bar.say("METADATA #chan SET url :x")[0]
    assert fail.params[:4] == ("METADATA", "KEY_NO_PERMISSION", "#chan", "url")
    assert commands(foo.say("METADATA #chan SET url :https://chan.example")) == [N.RPL_KEYVALUE]
    got = bar.say("METADATA #chan GET url")
    assert got[0].params[1:] == ("#chan", "url", "*", "https://chan.example")
    fail = bar.say("METADATA nobody LIST")[0]
    assert fail.params[:3] == ("METADATA", "INVALID_TARGET", "nobody")
    fail = bar.say("METADATA * DESTROY")[0]
    assert fail.params[:3] == ("METADATA", "SUBCOMMAND_INVALID", "DESTROY")
    foo.say("MODE #chan +s", "PART #chan")
    assert bar.say("METADATA #chan GET url")[0].command == N.RPL_KEYVALUE
    outsider = with_caps(core, "outsider", META)
    assert outsider.say("METADATA #chan LIST")[0].params[1] == "INVALID_TARGET"


@pytest.mark.parametrize("key", ["Display-Name", "$url", ":x", "k" * 65, "é", "a+b"])
def test_metadata_invalid_keys(core, key):
    foo = with_caps(core, "foo", META)
    got = foo.say(f"METADATA * SET {key} :v")
    assert got[0].command == "FAIL" and got[0].params[1] == "KEY_INVALID"
    assert core.state.metadata.values(foo.user.owner) == {}


def test_metadata_subscribers_hear_changes_once_and_not_the_setter(core):
    foo = with_caps(core, "foo", META)
    bar = with_caps(core, "bar", META)
    deaf = with_caps(core, "deaf", META)  # not subscribed
    got = bar.say("METADATA * SUB avatar display-name")
    assert [(m.command, m.params[1:]) for m in got] == [
        (N.RPL_METADATASUBOK, ("avatar", "display-name"))]
    foo.say("METADATA * SET display-name :Alone")
    assert bar.take() == []  # no shared channel yet
    for peer in (foo, bar, deaf):
        peer.say("JOIN #chan")
    joined = bar.take()
    assert [m.params for m in joined if m.command == "METADATA"] == []  # foo joined first
    foo.take(), deaf.take()
    foo.say("METADATA * SET display-name :Foo The Second")
    assert [(m.command, m.params) for m in bar.take()] == [
        ("METADATA", ("foo", "display-name", "*", "Foo The Second"))]
    assert deaf.take() == []
    foo.say("METADATA * SET display-name :Foo The Second")  # no change: no news
    assert bar.take() == []
    foo.say("METADATA * SET display-name")
    assert [m.params for m in bar.take()] == [("foo", "display-name", "*")]
    foo.say("METADATA #chan SET avatar :https://x/y.png")
    assert [m.params for m in bar.take()] == [("#chan", "avatar", "*", "https://x/y.png")]


def test_metadata_on_join_sends_the_channel_and_members(core):
    foo, bar = with_caps(core, "foo", META), with_caps(core, "bar", META)
    bar.say("METADATA * SUB display-name avatar")
    foo.say("JOIN #chan", "METADATA * SET display-name :Foo", "METADATA #chan SET avatar :A")
    got = bar.say("JOIN #chan")
    assert sorted(m.params for m in got if m.command == "METADATA") == [
        ("#chan", "avatar", "*", "A"), ("foo", "display-name", "*", "Foo")]
    foo.say("METADATA * SUB display-name")
    bar.say("PART #chan", "METADATA * SET display-name :Bar")
    foo.take()
    bar.say("JOIN #chan")
    assert [m.params for m in foo.take() if m.command == "METADATA"] == [
        ("bar", "display-name", "*", "Bar")]


def test_metadata_unsub_subs_and_sync(core):
    foo, bar = with_caps(core, "foo", META), with_caps(core, "bar", META)
    bar.say("METADATA * SUB avatar display-name color")
    got = bar.say("METADATA * UNSUB color nothing")
    assert [(m.command, m.params[1:]) for m in got] == [
        (N.RPL_METADATAUNSUBOK, ("color", "nothing"))]
    assert [m.params[1:] for m in bar.say("METADATA * SUBS")] == [("avatar", "display-name")]
    foo.say("METADATA * SET avatar :pic", "METADATA * SET color :red")
    assert [m.params for m in bar.say("METADATA foo SYNC")] == [("foo", "avatar", "*", "pic")]


def test_metadata_clear(core):
    foo = with_caps(core, "foo", META)
    foo.say("METADATA * SET a :1", "METADATA * SET b :2")
    got = foo.say("METADATA * CLEAR")
    assert [(m.command, m.params[1:]) for m in got] == [
        (N.RPL_KEYVALUE, ("foo", "a", "*")), (N.RPL_KEYVALUE, ("foo", "b", "*"))]
    assert core.state.metadata.values(foo.user.owner) == {}


def test_metadata_value_limit_in_bytes(core):
    foo = with_caps(core, "foo", META)
    limit = METADATA_MAX_VALUE_BYTES
    assert commands(foo.say("METADATA * SET k :" + "x" * limit)) == [N.RPL_KEYVALUE]
    got = foo.say("METADATA * SET k :" + "é" * (limit // 2 + 1))
    assert got[0].command == "FAIL" and got[0].params[1] == "VALUE_INVALID"
    assert core.state.metadata.values(foo.user.owner)["k"] == "x" * limit


def test_metadata_is_gone_with_its_connection_and_its_channel(core):
    foo = with_caps(core, "foo", META)
    foo.say("JOIN #chan", "METADATA * SET k :v", "METADATA #chan SET k :v")
    assert len(core.state.metadata) == 2
    foo.say("PART #chan")
    assert len(core.state.metadata) == 1
    foo.say("JOIN #chan")
    assert foo.say("METADATA #chan LIST") == []  # a new channel of that name starts empty
    foo.say("QUIT")
    assert len(core.state.metadata) == 0


def test_metadata_follows_extended_monitor(core):
    watcher = with_caps(core, "watcher", META, "extended-monitor")
    foo = with_caps(core, "foo", META)
    watcher.say("METADATA * SUB avatar", "MONITOR + foo")
    foo.say("METADATA * SET avatar :pic")
    assert [m.params for m in watcher.take()] == [("foo", "avatar", "*", "pic")]


def test_metadata_many_subscriptions_take_several_lines_each_within_512(core):
    foo = with_caps(core, "foo", META)
    keys = [f"{'k' * 60}{n:02}" for n in range(METADATA_MAX_SUBS)]
    for start in range(0, len(keys), 6):
        foo.say("METADATA * SUB " + " ".join(keys[start:start + 6]))
    got = foo.say("METADATA * SUBS")
    assert [k for m in got for k in m.params[1:]] == sorted(keys)
    assert all(len(line) <= 512 for data in foo.raw for line in data.splitlines(keepends=True))
    assert all(m.command == N.RPL_METADATASUBS and len(m.params) <= 13 for m in got)


@pytest.mark.parametrize(("host", "shown"), [
    ("10.0.0.1", "10.0.0.1"), ("0::1", "0::1"), ("2001:db8::5", "2001:db8::5"),
    ("host.example", "255.255.255.255"),
])
def test_whox_ip_field(core, host, shown):
    asker = register(core, "asker")
    register(core, "them", host=host)
    got = asker.say("WHO them %ih")
    assert got[0].params[1:] == (shown, host)


def test_monitor_with_extended_monitor_sends_the_watched_users_metadata(core):
    watcher = with_caps(core, "watcher", META, "extended-monitor")
    plain = with_caps(core, "plain", META)
    foo = with_caps(core, "foo", META)
    foo.say("METADATA * SET avatar :pic", "METADATA * SET color :red")
    for peer in (watcher, plain):
        peer.say("METADATA * SUB avatar")
    got = watcher.say("MONITOR + foo,nobody")
    assert [m.params for m in got if m.command == "METADATA"] == [("foo", "avatar", "*", "pic")]
    assert "METADATA" not in commands(plain.say("MONITOR + foo"))


def test_a_bots_channel_message_is_encoded_once_for_all_tagged_members(core):
    """The bot tag rides in the message-tags encoding: one bytes object shared by every member
    with that variant, and plain members get the untagged line (nothing done per recipient)."""
    bot = register(core, "bot")
    bot.say("MODE bot +B", "JOIN #c")
    tagged = [with_caps(core, f"t{n}", "message-tags") for n in range(20)]
    plain = [register(core, f"p{n}") for n in range(20)]
    for peer in tagged + plain:
        peer.say("JOIN #c")
        peer.user.outbox.clear()
    bot.say("PRIVMSG #c :beep")
    tagged_lines = {id(peer.user.outbox[-1]) for peer in tagged}
    plain_lines = {id(peer.user.outbox[-1]) for peer in plain}
    assert len(tagged_lines) == 1 and len(plain_lines) == 1
    assert tagged[0].user.outbox[-1].startswith(b"@") and b"bot" in tagged[0].user.outbox[-1]
    assert not plain[0].user.outbox[-1].startswith(b"@")


def test_account_hooks_whois_whox_and_account_notify_to_channels_and_monitors(core):
    """Accounts do not exist yet: the hook they will call, checked with the capabilities set by
    hand (``account-notify`` is offered when accounts are)."""
    friend, watcher, bob = register(core, "friend"), register(core, "watcher"), register(core, "bob")
    friend.user.caps = frozenset({"account-notify"})
    watcher.user.caps = frozenset({"account-notify", "extended-monitor"})
    friend.say("JOIN #c")
    bob.say("JOIN #c")
    watcher.say("MONITOR + bob")
    friend.take()
    core.set_account(bob.user, "Robert")
    assert [(m.command, m.params, m.source) for m in friend.take()] == [
        ("ACCOUNT", ("Robert",), bob.user.source)]
    assert [m.command for m in watcher.take()] == ["ACCOUNT"]
    assert (N.RPL_WHOISACCOUNT, ("friend", "bob", "Robert", "is logged in as")) in [
        (m.command, m.params) for m in friend.say("WHOIS bob")]
    assert bob.user.owner == "account:robert" and core.state.sessions == {"robert": {bob.user}}
    core.set_account(bob.user, None)
    assert [m.params for m in friend.take()] == [("*",)]
    assert core.state.sessions == {}


def test_links_for_another_server_is_402(core):
    alice = register(core, "alice")
    assert commands(alice.say("LINKS other.server *")) == [N.ERR_NOSUCHSERVER]
    assert commands(alice.say("LINKS irc.test *"))[-1] == N.RPL_ENDOFLINKS
