"""A chat session as a person sees it: conversations, members, topics, unread counts, events.

This is the model the desktop client renders. It does no I/O and knows nothing of Qt: the network
client (:mod:`twistedchat.client.link`) calls its ``on_*`` methods as lines arrive, and a view
subscribes to the :class:`Event` s it emits. What the user types goes through
:meth:`Session.handle_input`, which updates the model and returns the protocol lines to send.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime

from twistedchat.client.commands import USAGE, Command, CommandError, is_channel_name, parse_input
from twistedchat.client.filters import FilterError, Filters
from twistedchat.client.history import HistoryParts
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
from twistedchat.wire.fitting import source_estimate, split_text, text_room
from twistedchat.wire.names import casefold

#: Most channels kept from one /list answer.
MAX_LISTED = 20_000


class Session(HistoryParts, PresenceParts):
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

    def on_join(self, channel: str, nick: str) -> None:
        conversation = self.open(channel)
        if self.is_me(nick):
            conversation.joined = True
            conversation.members.clear()
            if conversation.topic:  # the server tells the topic after the join, if there is one
                conversation.topic = ""
                self.emit(TopicChanged(conversation))
            if self.in_view and (self.active is None or self.active.is_server):
                self.activate(conversation)
            self.add_line(conversation, self._line(Kind.JOIN, f"You joined {channel}", nick))
        else:
            self.add_line(conversation, self._line(Kind.JOIN, f"{nick} joined {channel}", nick))
        conversation.members[casefold(nick)] = Member(nick)
        self.emit(MembersChanged(conversation))

    def on_part(self, channel: str, nick: str, reason: str = "") -> None:
        conversation = self.find(channel)
        if conversation is None:
            return
        suffix = f" ({reason})" if reason else ""
        if self.is_me(nick):
            conversation.joined = False
            conversation.members.clear()
            self.add_line(conversation, self._line(Kind.PART, f"You left {channel}{suffix}", nick))
        else:
            conversation.members.pop(casefold(nick), None)
            self.add_line(conversation, self._line(Kind.PART, f"{nick} left{suffix}", nick))
        self.emit(MembersChanged(conversation))

    def on_kick(self, channel: str, nick: str, by: str, reason: str = "") -> None:
        conversation = self.find(channel)
        if conversation is None:
            return
        suffix = f" ({reason})" if reason else ""
        if self.is_me(nick):
            conversation.joined = False
            conversation.members.clear()
            text = f"You were kicked from {channel} by {by}{suffix}"
            self.add_line(conversation, self._line(Kind.KICK, text, by))
        else:
            conversation.members.pop(casefold(nick), None)
            self.add_line(conversation, self._line(Kind.KICK, f"{by} kicked {nick}{suffix}", by))
        self.emit(MembersChanged(conversation))

    def _conversations_with(self, nick: str) -> list[Conversation]:
        key = casefold(nick)
        return [c for c in self.conversations.values()
                if key in c.members or (c.is_query and casefold(c.name) == key)]

    def on_quit(self, nick: str, reason: str = "") -> None:
        suffix = f" ({reason})" if reason else ""
        for conversation in self._conversations_with(nick):
            conversation.members.pop(casefold(nick), None)
            self.add_line(conversation, self._line(Kind.QUIT, f"{nick} quit{suffix}", nick))
            if conversation.is_channel:
                self.emit(MembersChanged(conversation))

    def on_nick(self, old: str, new: str) -> None:
        own = self.is_me(old)
        if own:
            self._set_nick(new)
        else:
            self.people.rename(old, new)
        text = f"You are now known as {new}" if own else f"{old} is now known as {new}"
        for conversation in self._conversations_with(old):
            member = conversation.members.pop(casefold(old), None)
            if member is not None:
                conversation.members[casefold(new)] = Member(new, member.prefix)
                self.emit(MembersChanged(conversation))
            self.add_line(conversation, self._line(Kind.NICK, text, old))
            if conversation.is_query and not own:
                self._rename(conversation, new)
        if own:
            self.info(text)

    def _rename(self, conversation: Conversation, name: str) -> None:
        """A private conversation follows its partner's new nick."""
        old_name = conversation.name
        self.conversations.pop(casefold(old_name), None)
        existing = self.conversations.get(casefold(name))
        if existing is not None and existing is not conversation:
            # merge into one conversation, in time order (sorted() is stable for equal times)
            conversation.lines = deque(
                sorted([*existing.lines, *conversation.lines], key=lambda line: line.time),
                maxlen=self.scrollback)
            self.close(existing.name)
        conversation.name = name
        self.conversations[casefold(name)] = conversation
        self.emit(ConversationRenamed(conversation, old_name))

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

    def on_names(self, channel: str, members: list[tuple[str, str]]) -> None:
        """The whole member list: (prefix symbols, nick) pairs.

        A channel we are in gets its member list replaced; the list of one we are not in, or one
        the user asked for with ``/names``, is shown as a line where the user looks.
        """
        conversation = self.find(channel)
        asked = casefold(channel) in self.names_asked
        self.names_asked.discard(casefold(channel))
        if conversation is not None and conversation.joined:
            conversation.members = {casefold(nick): Member(nick, marks) for marks, nick in members}
            self.emit(MembersChanged(conversation))
        if asked or conversation is None or not conversation.joined:
            names = " ".join(marks[:1] + nick for marks, nick in members)
            if channel == "*" or not is_channel_name(channel):
                text = f"Users: {names}" if names else "No users"
            else:
                count = len(members)
                text = f"{channel} ({count} {'member' if count == 1 else 'members'}): {names}"
            self.info(text, self.active or self.server)

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

    def on_member_mode(self, channel: str, by: str, nick: str, symbol: str, on: bool) -> None:
        """``by`` gave (or took) ``nick`` the prefix ``symbol`` (``@`` or ``+``) in ``channel``."""
        conversation = self.find(channel)
        if conversation is None:
            return
        member = conversation.members.get(casefold(nick))
        if member is not None:
            marks = set(member.prefix)
            (marks.add if on else marks.discard)(symbol)
            member.prefix = "".join(c for c in self.prefixes if c in marks)
            self.emit(MembersChanged(conversation))

    def on_away(self, nick: str, away: bool) -> None:
        """``away-notify``: ``nick`` went away or came back (greyed in member lists)."""
        key = casefold(nick)
        if self.people.get(nick) is not None or self.find(nick) is not None:
            self.on_person_away(nick, away)
        for conversation in self.conversations.values():
            member = conversation.members.get(key)
            if member is not None and member.away != away:
                member.away = away
                self.emit(MembersChanged(conversation))

    def on_mode(self, target: str, by: str, change: str) -> None:
        """A mode change, shown as an event in the channel (or the server conversation)."""
        conversation = self.find(target) if is_channel_name(target) else None
        self.add_line(conversation or self.server,
                      self._line(Kind.MODE, f"{by} sets mode {change}", by))

    # -- what the user types -------------------------------------------------------------------

    def handle_input(self, text: str, conversation: Conversation | None = None) -> list[str]:
        """Act on what the user typed in ``conversation``; returns the protocol lines to send.

        Plain text is said to the conversation; ``/commands`` are parsed by
        :func:`twistedchat.client.commands.parse_input`. Usage errors become lines in the conversation.
        """
        conversation = conversation or self.active or self.server
        try:
            command = parse_input(text, None if conversation.is_server else conversation.name)
        except CommandError as error:
            self.error(str(error), conversation)
            return []
        if command is None:
            return []
        return self.execute(command, conversation)

    def execute(self, command: Command, conversation: Conversation) -> list[str]:
        name, args = command.name, command.args
        if name in ("say", "me", "msg", "notice"):
            target, text = args
            return self._say(name, target, text, conversation)
        if name == "query":
            query = self.open(args[0])
            self.activate(query)
            return self._say("say", args[0], args[1]) if args[1] else []
        if name == "close":
            if conversation.is_channel and conversation.joined:
                return [f"PART {conversation.name}"]
            self.close(conversation.name)
            return []
        if name == "quit":
            self.emit(QuitRequested(args[0]))
            return []
        if name == "help":
            for usage in USAGE.values():
                self.info(usage, conversation)
            return []
        if name in ("ctcp", "ignore", "unignore", "clear", "reconnect", "names", "list"):
            return self._client_command(command, conversation)
        if name == "join":
            for channel in args[0].split(","):
                self.activate(self.open(channel))
        if name in ("join", "part", "nick", "topic", "away", "whois", "raw", "kick", "ban", "op",
                    "deop", "voice", "devoice", "invite"):
            return [command.line]
        raise AssertionError(f"unhandled command {name}")  # pragma: no cover

    def _client_command(self, command: Command, conversation: Conversation) -> list[str]:
        """Commands the client carries out (partly) itself."""
        name, args = command.name, command.args
        if name == "ctcp":
            if not self.connected:
                self.error("Not connected: the request was not sent", conversation)
                return []
            self.info(f"CTCP {args[1]} sent to {args[0]}", conversation)
            return [command.line]
        if name == "names":
            self.names_asked.add(casefold(args[0]))
            return [command.line]
        if name == "list":
            self.channel_list = []
            self.emit(ChannelListChanged(False))
            return [command.line]
        if name == "clear":
            conversation.lines.clear()
            conversation.first_unread = None
            self.emit(ConversationCleared(conversation))
            return []
        if name == "reconnect":
            self.emit(ReconnectRequested())
            return []
        return self._ignore_command(name, args, conversation)

    def _ignore_command(self, name: str, args: tuple[str, ...],
                        conversation: Conversation) -> list[str]:
        if name == "ignore" and not args:
            masks = ", ".join(self.filters.ignores) or "nobody"
            self.info(f"Ignoring: {masks}", conversation)
        elif name == "ignore":
            try:
                mask = self.filters.ignore(args[0])
            except FilterError as error:
                self.error(str(error), conversation)
            else:
                self.info(f"Ignoring {mask}", conversation)
                self.emit(IgnoreListChanged(list(self.filters.ignores)))
        elif self.filters.unignore(args[0]):
            self.info(f"No longer ignoring {args[0]}", conversation)
            self.emit(IgnoreListChanged(list(self.filters.ignores)))
        else:
            self.error(f"{args[0]} is not on the ignore list", conversation)
        return []

    def restore(self, conversation: Conversation, lines: list[Line]) -> None:
        """Put older ``lines`` (from the logs) before what the conversation already holds."""
        if not lines:
            return
        conversation.lines = deque([*lines, *conversation.lines], maxlen=self.scrollback)
        self.emit(HistoryRestored(conversation))

    def pending_in(self, conversation: Conversation) -> list[Pending]:
        """Lines typed in ``conversation`` still waiting for the server's echo."""
        return self.outbox.in_conversation(conversation)

    def _say(self, how: str, target: str, text: str,
             typed_in: Conversation | None = None) -> list[str]:
        if not self.connected:
            self.error("Not connected: the message was not sent", self.find(target))
            return []
        verb = "NOTICE" if how == "notice" else "PRIVMSG"
        kind = {"me": Kind.ACTION, "notice": Kind.NOTICE}.get(how, Kind.MESSAGE)
        # the server relays us as nick!~ident@host: reserve its longest ident (USERLEN 10)
        room = text_room(source_estimate(self.nick, "u" * 10), verb, target)
        if kind is Kind.ACTION:
            room -= len("\x01ACTION \x01")
        lines: list[str] = []
        shown_in = self.find(target) or typed_in or self.active or self.server
        for piece in split_text(text, room):
            payload = f"\x01ACTION {piece}\x01" if kind is Kind.ACTION else piece
            lines.append(f"{verb} {target} :{payload}")
            if self.echo:  # shown as said once the server echoes it
                given_up = self.outbox.add(Pending(shown_in, target, kind, piece, self.clock()))
                if given_up is not None:
                    self.emit(PendingChanged(given_up.conversation))
            else:
                self.on_message(self.nick, target, piece, kind)
        if self.echo and lines:
            self.emit(PendingChanged(shown_in))
        return lines
