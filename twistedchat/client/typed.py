"""What the user types in a session: plain text said to a conversation, and the slash commands.

A mixin of :class:`twistedchat.client.session.Session`, without I/O: :meth:`InputParts.handle_input`
updates the model and returns the protocol lines to send.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from twistedchat.client.commands import USAGE, Command, CommandError, parse_input
from twistedchat.client.filters import FilterError, Filters
from twistedchat.client.model import (
    ChannelListChanged,
    Conversation,
    ConversationCleared,
    IgnoreListChanged,
    Kind,
    PendingChanged,
    QuitRequested,
    ReconnectRequested,
)
from twistedchat.client.outbox import Outbox, Pending
from twistedchat.wire.fitting import source_estimate, split_text, text_room
from twistedchat.wire.names import casefold


class InputParts:
    """The user's input: what is said, and what each ``/command`` does."""

    nick: str
    connected: bool
    echo: bool
    active: Conversation | None
    server: Conversation
    outbox: Outbox
    filters: Filters
    names_asked: set[str]
    channel_list: list[tuple[str, int, str]]
    clock: Callable[[], datetime]
    open: Any
    find: Any
    close: Any
    activate: Any
    info: Any
    error: Any
    emit: Any
    on_message: Any

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
