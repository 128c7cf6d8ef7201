"""A chat session as a person sees it: conversations, members, topics, unread counts, events.

This is the model the desktop client renders. It does no I/O and knows nothing of Qt: the network
client (:mod:`twistedchat.client.link`) calls its ``on_*`` methods as lines arrive, and a view
subscribes to the :class:`Event` s it emits. What the user types goes through
:meth:`Session.handle_input` (:mod:`twistedchat.client.typed`), which updates the model and returns the protocol lines to send.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime

from twistedchat.client.commands import is_channel_name
from twistedchat.client.filters import Filters
from twistedchat.client.history import HistoryParts
from twistedchat.client.membership import MembershipParts
from twistedchat.client.model import (  # noqa: F401 (re-exported: the session's names)
    DEFAULT_PREFIXES,
    DEFAULT_SCROLLBACK,
    SERVER,
    Activated,
    Attention,
    ChannelListChanged,
    Conversation,
    ConversationCleared,
    ConversationClosed,
    ConversationOpened,
    ConversationRenamed,
    CountersChanged,
    Event,
    HistoryRestored,
    IgnoreListChanged,
    Kind,
    Line,
    LineAdded,
    Member,
    MembersChanged,
    NickChanged,
    PendingChanged,
    PersonChanged,
    QuitRequested,
    ReadMarkerMoved,
    ReconnectRequested,
    ServerInfoChanged,
    StatusChanged,
    TopicChanged,
)
from twistedchat.client.outbox import Outbox, Pending
from twistedchat.client.people import People
from twistedchat.client.presence import PresenceParts
from twistedchat.client.typed import InputParts
from twistedchat.wire.names import casefold

#: Most channels kept from one /list answer.
MAX_LISTED = 20_000


class Session(MembershipParts, InputParts, HistoryParts, PresenceParts):
    """Everything one connection's user sees, kept up to date from protocol callbacks."""

    def __init__(
        self,
        nick: str,
        *,
        scrollback: int = DEFAULT_SCROLLBACK,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.nick = nick
        self.scrollback = scrollback
        self.clock = clock
        self.prefixes = DEFAULT_PREFIXES
        self.connected = False
        self.network = ""
        self.status = "Not connected"
        self.conversations: dict[str, Conversation] = {}
        self.active: Conversation | None = None
        #: the user looks at this session's conversations (False while another network's are
        #: shown: then nothing here is "being read" and a join does not take the view)
        self.in_view = True
        self._subscribers: list[Callable[[Event], None]] = []
        self.filters = Filters()
        self.filters.set_nick(nick)
        #: the server echoes what we send (``echo-message``): own lines wait in the outbox
        self.echo = False
        self.outbox = Outbox()
        #: channels whose NAMES the user asked for (the answer is shown, not just stored)
        self.names_asked: set[str] = set()
        #: the answer to the latest /list: (channel, users, topic)
        self.channel_list: list[tuple[str, int, str]] = []
        #: others' online state, away, bot mode and metadata
        self.people = People()
        self.server = self.open(SERVER)

    # -- subscribers and conversations ---------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.remove(callback)

    def emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def find(self, name: str) -> Conversation | None:
        return self.conversations.get(casefold(name))

    def open(self, name: str) -> Conversation:
        """The conversation called ``name``, opened (and announced) if it is new."""
        key = casefold(name)
        conversation = self.conversations.get(key)
        if conversation is None:
            conversation = Conversation(name, scrollback=self.scrollback)
            self.conversations[key] = conversation
            self.emit(ConversationOpened(conversation))
        return conversation

    def close(self, name: str) -> None:
        """Forget a conversation (the server one stays)."""
        conversation = self.find(name)
        if conversation is None or conversation.is_server:
            return
        del self.conversations[casefold(name)]
        if self.active is conversation:
            self.active = None
        self.emit(ConversationClosed(conversation))

    def look_away(self) -> None:
        """The user now looks at another network's conversations."""
        self.in_view = False
        self.activate(None)

    def activate(self, conversation: Conversation | None) -> None:
        """The user is looking at ``conversation``: its counters go back to zero."""
        if conversation is not None:
            self.in_view = True
        if conversation is not self.active:
            if self.active is not None:
                self.active.first_unread = None
                self.active.watching_for_unread = True
            self.active = conversation
            if conversation is not None:
                self.emit(Activated(conversation))
        if conversation is not None and (conversation.unread or conversation.mentions):
            conversation.unread = conversation.mentions = 0
            self.emit(CountersChanged(conversation))

    def add_line(self, conversation: Conversation, line: Line, *, quiet: bool = False) -> None:
        """Add ``line``; unless ``quiet``, it counts as unread where the user is not looking."""
        if conversation is not self.active and conversation.watching_for_unread:
            conversation.first_unread = line
            conversation.watching_for_unread = False
        conversation.lines.append(line)
        self.emit(LineAdded(conversation, line))
        if quiet or conversation.muted:
            return
        counts = not line.own and not line.kind.is_event and line.kind is not Kind.INFO
        if conversation is not self.active and (counts or line.kind is Kind.ERROR):
            conversation.unread += 1
            if line.mention or (conversation.is_query and counts):
                conversation.mentions += 1
            self.emit(CountersChanged(conversation))
        if not line.own and (line.mention or (conversation.is_query and not line.kind.is_event)):
            self.emit(Attention(conversation, line))

    def _line(self, kind: Kind, text: str, nick: str = "", *, own: bool = False,
              time: datetime | None = None, mention: bool = False, msgid: str = "") -> Line:
        return Line(time or self.clock(), kind, text, nick, own, mention, msgid)

    def info(self, text: str, conversation: Conversation | None = None,
             kind: Kind = Kind.INFO, *, quiet: bool = False) -> None:
        """A line of our own making (replies, errors) in ``conversation`` or the server one."""
        self.add_line(conversation or self.server, self._line(kind, text), quiet=quiet)

    def error(self, text: str, conversation: Conversation | None = None) -> None:
        self.info(text, conversation or self.active or self.server, Kind.ERROR)

    # -- our own state -------------------------------------------------------------------------

    def mentions_me(self, text: str) -> bool:
        """True if ``text`` names our nick or one of the highlight words."""
        return self.filters.mentions(text)

    def set_highlights(self, words: list[str]) -> None:
        self.filters.set_highlights(self.nick, words)

    def is_me(self, nick: str) -> bool:
        return casefold(nick) == casefold(self.nick)

    def set_status(self, text: str, connected: bool) -> None:
        self.status = text
        self.connected = connected
        self.emit(StatusChanged(text, connected))

    def on_connection_lost(self, reason: str) -> None:
        """The link is down: channels are left until we are back (that is news, not unread)."""
        for conversation in self.conversations.values():
            if conversation.is_channel and conversation.joined:
                conversation.joined = False
                conversation.members.clear()
                self.emit(MembersChanged(conversation))
                self.info(f"Disconnected: {reason}", conversation, Kind.ERROR, quiet=True)
        self.info(f"Disconnected: {reason}", kind=Kind.ERROR, quiet=True)
        for pending in self.outbox.clear():
            self._not_sent(pending, "disconnected")

    def on_caps(self, enabled: set[str]) -> None:
        """Capability negotiation is over: with ``echo-message`` own lines wait for the echo."""
        self.echo = "echo-message" in enabled

    def on_registered(self, nick: str) -> None:
        self._set_nick(nick)
        self.info(f"Connected as {nick}")

    def on_server_info(self, network: str, prefixes: str) -> None:
        """The server told us its network name and membership prefixes (ISUPPORT)."""
        changed = (network or self.network, prefixes or self.prefixes) != (
            self.network, self.prefixes)
        self.network = network or self.network
        self.prefixes = prefixes or self.prefixes
        if changed:
            self.emit(ServerInfoChanged())

    def _set_nick(self, nick: str) -> None:
        if nick != self.nick:
            self.nick = nick
            self.filters.set_nick(nick)
            self.emit(NickChanged(nick))

    # -- what the server tells us --------------------------------------------------------------

    def on_message(self, sender: str, target: str, text: str, kind: Kind = Kind.MESSAGE,
                   time: datetime | None = None, source: str = "", msgid: str = "") -> None:
        """A PRIVMSG, NOTICE or ``/me`` from ``sender`` (a nick, or a server name) to ``target``.

        ``source`` is the sender's ``nick!user@host`` when known (the ignore list matches it);
        ``msgid`` the server's id of the message.
        """
        own = self.is_me(sender)
        if own and self.echo:
            pending = self.outbox.confirm(target, kind, text)
            if pending is not None:
                self.emit(PendingChanged(pending.conversation))
        elif not own and self.filters.ignored(source or sender):
            return
        if is_channel_name(target):
            conversation = self.open(target)
        elif own:
            conversation = self.open(target)
        elif kind is Kind.NOTICE and ("." in sender or not sender):
            conversation = self.server  # server notices
        elif kind is Kind.NOTICE and self.find(sender) is None:
            conversation = self.active or self.server  # a service's notice needs no new tab
        else:
            conversation = self.open(sender)
        mention = not own and conversation.is_channel and self.mentions_me(text)
        self.add_line(conversation, self._line(kind, text, sender, own=own, time=time,
                                               mention=mention, msgid=msgid))

    def history_line(self, sender: str, text: str, kind: Kind, time: datetime | None,
                     msgid: str) -> Line | None:
        """A line of a ``chathistory`` batch, as it would be shown (None: from someone ignored)."""
        nick = sender.split("!", 1)[0]
        own = self.is_me(nick)
        if not own and self.filters.ignored(sender):
            return None
        mention = not own and self.mentions_me(text)
        return self._line(kind, text, nick, own=own, time=time, mention=mention, msgid=msgid)

    def on_topic(self, channel: str, topic: str, by: str | None = None) -> None:
        """The topic is ``topic``; ``by`` is who changed it just now (None when we joined)."""
        conversation = self.open(channel)
        conversation.topic = topic
        self.emit(TopicChanged(conversation))
        if by is not None:
            text = f"{by} changed the topic to: {topic}" if topic else f"{by} cleared the topic"
            self.add_line(conversation, self._line(Kind.TOPIC, text, by))
        elif topic:
            self.add_line(conversation, self._line(Kind.TOPIC, f"Topic: {topic}"))

    def on_channel_list(self, entries: list[tuple[str, int, str]], done: bool) -> None:
        """``/list`` answers: ``entries`` to add (a new list starts after the previous is done).

        At most :data:`MAX_LISTED` are kept: a server with more channels cannot fill our memory.
        """
        room = MAX_LISTED - len(self.channel_list)
        self.channel_list.extend(entries[:max(room, 0)])
        self.emit(ChannelListChanged(done))

    def on_ctcp(self, sender: str, target: str, request: str, answered: bool) -> None:
        """Someone sent us (or a channel) a CTCP request; shown where the user looks."""
        where = self.find(target) if is_channel_name(target) else None
        word = request.split(" ", 1)[0]
        text = f"{sender} asked for CTCP {word}" + (" (answered)" if answered else "")
        self.info(text, where or self.active or self.server)

    def on_ctcp_reply(self, sender: str, reply: str) -> None:
        word, _, rest = reply.partition(" ")
        self.info(f"CTCP {word} reply from {sender}: {rest}", self.active or self.server)

    def on_send_failed(self, target: str, reason: str) -> None:
        """The server refused a line we sent to ``target`` (a 401 or 404): it was not said."""
        pending = self.outbox.refuse(target) if self.echo else None
        if pending is not None:
            self._not_sent(pending, reason)

    def _not_sent(self, pending: Pending, reason: str) -> None:
        self.emit(PendingChanged(pending.conversation))
        if casefold(pending.conversation.name) in self.conversations:
            self.error(f"Not sent ({reason}): {pending.text}", pending.conversation)

    def on_mode(self, target: str, by: str, change: str) -> None:
        """A mode change, shown as an event in the channel (or the server conversation)."""
        conversation = self.find(target) if is_channel_name(target) else None
        self.add_line(conversation or self.server,
                      self._line(Kind.MODE, f"{by} sets mode {change}", by))

    # -- older lines ---------------------------------------------------------------------------

    def restore(self, conversation: Conversation, lines: list[Line]) -> None:
        """Put older ``lines`` (from the logs) before what the conversation already holds."""
        if not lines:
            return
        conversation.lines = deque([*lines, *conversation.lines], maxlen=self.scrollback)
        self.emit(HistoryRestored(conversation))
