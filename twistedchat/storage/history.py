"""CHATHISTORY queries (IRCv3 draft/chathistory): selectors, the subcommands' semantics, an in-memory log.

Every store answers the same queries the same way: the subcommands are reduced here to ranges over
positions ``(time in ms, insertion sequence)`` that a ``HistoryReader`` fetches, so equal timestamps
keep the order the lines were stored in and a ``msgid=`` selector marks one exact position.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, NamedTuple, Protocol

from twistedchat.storage.model import HistoryLine, UnknownMessageId

#: Larger than any insertion sequence: a timestamp as a lower bound excludes the whole millisecond.
_AFTER_ALL = 2**62
#: Most lines one query may ask for, whatever the caller passes (the ISUPPORT value is lower).
MAX_QUERY_LIMIT = 1000

Position = tuple[int, int]


def to_ms(seconds: float) -> int:
    """Seconds since the epoch to whole milliseconds, the precision history keeps."""
    return round(seconds * 1000)


def parse_timestamp(text: str) -> float:
    """``YYYY-MM-DDThh:mm:ss.sssZ`` (the server-time format) to seconds since the epoch."""
    if not text.endswith("Z"):
        raise ValueError(f"timestamp must be UTC, ending in Z: {text!r}")
    try:
        stamp = datetime.strptime(text[:-1], "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        try:
            stamp = datetime.strptime(text[:-1], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise ValueError(f"not a timestamp (YYYY-MM-DDThh:mm:ss.sssZ): {text!r}") from None
    return stamp.replace(tzinfo=timezone.utc).timestamp()


@dataclass(frozen=True, slots=True)
class Selector:
    """``timestamp=...`` (``time`` set) or ``msgid=...`` (``msgid`` set)."""

    time: float | None = None
    msgid: str | None = None

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Read a CHATHISTORY selector parameter; ValueError names what is wrong with it."""
        kind, sep, value = text.partition("=")
        if not sep or not value:
            raise ValueError(f"selector must be timestamp=... or msgid=...: {text!r}")
        if kind == "timestamp":
            return cls(time=parse_timestamp(value))
        if kind == "msgid":
            return cls(msgid=value)
        raise ValueError(f"selector must be timestamp=... or msgid=...: {text!r}")


Subcommand = Literal["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"]


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """One CHATHISTORY request for one conversation.

    LATEST takes ``start`` None for ``*``; BETWEEN takes both selectors; the others take ``start``.
    """

    subcommand: Subcommand
    start: Selector | None
    limit: int
    end: Selector | None = None

    def __post_init__(self) -> None:
        if self.subcommand not in ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"):
            raise ValueError(f"unknown CHATHISTORY subcommand {self.subcommand!r}")
        if self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.start is None and self.subcommand != "LATEST":
            raise ValueError(f"{self.subcommand} needs a selector")
        if (self.end is None) != (self.subcommand != "BETWEEN"):
            raise ValueError("only BETWEEN takes a second selector")


class TargetActivity(NamedTuple):
    """A conversation's latest line within a TARGETS interval."""

    conversation: str
    target: str
    parties: tuple[str, str] | None
    latest: float


class HistoryReader(Protocol):
    """What a store gives the shared query logic: exact lookups and ordered ranges."""

    def locate(self, conversation: str, msgid: str) -> Position | None:
        """The position of a conversation's line, or None."""

    def span(
        self, conversation: str, lower: Position | None, upper: Position | None, limit: int,
        newest: bool,
    ) -> list[HistoryLine]:
        """Lines strictly between the bounds, ``limit`` from the newest or oldest end, ascending."""


def run_query(reader: HistoryReader, conversation: str, query: HistoryQuery) -> list[HistoryLine]:
    """Answer a CHATHISTORY query through ``reader``; lines come oldest first.

    LATEST, BEFORE, AFTER and BETWEEN exclude the selected position. AROUND gives up to half of the
    limit before the selector and the rest from it on (a ``msgid`` line itself included), filling
    one side from the other when it runs short.
    """
    limit = min(query.limit, MAX_QUERY_LIMIT)

    def point(selector: Selector, after: bool) -> Position:
        if selector.msgid is not None:
            found = reader.locate(conversation, selector.msgid)
            if found is None:
                raise UnknownMessageId(f"no message {selector.msgid!r} in this conversation")
            return found
        assert selector.time is not None
        return (to_ms(selector.time), _AFTER_ALL if after else 0)

    if query.subcommand == "LATEST":
        lower = None if query.start is None else point(query.start, after=True)
        return reader.span(conversation, lower, None, limit, newest=True)
    assert query.start is not None
    if query.subcommand == "BEFORE":
        return reader.span(conversation, None, point(query.start, after=False), limit, newest=True)
    if query.subcommand == "AFTER":
        return reader.span(conversation, point(query.start, after=True), None, limit, newest=False)
    if query.subcommand == "AROUND":
        at = point(query.start, after=False)
        before = reader.span(conversation, None, at, limit, newest=True)
        # From ``at`` on, inclusive: the exclusive lower bound just below it.
        after = reader.span(conversation, (at[0], at[1] - 1), None, limit, newest=False)
        take_before = min(len(before), limit // 2)
        take_after = min(len(after), limit - take_before)
        take_before = min(len(before), limit - take_after)
        return before[len(before) - take_before :] + after[:take_after]
    assert query.end is not None
    first_after, first_before = point(query.start, True), point(query.start, False)
    second_after, second_before = point(query.end, True), point(query.end, False)
    if first_before <= second_before:
        return reader.span(conversation, first_after, second_before, limit, newest=False)
    return reader.span(conversation, second_after, first_before, limit, newest=True)


def pick_targets(latest: Iterable[TargetActivity], start: float, end: float, limit: int) -> list[TargetActivity]:
    """TARGETS ordering: by latest time from ``start`` towards ``end``, at most ``limit`` entries."""
    limit = min(limit, MAX_QUERY_LIMIT)
    return sorted(latest, key=lambda t: t.latest, reverse=start > end)[:limit]


class MemoryHistory:
    """Lines in memory, per conversation in position order: the ``memory:`` store's history.

    Each conversation keeps at most ``max_lines`` (the oldest go first), so a long-running
    ``memory:`` server cannot be made to grow without bound by talk alone.
    """

    def __init__(self, max_lines: int = 10_000) -> None:
        self.max_lines = max_lines
        self._keys: dict[str, list[Position]] = {}
        self._lines: dict[str, list[HistoryLine]] = {}
        self._by_msgid: dict[str, tuple[str, Position]] = {}
        self._seq = 0

    def append(self, line: HistoryLine) -> None:
        if line.msgid in self._by_msgid:
            return  # as the SQL store: a msgid is stored once
        self._seq += 1
        key = (to_ms(line.time), self._seq)
        keys = self._keys.setdefault(line.conversation, [])
        lines = self._lines.setdefault(line.conversation, [])
        where = len(keys) if not keys or keys[-1] <= key else bisect.bisect(keys, key)
        keys.insert(where, key)
        lines.insert(where, line)
        self._by_msgid[line.msgid] = (line.conversation, key)
        if len(keys) > self.max_lines:
            del self._by_msgid[lines[0].msgid]
            del keys[0], lines[0]

    def locate(self, conversation: str, msgid: str) -> Position | None:
        found = self._by_msgid.get(msgid)
        return found[1] if found is not None and found[0] == conversation else None

    def span(
        self, conversation: str, lower: Position | None, upper: Position | None, limit: int,
        newest: bool,
    ) -> list[HistoryLine]:
        keys = self._keys.get(conversation, [])
        lines = self._lines.get(conversation, [])
        start = 0 if lower is None else bisect.bisect_right(keys, lower)
        stop = len(keys) if upper is None else bisect.bisect_left(keys, upper)
        if stop <= start:
            return []
        if newest:
            return lines[max(start, stop - limit) : stop]
        return lines[start : min(stop, start + limit)]

    def targets(
        self, channels: Collection[str], account: str | None, start: float, end: float, limit: int
    ) -> list[TargetActivity]:
        low, high = sorted((to_ms(start), to_ms(end)))
        found = []
        for conversation, lines in self._lines.items():
            if conversation not in channels:
                parties = lines[0].parties
                if account is None or parties is None or account not in parties:
                    continue
            keys = self._keys[conversation]
            stop = bisect.bisect_left(keys, (high, 0))
            if stop and keys[stop - 1][0] > low:
                last = lines[stop - 1]
                found.append(TargetActivity(conversation, last.target, last.parties, keys[stop - 1][0] / 1000))
        return pick_targets(found, start, end, limit)

    def prune(self, before: float | None, keep_per_conversation: int | None) -> int:
        """Forget lines older than ``before`` and beyond the newest ``keep_per_conversation``."""
        dropped = 0
        cut_ms = None if before is None else to_ms(before)
        for conversation in list(self._keys):
            keys, lines = self._keys[conversation], self._lines[conversation]
            cut = 0 if cut_ms is None else bisect.bisect_left(keys, (cut_ms, 0))
            if keep_per_conversation is not None:
                cut = max(cut, len(keys) - keep_per_conversation)
            for line in lines[:cut]:
                del self._by_msgid[line.msgid]
            dropped += cut
            del keys[:cut], lines[:cut]
            if not keys:
                del self._keys[conversation], self._lines[conversation]
        return dropped


class RecentLines:
    """The newest ``depth`` lines of up to ``conversations`` conversations (least recently used
    go first), so ``LATEST *`` (what a client asks on every join) needs no database round trip.

    A conversation's entry is always the exact newest suffix of its history: filled from the
    database on a miss, then extended by every append. A load that raced an append is discarded,
    and a line older than the entry's last (a clock stepping back) drops the entry.
    """

    def __init__(self, depth: int = 100, conversations: int = 1000) -> None:
        self.depth = depth
        self.max_conversations = conversations
        #: conversation -> (newest lines, whether they are the whole conversation)
        self._entries: dict[str, tuple[list[HistoryLine], bool]] = {}
        #: conversations being loaded -> whether a line was appended meanwhile
        self._loading: dict[str, bool] = {}

    def latest(self, conversation: str, limit: int) -> list[HistoryLine] | None:
        """The newest ``limit`` lines, oldest first, or None when they are not all at hand."""
        entry = self._entries.get(conversation)
        if entry is None:
            return None
        lines, complete = entry
        if limit > len(lines) and not complete:
            return None
        del self._entries[conversation]
        self._entries[conversation] = entry  # most recently used last
        return lines[-limit:]

    def covered(self, conversation: str, query: HistoryQuery) -> list[HistoryLine] | None:
        """The answer to a LATEST, BEFORE or AFTER query when the lines at hand hold every line
        it needs (else None): the newest ``limit`` below or above a bound when that many are at
        hand, or everything after a bound at or past the first line at hand, or anything at all
        when the lines at hand are the whole conversation. A ``msgid`` not at hand: None."""
        entry = self._entries.get(conversation)
        if entry is None or query.subcommand not in ("LATEST", "BEFORE", "AFTER"):
            return None
        lines, complete = entry
        if not lines:
            return None
        window = _Window(lines)
        try:
            answer = run_query(window, conversation, query)
        except UnknownMessageId:
            return None
        limit = min(query.limit, MAX_QUERY_LIMIT)
        enough = query.subcommand != "AFTER" and len(answer) >= limit
        if not (complete or enough):
            start = query.start
            if query.subcommand == "BEFORE" or start is None:
                return None
            # LATEST and AFTER with a lower bound: every line past it is at hand when the bound
            # is at or past the first line at hand (a msgid found here always is).
            if start.msgid is None and start.time is not None and (
                to_ms(start.time) < window.keys[0][0]
            ):
                return None
        del self._entries[conversation]
        self._entries[conversation] = entry  # most recently used last
        return answer

    def append(self, line: HistoryLine) -> None:
        conversation = line.conversation
        if conversation in self._loading:
            self._loading[conversation] = True
        entry = self._entries.get(conversation)
        if entry is None:
            return
        lines, complete = entry
        if lines and to_ms(line.time) < to_ms(lines[-1].time):
            del self._entries[conversation]
            return
        lines.append(line)
        if len(lines) > self.depth:
            del lines[0]
            self._entries[conversation] = (lines, False)

    def loading(self, conversation: str) -> None:
        """A database read of the conversation's newest lines starts now."""
        self._loading.setdefault(conversation, False)

    def loaded(self, conversation: str, lines: list[HistoryLine], asked: int) -> None:
        """The read started by ``loading`` returned ``lines`` (``asked`` were asked for)."""
        raced = self._loading.pop(conversation, True)
        if raced or self.depth <= 0 or conversation in self._entries:
            return
        if len(self._entries) >= self.max_conversations:
            del self._entries[next(iter(self._entries))]
        complete = len(lines) < asked and len(lines) <= self.depth
        self._entries[conversation] = (lines[-self.depth :], complete)

    def abandon(self, conversation: str) -> None:
        """The read started by ``loading`` failed."""
        self._loading.pop(conversation, None)

    def clear(self) -> None:
        """Forget every entry (after lines were deleted)."""
        self._entries.clear()
        for conversation in self._loading:
            self._loading[conversation] = True


class _Window:
    """A ``HistoryReader`` over the lines at hand for one conversation (oldest first): positions
    are their times with their order here, which is the database's order."""

    def __init__(self, lines: list[HistoryLine]) -> None:
        self.lines = lines
        self.keys = [(to_ms(line.time), index) for index, line in enumerate(lines, 1)]

    def locate(self, conversation: str, msgid: str) -> Position | None:
        for index, line in enumerate(self.lines):
            if line.msgid == msgid:
                return self.keys[index]
        return None

    def span(
        self, conversation: str, lower: Position | None, upper: Position | None, limit: int,
        newest: bool,
    ) -> list[HistoryLine]:
        keys = self.keys
        start = 0 if lower is None else bisect.bisect_right(keys, lower)
        stop = len(keys) if upper is None else bisect.bisect_left(keys, upper)
        if stop <= start:
            return []
        if newest:
            return self.lines[max(start, stop - limit) : stop]
        return self.lines[start : min(stop, start + limit)]


class ChathistoryError(ValueError):
    """A CHATHISTORY command that cannot be answered: ``FAIL CHATHISTORY <code> <context...> :<text>``."""

    def __init__(self, code: str, context: tuple[str, ...], description: str) -> None:
        super().__init__(description)
        self.code = code
        self.context = context
        self.description = description


@dataclass(frozen=True, slots=True)
class ChathistoryRequest:
    """A parsed CHATHISTORY command: a ``query`` on ``target``, or for TARGETS a time ``span``."""

    subcommand: str
    target: str | None
    query: HistoryQuery | None
    span: tuple[float, float] | None
    limit: int


_ARITY = {"LATEST": 3, "BEFORE": 3, "AFTER": 3, "AROUND": 3, "BETWEEN": 4, "TARGETS": 3}


def parse_chathistory(params: tuple[str, ...] | list[str], max_limit: int) -> ChathistoryRequest:
    """Read ``CHATHISTORY <subcommand> ...`` parameters; the limit is capped at ``max_limit``.

    Raises ``ChathistoryError`` with the standard-replies code (NEED_MORE_PARAMS, UNKNOWN_COMMAND,
    INVALID_PARAMS) and its context parameters. Whether the user may read the target is the
    caller's question (the spec's answer to a forbidden target is an empty batch or INVALID_TARGET).
    """
    if not params:
        raise ChathistoryError("NEED_MORE_PARAMS", ("*",), "Missing parameters")
    subcommand = params[0].upper()
    if subcommand not in _ARITY:
        raise ChathistoryError("UNKNOWN_COMMAND", (params[0],), "Unknown CHATHISTORY subcommand")
    args = params[1:]
    if len(args) < _ARITY[subcommand]:
        raise ChathistoryError("NEED_MORE_PARAMS", (subcommand,), "Missing parameters")
    limit_text = args[_ARITY[subcommand] - 1]
    if not limit_text.isdigit() or int(limit_text) < 1:
        raise ChathistoryError("INVALID_PARAMS", (subcommand, limit_text), "Invalid limit")
    limit = min(int(limit_text), max_limit, MAX_QUERY_LIMIT)

    def selector(text: str) -> Selector:
        try:
            return Selector.parse(text)
        except ValueError as error:
            raise ChathistoryError("INVALID_PARAMS", (subcommand, text), str(error)) from None

    if subcommand == "TARGETS":
        first, second = selector(args[0]), selector(args[1])
        if first.time is None or second.time is None:
            raise ChathistoryError(
                "INVALID_PARAMS", (subcommand,), "TARGETS takes two timestamp= selectors"
            )
        return ChathistoryRequest(subcommand, None, None, (first.time, second.time), limit)
    target = args[0]
    if subcommand == "LATEST":
        start = None if args[1] == "*" else selector(args[1])
        query = HistoryQuery("LATEST", start, limit)
    elif subcommand == "BETWEEN":
        query = HistoryQuery("BETWEEN", selector(args[1]), limit, selector(args[2]))
    else:
        query = HistoryQuery(subcommand, selector(args[1]), limit)  # type: ignore[arg-type]
    return ChathistoryRequest(subcommand, target, query, None, limit)
