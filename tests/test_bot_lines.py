"""Bot output helpers: UTF-8-safe line splitting and the outgoing rate limiter (task.Clock)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import task

from twistedchat.bot import Bot
from twistedchat.client.pacing import RateLimiter
from twistedchat.wire.fitting import (
    MAX_LINE_BYTES,
    source_estimate,
    split_text,
    text_room,
)
from twistedchat.wire.flood import TokenBucket


def test_short_text_is_one_line():
    assert split_text("hello world", 100) == ["hello world"]


def test_long_text_is_cut_at_spaces():
    text = " ".join(["word"] * 50)  # 249 bytes
    pieces = split_text(text, 40)
    assert all(len(p.encode()) <= 40 for p in pieces)
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in pieces)
    assert " ".join(pieces) == text


def test_a_word_longer_than_the_room_is_cut_inside_but_not_inside_a_character():
    text = "é" * 30  # 2 bytes each
    pieces = split_text(text, 11)
    assert all(len(p.encode()) <= 11 for p in pieces)
    assert "".join(pieces) == text
    assert pieces[0] == "é" * 5


def test_four_byte_characters_are_never_split():
    text = "🎲" * 10
    assert split_text(text, 6) == ["🎲"] * 10


def test_newlines_start_new_lines_and_blank_lines_are_dropped():
    assert split_text("one\r\ntwo\n\n  \nthree\rfour", 100) == ["one", "two", "three", "four"]


def test_too_little_room_is_an_error():
    with pytest.raises(ValueError, match="no room"):
        split_text("x", 3)


@given(st.text(min_size=0, max_size=2000), st.integers(min_value=4, max_value=500))
def test_split_always_fits_and_keeps_every_character(text, room):
    pieces = split_text(text, room)
    for piece in pieces:
        assert 0 < len(piece.encode("utf-8")) <= room
        assert "\n" not in piece and "\r" not in piece
    squash = lambda s: "".join(s.split())  # noqa: E731 - spaces at cuts and blank lines go
    assert squash("".join(pieces)) == squash(text)


def test_room_accounts_for_the_relayed_prefix():
    source = source_estimate("dicebot", "dicebot")
    room = text_room(source, "PRIVMSG", "#lobby")
    text = "x" * 2000
    for piece in split_text(text, room):
        line = f":{source} PRIVMSG #lobby :{piece}\r\n".encode()
        assert len(line) <= MAX_LINE_BYTES
    assert len(f":{source} PRIVMSG #lobby :{'x' * room}\r\n".encode()) == MAX_LINE_BYTES
    # The guess is worst case: a 63-byte host.
    assert source.endswith("@" + "h" * 63)


def make_limiter(burst=3, rate=2.0):
    clock = task.Clock()
    sent: list[tuple[float, str]] = []
    limiter = RateLimiter(lambda line: sent.append((clock.seconds(), line)), clock, burst, rate)
    return clock, sent, limiter


def test_burst_goes_at_once_then_lines_are_paced():
    clock, sent, limiter = make_limiter(burst=3, rate=2.0)
    for n in range(7):
        limiter(f"line {n}")
    assert [line for _, line in sent] == ["line 0", "line 1", "line 2"]
    assert limiter.waiting == 4
    clock.advance(0.5)
    assert len(sent) == 4
    clock.pump([0.5] * 3)
    assert [line for _, line in sent] == [f"line {n}" for n in range(7)]
    assert [when for when, _ in sent] == [0, 0, 0, 0.5, 1.0, 1.5, 2.0]
    assert limiter.waiting == 0


def test_urgent_lines_jump_the_queue():
    clock, sent, limiter = make_limiter(burst=1, rate=1.0)
    limiter("a")
    limiter("b")
    limiter("c")
    limiter("PONG :x", urgent=True)
    clock.pump([1, 1, 1])
    assert [line for _, line in sent] == ["a", "PONG :x", "b", "c"]


def test_stop_drops_the_queue_and_the_timer():
    clock, sent, limiter = make_limiter(burst=1, rate=1.0)
    limiter("a")
    limiter("b")
    limiter.stop()
    assert clock.getDelayedCalls() == []
    clock.advance(10)
    assert [line for _, line in sent] == ["a"]


def test_default_pace_never_trips_the_servers_flood_limit():
    """A bot flooding with defaults: the daemon's bucket (20, then 5/s) never has to delay a line."""
    clock = task.Clock()
    server = TokenBucket(20, 5.0, 0.0)
    delayed: list[float] = []

    def arrive(line):
        if server.take(clock.seconds()) > 0:
            delayed.append(clock.seconds())

    limiter = RateLimiter(arrive, clock, Bot.burst, Bot.rate)
    for n in range(300):
        limiter(f"PRIVMSG #lobby :{n}")
    clock.pump([0.05] * 4000)
    assert limiter.waiting == 0
    assert delayed == []


def test_token_bucket_waits_always_move_the_clock():
    """Every wait take() asks for moves a clock at any UNIX time, and a token comes within two.

    Found by the pipeline fuzz: a refill of exactly the returned wait could land a rounding error
    short of a token; take() then asked for 1e-11 s, which does not move a clock near 1e6 s, so
    task.Clock ran the flood drain timer at the same instant forever.
    """
    for start in (1_000_013.6364244112, 1_800_000_000.25, 0.0):
        now = start
        bucket = TokenBucket(10, 5.0, now)
        waits = 0
        for _ in range(200):
            wait = bucket.take(now)
            while wait:
                assert now + wait > now
                now += wait
                waits += 1
                wait = bucket.take(now)
        assert waits <= 2 * (200 - 10)


def test_fit_utf8_and_split_text_cut_at_the_same_place():
    from twistedchat.wire.fitting import fit_utf8

    text = "aé🎲" * 20
    for room in range(4, 40):
        assert split_text(text, room)[0] == fit_utf8(text, room)


def test_fit_message_keeps_every_line_within_512_bytes():
    from twistedchat.wire.fitting import fit_message
    from twistedchat.wire.message import Message

    short = Message("PRIVMSG", ("#c", "hi"), "a!b@c")
    assert fit_message(short) == short.to_bytes()
    long_last = fit_message(Message("PRIVMSG", ("#c", "é" * 400), "a!b@c"))
    assert len(long_last) <= 512 and long_last.decode().endswith("é\r\n")
    long_middle = fit_message(Message("401", ("me", "x" * 600, "No such nick"), "server"))
    assert len(long_middle) <= 512 and long_middle.startswith(b":server 401 me * :No such")
