"""The client model's new parts without widgets: echo-message, names, replies, formatting, commands,
filters, the unread marker, logs and pacing."""

from __future__ import annotations

from datetime import datetime

import pytest
from twisted.internet.task import Clock

from twistedchat.client.commands import Command, CommandError, parse_input
from twistedchat.client.filters import MAX_IGNORES, FilterError, Filters
from twistedchat.client.formatting import PLAIN, Style, parse, strip
from twistedchat.client.logs import ConversationLogger, format_line, parse_line, safe_name
from twistedchat.client.pacing import RateLimiter
from twistedchat.client.replies import Place, Reply, describe
from twistedchat.client.session import (
    ChannelListChanged,
    ConversationCleared,
    HistoryRestored,
    Kind,
    Line,
    PendingChanged,
    ReconnectRequested,
    Session,
    TopicChanged,
)

NOON = datetime(2026, 1, 1, 12, 0)


@pytest.fixture
def session() -> Session:
    s = Session("me", clock=lambda: NOON)
    s.connected = True
    return s


@pytest.fixture
def events(session):
    seen: list = []
    session.subscribe(seen.append)
    return seen


def joined(session: Session, channel: str = "#c") -> object:
    session.on_join(channel, "me")
    return session.find(channel)


# -- echo-message: pending, confirmed, refused ---------------------------------------------------


def test_with_echo_own_lines_wait_until_the_server_echoes_them(session, events):
    channel = joined(session)
    session.on_caps({"echo-message", "server-time"})
    assert session.handle_input("hello", channel) == ["PRIVMSG #c :hello"]
    assert [line.text for line in channel.lines if line.own] == []
    assert [p.text for p in session.pending_in(channel)] == ["hello"]
    assert PendingChanged(channel) in events
    session.on_message("me", "#c", "hello")
    assert session.pending_in(channel) == []
    assert channel.lines[-1].own and channel.lines[-1].text == "hello"


def test_without_echo_own_lines_show_at_once(session):
    channel = joined(session)
    session.handle_input("hello", channel)
    assert channel.lines[-1].text == "hello" and channel.lines[-1].own


def test_a_refused_message_opens_no_tab_and_says_not_sent(session):
    channel = joined(session)
    session.on_caps({"echo-message"})
    session.handle_input("/msg nobody hello", channel)
    assert session.find("nobody") is None
    assert [p.target for p in session.pending_in(channel)] == ["nobody"]
    session.on_send_failed("nobody", "No such nick/channel")
    assert session.pending_in(channel) == []
    assert channel.lines[-1].kind is Kind.ERROR
    assert channel.lines[-1].text == "Not sent (No such nick/channel): hello"


def test_an_accepted_private_message_opens_its_conversation_on_the_echo(session):
    channel = joined(session)
    session.on_caps({"echo-message"})
    session.handle_input("/msg bob hi", channel)
    session.on_message("me", "bob", "hi")
    assert session.find("bob").lines[-1].text == "hi"
    assert session.pending_in(channel) == []


def test_a_lost_connection_gives_up_pending_lines_quietly(session):
    channel = joined(session)
    session.on_caps({"echo-message"})
    session.activate(session.server)
    session.handle_input("lost words", channel)
    session.on_connection_lost("gone")
    assert session.pending_in(channel) == []
    assert any("Not sent (disconnected): lost words" in line.text for line in channel.lines)


def test_disconnect_lines_do_not_count_as_unread(session):
    channel = joined(session)
    session.activate(session.server)
    session.on_connection_lost("Server restarting")
    assert channel.unread == 0 and channel.lines[-1].kind is Kind.ERROR


# -- names, topics, channel list ---------------------------------------------------------------


def test_names_for_star_or_an_unjoined_channel_print_a_line_and_open_nothing(session):
    joined(session, "#c")
    session.on_names("*", [("", "x")])
    session.on_names("#other", [("@", "bob"), ("", "carl")])
    assert session.find("*") is None and session.find("#other") is None
    texts = [line.text for line in session.find("#c").lines]
    assert "Users: x" in texts and "#other (2 members): @bob carl" in texts


def test_names_asked_for_a_joined_channel_update_members_and_print(session):
    channel = joined(session, "#c")
    session.handle_input("/names", channel)
    session.on_names("#c", [("@", "me"), ("", "bob")])
    assert channel.has_member("bob")
    assert channel.lines[-1].text == "#c (2 members): @me bob"
    session.on_names("#c", [("@", "me")])  # a join's own list is not printed
    assert channel.lines[-1].text == "#c (2 members): @me bob"


def test_rejoining_forgets_the_old_topic_until_the_server_says(session, events):
    channel = joined(session, "#c")
    session.on_topic("#c", "old")
    session.on_connection_lost("x")
    events.clear()
    session.on_join("#c", "me")
    assert channel.topic == "" and TopicChanged(channel) in events


def test_channel_list_collects_and_restarts(session, events):
    session.handle_input("/list", session.server)
    session.on_channel_list([("#a", 3, "topic")], False)
    session.on_channel_list([], True)
    assert session.channel_list == [("#a", 3, "topic")]
    assert events[-1] == ChannelListChanged(True)
    assert session.handle_input("/list", session.server) == ["LIST"]
    assert session.channel_list == []


# -- client commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "line"), [
    ("/kick bob go away", "KICK #c bob :go away"),
    ("/kick #d bob", "KICK #d bob"),
    ("/mode +t", "MODE #c +t"),
    ("/mode #d +m", "MODE #d +m"),
    ("/op bob carl", "MODE #c +oo bob carl"),
    ("/deop bob", "MODE #c -o bob"),
    ("/voice bob", "MODE #c +v bob"),
    ("/devoice bob", "MODE #c -v bob"),
    ("/ban bob", "MODE #c +b bob!*@*"),
    ("/invite bob", "INVITE bob #c"),
    ("/names", "NAMES #c"),
    ("/ctcp bob version", "PRIVMSG bob :\x01VERSION\x01"),
])
def test_channel_commands_fill_in_the_current_channel(typed, line):
    assert parse_input(typed, "#c").line == line


@pytest.mark.parametrize("typed", ["/op bob", "/names", "/kick bob", "/op a b c d e"])
def test_channel_commands_outside_a_channel_say_how(typed):
    with pytest.raises(CommandError):
        parse_input(typed, None if typed != "/op a b c d e" else "#c")


def test_clear_reconnect_and_ignore_are_carried_out_by_the_client(session, events):
    channel = joined(session)
    session.on_message("bob", "#c", "hi")
    assert session.handle_input("/clear", channel) == []
    assert not channel.lines and ConversationCleared(channel) in events
    assert session.handle_input("/reconnect", channel) == []
    assert ReconnectRequested() in events
    session.handle_input("/ignore bob", channel)
    session.on_message("bob", "#c", "ignored", source="bob!~b@host")
    session.on_message("BOB", "#c", "ignored too")
    assert not any("ignored" in line.text for line in channel.lines if line.nick.lower() == "bob")
    session.handle_input("/ignore", channel)
    assert channel.lines[-1].text == "Ignoring: bob!*@*"
    session.handle_input("/unignore bob", channel)
    session.on_message("bob", "#c", "heard again")
    assert channel.lines[-1].text == "heard again"
    assert parse_input("/ignore", "#c") == Command("ignore")


def test_ctcp_is_shown_sent_and_refused_when_offline(session):
    channel = joined(session)
    assert session.handle_input("/ctcp bob PING 1", channel) == ["PRIVMSG bob :\x01PING 1\x01"]
    assert channel.lines[-1].text == "CTCP PING 1 sent to bob"
    session.on_ctcp("bob", "me", "VERSION", True)
    assert channel.lines[-1].text == "bob asked for CTCP VERSION (answered)"
    session.on_ctcp_reply("bob", "VERSION x 1")
    assert channel.lines[-1].text == "CTCP VERSION reply from bob: x 1"
    session.connected = False
    assert session.handle_input("/ctcp bob VERSION", channel) == []


# -- filters -----------------------------------------------------------------------------------


def test_ignore_list_has_a_limit_and_matches_masks():
    filters = Filters()
    filters.ignore("*!*@spam.example")
    assert filters.ignored("anyone!x@spam.example") and not filters.ignored("bob!b@ok")
    for n in range(MAX_IGNORES - 1):
        filters.ignore(f"n{n}")
    with pytest.raises(FilterError, match="full"):
        filters.ignore("onemore")


def test_highlight_words_count_as_mentions(session):
    channel = joined(session)
    session.set_highlights(["release", "c++"])
    session.activate(session.server)
    session.on_message("bob", "#c", "the Release is out")
    session.on_message("bob", "#c", "who knows c++?")
    session.on_message("bob", "#c", "prereleases are not")
    assert [line.mention for line in channel.lines][-3:] == [True, True, False]
    assert channel.mentions == 2
    session.on_message("bob", "#c", "me: still you")
    assert channel.lines[-1].mention


def test_muted_conversations_count_nothing(session):
    channel = joined(session)
    channel.muted = True
    session.activate(session.server)
    session.on_message("bob", "#c", "me: hey")
    assert channel.unread == 0 and channel.mentions == 0


# -- the unread marker and restored history ---------------------------------------------------


def test_first_unread_is_the_first_line_after_leaving(session):
    channel = joined(session)
    session.on_message("bob", "#c", "seen")
    session.activate(session.server)
    session.on_message("bob", "#c", "new one")
    session.on_message("bob", "#c", "newer")
    assert channel.first_unread.text == "new one"
    session.activate(channel)
    assert channel.first_unread.text == "new one"  # still drawn while looking
    session.activate(session.server)
    assert channel.first_unread is None


def test_restore_puts_older_lines_first(session, events):
    channel = joined(session)
    old = [Line(NOON, Kind.MESSAGE, "from yesterday", "bob")]
    session.restore(channel, old)
    assert channel.lines[0].text == "from yesterday"
    assert HistoryRestored(channel) in events


# -- formatting --------------------------------------------------------------------------------


def test_mirc_codes_parse_into_styled_runs():
    runs = parse("a\x02b\x1dc\x0f d\x0304,12e\x03f\x1fg\x16h")
    assert runs == [
        ("a", PLAIN), ("b", Style(bold=True)), ("c", Style(bold=True, italic=True)),
        (" d", PLAIN), ("e", Style(foreground=4, background=12)), ("f", PLAIN),
        ("g", Style(underline=True)), ("h", Style(underline=True, reverse=True))]
    assert parse("\x0399x") == [("x", PLAIN)]  # 99: the default colour
    assert strip("\x0304,12red\x03") == "red"


# -- replies -----------------------------------------------------------------------------------


def test_whois_and_lusers_read_as_sentences():
    assert describe("317", ["me", "bob", "17", "1796026573", "seconds idle, signon time"]) \
        .text.startswith("bob has been idle 17 s, signed on ")
    assert describe("311", ["me", "bob", "~b", "host", "*", "Bob B"]).text == \
        "bob is ~b@host (Bob B)"
    assert describe("265", ["me", "2", "2", "Current local users 2, max 2"]).text == \
        "Current local users 2, max 2"
    motd = describe("422", ["me", "MOTD File is missing"])
    assert motd.place is Place.SERVER and not motd.error
    refused = describe("404", ["me", "#c", "Cannot send to channel"])
    assert refused.error and refused.place is Place.TARGET and refused.target == "#c"
    assert describe("322", ["me", "#c", "3", "topic"]) is None
    assert describe("341", ["me", "bob", "#c"]) == Reply("Invited bob to #c", Place.TARGET,
                                                        target="#c")


# -- logs --------------------------------------------------------------------------------------


def test_log_lines_round_trip_and_names_are_safe():
    line = Line(NOON, Kind.ACTION, "waves\there", "bob")
    assert parse_line(format_line(line)) == Line(NOON, Kind.ACTION, "waves\there", "bob")
    assert parse_line("garbage") is None
    assert safe_name("../etc/passwd") == "_.._etc_passwd"
    assert safe_name("*server*") == "server" and safe_name("#Lobby") == "#lobby"


def test_logs_follow_xdg_data_home_and_restore_after_a_restart(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    first = Session("me", clock=lambda: NOON)
    logger = ConversationLogger(first, "chat.example.org")
    first.on_join("#c", "me")
    first.on_message("bob", "#c", "remember me")
    logger.close()
    path = tmp_path / "twistedchat" / "logs" / "chat.example.org" / "#c.log"
    assert "remember me" in path.read_text()

    second = Session("me", clock=lambda: NOON)
    ConversationLogger(second, "chat.example.org")
    second.on_join("#c", "me")
    texts = [line.text for line in second.find("#c").lines]
    assert texts[-1] == "You joined #c" and "remember me" in texts[:-1]


# -- pacing ------------------------------------------------------------------------------------


def test_pacing_keeps_order_and_rate():
    clock = Clock()
    sent: list[int] = []
    limiter = RateLimiter(sent.append, clock, burst=3, rate=2.0)
    for n in range(10):
        limiter(n)
    assert sent == [0, 1, 2] and limiter.waiting == 7
    clock.advance(1.0)
    assert sent == [0, 1, 2, 3, 4]
    clock.pump([0.5] * 8)
    assert sent == list(range(10)) and limiter.waiting == 0


def test_an_echo_changed_by_the_server_still_confirms_its_line(session):
    channel = joined(session)
    session.on_caps({"echo-message"})
    session.handle_input("\x0304red\x03 text", channel)
    session.handle_input("second", channel)
    session.on_message("me", "#c", "red text")  # the server stripped the colours
    assert [p.text for p in session.pending_in(channel)] == ["second"]


def test_logs_survive_long_names_and_a_directory_that_cannot_be_written(tmp_path):
    long_name = "#" + "x" * 300
    assert len(safe_name(long_name)) < 120 and safe_name(long_name) != safe_name(long_name + "y")
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    session = Session("me", clock=lambda: NOON)
    logger = ConversationLogger(session, "net", directory=blocked)
    session.on_join("#c", "me")
    session.on_message("bob", "#c", "still shown")
    assert logger.failed and "Conversation logs are off" in session.server.lines[-1].text
    assert session.find("#c").lines[-1].text == "still shown"
    logger.close()


def test_restore_reads_only_the_end_of_a_big_log(tmp_path):
    from twistedchat.client.logs import RESTORE_BYTES, RESTORED_LINES

    directory = tmp_path / "logs"
    path = directory / "net" / "#c.log"
    path.parent.mkdir(parents=True)
    with open(path, "w") as log:
        for n in range(RESTORE_BYTES // 20):
            log.write(format_line(Line(NOON, Kind.MESSAGE, f"line {n}", "bob")))
    session = Session("me", clock=lambda: NOON)
    ConversationLogger(session, "net", directory=directory)
    session.on_join("#c", "me")
    texts = [line.text for line in session.find("#c").lines]
    assert len(texts) == RESTORED_LINES + 1
    assert texts[-2] == f"line {RESTORE_BYTES // 20 - 1}"


def test_a_huge_channel_list_is_capped(session):
    from twistedchat.client.session import MAX_LISTED

    session.on_channel_list([(f"#c{n}", 1, "") for n in range(MAX_LISTED + 5)], False)
    session.on_channel_list([("#late", 1, "")], True)
    assert len(session.channel_list) == MAX_LISTED


def test_highlight_words_are_capped():
    from twistedchat.client.filters import MAX_HIGHLIGHTS

    filters = Filters()
    filters.set_highlights("me", [f"w{n}" for n in range(MAX_HIGHLIGHTS + 10)])
    assert len(filters.highlights) == MAX_HIGHLIGHTS
    assert filters.mentions("w0 here") and not filters.mentions(f"w{MAX_HIGHLIGHTS} here")
