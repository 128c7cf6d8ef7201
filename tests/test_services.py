"""NickServ and ChanServ on the sans-IO core with a memory store: DROP and SET PASSWORD confirmed
by the password, the founder's ChanServ SET settings (founder, description, keep topic, mode
lock, restricted), the services as users see them (WHOIS, WHO, ISON, USERHOST, MONITOR, NS/CS,
HELP, CTCP, reserved nicks) and an answer to every command, whatever its parameters."""

from __future__ import annotations

import pytest
import pytest_twisted
from core_peers import FakeClock, Peer, make_core, register
from twisted.internet import task

from twistedchat.bot.testing import wait_until
from twistedchat.server.accounts import attach_store
from twistedchat.server.commands.chanserv import CHANSERV, parse_mode_lock
from twistedchat.server.commands.nickserv import NICKSERV
from twistedchat.storage.memory import MemoryStore
from twistedchat.storage.model import MAX_DESCRIPTION_BYTES
from twistedchat.wire.message import parse

PASSWORD = "correct-horse-battery"


@pytest.fixture
def setup():
    core = make_core(FakeClock())
    store = MemoryStore()
    accounts = attach_store(core, store, task.Clock())
    return core, store, accounts


def notices(messages, service: str) -> list[str]:
    return [m.params[1] for m in messages
            if m.command == "NOTICE" and (m.source or "").startswith(service + "!")]


async def answered(peer: Peer, line: str, service: str = "NickServ") -> list[str]:
    """Send ``line`` and wait for the service's answer (a password check runs in a thread)."""
    peer.user.outbox.clear()
    peer.core.handle(peer.user, parse(line))
    await wait_until(lambda: notices(peer.received, service), f"{service} to answer {line!r}")
    return notices(peer.take(), service)


async def logged_in(core, store, accounts, nick: str) -> Peer:
    await store.create_account(nick, PASSWORD, 0.0)
    peer = register(core, nick)
    accounts.log_in(peer.user, nick)
    peer.take()
    return peer


# -- NickServ DROP ---------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_nickserv_drop_needs_the_password(setup):
    core, store, accounts = setup
    owner = await logged_in(core, store, accounts, "owner")
    owner.say("JOIN #mine", "PRIVMSG ChanServ :REGISTER #mine")
    [syntax] = notices(owner.say("PRIVMSG NickServ :DROP"), "NickServ")
    assert "DROP <password>" in syntax and store.account("owner") is not None
    [wrong] = await answered(owner, "PRIVMSG NickServ :DROP not-the-password")
    assert wrong == "Invalid password: the account owner was not dropped."
    assert store.account("owner") is not None and owner.user.account == "owner"
    assert store.registered_channel("#mine") is not None
    [done] = await answered(owner, f"PRIVMSG NickServ :DROP {PASSWORD}")
    assert done == "The account owner has been dropped, and with it the channels #mine."
    assert store.account("owner") is None and owner.user.account is None


@pytest.mark.parametrize("command", ["DROP {password}",
                                     "SET PASSWORD {password} a-new-long-password"])
@pytest_twisted.ensureDeferred
async def test_nickserv_password_guesses_are_braked_like_logins(setup, command):
    core, store, accounts = setup
    owner = await logged_in(core, store, accounts, "target")
    for guess in range(5):  # the account's burst of failed logins
        [wrong] = await answered(owner, "PRIVMSG NickServ :" + command.format(password=guess))
        assert wrong.startswith("Invalid password")
    [braked] = notices(owner.say("PRIVMSG NickServ :" + command.format(password=PASSWORD)),
                       "NickServ")
    assert braked.startswith("Too many failed attempts")
    assert await store.verify_password("target", PASSWORD) is not None  # not dropped nor changed
    # IDENTIFY shares the brake: the same account's logins wait too
    [also] = notices(owner.say(f"PRIVMSG NickServ :IDENTIFY target {PASSWORD}"), "NickServ")
    assert also.startswith("Too many failed attempts")


# -- NickServ SET PASSWORD -------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_nickserv_set_password_needs_the_current_one(setup):
    core, store, accounts = setup
    owner = await logged_in(core, store, accounts, "owner")
    new = "a-new-long-password"
    for line in ("SET PASSWORD", f"SET PASSWORD {new}", f"SET PASSWORD {PASSWORD} {new} more",
                 f"SET EMAIL {PASSWORD} {new}"):
        [syntax] = notices(owner.say(f"PRIVMSG NickServ :{line}"), "NickServ")
        assert syntax == "Syntax: SET PASSWORD <current password> <new password>", line
    [weak] = notices(owner.say(f"PRIVMSG NickServ :SET PASSWORD {PASSWORD} short"), "NickServ")
    assert weak == "Password not changed: a password needs at least 8 characters."
    [wrong] = await answered(owner, f"PRIVMSG NickServ :SET PASSWORD not-the-password {new}")
    assert wrong == "Invalid password: your password was not changed."
    assert await store.verify_password("owner", PASSWORD) is not None
    [done] = await answered(owner, f"NS SET PASSWORD {PASSWORD} {new}")
    assert done == "Password changed."
    assert await store.verify_password("owner", new) is not None
    assert await store.verify_password("owner", PASSWORD) is None
    anonymous = register(core, "anonymous")
    [refused] = notices(anonymous.say(f"NS SET PASSWORD {PASSWORD} {new}"), "NickServ")
    assert refused == "You are not identified."


@pytest_twisted.ensureDeferred
async def test_nickserv_set_password_is_not_kept_for_one_logged_out_meanwhile(setup):
    core, store, accounts = setup
    owner = await logged_in(core, store, accounts, "leaving")
    owner.user.outbox.clear()
    core.handle(owner.user, parse(f"NS SET PASSWORD {PASSWORD} a-new-long-password"))
    core.set_account(owner.user, None)  # logged out (a DROP elsewhere) while the check runs
    await wait_until(lambda: notices(owner.received, "NickServ"), "NickServ to answer the SET")
    assert notices(owner.take(), "NickServ") == [
        "Password not changed: you are no longer identified to leaving."]
    assert await store.verify_password("leaving", PASSWORD) is not None


# -- ChanServ SET ----------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_chanserv_set_is_for_the_founder_and_checked(setup):
    core, store, accounts = setup
    founder = await logged_in(core, store, accounts, "founder")
    other = await logged_in(core, store, accounts, "other")
    founder.say("JOIN #club", "PRIVMSG ChanServ :REGISTER #club")
    [refused] = notices(other.say("PRIVMSG ChanServ :SET #club DESCRIPTION mine now"), "ChanServ")
    assert refused == "Only the founder of #club may do that."
    cs = lambda line: notices(founder.say(f"PRIVMSG ChanServ :{line}"), "ChanServ")  # noqa: E731
    assert cs("SET #club DESCRIPTION  A club   for friends ") == [
        "#club's description is now: A club for friends"]
    assert "Not changed" not in cs("SET #club DESCRIPTION " + "x" * MAX_DESCRIPTION_BYTES)[0]
    [long] = cs("SET #club DESCRIPTION " + "é" * MAX_DESCRIPTION_BYTES)
    assert long == f"Not changed: a description holds at most {MAX_DESCRIPTION_BYTES} bytes"
    assert store.registered_channel("#club").description == "x" * MAX_DESCRIPTION_BYTES
    [info_line] = [m for m in founder.say("PRIVMSG ChanServ :INFO #club")
                   if m.params[1].startswith("Description")]
    assert info_line.params[1] == "Description: " + "x" * MAX_DESCRIPTION_BYTES  # fits one line
    for bad in ("SET #club KEEPTOPIC maybe", "SET #club RESTRICTED", "SET #club FOUNDER nobody",
                "SET #club COLOUR red", "SET #club"):
        assert cs(bad)[0].startswith("Syntax: SET <#channel> FOUNDER"), bad
    for control in ("\x01ACTION spoofs\x01", "bell\x07", "del\x7f"):
        [refused] = cs(f"SET #club DESCRIPTION {control}")
        assert refused.startswith("Not changed: a description may hold formatting codes")
    assert cs("SET #club DESCRIPTION \x02bold\x02 club") == [
        "#club's description is now: \x02bold\x02 club"]
    assert cs("SET #club MLOCK +nz") == ["Not changed: only the modes imnst can be locked, not 'z'."]
    assert cs("SET #club MLOCK +n-n") == ["Not changed: the mode n is named twice."]
    info = cs("INFO #club")
    assert info[1] == "Description: \x02bold\x02 club"
    assert info[2] == "Modes +nt; mode lock: none; keep topic: on; restricted: off"
    assert cs("SET #club FOUNDER Other") == ["#club's founder is now other."]
    assert store.registered_channel("#club").founder == "other"
    assert cs("SET #club KEEPTOPIC OFF")[0] == "Only the founder of #club may do that."


@pytest_twisted.ensureDeferred
async def test_keeptopic_decides_whether_a_recreated_channel_gets_its_topic(setup):
    core, store, accounts = setup
    founder = await logged_in(core, store, accounts, "founder")
    founder.say("JOIN #talk", "PRIVMSG ChanServ :REGISTER #talk", "TOPIC #talk :kept topic",
                "PART #talk")
    assert core.state.find_channel("#talk") is None
    joined = founder.say("JOIN #talk")
    assert [m.params[-1] for m in joined if m.command == "332"] == ["kept topic"]
    founder.say("PRIVMSG ChanServ :SET #talk KEEPTOPIC OFF", "PART #talk")
    joined = founder.say("JOIN #talk")
    assert not [m for m in joined if m.command == "332"]
    assert store.registered_channel("#talk").keep_topic is False


@pytest_twisted.ensureDeferred
async def test_mlock_sets_locked_modes_back(setup):
    core, store, accounts = setup
    founder = await logged_in(core, store, accounts, "founder")
    founder.say("JOIN #locked", "PRIVMSG ChanServ :REGISTER #locked", "MODE #locked +s")
    member = register(core, "member")
    member.say("JOIN #locked")
    founder.take()
    lines = founder.say("PRIVMSG ChanServ :SET #locked MLOCK +m-s")
    assert "The mode lock of #locked is now +m-s." in notices(lines, "ChanServ")
    [mode] = [m for m in member.take() if m.command == "MODE"]
    assert mode.source.startswith("ChanServ!") and mode.params == ("#locked", "+m-s")
    channel = core.state.find_channel("#locked")
    assert "m" in channel.modes and "s" not in channel.modes
    founder.say("MODE #locked -m+s")
    assert [m.params[1:] for m in member.take() if m.command == "MODE"] == [("-m+s",), ("+m-s",)]
    assert "m" in channel.modes and "s" not in channel.modes
    assert store.registered_channel("#locked").modes == "mnt"
    founder.say("MODE #locked +i")  # not locked: stays
    assert "i" in channel.modes
    founder.say("PART #locked")
    member.say("PART #locked")
    store.update_channel("#locked", modes="nst")  # even a kept +s is locked off on recreation
    founder.say("JOIN #locked")
    assert core.state.find_channel("#locked").modes == {"m", "n", "t"}
    founder.say("PRIVMSG ChanServ :SET #locked MLOCK OFF", "MODE #locked -m")
    assert "m" not in core.state.find_channel("#locked").modes


def test_parse_mode_lock():
    assert parse_mode_lock("+nt-s") == ("nt", "s")
    assert parse_mode_lock("-i+m") == ("m", "i")
    assert parse_mode_lock("off") == ("", "")
    for bad in ("+o", "+k", "+nn", "+b"):
        with pytest.raises(ValueError):
            parse_mode_lock(bad)


@pytest_twisted.ensureDeferred
async def test_restricted_channel_lets_in_only_its_access_list(setup):
    core, store, accounts = setup
    founder = await logged_in(core, store, accounts, "founder")
    friend = await logged_in(core, store, accounts, "friend")
    founder.say("JOIN #inner", "PRIVMSG ChanServ :REGISTER #inner",
                "PRIVMSG ChanServ :ACCESS #inner ADD friend voice",
                "PRIVMSG ChanServ :SET #inner RESTRICTED ON", "JOIN #open", "MODE #open +k pw")
    stranger = register(core, "stranger")
    refused = stranger.say("JOIN #inner,#open,#new x,pw")
    assert [(m.command, m.params[1]) for m in refused if m.command == "474"] == [("474", "#inner")]
    assert "restricted" in [m for m in refused if m.command == "474"][0].params[-1]
    joined = [m.params[0] for m in refused if m.command == "JOIN"]
    assert joined == ["#open", "#new"]  # the key of #open still went with #open
    assert stranger.user not in core.state.find_channel("#inner").members
    friend.say("JOIN #inner")
    assert core.state.find_channel("#inner").members[friend.user] == "v"
    founder.say("PRIVMSG ChanServ :SET #inner RESTRICTED OFF")
    stranger.say("JOIN #inner")
    assert stranger.user in core.state.find_channel("#inner").members


# -- the services as users see them ----------------------------------------------------------------

def test_whois_answers_for_the_services(setup):
    core, store, accounts = setup
    peer = register(core, "asker")
    assert peer.say("NOTICE NickServ :a notice is not a command") == []  # no 401, no answer
    for name, shown in (("NickServ", "NickServ"), ("chanserv", "ChanServ")):
        replies = peer.say(f"WHOIS {name}")
        assert [m.command for m in replies] == ["311", "312", "313", "335", "318"], replies
        assert replies[0].params[1:4] == (shown, shown, "services.irc.test")
        assert replies[1].params[2] == "irc.test"
        assert replies[2].params[-1] == "is a Network Service"


def test_who_ison_userhost_and_monitor_see_the_services(setup):
    core, store, accounts = setup
    peer = register(core, "asker")
    [who, end] = peer.say("WHO NickServ")
    assert (who.command, end.command) == ("352", "315")
    assert who.params[1:] == ("*", "NickServ", "services.irc.test", "irc.test", "NickServ",
                              "H*B", "0 Nickname services")
    [whox, _] = peer.say("WHO chanserv %tcuhnfar,7")
    assert whox.params[1:] == ("7", "*", "ChanServ", "services.irc.test", "ChanServ", "H*B", "0",
                               "Channel services")
    # asked for by nick only: a listing of everyone (WHO *, even an operator's) leaves them out
    assert [m.params[5] for m in peer.say("WHO *") if m.command == "352"] == ["asker"]
    peer.say("OPER admin secret")
    assert [m.params[5] for m in peer.say("WHO 0") if m.command == "352"] == ["asker"]
    assert [m.command for m in peer.say("WHO nickserv")] == ["352", "315"]
    [ison] = peer.say("ISON nickserv Nobody CHANSERV asker")
    assert ison.params[-1] == "NickServ ChanServ asker"
    [userhost] = peer.say("USERHOST NickServ nobody chanserv")
    assert userhost.params[-1] == "NickServ*=+NickServ@services.irc.test " \
        "ChanServ*=+ChanServ@services.irc.test"
    [online] = peer.say("MONITOR + NickServ,ChanServ")
    assert (online.command, online.params[-1]) == (
        "730", "NickServ!NickServ@services.irc.test,ChanServ!ChanServ@services.irc.test")
    assert [m.command for m in peer.say("MONITOR S")] == ["730"]
    assert [m.params[-1] for m in peer.say("MONITOR L")][0] == "NickServ,ChanServ"


def test_the_services_are_not_counted_as_connections_or_channel_members(setup):
    core, store, accounts = setup
    peer = register(core, "asker")
    [client] = [m for m in peer.say("LUSERS") if m.command == "251"]
    assert client.params[-1] == "There are 1 users and 0 invisible on 1 servers"
    assert not [m for m in peer.say("LUSERS") if m.command == "252"]  # not counted as opers
    assert "NickServ" not in core.state.users and not core.state.channels
    peer.say("JOIN #room")
    [names] = [m for m in peer.say("NAMES #room") if m.command == "353"]
    assert names.params[-1] == "@asker"
    # a store-less core has no services: their nicks are ordinary, and absent
    bare = register(make_core(FakeClock()), "plain")
    assert bare.say("ISON NickServ")[0].params[-1] == ""
    assert [m.command for m in bare.say("WHO NickServ")] == ["315"]


@pytest_twisted.ensureDeferred
async def test_aliases_and_any_case_reach_the_services(setup):
    core, store, accounts = setup
    await store.create_account("user1", PASSWORD, 0.0)
    peer = register(core, "user1")
    peer.take()
    [done] = await answered(peer, f"NS IDENTIFY {PASSWORD}")
    assert done == "You are now identified as user1." and peer.user.account == "user1"
    assert notices(peer.say("PRIVMSG nickserv :info"), "NickServ")[0].startswith("user1 registered")
    assert notices(peer.say("NICKSERV INFO user1"), "NickServ")[0].startswith("user1 registered")
    peer.say("JOIN #here")
    assert notices(peer.say("CS REGISTER #here"), "ChanServ") == [
        "#here is now registered to user1."]
    assert notices(peer.say("CHANSERV :INFO #here"), "ChanServ")[0].startswith("#here: founder")
    assert notices(peer.say("PRIVMSG CHANSERV :INFO #here"), "ChanServ")


def test_service_help_lists_every_command_with_its_syntax(setup):
    core, store, accounts = setup
    peer = register(core, "helpme")
    for line, service, table in (("NS HELP", "NickServ", NICKSERV), ("CS", "ChanServ", CHANSERV),
                                 ("PRIVMSG ChanServ :help", "ChanServ", CHANSERV)):
        said = notices(peer.say(line), service)
        assert [f"  {entry.syntax}" for entry in table.values()] == said[1:-1], line
    [one] = notices(peer.say("NS HELP drop"), "NickServ")
    assert one.startswith("DROP <password>: delete your account")
    [unknown] = notices(peer.say("NS FROB"), "NickServ")
    assert unknown == "Unknown command FROB. /msg NickServ HELP lists the commands."
    assert any(m.params[-1].startswith("NS <command>") for m in peer.say("HELP NS"))


@pytest_twisted.ensureDeferred
async def test_nobody_takes_the_service_names(setup):
    core, store, accounts = setup
    peer = register(core, "someone")
    for nick in ("NickServ", "chanserv", "NICKSERV"):
        assert peer.say(f"NICK {nick}")[0].command == "432"
    early = Peer(core)
    assert early.say("NICK ChanServ")[0].command == "432"
    early.say("CAP LS 302", "CAP REQ :sasl")
    [fail] = [m for m in early.say(f"REGISTER NickServ * {PASSWORD}") if m.command == "FAIL"]
    assert fail.params[1] == "BAD_ACCOUNT_NAME" and store.account("nickserv") is None


# -- every service command answers, whatever its parameters ---------------------------------------

ODD_ARGUMENTS = ("", "#", "#reg", "#REG", "#nope", "nobody", "founder", "NickServ", "*", ":",
                 "\x02", "#reg x y z", "#reg ADD", "#reg ADD founder op", "#reg ADD nobody op",
                 "#reg ADD stranger admin", "#reg DEL", "#reg DEL nobody", "#reg SET",
                 "#reg MLOCK + -", "#reg FOUNDER", "#reg stranger", "PASSWORD", "PASSWORD a b c",
                 "x" * 400)


async def any_answer(peer: Peer, line: str) -> list:
    """Send ``line``; whatever comes back (a password check may answer from a thread)."""
    peer.user.outbox.clear()
    peer.core.handle(peer.user, parse(line))
    await wait_until(lambda: peer.received, f"an answer to {line!r}")
    return peer.take()


@pytest_twisted.ensureDeferred
async def test_every_service_command_answers_odd_parameters(setup):
    core, store, accounts = setup
    founder = await logged_in(core, store, accounts, "founder")
    founder.say("JOIN #reg", "PRIVMSG ChanServ :REGISTER #reg")
    stranger = register(core, "stranger")
    for peer in (stranger, founder):
        for service, table in (("NickServ", NICKSERV), ("ChanServ", CHANSERV)):
            for verb in table:
                for argument in ODD_ARGUMENTS:
                    said = await any_answer(peer, f"PRIVMSG {service} :{verb} {argument}")
                    assert all(m.command in ("NOTICE", "MODE", "900") for m in said), said
    assert store.account("founder") is not None  # no odd DROP dropped it


@pytest_twisted.ensureDeferred
async def test_service_answers_say_what_happened(setup):
    core, store, accounts = setup
    founder = await logged_in(core, store, accounts, "founder")
    await store.create_account("friend", PASSWORD, 0.0)
    founder.say("JOIN #reg", "PRIVMSG ChanServ :REGISTER #reg")
    cs = lambda line: notices(founder.say(f"CS {line}"), "ChanServ")  # noqa: E731
    assert cs("ACCESS #reg DEL friend") == ["friend is not on the access list of #reg."]
    assert cs("ACCESS #reg ADD Founder op") == ["Founder founded #reg: its founder is always op."]
    assert store.registered_channel("#reg").access == {}
    assert cs("ACCESS #reg ADD friend voice") == ["friend added to #reg as voice."]
    assert cs("ACCESS #reg DEL FRIEND") == ["FRIEND removed from #reg."]
    [itself] = notices(founder.say("NS GHOST founder"), "NickServ")
    assert itself.startswith("You are founder: GHOST disconnects another connection")
    assert founder.user in core.state.connections


def test_a_ctcp_to_a_service_is_not_a_command(setup):
    core, store, accounts = setup
    peer = register(core, "asker")
    [version] = notices(peer.say("PRIVMSG NickServ :\x01VERSION\x01"), "NickServ")
    assert version.startswith("\x01VERSION twistedchat-") and version.endswith(" services\x01")
    assert notices(peer.say("PRIVMSG ChanServ :\x01PING 1700000000\x01"), "ChanServ") == [
        "\x01PING 1700000000\x01"]
    assert notices(peer.say("PRIVMSG ChanServ :\x01PING\x01"), "ChanServ") == ["\x01PING\x01"]
    assert peer.say("PRIVMSG NickServ :\x01ACTION waves\x01") == []
    assert peer.say("PRIVMSG NickServ :\x01PING " + "9" * 100 + "\x01") == []
    assert peer.say("PRIVMSG NickServ :\x01CLIENTINFO\x01") == []


def test_a_service_in_a_list_of_targets_is_asked_once(setup):
    core, store, accounts = setup
    peer = register(core, "asker")
    friend = register(core, "friend")
    replies = peer.say("PRIVMSG NickServ,friend,nickserv,ChanServ :HELP")
    assert "401" not in [m.command for m in replies]
    assert len([n for n in notices(replies, "NickServ") if n.startswith("NickServ commands")]) == 1
    assert len([n for n in notices(replies, "ChanServ") if n.startswith("ChanServ commands")]) == 1
    [got] = friend.take()
    assert (got.command, got.params) == ("PRIVMSG", ("friend", "HELP"))
    assert notices(peer.say("PRIVMSG NickServ,ChanServ :HELP GHOST"), "NickServ")[0].startswith(
        "GHOST <nick>")
    over = peer.say("PRIVMSG a,b,c,d,NickServ,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z :HELP")
    assert "407" in [m.command for m in over] and len(over) < 30  # MAXTARGETS still holds
    assert peer.say("PRIVMSG friend,nobody :hi")[0].command == "401"  # others as before
