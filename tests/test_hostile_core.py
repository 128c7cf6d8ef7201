"""What a hostile client tries against the server's rules (issue 8), each kept out by a test.

Sans-IO: the core with list sinks and a fake clock, so every test is exact and fast.
"""

from __future__ import annotations

import pytest
from core_peers import FakeClock, Peer, commands, make_core, register

from twistedchat.server.commands import COMMANDS
from twistedchat.server.core import ServerCore
from twistedchat.wire import numerics as N

#: A mask a backtracking matcher needs hours for against a 30-letter nick (each ``*a`` ×3-4).
PATHOLOGICAL = "*a" * 20 + "*b"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def core(clock: FakeClock) -> ServerCore:
    return make_core(clock)


def all_lines(*peers: Peer) -> list[bytes]:
    """Every line the peers were sent so far (what ``take`` saw and what is still queued)."""
    lines = []
    for peer in peers:
        for data in [*peer.raw, *peer.user.outbox]:
            lines.extend(data.splitlines(keepends=True))
    return lines


def assert_lines_fit(*peers: Peer) -> None:
    for line in all_lines(*peers):
        body = line.split(b" ", 1)[1] if line.startswith(b"@") else line
        assert len(body) <= 512, line


# -- item 2: masks in linear time --------------------------------------------------------------


def test_pathological_ban_mask_through_join(core):
    alice = register(core, "alice")
    alice.say("JOIN #trap", f"MODE #trap +b {PATHOLOGICAL}")
    victim = Peer(core)
    victim.say("NICK " + "a" * 30, "USER " + "a" * 10 + " 0 * :x")
    got = victim.say("JOIN #trap")
    assert commands(got)[0] == "JOIN"  # no b in the nick: not banned, and answered at once
    banned = register(core, "a" * 29 + "b")
    assert commands(banned.say("JOIN #trap")) == [N.ERR_BANNEDFROMCHAN]


def test_pathological_who_mask(core):
    asker = register(core, "asker")
    for index in range(5):
        register(core, "a" * 28 + f"x{index}")
    register(core, "a" * 29 + "b")
    got = asker.say(f"WHO {PATHOLOGICAL}")
    assert [m.params[5] for m in got if m.command == N.RPL_WHOREPLY] == ["a" * 29 + "b"]


# -- item 6: INVITE -----------------------------------------------------------------------------


def test_invite_opens_invite_only_but_not_key_limit_or_ban(core):
    op, member, guest = register(core, "op"), register(core, "member"), register(core, "guest")
    op.say("JOIN #c")
    member.say("JOIN #c")
    op.say("MODE #c +i", "MODE #c +k sesame", "MODE #c +b guest")
    assert commands(op.say("INVITE guest #c")) == [N.RPL_INVITING]
    assert commands(guest.say("JOIN #c")) == [N.ERR_BADCHANNELKEY]
    assert commands(guest.say("JOIN #c sesame")) == [N.ERR_BANNEDFROMCHAN]
    op.say("MODE #c -b guest!*@*", "MODE #c +l 2")
    assert commands(guest.say("JOIN #c sesame")) == [N.ERR_CHANNELISFULL]
    op.say("MODE #c -l")
    assert commands(guest.say("JOIN #c sesame"))[0] == "JOIN"


def test_invite_from_an_ordinary_member_grants_nothing(core):
    op, member, guest = register(core, "op"), register(core, "member"), register(core, "guest")
    op.say("JOIN #c")
    member.say("JOIN #c")
    op.say("MODE #c +klb sesame 2 guest")
    assert commands(member.say("INVITE guest #c")) == [N.RPL_INVITING]
    assert guest.user.invites == {}
    assert commands(guest.say("JOIN #c")) == [N.ERR_BADCHANNELKEY]
    op.say("MODE #c +i")
    assert commands(member.say("INVITE guest #c")) == [N.ERR_CHANOPRIVSNEEDED]


def test_invite_belongs_to_the_user_not_the_nick(core):
    op, dave = register(core, "op"), register(core, "dave")
    op.say("JOIN #c", "MODE #c +i", "INVITE dave #c")
    dave.say("QUIT :bye")
    impostor = register(core, "dave")
    assert commands(impostor.say("JOIN #c")) == [N.ERR_INVITEONLYCHAN]


def test_invite_is_dropped_on_nick_change_and_when_used(core):
    op, dave = register(core, "op"), register(core, "dave")
    op.say("JOIN #c", "MODE #c +i", "INVITE dave #c")
    dave.say("NICK david", "NICK dave")
    assert commands(dave.say("JOIN #c")) == [N.ERR_INVITEONLYCHAN]
    op.say("INVITE dave #c")
    assert commands(dave.say("JOIN #c"))[0] == "JOIN"
    dave.say("PART #c")
    assert commands(dave.say("JOIN #c")) == [N.ERR_INVITEONLYCHAN]


def test_invite_to_a_channel_recreated_since_is_void(core, clock):
    op, guest = register(core, "op"), register(core, "guest")
    op.say("JOIN #c", "MODE #c +i", "INVITE guest #c", "PART #c")
    clock.now += 1
    squatter = register(core, "squatter")
    squatter.say("JOIN #c", "MODE #c +i")
    assert commands(guest.say("JOIN #c")) == [N.ERR_INVITEONLYCHAN]


def test_invites_held_by_one_user_are_bounded(core):
    from twistedchat.server.state import CHANLIMIT

    op, guest = register(core, "op"), register(core, "guest")
    for index in range(CHANLIMIT + 20):
        op.say(f"JOIN #c{index}", f"MODE #c{index} +i", f"INVITE guest #c{index}")
        op.say(f"PART #c{index}") if index % 2 else None
    assert len(guest.user.invites) == CHANLIMIT
    assert commands(guest.say(f"JOIN #c{CHANLIMIT + 18}"))[0] == "JOIN"


# -- item 7: +m and +n for non-members ---------------------------------------------------------


def test_moderated_channel_refuses_non_members_too(core):
    op, talker = register(core, "op"), register(core, "talker")
    op.say("JOIN #c", "MODE #c +m-n")
    talker.say("JOIN #c")
    assert commands(talker.say("PRIVMSG #c :hi")) == [N.ERR_CANNOTSENDTOCHAN]
    talker.say("PART #c")
    op.take()
    assert commands(talker.say("PRIVMSG #c :hi")) == [N.ERR_CANNOTSENDTOCHAN]
    assert op.take() == []
    op.say("MODE #c -m")
    talker.say("PRIVMSG #c :now")
    assert op.take()[0].params == ("#c", "now")


# -- item 9: no line over 512 bytes ------------------------------------------------------------

LONG_HOST = "h" * 60 + ".example"
LONG_CHANNEL = "#" + "c" * 49


def long_peer(core: ServerCore, nick: str) -> Peer:
    """A user with the longest nick, user name, host and real name the server takes."""
    peer = Peer(core, LONG_HOST)
    nick = (nick + "x" * 30)[:30]
    peer.say(f"NICK {nick}", "USER " + "u" * 20 + " 0 * :" + "é" * 300)
    assert peer.user.registered
    peer.take()
    return peer


def test_no_reply_or_relay_exceeds_512_bytes(core):
    alice, bob = long_peer(core, "alice"), long_peer(core, "bob")
    for peer in (alice, bob):
        peer.say("CAP REQ :multi-prefix userhost-in-names away-notify")
    alice.say(f"JOIN {LONG_CHANNEL}")
    bob.say(f"JOIN {LONG_CHANNEL}")
    for index in range(30):
        bob.say(f"JOIN #{'w' * 40}{index}")
    alice.say(f"TOPIC {LONG_CHANNEL} :" + "ü" * 400)
    bob.say(f"TOPIC {LONG_CHANNEL}", "AWAY :" + "ä" * 400)
    alice.say(f"PRIVMSG {bob.user.nick} :hi", f"WHOIS {bob.user.nick}", f"WHO {LONG_CHANNEL}")
    alice.say(f"WHO {bob.user.nick}", f"WHOWAS {bob.user.nick}")
    alice.say(f"MODE {LONG_CHANNEL} " + "+m-m" * 125)
    alice.say(f"MODE {LONG_CHANNEL} +bbbbbb " + " ".join("*!*@" + "x" * 140 + str(n) for n in range(6)))
    alice.say(f"KICK {LONG_CHANNEL} {bob.user.nick} :" + "ö" * 400)
    assert_lines_fit(alice, bob)
    topic = core.state.find_channel(LONG_CHANNEL).topic
    assert len(topic.encode()) <= 300 and topic == "ü" * (300 // 2)
    assert len(bob.user.away.encode()) <= 300
    assert len(bob.user.realname.encode()) <= 100


def _long_lines(name: str, nick: str) -> list[str]:
    """Lines near 510 bytes that put long (and multi-byte) text where each parameter goes."""
    lines = [
        f"{name} {LONG_CHANNEL} {nick} :" + "é" * 200,
        f"{name} " + "x" * 480,
        f"{name} #" + "é" * 240,
        f"{name} {nick} :" + "ö" * 230,
        f"{name} {nick},{'q' * 200} {LONG_CHANNEL} :" + "ä" * 100,
        f"{name} {LONG_CHANNEL} +kbl " + "k" * 100 + " " + "b" * 200 + " 5",
        f"{name} LS :" + "c" * 470,
        f"{name} REQ :" + "c" * 470,
    ]
    return [line for line in lines if len(line.encode()) <= 510]


@pytest.mark.parametrize("name", [*sorted(COMMANDS), "X" * 400])
def test_no_command_makes_the_server_send_a_line_over_512_bytes(core, name):
    """Every command, fed long parameters where each of its parameters goes, from an operator."""
    alice, bob = long_peer(core, "alice"), long_peer(core, "bob")
    alice.say("CAP REQ :multi-prefix userhost-in-names away-notify echo-message invite-notify")
    alice.say(f"JOIN {LONG_CHANNEL}", "OPER admin secret", "AWAY :" + "ä" * 300)
    bob.say(f"JOIN {LONG_CHANNEL}", "AWAY :" + "ä" * 300)
    for line in _long_lines(name, bob.user.nick):
        alice.say(line)
    assert_lines_fit(alice, bob)


def test_whois_lists_many_channels_over_several_lines(core):
    alice, bob = register(core, "alice"), long_peer(core, "bob")
    for index in range(40):
        bob.say(f"JOIN #{'w' * 40}{index}")
    got = alice.say(f"WHOIS {bob.user.nick}")
    lists = [m.params[-1] for m in got if m.command == N.RPL_WHOISCHANNELS]
    assert len(lists) > 1
    assert sum(len(text.split()) for text in lists) == 40
    assert_lines_fit(alice)


def test_one_mode_line_of_unknown_letters_costs_one_reply(core):
    alice = register(core, "alice")
    alice.say("JOIN #own")
    got = alice.say("MODE #own +" + "Z" * 500)
    assert commands(got) == [N.ERR_UNKNOWNMODE]
    distinct = "".join(chr(0x4E00 + n) for n in range(150))  # 150 different unknown letters
    got = alice.say(f"MODE #own +{distinct}")
    assert 0 < len(got) <= 20 and set(commands(got)) == {N.ERR_UNKNOWNMODE}


def test_mode_changes_per_command_are_capped(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    got = alice.say("MODE #c " + "+m-m" * 125)
    (mode,) = got
    assert mode.params[1] == "+m"
    got = alice.say("MODE #c +" + "v" * 10 + " " + " ".join(["bob"] * 10))
    assert commands(got) == ["MODE"]
    assert got[0].params[1] == "+v"


# -- item 10: several targets ------------------------------------------------------------------


def test_text_fits_each_target_not_the_longest(core):
    alice, bob = register(core, "alice"), register(core, "bob")
    alice.say("JOIN #c")
    bob.say("JOIN #c")
    bob.take()
    got = alice.say("PRIVMSG #c,bob," + "x" * 485 + " :hi")
    assert commands(got) == [N.ERR_NOSUCHNICK]
    assert_lines_fit(alice)
    assert [m.params for m in bob.take()] == [("#c", "hi"), ("bob", "hi")]
    long_text = "y" * 480
    alice.say(f"PRIVMSG #c,{'z' * 30} :{long_text}")
    (relayed,) = bob.take()
    assert long_text.startswith(relayed.params[1]) and len(relayed.params[1]) > 420


# -- item 11: +s does not leak -----------------------------------------------------------------


def test_secret_channel_does_not_exist_for_outsiders(core):
    op, outsider = register(core, "op"), register(core, "outsider")
    op.say("JOIN #secret", "MODE #secret +sk key", "MODE #secret +l 9", "MODE #secret +b evil",
           "TOPIC #secret :hush")
    for line in ("MODE #secret", "MODE #secret b", "MODE #secret +b", "TOPIC #secret",
                 "TOPIC #secret :mine", "MODE #secret +i", "KICK #secret op", "PART #secret",
                 "INVITE op #secret"):
        got = outsider.say(line)
        assert commands(got) == [N.ERR_NOSUCHCHANNEL], line
    assert core.state.find_channel("#secret").topic == "hush"
    assert commands(op.say("TOPIC #secret")) == [N.RPL_TOPIC, N.RPL_TOPICWHOTIME]


# -- item 12: ban evasion and a nick held without a password -----------------------------------


def test_banned_member_cannot_change_nick(core):
    op, bob = register(core, "op"), register(core, "bob")
    op.say("JOIN #c")
    bob.say("JOIN #c")
    op.say("MODE #c +b bob")
    assert commands(bob.say("PRIVMSG #c :x")) == [N.ERR_CANNOTSENDTOCHAN]
    got = bob.say("NICK clean")
    assert commands(got) == [N.ERR_BANONCHAN]
    assert got[0].params[1:3] == ("clean", "#c")
    assert bob.user.nick == "bob"
    op.say("MODE #c +v bob")
    assert commands(bob.say("NICK clean")) == ["NICK"]


def test_without_the_password_no_nick_is_held(clock):
    core = make_core(clock, password="pw")
    squatter = Peer(core)
    squatter.say("NICK admin")  # and then nothing: no PASS, no USER
    owner = Peer(core)
    got = owner.say("PASS pw", "NICK admin", "USER admin 0 * :Admin")
    assert commands(got)[0] == "001"
    assert core.state.find_user("admin") is owner.user


def test_a_nick_is_held_from_registration_on(core):
    first, second = Peer(core), Peer(core)
    first.say("NICK same")
    assert second.say("NICK same") == []
    assert commands(second.say("USER s 0 * :s"))[0] == "001"
    got = first.say("USER f 0 * :f")
    assert commands(got) == [N.ERR_NICKNAMEINUSE] and not first.user.registered
    assert commands(first.say("NICK other"))[0] == "001"


# -- protocol gaps -----------------------------------------------------------------------------


def test_info(core):
    alice = register(core, "alice")
    got = commands(alice.say("INFO"))
    assert got[-1] == N.RPL_ENDOFINFO and set(got[:-1]) == {N.RPL_INFO}


def test_user_with_an_empty_real_name_is_refused(core):
    peer = Peer(core)
    assert commands(peer.say("NICK a", "USER a 0 * :")) == [N.ERR_NEEDMOREPARAMS]
    assert not peer.user.registered


def test_an_away_user_joining_is_announced_to_away_notify(core):
    alice, bob, carol = register(core, "alice"), register(core, "bob"), register(core, "carol")
    alice.say("CAP REQ away-notify", "JOIN #c")
    carol.say("JOIN #c")
    alice.take()
    bob.say("AWAY :lunch")
    bob.say("JOIN #c")
    got = alice.take()
    assert [(m.command, m.params) for m in got] == [("JOIN", ("#c",)), ("AWAY", ("lunch",))]
    assert commands(carol.take()) == ["JOIN"]


def test_who_shows_invisible_users_to_those_sharing_a_channel(core):
    alice, shy, stranger = register(core, "alice"), register(core, "shy"), register(core, "x")
    shy.say("MODE shy +i", "JOIN #both,#other")
    alice.say("JOIN #both")
    for mask in ("shy", "*", "#other"):
        got = alice.say(f"WHO {mask}")
        assert "shy" in [m.params[5] for m in got if m.command == N.RPL_WHOREPLY], mask
        got = stranger.say(f"WHO {mask}")
        assert "shy" not in [m.params[5] for m in got if m.command == N.RPL_WHOREPLY], mask


def test_every_relayed_message_carries_a_unique_msgid(core):
    alice, bob, plain = register(core, "alice"), register(core, "bob"), register(core, "plain")
    alice.say("CAP REQ :message-tags echo-message")
    bob.say("CAP REQ message-tags")
    for peer in (alice, bob, plain):
        peer.say("JOIN #c")
    alice.take(), bob.take(), plain.take()
    mine = alice.say("PRIVMSG #c :one", "NOTICE #c :two", "@+typing=active TAGMSG #c",
                     "PRIVMSG bob :three")
    theirs = bob.take()
    ids = [m.tags["msgid"] for m in theirs]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert [m.tags["msgid"] for m in mine] == ids  # the echo carries the same id
    assert all(len(i) <= 24 for i in ids)
    assert all("msgid" not in m.tags for m in plain.take())


def test_userhost_and_ison_cut_between_entries(clock):
    core = make_core(clock, name="s" * 60 + ".example")
    asker = long_peer(core, "asker")
    others = [long_peer(core, f"o{n}") for n in range(5)]
    nicks = [peer.user.nick for peer in others]
    (reply,) = asker.say("USERHOST " + " ".join(nicks))
    entries = reply.params[-1].split()
    assert 0 < len(entries) < 5
    assert all(entry.endswith("@" + LONG_HOST) for entry in entries)
    (reply,) = asker.say("ISON " + " ".join(nicks * 3))
    assert set(reply.params[-1].split()) == set(nicks)
    assert_lines_fit(asker)


def test_kick_takes_as_many_targets_as_targmax_says(core):
    op = register(core, "op")
    op.say("JOIN #c")
    victims = [register(core, f"v{n}") for n in range(6)]
    for victim in victims:
        victim.say("JOIN #c")
    got = op.say("KICK #c " + ",".join(v.user.nick for v in victims))
    assert commands(got) == ["KICK"] * 4
    assert "TARGMAX=PRIVMSG:4,NOTICE:4,JOIN:,PART:,KICK:4,WHOIS:1" in core.isupport_tokens()


def test_who_by_mask_gives_a_bounded_answer(core):
    from twistedchat.server.commands.queries import WHO_MATCHES

    asker = register(core, "asker")
    for index in range(WHO_MATCHES + 10):
        register(core, f"n{index}")
    got = asker.say("WHO n*")
    assert commands(got) == [N.RPL_WHOREPLY] * WHO_MATCHES + [N.ERR_TOOMANYMATCHES, N.RPL_ENDOFWHO]
    asker.say("OPER admin secret")
    got = asker.say("WHO n*")
    assert commands(got).count(N.RPL_WHOREPLY) == WHO_MATCHES + 10


def test_list_gives_a_bounded_answer(core, monkeypatch):
    from twistedchat.server.commands import channels

    monkeypatch.setattr(channels, "LIST_MATCHES", 5)
    asker, owner = register(core, "asker"), register(core, "owner")
    owner.say(*(f"JOIN #c{index}" for index in range(8)))
    got = commands(asker.say("LIST"))
    assert got == [N.RPL_LISTSTART] + [N.RPL_LIST] * 5 + [N.ERR_TOOMANYMATCHES, N.RPL_LISTEND]
    asker.say("OPER admin secret")
    assert commands(asker.say("LIST")).count(N.RPL_LIST) == 8


# -- issue 13: what the modern commands cost a hostile client -----------------------------------


def test_monitor_of_ten_thousand_nicks_is_refused_past_the_limit(core):
    from twistedchat.server.state import MONITOR_LIMIT

    asker = register(core, "asker")
    nicks = [f"w{index}" for index in range(10_000)]
    lines, line, full = [], [], 0
    for nick in nicks:  # as many MONITOR + lines as 10,000 nicks need, each within 512 bytes
        if len(",".join([*line, nick])) > 480:
            lines.append(line)
            line = []
        line.append(nick)
    lines.append(line)
    for batch in lines:
        got = asker.say("MONITOR + " + ",".join(batch))
        assert len(got) <= 4  # one 731 (maybe two lines) and at most one 734 per line sent
        full += commands(got).count(N.ERR_MONLISTFULL)
    assert len(asker.user.monitoring) == MONITOR_LIMIT
    assert sum(len(w) for w in core.state.watchers.values()) == MONITOR_LIMIT
    assert len(lines[0]) > MONITOR_LIMIT and full == len(lines)  # each line past the limit: 734
    assert_lines_fit(asker)
    asker.say("QUIT")
    assert core.state.watchers == {}


def test_whox_over_every_user_is_bounded_like_who(core):
    from twistedchat.server.commands.queries import WHO_MATCHES

    asker = register(core, "asker")
    for index in range(WHO_MATCHES + 10):
        register(core, f"n{index}", host=LONG_HOST)
    got = asker.say("WHO * %tcuihsnfdlaor,999")
    assert commands(got) == (
        [N.RPL_WHOSPCRPL] * WHO_MATCHES + [N.ERR_TOOMANYMATCHES, N.RPL_ENDOFWHO])
    assert_lines_fit(asker)
    asker.say("OPER admin secret")
    assert commands(asker.say("WHO * %n")).count(N.RPL_WHOSPCRPL) == WHO_MATCHES + 11


def test_metadata_flood_keeps_every_limit(core):
    from twistedchat.server.state import (
        METADATA_MAX_KEY_BYTES,
        METADATA_MAX_KEYS,
        METADATA_MAX_SUBS,
        METADATA_MAX_VALUE_BYTES,
    )

    flooder, victim = register(core, "flooder"), register(core, "victim")
    flooder.say("CAP REQ draft/metadata-2", "JOIN #c")
    victim.say("CAP REQ draft/metadata-2", "JOIN #c")
    big = "v" * METADATA_MAX_VALUE_BYTES
    limited = 0
    for index in range(1000):
        got = flooder.say(f"METADATA * SET {'k' * 50}{index} :{big}")
        limited += [m.params[1] for m in got if m.command == "FAIL"] == ["LIMIT_REACHED"]
        flooder.say(f"METADATA #c SET {'k' * 50}{index} :{big}")
    assert limited == 1000 - METADATA_MAX_KEYS
    own = core.state.metadata.values(flooder.user.owner)
    channel = core.state.metadata.values(core.state.find_channel("#c").owner)
    assert len(own) == len(channel) == METADATA_MAX_KEYS
    held = sum(len(k) + len(v.encode()) for k, v in own.items())
    assert held <= METADATA_MAX_KEYS * (METADATA_MAX_KEY_BYTES + METADATA_MAX_VALUE_BYTES)
    for index in range(200):
        flooder.say("METADATA * SUB " + " ".join(f"s{index}x{n}" for n in range(20)))
    assert len(flooder.user.metadata_subs) == METADATA_MAX_SUBS
    got = flooder.say("METADATA * SUB " + " ".join(f"k{n}" for n in range(60)))
    assert [m.params[1] for m in got if m.command == "FAIL"] == ["TOO_MANY_SUBS"]
    # One GET of as many keys as a line holds: one reply per key, every line within 512 bytes.
    keys = list(own)
    got = victim.say("METADATA flooder GET " + " ".join(keys[:8]))
    assert commands(got) == [N.RPL_KEYVALUE] * 8
    assert_lines_fit(flooder, victim)
    flooder.say("QUIT")
    assert core.state.metadata.values(f"connection:{flooder.user.connection_id}") == {}


def test_metadata_sync_of_a_big_channel_is_postponed_on_join(core):
    from twistedchat.server.commands.metadata import SYNC_ON_JOIN_MEMBERS

    for index in range(SYNC_ON_JOIN_MEMBERS + 1):
        member = register(core, f"m{index}")
        member.say("JOIN #big", "CAP REQ draft/metadata-2", "METADATA * SET avatar :x")
    late = register(core, "late")
    late.say("CAP REQ draft/metadata-2", "METADATA * SUB avatar")
    got = late.say("JOIN #big")
    assert "METADATA" not in commands(got)
    assert [m.params[1] for m in got if m.command == N.RPL_METADATASYNCLATER] == ["#big"]
    synced = late.say("METADATA #big SYNC")
    assert commands(synced) == ["METADATA"] * (SYNC_ON_JOIN_MEMBERS + 1)


def test_read_markers_flood_is_bounded(core):
    from twistedchat.server.state import READ_MARKERS_KEEP

    flooder = register(core, "flooder")
    for index in range(READ_MARKERS_KEEP + 50):
        flooder.say(f"MARKREAD n{index} timestamp=2026-01-01T00:00:00.000Z")
    assert core.state.read_markers.count(flooder.user.owner) == READ_MARKERS_KEEP


def test_help_links_and_statusmsg_cost_a_few_lines(core):
    asker = register(core, "asker")
    assert len(asker.say("HELP")) <= 6
    assert len(asker.say("HELP " + "x" * 400)) == 1
    assert len(asker.say("LINKS " + PATHOLOGICAL)) == 1
    asker.say("JOIN #c")
    assert asker.say("PRIVMSG @#c :" + "x" * 500) == []
    assert_lines_fit(asker)
