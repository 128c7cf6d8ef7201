"""The chat server's rules around its command table: dispatch, replies, relays, connection life.

No sockets here. Each :class:`User` carries a ``wake`` callable (its outbox got a first line) and
a ``close`` callable; the Twisted adapter in :mod:`twistedchat.server.net` supplies them, tests
supply lists. The handlers live in :mod:`twistedchat.server.commands`, one module per family.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from twistedchat.server.commands import COMMANDS, Command
from twistedchat.server.commands.messages import STATUSMSG
from twistedchat.server.commands.registration import CAPABILITIES, VERSION
from twistedchat.server.config import ServerConfig
from twistedchat.server.relay import Relay, RelayBus
from twistedchat.server.state import (
    AWAYLEN,
    CHANLIMIT,
    FLAG_MODES,
    KICKLEN,
    LIST_MODES,
    MAXLIST,
    MAXTARGETS,
    MODES_PER_COMMAND,
    MONITOR_LIMIT,
    MUTE_PREFIX,
    PARAM_MODES,
    PREFIX_MODES,
    PREFIX_SYMBOLS,
    REALLEN,
    SET_PARAM_MODES,
    TOPICLEN,
    Channel,
    ChatState,
    Link,
    User,
)
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import chunks, fit_message, fit_words
from twistedchat.wire.message import MAX_LINE_BYTES, Message, escape_tag_value
from twistedchat.wire.names import CASEMAPPING, CHANNELLEN, CHANTYPES, NICKLEN, casefold

if TYPE_CHECKING:
    from twistedchat.server.accounts import Accounts

__all__ = ["CAPABILITIES", "VERSION", "ServerCore"]

NOT_ENOUGH_PARAMETERS = "Not enough parameters"
#: Longest ``label`` tag honoured (labeled-response); a longer one is answered without it.
MAX_LABEL = 64


def add_tag(line: bytes, tag: bytes) -> bytes:
    """An encoded line with one more tag (``key=escaped-value``) in front of its others."""
    if line.startswith(b"@"):
        return b"@" + tag + b";" + line[1:]
    return b"@" + tag + b" " + line


class ServerCore:
    """Handles parsed messages from users and keeps the chat state."""

    def __init__(
        self, config: ServerConfig, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.clock = clock
        self.state = ChatState()
        self.created = clock()
        self.max_seen_users = 0
        #: Every relayed line passes here; history and a cluster link subscribe to it.
        self.bus = RelayBus()
        #: This server's command table (a copy, so one server's changes stay its own).
        self.commands: dict[str, Command] = dict(COMMANDS)
        #: ``msgid`` values: a random prefix for this run, then a counter (unique, compact).
        self._msgid_prefix = secrets.token_urlsafe(6)
        self._msgid_count = 0
        #: The capabilities offered (CAP LS), with values; a store adds the account ones.
        self.capabilities: dict[str, str] = dict(CAPABILITIES)
        #: Accounts, services and history (server/accounts.py): None until a store is attached.
        self.accounts: Accounts | None = None
        #: Set by :meth:`hold_input`: the line being handled answers later (labeled-response).
        self._answer_later = False
        self._batch_count = 0

    # -- output helpers ----------------------------------------------------------------------

    def reply(self, user: User, code: str, *params: str) -> None:
        """Send a numeric (or other server message) addressed to ``user``.

        Parameters before the last may echo what the client sent; one that cannot stand in the
        middle of a line (empty, with a space, or starting with ``:``) is shown as ``*``. The
        line is cut to 512 bytes if what it echoes would make it longer.
        """
        *middle, last = (user.nick, *params)
        safe = [p if p and " " not in p and p[0] != ":" else "*" for p in middle]
        user.send(fit_message(Message(code, (*safe, last), self.config.name)))

    def reply_words(self, user: User, code: str, *params: str) -> None:
        """A reply whose last parameter is a space-separated list: cut between words to fit."""
        *middle, words = (user.nick, *params)
        head = f":{self.config.name} {code} {' '.join(middle)} :"
        self.reply(user, code, *params[:-1], fit_words(words, MAX_LINE_BYTES - 2 - len(head.encode())))

    def notice(self, user: User, text: str) -> None:
        """A server NOTICE to ``user``."""
        user.send(Message("NOTICE", (user.nick, text), self.config.name).to_bytes())

    def fail(self, user: User, command: str, code: str, *params: str) -> None:
        """An IRCv3 standard reply: ``FAIL <command> <code> [<context>...] :text``.

        The last parameter is the text. A command word that is not a plain token (what a client
        sent may be anything) is ``*``; so is a context parameter that cannot stand mid-line.
        """
        if not (command.isascii() and command.isalnum() and len(command) <= 32):
            command = "*"
        *context, text = params
        safe = [p if p and " " not in p and p[0] != ":" else "*" for p in context]
        user.send(fit_message(Message("FAIL", (command, code, *safe, text), self.config.name)))

    def need_more_params(self, user: User, command: str) -> None:
        """461 ERR_NEEDMOREPARAMS for ``command``."""
        self.reply(user, N.ERR_NEEDMOREPARAMS, command, NOT_ENOUGH_PARAMETERS)

    def relay(
        self,
        recipients: Iterable[User],
        source: User | str,
        command: str,
        *params: str,
        client_tags: dict[str, str] | None = None,
        skip: User | None = None,
        msgid: str | None = None,
    ) -> None:
        """Send ``:source COMMAND params`` to every recipient but ``skip``, encoded once."""
        if isinstance(source, str):
            prefix, account = source, None
        else:
            prefix, account = source.source, source.account
        relay = Relay(Message(command, params, prefix), self.clock(), client_tags, msgid, account)
        self.bus.publish(relay, recipients, skip)

    def hold_input(self, user: User, work: Deferred[Any]) -> None:
        """Handle none of ``user``'s later lines until ``work`` fires (its pipeline queues them)."""
        hold = getattr(user.link, "hold", None)
        if hold is not None:
            hold(work)
        self._answer_later = True

    def next_batch(self) -> str:
        """A new ``BATCH`` reference, unique in this run."""
        self._batch_count += 1
        return f"b{self._batch_count:x}"

    def _labeled(self, user: User, message: Message, label: str) -> None:
        """Handle a line with a ``label`` (labeled-response): its answer carries the label, one
        line tagged, several in a ``labeled-response`` batch, none as ``ACK``. A handler that
        answers later (CHATHISTORY) labels its own batch."""
        outbox = user.outbox
        start = len(outbox)
        self._answer_later = False
        self._dispatch(user, message)
        if self._answer_later or user.outbox is not outbox:
            return
        tag = ("label=" + escape_tag_value(label)).encode("utf-8")
        answer = outbox[start:]
        del outbox[start:]
        if not answer:
            user.send(add_tag(Message("ACK", (), self.config.name).to_bytes(), tag))
        elif len(answer) == 1:
            user.send(add_tag(answer[0], tag))
        else:
            ref = self.next_batch()
            user.send(add_tag(Message("BATCH", (f"+{ref}", "labeled-response"),
                                      self.config.name).to_bytes(), tag))
            batch = f"batch={ref}".encode()
            for line in answer:
                user.send(add_tag(line, batch))
            user.send(Message("BATCH", (f"-{ref}",), self.config.name).to_bytes())

    def next_msgid(self) -> str:
        """A new unique ``msgid`` tag value for one relayed message."""
        self._msgid_count += 1
        return f"{self._msgid_prefix}{self._msgid_count:x}"

    # -- who hears about a user: its channels, and (extended-monitor) those who MONITOR it --------

    def interested(self, user: User, cap: str) -> list[User]:
        """Who gets ``cap``'s notifications about ``user`` (not ``user`` itself).

        Those sharing a channel with it that enabled ``cap``, and, with ``extended-monitor``,
        those that MONITOR its nick and enabled ``cap`` too; each once.
        """
        seen = {u for u in self.state.neighbours(user) if cap in u.caps}
        for watcher in self.state.watchers.get(user.folded, ()):
            if watcher is not user and "extended-monitor" in watcher.caps and cap in watcher.caps:
                seen.add(watcher)
        return list(seen)

    def announce(self, user: User, cap: str, command: str, *params: str) -> None:
        """``:user COMMAND params`` to :meth:`interested` (``cap``), encoded once.

        AWAY (``away-notify``) and SETNAME (``setname``) go this way; ACCOUNT
        (``account-notify``) and CHGHOST (``chghost``) are to, once accounts and host changes exist.
        """
        recipients = self.interested(user, cap)
        if recipients:
            self.relay(recipients, user, command, *params)

    def set_account(self, user: User, account: str | None) -> None:
        """Log ``user`` in to ``account`` (None: out): the hook for SASL and account commands.

        The account becomes the owner of the connection's metadata and read markers from now on
        (``User.owner``), WHOX and WHOIS show it, and ``ACCOUNT`` goes to :meth:`interested`
        (``account-notify``: offered once accounts exist).
        """
        if account == user.account:
            return
        self.state.set_account(user, account)
        self.announce(user, "account-notify", "ACCOUNT", account or "*")

    def monitor_online(self, user: User) -> None:
        """730 to everyone who MONITORs ``user``'s nick (it registered or took the nick)."""
        watchers = self.state.watchers.get(user.folded)
        if watchers:
            for watcher in watchers:
                self.reply(watcher, N.RPL_MONONLINE, user.source)

    def monitor_offline(self, user: User, nick: str | None = None) -> None:
        """731 to everyone who MONITORs ``nick`` (``user``'s, by default): it left or changed."""
        nick = nick or user.nick
        watchers = self.state.watchers.get(casefold(nick))
        if watchers:
            for watcher in watchers:
                self.reply(watcher, N.RPL_MONOFFLINE, nick)

    def reply_list(self, user: User, code: str, items: list[str], *, sep: str = ",") -> None:
        """A numeric whose last parameter lists ``items``, in as many lines as they need."""
        head = f":{self.config.name} {code} {user.nick} :"
        room = MAX_LINE_BYTES - 2 - len(head.encode())
        for chunk in chunks(" ".join(items), room):
            self.reply(user, code, chunk.replace(" ", sep))

    # -- channel lookups, each error written once ------------------------------------------------

    def no_such_channel(self, user: User, name: str) -> None:
        """403 ERR_NOSUCHCHANNEL."""
        self.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")

    def not_on_channel(self, user: User, channel: Channel) -> None:
        """442 ERR_NOTONCHANNEL."""
        self.reply(user, N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")

    def not_operator(self, user: User, channel: Channel) -> None:
        """482 ERR_CHANOPRIVSNEEDED."""
        self.reply(user, N.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")

    def visible_channel(self, user: User, name: str) -> Channel | None:
        """The channel, or None after 403 when there is none or it is +s and ``user`` is outside.

        A secret channel does not exist for non-members (as in Solanum and Ergo): no modes, key,
        limit, ban list or topic leak through MODE, TOPIC, KICK, PART or INVITE.
        """
        channel = self.state.find_channel(name)
        if channel is None or ("s" in channel.modes and user not in channel.members):
            self.no_such_channel(user, name)
            return None
        return channel

    def joined_channel(self, user: User, name: str) -> Channel | None:
        """The channel ``user`` is on, or None after 403 (none or hidden) or 442 (not a member)."""
        channel = self.visible_channel(user, name)
        if channel is not None and user not in channel.members:
            self.not_on_channel(user, channel)
            return None
        return channel

    def isupport_tokens(self) -> list[str]:
        """The ISUPPORT (005) tokens: each one true of what this server does."""
        prefix_modes = "".join(PREFIX_MODES)
        prefix_symbols = "".join(PREFIX_SYMBOLS[m] for m in PREFIX_MODES)
        return [
            f"AWAYLEN={AWAYLEN}",
            "BOT=B",
            f"CASEMAPPING={CASEMAPPING}",
            f"CHANLIMIT={CHANTYPES}:{CHANLIMIT}",
            f"CHANMODES={LIST_MODES},{PARAM_MODES},{SET_PARAM_MODES},{FLAG_MODES}",
            f"CHANNELLEN={CHANNELLEN}",
            f"CHANTYPES={CHANTYPES}",
            "EXCEPTS=e",
            f"EXTBAN=,{MUTE_PREFIX[0]}",
            "INVEX=I",
            f"KICKLEN={KICKLEN}",
            "MAXLIST=" + ",".join(f"{letter}:{MAXLIST}" for letter in LIST_MODES),
            f"MAXTARGETS={MAXTARGETS}",
            f"MODES={MODES_PER_COMMAND}",
            f"MONITOR={MONITOR_LIMIT}",
            f"NAMELEN={REALLEN}",
            f"NETWORK={self.config.network}",
            f"NICKLEN={NICKLEN}",
            f"PREFIX=({prefix_modes}){prefix_symbols}",
            f"STATUSMSG={STATUSMSG}",
            f"TARGMAX=PRIVMSG:{MAXTARGETS},NOTICE:{MAXTARGETS},JOIN:,PART:,KICK:{MAXTARGETS},WHOIS:1",
            f"TOPICLEN={TOPICLEN}",
            "UTF8ONLY",
            "WHOX",
            *([f"CHATHISTORY={self.accounts.history_limit}"] if self.accounts is not None else []),
        ]

    # -- connection life cycle -----------------------------------------------------------------

    def connect(
        self,
        host: str,
        wake: Callable[[User], None],
        close: Callable[[], None],
        link: Link | None = None,
    ) -> User:
        """A new connection: returns its :class:`User` (unregistered).

        ``wake(user)`` is called when the user's outbox gets its first line; ``close()`` when the
        connection should be closed after the outbox is written.
        """
        user = User(host, wake, close, self.clock(), link)
        self.state.add_connection(user)
        return user

    def handle(self, user: User, message: Message) -> None:
        """Run the handler for one message from ``user``: a dict lookup, the table's checks."""
        if message.tags and "labeled-response" in user.caps:
            label = message.tags.get("label")
            if label and len(label) <= MAX_LABEL:
                self._labeled(user, message, label)
                return
        self._dispatch(user, message)

    def _dispatch(self, user: User, message: Message) -> None:
        """:meth:`handle` without the labeled-response wrapping."""
        name = message.command
        spec = self.commands.get(name)
        if spec is None:
            if user.registered:
                self.reply(user, N.ERR_UNKNOWNCOMMAND, name, "Unknown command")
            else:
                self.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        if not user.registered and not spec.pre_registration:
            self.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        needed = spec.min_params
        if needed and (len(message.params) < needed or not all(message.params[:needed])):
            self.need_more_params(user, name)
            return
        if spec.oper_only and not user.is_oper:
            self.reply(user, N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
            return
        spec.handler(self, user, message)

    def quit(self, user: User, reason: str, error: str | None = None) -> None:
        """End a user's session: tell its channels, send ``ERROR``, close the connection."""
        if user not in self.state.connections:
            return
        if user.registered:
            self.relay(self.state.neighbours(user), user, "QUIT", reason)
            self.monitor_offline(user)
        self.state.remove(user, self.clock())
        goodbye = Message("ERROR", (f"Closing Link: {user.host} ({error or reason})",))
        user.send(fit_message(goodbye))
        user.close()

    def connection_lost(self, user: User, reason: str) -> None:
        """The transport went away without a QUIT."""
        if user not in self.state.connections:
            return
        if user.registered:
            self.relay(self.state.neighbours(user), user, "QUIT", reason)
            self.monitor_offline(user)
        self.state.remove(user, self.clock())

    def sweep(self) -> None:
        """Ping idle users, drop silent ones and connections that never registered."""
        now = self.clock()
        config = self.config
        for user in list(self.state.connections):
            idle = now - user.last_seen
            if not user.registered:
                if now - user.signon >= config.registration_timeout:
                    self.quit(user, "Registration timed out")
            elif idle >= config.ping_interval + config.ping_timeout:
                self.quit(user, f"Ping timeout: {int(idle)} seconds")
            elif idle >= config.ping_interval and not user.ping_pending:
                user.ping_pending = True
                user.send(Message("PING", (config.name,)).to_bytes())

    def shutdown(self, reason: str = "Server shutting down") -> None:
        """Tell every connection why it is closed, and close it."""
        for user in list(self.state.connections):
            self.state.remove(user)
            user.send(Message("ERROR", (f"Closing Link: {user.host} ({reason})",)).to_bytes())
            user.close()
