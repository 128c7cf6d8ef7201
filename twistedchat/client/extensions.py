"""The link's side of modern IRC: chathistory batches, read markers, MONITOR and metadata.

:class:`ExtensionsClient` is mixed into :class:`~twistedchat.client.session_client.SessionClient` (lines in),
:class:`ExtensionsLink` into :class:`~twistedchat.client.link.SessionLink` (session events out);
what to send and how to merge what comes is decided by the session
(:mod:`twistedchat.client.history`, :mod:`twistedchat.client.presence`).
"""

from __future__ import annotations

from typing import Any

from twistedchat.client.model import (
    Activated,
    Conversation,
    ConversationClosed,
    ConversationOpened,
    ConversationRenamed,
    Kind,
    Line,
    LineAdded,
)

#: Capabilities asked for on top of the basic ones.
EXTENSION_CAPS = frozenset({"batch", "draft/chathistory", "draft/read-marker", "draft/metadata-2",
                            "extended-monitor"})
#: Most chathistory batches open at once, and lines kept in one (a server cannot fill memory).
MAX_OPEN_BATCHES = 20
MAX_BATCH_LINES = 1000
#: Seconds after lines arrive in the conversation being read before its read marker is sent.
MARK_READ_DELAY = 2.0


class ExtensionsClient:
    """Incoming CHATHISTORY batches, MARKREAD, 730/731, METADATA/761, bot tags."""

    session: Any
    link: Any
    enabled_caps: set[str]
    supported: Any
    current_tags: dict[str, str]
    sendLine: Any
    _time: Any

    def _init_extensions(self) -> None:
        #: open chathistory batches: reference -> (target, lines)
        self._history_batches: dict[str, tuple[str, list[Line]]] = {}

    @property
    def has_history(self) -> bool:
        return {"batch", "draft/chathistory"} <= self.enabled_caps

    def monitor_limit(self) -> int | None:
        """The server's MONITOR limit (0: none); None when it has no MONITOR."""
        value = self.supported.getFeature("MONITOR", None)
        if value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            return 0

    def _start_extensions(self) -> None:
        """Signed on: watch the private conversations' partners, subscribe to metadata."""
        limit = self.monitor_limit()
        if limit is not None:
            for line in self.session.monitor_lines(self.session.monitored(), limit or None):
                self.sendLine(line)
        if "draft/metadata-2" in self.enabled_caps:
            self.sendLine(self.session.metadata_subscription())
        if self.has_history:
            for conversation in list(self.session.conversations.values()):
                if conversation.is_query:
                    self.request_history(conversation)

    def request_history(self, conversation: Conversation, older: bool = False) -> None:
        if self.has_history:
            line = self.session.history_request(conversation, older)
            if line:
                self.sendLine(line)

    def _message_in(self, user: str, target: str, text: str, kind: Kind) -> bool:
        """Tags of a message: a bot's, or one of a history batch (kept for the batch: True)."""
        nick = user.split("!", 1)[0]
        if "bot" in self.current_tags:
            self.session.on_bot(nick)
        batch = self._history_batches.get(self.current_tags.get("batch", ""))
        if batch is None:
            return False
        if len(batch[1]) < MAX_BATCH_LINES:
            line = self.session.history_line(user, text, kind, self._time(),
                                             self.current_tags.get("msgid", ""))
            if line is not None:
                batch[1].append(line)
        return True

    def irc_BATCH(self, prefix: str, params: list[str]) -> None:
        if not params or len(params[0]) < 2:
            return
        sign, reference = params[0][0], params[0][1:]
        if sign == "+" and len(params) > 2 and params[1] in ("chathistory", "draft/chathistory"):
            if len(self._history_batches) < MAX_OPEN_BATCHES:
                self._history_batches[reference] = (params[2], [])
        elif sign == "-":
            batch = self._history_batches.pop(reference, None)
            if batch is not None:
                self.session.on_history(*batch)

    def irc_MARKREAD(self, prefix: str, params: list[str]) -> None:
        if len(params) > 1:
            self.session.on_read_marker(params[0], params[1])

    def irc_METADATA(self, prefix: str, params: list[str]) -> None:
        """``METADATA <target> <key> <visibility> [<value>]`` (no value: the key was cleared)."""
        if len(params) > 2:
            self.session.on_metadata(params[0], params[1], params[3] if len(params) > 3 else None)

    def _extension_numeric(self, numeric: str, params: list[str]) -> bool:
        """730/731 (MONITOR), 761 (a metadata value): handled quietly (True)."""
        if numeric in ("730", "731") and len(params) > 1:
            self.session.on_monitor(params[-1], numeric == "730")
            return True
        if numeric == "761" and len(params) > 3:
            self.session.on_metadata(params[1], params[2], params[4] if len(params) > 4 else None)
            return True
        return numeric in ("732", "733", "760", "762", "766", "770", "771", "772")


class ExtensionsLink:
    """Session events that make lines: MONITOR with private conversations, MARKREAD on reading."""

    client: Any
    reactor: Any
    session: Any

    def _init_extensions(self) -> None:
        self._mark_read_call: Any = None

    def _send(self, line: str | None) -> None:
        if line and self.client is not None and self.client._registered:
            self.client.sendLine(line)

    def _extension_event(self, event: Any) -> None:
        client = self.client
        if client is None or not client._registered:
            return
        monitoring = client.monitor_limit() is not None
        if isinstance(event, ConversationOpened) and event.conversation.is_query:
            if monitoring:
                self._send(f"MONITOR + {event.conversation.name}")
            client.request_history(event.conversation)
        elif isinstance(event, ConversationClosed) and event.conversation.is_query and monitoring:
            self._send(f"MONITOR - {event.conversation.name}")
        elif isinstance(event, ConversationRenamed) and monitoring:
            self._send(f"MONITOR - {event.old_name}")
            self._send(f"MONITOR + {event.conversation.name}")
        elif isinstance(event, Activated):
            self.mark_read(event.conversation)
        elif isinstance(event, LineAdded) and event.conversation is self.session.active:
            if self._mark_read_call is None or not self._mark_read_call.active():
                self._mark_read_call = self.reactor.callLater(
                    MARK_READ_DELAY, self.mark_read, event.conversation)

    def mark_read(self, conversation: Conversation) -> None:
        """Tell the server ``conversation`` was read (with ``draft/read-marker``)."""
        client = self.client
        if client is not None and "draft/read-marker" in client.enabled_caps \
                and self.session.active is conversation and self.session.in_view:
            self._send(self.session.read_marker_request(conversation))

    def fetch_older(self, conversation: Conversation) -> None:
        """The user scrolled to the top of ``conversation``: ask for the lines before."""
        if self.client is not None and self.client._registered:
            self.client.request_history(conversation, older=True)

    def _connection_ended(self) -> None:
        self.session.history_reset(self.session.conversations.values())

    def _stop_extensions(self) -> None:
        if self._mark_read_call is not None and self._mark_read_call.active():
            self._mark_read_call.cancel()
