"""The slash-command parser: what the user types -> a Command (and its protocol line)."""

from __future__ import annotations

import pytest

from twistedchat.client.commands import ALIASES, USAGE, Command, CommandError, parse_input


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_blank_input_is_nothing(text):
    assert parse_input(text, "#c") is None


def test_plain_text_is_said_verbatim_and_double_slash_escapes():
    assert parse_input("  hello  there ", "#c") == Command("say", ("#c", "  hello  there "))
    assert parse_input("//join is a command", "bob") == Command("say", ("bob", "/join is a command"))
    with pytest.raises(CommandError, match="server window"):
        parse_input("hello", None)


def test_aliases_and_command_case_are_folded():
    assert parse_input("/J lobby", None).line == "JOIN #lobby"
    assert parse_input("/JOIN #x", None).line == "JOIN #x"
    assert parse_input("/q bob", None) == Command("query", ("bob", ""))
    assert parse_input("/leave", "#c").line == "PART #c"
    assert parse_input("/quote PING x", None).line == "PING x"
    assert parse_input("/action waves", "#c") == Command("me", ("#c", "waves"))
    assert all(target in USAGE for target in ALIASES.values())


@pytest.mark.parametrize(("typed", "line"), [
    ("/join #a", "JOIN #a"),
    ("/join a,&b,#c", "JOIN #a,&b,#c"),
    ("/join #a,,b", "JOIN #a,#b"),
    ("/join #secret key", "JOIN #secret key"),
])
def test_join(typed, line):
    command = parse_input(typed, None)
    assert command.name == "join" and command.line == line
    assert command.args == (line.split()[1],)


@pytest.mark.parametrize("typed", ["/join", "/join   ", "/join #a key extra"])
def test_join_usage(typed):
    with pytest.raises(CommandError) as info:
        parse_input(typed, None)
    assert str(info.value) == "Usage: " + USAGE["join"]


@pytest.mark.parametrize(("typed", "target", "line"), [
    ("/part", "#c", "PART #c"),
    ("/part going home", "#c", "PART #c :going home"),
    ("/part #other", "#c", "PART #other"),
    ("/part #other bye", None, "PART #other :bye"),
    ("/part &local", "bob", "PART &local"),
])
def test_part(typed, target, line):
    assert parse_input(typed, target).line == line


@pytest.mark.parametrize(("typed", "target"), [("/part", None), ("/part", "bob"),
                                               ("/part bye", "bob"), ("/topic", None),
                                               ("/topic new one", "bob")])
def test_part_and_topic_need_a_channel(typed, target):
    with pytest.raises(CommandError, match="Usage: /(part|topic)"):
        parse_input(typed, target)


@pytest.mark.parametrize(("typed", "target", "line"), [
    ("/topic", "#c", "TOPIC #c"),
    ("/topic Welcome all", "#c", "TOPIC #c :Welcome all"),
    ("/topic #d", "#c", "TOPIC #d"),
    ("/topic #d news: today", None, "TOPIC #d :news: today"),
])
def test_topic(typed, target, line):
    assert parse_input(typed, target).line == line


def test_msg_and_notice_keep_the_message_as_typed():
    assert parse_input("/msg bob hi  there :)", None) == Command("msg", ("bob", "hi  there :)"))
    assert parse_input("/m #c hi", None) == Command("msg", ("#c", "hi"))
    assert parse_input("/notice bob ping", "#c") == Command("notice", ("bob", "ping"))


@pytest.mark.parametrize("typed", ["/msg", "/msg bob", "/msg bob    ", "/notice bob"])
def test_msg_usage(typed):
    with pytest.raises(CommandError, match="Usage: /(msg|notice) nick-or-#channel text"):
        parse_input(typed, "#c")


def test_query():
    assert parse_input("/query bob", None) == Command("query", ("bob", ""))
    assert parse_input("/query bob  hi there ", None) == Command("query", ("bob", "hi there"))
    for typed in ("/query", "/query #c", "/query &c hi"):
        with pytest.raises(CommandError, match="Usage: /query"):
            parse_input(typed, None)


def test_me_needs_a_conversation_and_text():
    assert parse_input("/me  waves  ", "bob") == Command("me", ("bob", "waves"))
    with pytest.raises(CommandError, match="needs a channel or conversation"):
        parse_input("/me waves", None)
    with pytest.raises(CommandError, match="Usage: /me"):
        parse_input("/me", "#c")


def test_nick_and_whois_take_exactly_one_word():
    assert parse_input("/nick  newme ", None) == Command("nick", ("newme",), "NICK newme")
    assert parse_input("/w bob", None) == Command("whois", ("bob",), "WHOIS bob")
    for typed in ("/nick", "/nick a b", "/nick a\tb", "/whois", "/whois a b", "/whois a\nb"):
        with pytest.raises(CommandError, match="Usage: /(nick|whois)"):
            parse_input(typed, None)


def test_away_and_back():
    assert parse_input("/away at lunch", None) == Command("away", ("at lunch",), "AWAY :at lunch")
    assert parse_input("/away", None).line == "AWAY"
    assert parse_input("/back", None) == Command("away", ("",), "AWAY")


def test_quit_close_help():
    assert parse_input("/quit", None) == Command("quit", ("Leaving",))
    assert parse_input("/exit good night", None) == Command("quit", ("good night",))
    assert parse_input("/close", "#c") == Command("close")
    assert parse_input("/wc", "bob") == Command("close")
    assert parse_input("/help", None) == Command("help")


def test_raw_sends_the_line_as_typed():
    assert parse_input("/raw MODE #c +m", None) == Command("raw", ("MODE #c +m",), "MODE #c +m")
    with pytest.raises(CommandError, match="Usage: /raw"):
        parse_input("/raw   ", None)


def test_unknown_command_goes_to_the_server_upper_cased():
    command = parse_input("/knock #c please", "#c")
    assert command.name == "raw"
    assert command.line == "KNOCK #c please"
    assert parse_input("/mode", None).line == "MODE"
    with pytest.raises(CommandError, match="Type a command after /"):
        parse_input("/ hello", "#c")


def test_targets_end_at_any_whitespace_and_nul_is_removed():
    """A line break after the target must not end up inside the PRIVMSG target."""
    assert parse_input("/msg bob\r\nQUIT :x", None) == Command("msg", ("bob", "\nQUIT :x"))
    assert parse_input("/query bob\tx", None) == Command("query", ("bob", "x"))
    assert parse_input("a\0b", "#c") == Command("say", ("#c", "ab"))
    assert parse_input("/msg bob x\0y", None).args == ("bob", "xy")
    assert parse_input("\0", "#c") is None


@pytest.mark.parametrize("typed", [
    "/raw PRIVMSG #c :hi\r\nQUIT :pwned",
    "/topic #c new\nQUIT",
    "/part #c bye\rQUIT",
    "/away gone\r\nQUIT",
    "/join #a\nQUIT",
    "/mode #c\r\n+o bob",
    "/kick\0 #c bob",
    "/nick\0x",
])
def test_no_cr_lf_or_nul_in_a_protocol_line(typed):
    command = parse_input(typed, "#c")
    assert command.line
    assert not any(c in command.line for c in "\r\n\0"), command.line
