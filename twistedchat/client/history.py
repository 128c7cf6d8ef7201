"""History from the server (IRCv3 ``draft/chathistory``) and read markers (``draft/read-marker``).

A mixin of :class:`twistedchat.client.session.Session`, without I/O: it says which CHATHISTORY and
MARKREAD lines to send, and merges what comes back into the conversations (no line twice: the
``msgid``, else the time to the second, the nick and the text, match it against the scrollback
restored from the logs and the lines that came live).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from twistedchat.client.model import (
    Conversation,
    CountersChanged,
    HistoryRestored,
    Kind,
    Line,
    ReadMarkerMoved,
)

#: Lines asked for on joining, and for each scroll to the top.
HISTORY_PAGE = 50
#: Older lines a conversation may hold beyond its scrollback (scrolling up for history).
MAX_EXTRA_HISTORY = 20 * HISTORY_PAGE
#: The marker line's text.
HISTORY_MARKER = "history"
_MARKER_STAMP = re.compile(r"timestamp=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?)Z\Z")


def utc_stamp(when: datetime) -> str:
    """A naive local time as the ``YYYY-MM-DDThh:mm:ss.sssZ`` the specifications use."""
    utc = when.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_marker(param: str) -> datetime | None:
    """``timestamp=…Z`` as naive local time; None for ``*`` or anything malformed."""
    match = _MARKER_STAMP.match(param)
    if match is None:
        return None
    stamp = match.group(1)
    if "." in stamp:
        whole, fraction = stamp.split(".")
        stamp = f"{whole}.{fraction[:6].ljust(6, '0')}"
    try:
        when = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return when.astimezone().replace(tzinfo=None)


def same_line_key(line: Line) -> tuple[str, str, str]:
    """What a logged line and the server's copy of it share (logs keep seconds, no msgid)."""
    return line.time.strftime("%Y-%m-%d %H:%M:%S"), line.nick, line.text


class HistoryParts:
    """CHATHISTORY requests and answers, MARKREAD out and in."""

    active: Conversation | None
    scrollback: int
    open: Any
    find: Any
    emit: Any
    clock: Any

    # -- chathistory -----------------------------------------------------------------------------

    def history_request(self, conversation: Conversation, older: bool = False) -> str | None:
        """The CHATHISTORY line to send (None: one is on its way, or nothing older is left).

        The latest lines on joining; with ``older``, those before the oldest line we hold.
        """
        if conversation.history_request or conversation.is_server:
            return None
        if not older:
            conversation.history_request = "latest"
            return f"CHATHISTORY LATEST {conversation.name} * {HISTORY_PAGE}"
        if conversation.history_exhausted:
            return None
        oldest = next((line for line in conversation.lines if line.kind is not Kind.HISTORY
                       and not line.kind.is_event), None)
        if oldest is None:
            return None
        selector = f"msgid={oldest.msgid}" if oldest.msgid else f"timestamp={utc_stamp(oldest.time)}"
        conversation.history_request = "before"
        return f"CHATHISTORY BEFORE {conversation.name} {selector} {HISTORY_PAGE}"

    def on_history(self, target: str, lines: Iterable[Line]) -> None:
        """A ``chathistory`` batch for ``target`` ended: put its lines where they belong."""
        conversation = self.find(target)
        if conversation is None:
            return
        request, conversation.history_request = conversation.history_request, ""
        held = list(conversation.lines)
        msgids = {line.msgid for line in held if line.msgid}
        keys = {same_line_key(line) for line in held}
        fresh = []
        for line in sorted(lines, key=lambda line: line.time):
            if (line.msgid and line.msgid in msgids) or same_line_key(line) in keys:
                continue
            msgids.add(line.msgid)
            keys.add(same_line_key(line))
            fresh.append(line)
        if request == "before":
            if not fresh:
                conversation.history_exhausted = True
                return
            merged = [*fresh, *held]
            room = min(max(self.scrollback, len(merged)), self.scrollback + MAX_EXTRA_HISTORY)
            conversation.lines = deque(merged[-room:], maxlen=room)
            self.emit(HistoryRestored(conversation, fresh[max(0, len(merged) - room):]))
            return
        if not fresh:
            return
        kept = [line for line in held if line.kind is not Kind.HISTORY]
        merged = sorted([*fresh, *kept], key=lambda line: line.time)
        fetched = {id(line) for line in fresh}
        newest = max(i for i, line in enumerate(merged) if id(line) in fetched)
        merged.insert(newest + 1, Line(fresh[-1].time, Kind.HISTORY, HISTORY_MARKER))
        conversation.lines = deque(merged[-self.scrollback:], maxlen=self.scrollback)
        self.emit(HistoryRestored(conversation))

    def history_reset(self, conversations: Iterable[Conversation]) -> None:
        """The connection ended: requests on their way will never be answered."""
        for conversation in conversations:
            conversation.history_request = ""

    # -- read markers ----------------------------------------------------------------------------

    def read_marker_request(self, conversation: Conversation) -> str | None:
        """The MARKREAD line saying ``conversation`` was read up to its last line (None: the
        server already knows, or there is nothing to mark)."""
        if conversation.is_server:
            return None
        last = next((line for line in reversed(conversation.lines)
                     if not line.kind.is_event and line.kind is not Kind.ERROR), None)
        if last is None or (conversation.read_marker is not None
                            and last.time <= conversation.read_marker):
            return None
        conversation.read_marker = last.time
        return f"MARKREAD {conversation.name} timestamp={utc_stamp(last.time)}"

    def on_read_marker(self, target: str, param: str) -> None:
        """``MARKREAD <target> timestamp=…`` from the server: read elsewhere up to then."""
        when = parse_marker(param)
        conversation = self.find(target)
        if when is None or conversation is None:
            return
        if conversation.read_marker is not None and when <= conversation.read_marker:
            return
        conversation.read_marker = when
        if conversation is self.active or not (conversation.unread or conversation.mentions):
            return
        after = [line for line in conversation.lines if line.time > when and not line.own
                 and not line.kind.is_event and line.kind is not Kind.INFO]
        unread = min(conversation.unread, len(after))
        if unread != conversation.unread:
            conversation.unread = unread
            conversation.mentions = min(conversation.mentions, unread)
            conversation.first_unread = after[-unread] if unread else None
            self.emit(CountersChanged(conversation))
            self.emit(ReadMarkerMoved(conversation))
