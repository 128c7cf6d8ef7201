"""What makes CHATHISTORY answers cheap stays exact: timestamps, encoded lines, batched reads."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from twistedchat.server.core import add_tag
from twistedchat.server.history_lines import (
    WITH_MESSAGE_TAGS,
    WITH_TIME,
    HistoryEncoder,
    tag_variant,
)
from twistedchat.server.relay import server_time
from twistedchat.storage import HistoryLine
from twistedchat.wire.fitting import fit_message
from twistedchat.wire.message import MAX_LINE_BYTES, Message, format_tags, parse


def reference_server_time(now: float) -> str:
    """The server-time value as datetime writes it (the formula the fast one replaced)."""
    stamp = datetime.fromtimestamp(now, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def test_server_time_matches_datetime_for_stored_and_live_times():
    rng = random.Random(10)
    times = [rng.randrange(0, 4_000_000_000_000) / 1000 for _ in range(20_000)]  # stored: ms
    times += [rng.uniform(0, 4e9) for _ in range(20_000)]  # live: time.time()
    times += [s + f for s in (0, 1_700_000_000, 1_700_000_059) for f in
              (0.0, 0.0005, 0.0009995, 0.9994999, 0.9995, 0.9999994, 0.9999995, 0.99999999)]
    times += [-0.5, -1.0005, -86_400.25]
    for now in times:
        assert server_time(now) == reference_server_time(now), now


# -- encoding history batches --------------------------------------------------------------------
def reference_line(line: HistoryLine, caps: set[str]) -> bytes:
    """A stored line as a client got it before lines were encoded once per variant."""
    tags: dict[str, str] = {}
    if "server-time" in caps:
        tags["time"] = reference_server_time(line.time)
    if "message-tags" in caps:
        tags["msgid"] = line.msgid
        if line.client_tags:
            tags.update(line.client_tags)
    body = f":{line.sender} {line.command} {line.target} :{line.text}\r\n".encode()
    if len(body) > MAX_LINE_BYTES:
        body = fit_message(Message(line.command, (line.target, line.text), line.sender))
    return format_tags(tags).encode() + b" " + body if tags else body


SAMPLE = [
    HistoryLine("m1", 1_700_000_000.001, "#c", "#c", "a!u@h", "PRIVMSG", "hello"),
    HistoryLine("m2", 1_700_000_000.999, "#c", "#C", "b!u@h", "NOTICE", "é ünïcode ; and = and \\"),
    HistoryLine("m3", 1_700_000_001.5, "#c", "#c", "a!u@h", "PRIVMSG", "+" * 600),  # fitted
    HistoryLine("m3b", 1_700_000_001.6, "#c", "#c", "a!u@h", "PRIVMSG", "é" * 250),  # in bytes
    HistoryLine("m4", 1_700_000_002.0, "a b", "b", "a!u@h", "PRIVMSG", "private", "a", ("a", "b"),
                {"+draft/reply": "m1", "+draft/react": "a;b c"}),
    HistoryLine("odd;id\\x y", 1_700_000_003.25, "#c", "#c", "a!u@h", "PRIVMSG", "escaped msgid"),
]


def test_encoded_batches_are_the_lines_each_variant_asked_for():
    for caps in (set(), {"server-time"}, {"message-tags"}, {"server-time", "message-tags"}):
        encoder = HistoryEncoder()
        expected = b"".join(add_tag(reference_line(line, caps), b"batch=r7") for line in SAMPLE)
        assert encoder.batch_lines(SAMPLE, tag_variant(caps), "r7") == expected
        # and again from what it kept, under another batch reference
        again = b"".join(add_tag(reference_line(line, caps), b"batch=r8") for line in SAMPLE)
        assert encoder.batch_lines(SAMPLE, tag_variant(caps), "r8") == again
        for raw in expected.split(b"\r\n")[:-1]:
            assert parse(raw).tags["batch"] == "r7"


def test_an_empty_batch_has_no_lines():
    assert HistoryEncoder().batch_lines([], WITH_TIME, "r1") == b""


def test_the_encoder_keeps_at_most_its_bound_and_the_newest():
    encoder = HistoryEncoder(kept=3)
    lines = [SAMPLE[0]._replace(msgid=f"x{n}") for n in range(10)]
    encoder.batch_lines(lines, WITH_TIME | WITH_MESSAGE_TAGS, "r1")
    assert len(encoder) == 3
    assert encoder.batch_lines(lines[-1:], WITH_TIME | WITH_MESSAGE_TAGS, "r2") == add_tag(
        reference_line(lines[-1], {"server-time", "message-tags"}), b"batch=r2")
