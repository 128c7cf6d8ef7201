"""What the core sends: replies, notices, FAIL, relays, announcements and the errors written once.

:class:`CoreOutput` is the base of :class:`~twistedchat.server.core.ServerCore`: every command
handler answers through these methods. Sans-IO: lines are queued on users' outboxes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred

from twistedchat.server.config import ServerConfig
from twistedchat.server.relay import Relay, RelayBus
from twistedchat.server.state import Channel, ChatState, User
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import chunks, fit_message, fit_words
from twistedchat.wire.message import MAX_LINE_BYTES, Message
from twistedchat.wire.names import casefold

NOT_ENOUGH_PARAMETERS = "Not enough parameters"


class CoreOutput:
    """Sending to users, and who hears about a user; :class:`ServerCore` sets the state up."""

    config: ServerConfig
    clock: Callable[[], float]
    state: ChatState
    #: Every relayed line passes here; history and a cluster link subscribe to it.
    bus: RelayBus
    #: The network link when this server is a node of a cluster; None for a server on its own.
    cluster: Any
    _msgid_prefix: str
    _msgid_count: int
    _answer_later: bool
    _batch_count: int

    # -- replies and relays --------------------------------------------------------------------

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
        user.send(fit_message(Message("NOTICE", (user.nick, text), self.config.name)))

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
