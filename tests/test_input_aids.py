"""Up/Down history recall and Tab nick completion, as plain string operations."""

from __future__ import annotations

from twistedchat.client.input_aids import InputHistory, NickCompleter

# -- history ---------------------------------------------------------------------------------


def history_of(*lines: str, size: int = 200) -> InputHistory:
    history = InputHistory(size)
    for line in lines:
        history.add(line)
    return history


def test_up_recalls_newest_first_and_stops_at_the_oldest():
    history = history_of("one", "two", "three")
    assert history.previous("") == "three"
    assert history.previous("three") == "two"
    assert history.previous("two") == "one"
    assert history.previous("one") == "one"


def test_down_walks_back_to_the_unsent_draft():
    history = history_of("one", "two")
    assert history.previous("half-typed") == "two"
    assert history.previous("two") == "one"
    assert history.next() == "two"
    assert history.next() == "half-typed"
    assert history.next() == "half-typed"
    empty = InputHistory()
    assert empty.previous("draft") == "draft" and empty.next() == "draft"


def test_add_skips_blank_and_repeated_lines_restarts_at_the_newest_and_drops_draft():
    history = history_of("a", "a", "", "b")
    assert history.lines == ["a", "b"]
    history.previous("")
    history.previous("b")
    history.add("c")
    assert history.previous("") == "c"
    history.add("c")
    assert history.lines == ["a", "b", "c"]
    history.previous("old draft")
    history.add("d")
    assert history.next() == ""  # the draft went with the line sent


def test_history_keeps_only_the_newest_lines():
    history = history_of(*[f"line {n}" for n in range(10)], size=3)
    assert history.lines == ["line 7", "line 8", "line 9"]
    recalled = [history.previous("") for _ in range(4)]
    assert recalled == ["line 9", "line 8", "line 7", "line 7"]


# -- nick completion -------------------------------------------------------------------------

NICKS = ["bob", "Boris", "alice", "[b]ot"]


def test_completion_adds_colon_at_line_start_and_a_space_later():
    assert NickCompleter().complete("al", 2, NICKS) == ("alice: ", 7)
    assert NickCompleter().complete("ask al", 6, NICKS) == ("ask alice ", 10)


def test_completion_ignores_irc_case_and_returns_the_nick_as_spelled():
    """``{b}`` and ``[b]`` are the same nick under rfc1459."""
    assert NickCompleter().complete("thanks BOR", 10, NICKS) == ("thanks Boris ", 13)
    assert NickCompleter().complete("{B}", 3, NICKS) == ("[b]ot: ", 7)


def test_repeated_tab_cycles_through_matches_in_order_and_wraps():
    completer = NickCompleter()
    text, cursor = completer.complete("bo", 2, NICKS)
    assert (text, cursor) == ("bob: ", 5)
    text, cursor = completer.complete(text, cursor, NICKS)
    assert (text, cursor) == ("Boris: ", 7)
    assert completer.complete(text, cursor, NICKS) == ("bob: ", 5)


def test_cycling_keeps_the_text_after_the_cursor():
    completer = NickCompleter()
    text, cursor = completer.complete("hey bo!", 6, NICKS)
    assert (text, cursor) == ("hey bob !", 8)
    assert completer.complete(text, cursor, NICKS) == ("hey Boris !", 10)


def test_no_match_or_empty_word_leaves_text_unchanged():
    completer = NickCompleter()
    assert completer.complete("zz", 2, NICKS) == ("zz", 2)
    assert completer.complete("hello ", 6, NICKS) == ("hello ", 6)
    assert completer.complete("", 0, NICKS) == ("", 0)


def test_a_new_word_after_editing_starts_a_new_completion():
    completer = NickCompleter()
    text, cursor = completer.complete("bo", 2, NICKS)
    text, cursor = text + "and al", cursor + 6
    assert completer.complete(text, cursor, NICKS) == ("bob: and alice ", 15)


def test_reset_forgets_the_cycle():
    completer = NickCompleter()
    text, cursor = completer.complete("bo", 2, NICKS)
    completer.reset()
    assert completer.complete(text, cursor, NICKS) == (text, cursor)


def test_completion_in_mid_line_reuses_the_space_after_the_word():
    completer = NickCompleter()
    text, cursor = completer.complete("hi al how", 5, ["alice", "alex"])
    assert (text, cursor) == ("hi alex how", 8)
    assert completer.complete(text, cursor, ["alice", "alex"]) == ("hi alice how", 9)
    completer.reset()
    assert completer.complete("al how", 2, ["alice"]) == ("alice: how", 7)


def test_tab_completes_channels_after_a_hash_and_commands_at_the_start():
    completer = NickCompleter()
    assert completer.complete("/jo", 3, ["jo"], ["#lobby"], ["join", "j", "nick"]) == (
        "/join ", 6)
    completer.reset()
    assert completer.complete("see #lo", 7, ["lola"], ["#lobby", "#Loft"]) == (
        "see #lobby ", 11)
    assert completer.complete("see #lobby ", 11, ["lola"], ["#lobby", "#Loft"]) == (
        "see #Loft ", 10)
    completer.reset()
    assert completer.complete("x /jo", 5, [], [], ["join"]) == ("x /jo", 5)  # not at the start
