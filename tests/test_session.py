"""The sans-IO session model: conversations, members, counters and the events a view follows."""

from __future__ import annotations

from datetime import datetime

import pytest

from twistedchat.client.commands import USAGE
from twistedchat.client.session import (
    SERVER,
    Activated,
    Attention,
    ConversationClosed,
    ConversationOpened,
    ConversationRenamed,
    CountersChanged,
    Kind,
    MembersChanged,
    NickChanged,
    QuitRequested,
    Session,
    StatusChanged,
    TopicChanged,
)
from twistedchat.wire.message import MAX_LINE_BYTES

NOON = datetime(2026, 1, 1, 12, 0)


@pytest.fixture
def session() -> Session:
    return Session("me", clock=lambda: NOON)


@pytest.fixture
def events(session: Session) -> list:
    collected: list = []
    session.subscribe(collected.append)
    return collected


def kinds(events: list) -> list[str]:
    return [type(event).__name__ for event in events]


def of_type(events: list, cls: type) -> list:
    return [event for event in events if isinstance(event, cls)]


def texts(conversation) -> list[str]:
    return [line.text for line in conversation.lines]


def joined(session: Session, channel: str = "#c", *others: str):
    """``channel`` joined by us (and ``others``), the way the server would tell it."""
    session.on_join(channel, session.nick)
    for nick in others:
        session.on_join(channel, nick)
    return session.find(channel)


# -- conversations and subscribers -----------------------------------------------------------


def test_new_session_and_conversation_kinds(session):
    assert list(session.conversations) == [SERVER]
    assert session.server.is_server and not session.server.is_channel
    assert session.active is None and not session.connected
    assert session.open("#c").is_channel
    assert session.open("&local").is_channel
    assert session.open("bob").is_query
    assert not session.open("bob").is_channel


def test_open_announces_once_find_ignores_rfc1459_case_and_unsubscribe(session, events):
    first = session.open("[Bob]")
    again = session.open("{bob}")
    assert again is first
    assert session.find("{BOB}") is first
    assert of_type(events, ConversationOpened) == [ConversationOpened(first)]
    session.unsubscribe(events.append)
    session.open("#c")
    assert len(events) == 1


def test_close_forgets_conversation_but_never_the_server(session, events):
    query = session.open("bob")
    session.activate(query)
    session.close("BOB")
    assert session.find("bob") is None
    assert session.active is None
    assert of_type(events, ConversationClosed) == [ConversationClosed(query)]
    session.close(SERVER)
    session.close("nobody")
    assert session.find(SERVER) is session.server
    assert len(of_type(events, ConversationClosed)) == 1


def test_scrollback_keeps_only_the_newest_lines():
    session = Session("me", scrollback=3, clock=lambda: NOON)
    for number in range(5):
        session.on_message("bob", "#c", f"line {number}")
    assert texts(session.find("#c")) == ["line 2", "line 3", "line 4"]
    assert session.find("#c").lines.maxlen == 3


# -- messages --------------------------------------------------------------------------------


def test_channel_message_in_inactive_channel_counts_unread(session, events):
    session.on_message("bob", "#c", "hello")
    channel = session.find("#c")
    line = channel.lines[-1]
    assert (line.time, line.kind, line.nick, line.text, line.own, line.mention) == (
        NOON, Kind.MESSAGE, "bob", "hello", False, False)
    assert (channel.unread, channel.mentions) == (1, 0)
    assert kinds(events) == ["ConversationOpened", "LineAdded", "CountersChanged"]
    assert of_type(events, Attention) == []


def test_message_in_active_conversation_does_not_count_and_keeps_server_time(session, events):
    channel = joined(session, "#c")
    events.clear()
    earlier = datetime(2025, 12, 31, 23, 59)
    session.on_message("bob", "#c", "waves", Kind.ACTION, time=earlier)
    assert (channel.unread, channel.mentions) == (0, 0)
    assert kinds(events) == ["LineAdded"]
    assert (channel.lines[-1].kind, channel.lines[-1].time) == (Kind.ACTION, earlier)


def test_private_message_opens_query_counts_as_mention_and_asks_attention(session, events):
    session.on_message("bob", "me", "psst")
    query = session.find("bob")
    assert query is not None and query.is_query
    assert (query.unread, query.mentions) == (1, 1)
    [attention] = of_type(events, Attention)
    assert attention.conversation is query and attention.line.text == "psst"
    session.on_message("BOB", "me", "again")  # same nick, other case: same conversation
    assert texts(query) == ["psst", "again"] and len(session.conversations) == 2


def test_mention_in_channel_is_flagged_counted_and_asks_attention(session, events):
    session.on_message("bob", "#c", "ME: are you there?")
    channel = session.find("#c")
    assert channel.lines[-1].mention
    assert (channel.unread, channel.mentions) == (1, 1)
    assert [e.line.text for e in of_type(events, Attention)] == ["ME: are you there?"]


@pytest.mark.parametrize("text", ["me", "hi me!", "me: hi", "@me look", "(me)", "ask me, ok",
                                  "cc:me"])
def test_mention_matches_the_whole_nick(session, text):
    assert session.mentions_me(text)


@pytest.mark.parametrize("text", ["meet", "some", "hi mel", "me_too", "me-bot", "[me]", "name"])
def test_mention_ignores_nick_inside_a_longer_word_or_nick(session, text):
    assert not session.mentions_me(text)


def test_own_messages_never_count_mention_or_ask_attention(session, events):
    session.on_message("me", "#c", "me me me")
    line = session.find("#c").lines[-1]
    assert line.own and not line.mention
    session.on_message("ME", "bob", "hi bob")
    query = session.find("bob")
    assert query.is_query and query.lines[-1].own
    assert of_type(events, Attention) == [] and of_type(events, CountersChanged) == []


def test_server_notices_go_to_the_server_conversation(session):
    session.on_message("irc.example.net", "me", "*** Looking up your hostname", Kind.NOTICE)
    session.on_message("", "*", "no sender", Kind.NOTICE)
    assert texts(session.server) == ["*** Looking up your hostname", "no sender"]
    assert len(session.conversations) == 1


def test_private_notice_goes_to_its_query_or_where_the_user_looks(session):
    """A service's notice needs no new tab; a notice from someone we talk to goes there."""
    channel = joined(session, "#c")
    session.on_message("NickServ", "me", "This nick is registered", Kind.NOTICE)
    assert session.find("NickServ") is None
    assert channel.lines[-1].kind is Kind.NOTICE and channel.lines[-1].nick == "NickServ"
    query = session.open("bob")
    session.on_message("bob", "me", "fyi", Kind.NOTICE)
    assert texts(query) == ["fyi"] and texts(channel)[-1] != "fyi"


# -- counters and activation -----------------------------------------------------------------


def test_activate_resets_counters_and_emits_once(session, events):
    session.on_message("bob", "#c", "me: one")
    session.on_message("bob", "#c", "two")
    channel = session.find("#c")
    assert (channel.unread, channel.mentions) == (2, 1)
    events.clear()
    session.activate(channel)
    assert (channel.unread, channel.mentions) == (0, 0)
    assert events == [Activated(channel), CountersChanged(channel)]
    events.clear()
    session.activate(channel)
    assert events == []


def test_events_and_info_do_not_count_but_errors_do(session):
    channel = session.open("#c")
    session.on_join("#c", "bob")
    session.info("just so you know", channel)
    assert channel.unread == 0
    session.error("something failed", channel)
    assert (channel.unread, channel.mentions) == (1, 0)
    assert channel.lines[-1].kind is Kind.ERROR


def test_errors_and_events_in_a_query_are_not_mentions(session, events):
    """A line of our own making is not someone writing to us (the tab should not turn red)."""
    query = session.open("bob")
    session.error("Not connected", query)
    assert (query.unread, query.mentions) == (1, 0)
    session.on_quit("bob", "gone")
    assert (query.unread, query.mentions) == (1, 0)
    assert of_type(events, Attention) == []


# -- joins, parts, kicks, quits --------------------------------------------------------------


def test_own_join_marks_joined_activates_and_lists_us(session, events):
    channel = joined(session, "#c")
    assert channel.joined and session.active is channel
    assert [m.nick for m in channel.members.values()] == ["me"]
    assert texts(channel) == ["You joined #c"]
    assert kinds(events) == ["ConversationOpened", "Activated", "LineAdded", "MembersChanged"]
    joined(session, "#b")
    assert session.active is channel  # a second join does not steal the focus


def test_others_join_and_part(session, events):
    channel = joined(session, "#c")
    events.clear()
    session.on_join("#c", "Bob")
    assert channel.has_member("bob") and channel.lines[-1].kind is Kind.JOIN
    assert texts(channel)[-1] == "Bob joined #c"
    session.on_part("#c", "BOB", "bye")
    assert not channel.has_member("bob") and channel.joined
    assert texts(channel)[-1] == "BOB left (bye)" and channel.lines[-1].kind is Kind.PART
    assert kinds(events) == ["LineAdded", "MembersChanged"] * 2


def test_own_part_leaves_the_conversation_open_but_not_joined(session):
    channel = joined(session, "#c", "bob")
    session.on_part("#c", "me")
    assert session.find("#c") is channel
    assert not channel.joined and channel.members == {}
    assert texts(channel)[-1] == "You left #c"


def test_kick_of_other_and_of_us_and_unknown_channels_ignored(session, events):
    session.on_part("#nowhere", "bob")
    session.on_kick("#nowhere", "bob", "op")
    assert events == [] and session.find("#nowhere") is None
    channel = joined(session, "#c", "bob")
    session.on_kick("#c", "bob", "op", "spam")
    assert not channel.has_member("bob")
    assert texts(channel)[-1] == "op kicked bob (spam)"
    session.on_kick("#c", "me", "op")
    assert not channel.joined and channel.members == {}
    assert texts(channel)[-1] == "You were kicked from #c by op"
    assert channel.lines[-1].kind is Kind.KICK


def test_quit_shows_only_where_the_nick_was(session, events):
    shared = joined(session, "#a", "bob")
    other = joined(session, "#b", "carol")
    query = session.open("Bob")
    events.clear()
    session.on_quit("bob", "Ping timeout")
    assert texts(shared)[-1] == "bob quit (Ping timeout)" and not shared.has_member("bob")
    assert texts(query) == ["bob quit (Ping timeout)"]
    assert texts(other)[-1] == "carol joined #b"
    assert of_type(events, MembersChanged) == [MembersChanged(shared)]


def test_connection_lost_leaves_joined_channels_and_says_so(session, events):
    channel = joined(session, "#c", "bob")
    parted = joined(session, "#old")
    session.on_part("#old", "me")
    events.clear()
    session.on_connection_lost("Connection reset")
    assert not channel.joined and channel.members == {}
    assert channel.lines[-1].kind is Kind.ERROR
    assert texts(channel)[-1] == "Disconnected: Connection reset"
    assert texts(session.server)[-1] == "Disconnected: Connection reset"
    assert texts(parted)[-1] == "You left #old"
    assert of_type(events, MembersChanged) == [MembersChanged(channel)]


# -- nicks -----------------------------------------------------------------------------------


def test_registered_takes_the_servers_nick_then_status(session, events):
    session.on_registered("me_")
    assert session.nick == "me_"
    assert events[0] == NickChanged("me_")
    assert texts(session.server) == ["Connected as me_"]
    assert session.mentions_me("hey me_") and not session.mentions_me("hey me")
    session.on_registered("me_")
    assert of_type(events, NickChanged) == [NickChanged("me_")]
    events.clear()
    session.set_status("Connected to x:6667 as me_", True)
    assert session.connected and session.status == "Connected to x:6667 as me_"
    assert events == [StatusChanged("Connected to x:6667 as me_", True)]


def test_own_nick_change_updates_members_mentions_and_server(session, events):
    channel = joined(session, "#c", "bob")
    events.clear()
    session.on_nick("me", "newme")
    assert session.nick == "newme"
    assert NickChanged("newme") in events
    assert channel.has_member("newme") and not channel.has_member("me")
    assert texts(channel)[-1] == "You are now known as newme"
    assert texts(session.server)[-1] == "You are now known as newme"
    assert session.mentions_me("newme?") and not session.mentions_me("me?")


def test_other_nick_change_keeps_prefix_and_renames_query(session, events):
    channel = joined(session, "#c")
    session.on_names("#c", [("@", "me"), ("+", "bob")])
    query = session.open("bob")
    events.clear()
    session.on_nick("bob", "robert")
    assert channel.members["robert"].prefix == "+" and not channel.has_member("bob")
    assert query.name == "robert"
    assert session.find("robert") is query and session.find("bob") is None
    assert texts(query) == ["bob is now known as robert"]
    assert ConversationRenamed(query, "bob") in events
    before, count = texts(channel), len(events)
    session.on_nick("carol", "caroline")  # a stranger: nothing to show
    assert texts(channel) == before and len(events) == count
    session.on_message("Robert", "me", "brb")  # the renamed query gets the next message
    assert texts(query) == ["bob is now known as robert", "brb"]
    assert len(session.conversations) == 3


# -- topic, names, modes ---------------------------------------------------------------------


def test_topic_on_join_and_changes(session, events):
    channel = joined(session, "#c")
    events.clear()
    session.on_topic("#c", "Welcome")
    assert channel.topic == "Welcome" and texts(channel)[-1] == "Topic: Welcome"
    session.on_topic("#c", "New topic", by="bob")
    assert channel.topic == "New topic"
    assert texts(channel)[-1] == "bob changed the topic to: New topic"
    session.on_topic("#c", "", by="bob")
    assert channel.topic == "" and texts(channel)[-1] == "bob cleared the topic"
    assert channel.lines[-1].kind is Kind.TOPIC
    count = len(channel.lines)
    session.on_topic("#c", "")  # no topic when we joined: nothing to show
    assert len(channel.lines) == count
    assert of_type(events, TopicChanged) == [TopicChanged(channel)] * 4


def test_names_replace_members_and_sort_by_rank_then_name(session, events):
    channel = joined(session, "#c", "ghost")
    session.on_names("#c", [("", "zed"), ("+", "Bob"), ("@", "carol"), ("@+", "alice"),
                            ("", "Adam"), ("+", "anna")])
    assert not channel.has_member("ghost")
    assert [m.nick for m in channel.sorted_members()] == [
        "alice", "carol", "anna", "Bob", "Adam", "zed"]
    assert events[-1] == MembersChanged(channel)


def test_member_mode_adds_and_removes_prefix_in_rank_order(session, events):
    channel = joined(session, "#c", "bob")
    events.clear()
    session.on_member_mode("#c", "op", "bob", "+", True)
    session.on_member_mode("#c", "op", "BOB", "@", True)
    assert channel.members["bob"].prefix == "@+"
    session.on_member_mode("#c", "op", "bob", "@", False)
    assert channel.members["bob"].prefix == "+"
    session.on_member_mode("#c", "op", "stranger", "@", True)
    session.on_member_mode("#gone", "op", "me", "@", True)
    assert of_type(events, MembersChanged) == [MembersChanged(channel)] * 3
    assert len(events) == 3


def test_members_follow_the_servers_prefixes(session):
    session.prefixes = "~@%+"
    channel = session.open("#c")
    channel.joined = True
    session.on_names("#c", [("%", "half"), ("~", "owner"), ("", "plain"), ("@", "op")])
    assert [m.nick for m in channel.sorted_members("~@%+")] == ["owner", "op", "half", "plain"]
    for symbol in "+~":
        session.on_member_mode("#c", "op", "half", symbol, True)
    assert channel.members["half"].prefix == "~%+"


def test_mode_line_goes_to_its_channel_or_to_the_server(session):
    channel = joined(session, "#c")
    session.on_mode("#C", "op", "+m")
    session.on_mode("me", "me", "+i")
    session.on_mode("#unknown", "op", "+t")
    assert texts(channel)[-1] == "op sets mode +m" and channel.lines[-1].kind is Kind.MODE
    assert texts(session.server)[-2:] == ["me sets mode +i", "op sets mode +t"]


# -- what the user types ---------------------------------------------------------------------


@pytest.fixture
def online(session: Session) -> Session:
    session.set_status("Connected", True)
    return session


def test_say_and_me_send_privmsg_and_show_own_line(online, events):
    channel = joined(online, "#c")
    assert online.handle_input("hello all") == ["PRIVMSG #c :hello all"]
    line = channel.lines[-1]
    assert (line.text, line.nick, line.own, line.kind) == ("hello all", "me", True, Kind.MESSAGE)
    assert online.handle_input("/me waves") == ["PRIVMSG #c :\x01ACTION waves\x01"]
    assert channel.lines[-1].kind is Kind.ACTION and channel.lines[-1].text == "waves"
    assert online.handle_input("one\r\ntwo\n\nthree") == [  # a pasted block, blank line dropped
        "PRIVMSG #c :one", "PRIVMSG #c :two", "PRIVMSG #c :three"]
    assert channel.unread == 0


def test_say_while_disconnected_sends_nothing_and_shows_an_error(session):
    channel = joined(session, "#c")
    assert session.handle_input("hello") == []
    assert channel.lines[-1].kind is Kind.ERROR
    assert "Not connected" in channel.lines[-1].text
    assert "hello" not in texts(channel)


def test_input_errors_become_lines_where_they_were_typed(online, events):
    assert online.handle_input("hello", online.server) == []
    assert online.server.lines[-1].kind is Kind.ERROR
    assert "/join" in online.server.lines[-1].text
    channel = joined(online, "#c")
    assert online.handle_input("/msg bob") == []
    assert texts(channel)[-1] == "Usage: " + USAGE["msg"]
    assert channel.lines[-1].kind is Kind.ERROR
    events.clear()
    assert online.handle_input("   ") == []
    assert events == []


def test_msg_and_notice_open_target_conversation_without_switching(online):
    channel = joined(online, "#c")
    assert online.handle_input("/msg bob hi there") == ["PRIVMSG bob :hi there"]
    assert online.handle_input("/notice #c heads up") == ["NOTICE #c :heads up"]
    assert texts(online.find("bob")) == ["hi there"]
    assert channel.lines[-1].kind is Kind.NOTICE and channel.lines[-1].own
    assert online.active is channel


def test_query_opens_and_activates_and_optionally_says(online, events):
    joined(online, "#c")
    assert online.handle_input("/query bob") == []
    query = online.find("bob")
    assert online.active is query and Activated(query) in events
    assert online.handle_input("/query bob hello") == ["PRIVMSG bob :hello"]
    assert texts(query) == ["hello"]


def test_join_opens_and_activates_at_once_but_nick_waits_for_the_server(online, events):
    lines = online.handle_input("/join a,#b secret", online.server)
    assert lines == ["JOIN #a,#b secret"]
    assert online.find("#a") is not None
    assert online.active is online.find("#b")
    assert not online.find("#b").joined
    assert online.handle_input("/nick newme") == ["NICK newme"]
    assert online.nick == "me" and of_type(events, NickChanged) == []


@pytest.mark.parametrize(("typed", "sent"), [
    ("/part", ["PART #c"]),
    ("/part bye all", ["PART #c :bye all"]),
    ("/topic", ["TOPIC #c"]),
    ("/topic hello world", ["TOPIC #c :hello world"]),
    ("/away lunch", ["AWAY :lunch"]),
    ("/back", ["AWAY"]),
    ("/whois bob", ["WHOIS bob"]),
    ("/raw MODE #c +m", ["MODE #c +m"]),
    ("/kick #c bob", ["KICK #c bob"]),
])
def test_one_line_commands_return_their_protocol_line(online, typed, sent):
    joined(online, "#c")
    assert online.handle_input(typed) == sent


def test_close_parts_a_joined_channel_and_closes_the_rest_but_the_server(online, events):
    channel = joined(online, "#c")
    assert online.handle_input("/close") == ["PART #c"]
    assert online.find("#c") is channel
    online.on_part("#c", "me")
    assert online.handle_input("/close", channel) == []
    assert online.find("#c") is None and ConversationClosed(channel) in events
    query = online.open("bob")
    assert online.handle_input("/close", query) == []
    assert online.find("bob") is None and ConversationClosed(query) in events
    assert online.handle_input("/close", online.server) == []
    assert online.find(SERVER) is online.server


def test_quit_requests_quit_and_help_lists_every_command(online, events):
    assert online.handle_input("/quit see you") == []
    assert online.handle_input("/exit") == []
    assert of_type(events, QuitRequested) == [QuitRequested("see you"),
                                              QuitRequested("Leaving")]
    assert online.handle_input("/help", online.server) == []
    assert texts(online.server)[-len(USAGE):] == list(USAGE.values())
    assert all(line.kind is Kind.INFO for line in online.server.lines)


def test_long_messages_and_actions_are_split_into_lines_that_fit(online):
    channel = joined(online, "#c")
    words = " ".join(f"word{n:04d}" for n in range(150))  # 1349 characters
    lines = online.handle_input(words)
    assert len(lines) >= 3
    worst_prefix = f":me!~user@{'h' * 63} "
    assert all(len((worst_prefix + line + "\r\n").encode()) <= MAX_LINE_BYTES for line in lines)
    sent = [line.removeprefix("PRIVMSG #c :") for line in lines]
    assert " ".join(sent) == words
    assert texts(channel)[-len(lines):] == sent
    lines = online.handle_input("/me " + "x" * 1200)  # room left for the CTCP wrapping
    assert len(lines) >= 3
    assert all(line.startswith("PRIVMSG #c :\x01ACTION ") and line.endswith("\x01")
               for line in lines)
    assert all(len((worst_prefix + line + "\r\n").encode()) <= MAX_LINE_BYTES for line in lines)


@pytest.mark.parametrize("typed", [
    "/msg bob\r\nQUIT :x hi",
    "/msg #c\nJOIN #evil hello",
    "/query bob\rx hi",
    "/notice bob\nx hi",
    "hello\0world",
    "/me waves\0 hi",
    "/msg bob a\0b",
    "/topic x\r\nQUIT",
    "/part bye\nQUIT",
    "/raw PRIVMSG #c :a\r\nQUIT",
    "/nick a\nb",
    "/whois a\r\nQUIT",
    "/away x\0y",
])
def test_no_cr_lf_or_nul_reaches_a_protocol_line(online, typed):
    joined(online, "#c")
    lines = online.handle_input(typed)
    assert all(not any(c in line for c in "\r\n\0") for line in lines), lines
    assert all(not any(c in name for c in "\r\n\0") for name in online.conversations)


def test_a_nick_change_onto_an_open_conversation_merges_the_two(session, events):
    session.on_message("bob", "me", "hi from bob")
    session.on_message("robert", "me", "hi from robert")
    session.on_nick("bob", "robert")
    assert [c.name for c in session.conversations.values() if c.is_query] == ["robert"]
    merged = session.find("robert")
    assert "hi from bob" in texts(merged) and "hi from robert" in texts(merged)
    closed = [e.conversation for e in of_type(events, ConversationClosed)]
    assert len(closed) == 1 and closed[0] is not merged


def test_merged_conversations_keep_time_order():
    from datetime import timedelta

    ticks = iter(range(100))
    session = Session("me", clock=lambda: NOON + timedelta(seconds=next(ticks)))
    session.on_message("bob", "me", "1 from bob")
    session.on_message("robert", "me", "2 from robert")
    session.on_message("bob", "me", "3 from bob")
    session.on_nick("bob", "robert")
    assert texts(session.find("robert"))[:3] == ["1 from bob", "2 from robert", "3 from bob"]
