"""The chat server's rules: one handler per IRC command, pure over :class:`ChatState`.

No sockets here. Each :class:`User` carries a ``send`` callable (bytes out) and a ``close``
callable; the Twisted adapter in :mod:`twistedchat.server.net` supplies them, tests supply lists.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from twistedchat import __version__
from twistedchat.server.config import ServerConfig
from twistedchat.server.state import (
    AWAYLEN,
    BANLEN,
    CASEMAPPING,
    CHANLIMIT,
    CHANNELLEN,
    FLAG_MODES,
    HIGHEST_PREFIX,
    KEYLEN,
    KICKLEN,
    LIST_MODES,
    MAXLIST,
    MAXTARGETS,
    MODES_PER_COMMAND,
    MULTI_PREFIX,
    NICKLEN,
    PARAM_MODES,
    PREFIX_MODES,
    PREFIX_SYMBOLS,
    REALLEN,
    SET_PARAM_MODES,
    TOPICLEN,
    USER_MODES,
    Channel,
    ChatState,
    User,
    mask_matches,
    normalize_mask,
    valid_channel_name,
    valid_nick,
)
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import chunks, fit_message, fit_utf8
from twistedchat.wire.message import MAX_LINE_BYTES, Message, ascii_int, format_tags

VERSION = f"twistedchat-{__version__}"
#: Longest PART or QUIT reason relayed, in bytes, so the relayed line fits in 512.
REASONLEN = 300
#: Most mode letters one MODE command may carry (as InspIRCd's default); the rest are ignored.
MODE_LETTERS = 20

#: IRCv3 capabilities this server implements, with their CAP LS 302 values.
CAPABILITIES: dict[str, str] = {
    "away-notify": "",
    "echo-message": "",
    "invite-notify": "",
    "message-tags": "",
    "multi-prefix": "",
    "server-time": "",
    "userhost-in-names": "",
}
SERVER_TIME = 1
MESSAGE_TAGS = 2

#: Commands an unregistered connection may send.
PRE_REGISTRATION = frozenset({"CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})

Handler = Callable[[User, Message], None]


def server_time(now: float) -> str:
    """The IRCv3 server-time tag value for a UNIX time."""
    stamp = datetime.fromtimestamp(now, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class Relay:
    """One line to many users, encoded once per tag variant and reused for every recipient."""

    __slots__ = ("body", "client_tags", "now", "msgid", "_encoded")

    def __init__(
        self,
        message: Message,
        now: float,
        client_tags: dict[str, str] | None = None,
        msgid: str | None = None,
    ):
        self.body = fit_message(message)
        self.client_tags = client_tags or {}
        self.now = now
        self.msgid = msgid
        self._encoded: list[bytes | None] = [self.body, None, None, None]

    def for_variant(self, variant: int) -> bytes:
        line = self._encoded[variant]
        if line is None:
            tags: dict[str, str] = {}
            if variant & SERVER_TIME:
                tags["time"] = server_time(self.now)
            if variant & MESSAGE_TAGS:
                if self.msgid is not None:
                    tags["msgid"] = self.msgid
                tags.update(self.client_tags)
            if tags:
                line = format_tags(tags).encode("utf-8") + b" " + self.body
            else:
                line = self.body
            self._encoded[variant] = line
        return line

    def send_to(self, users: Iterable[User], skip: User | None = None) -> None:
        """Queue the line for every user but ``skip``; the hot loop of every broadcast."""
        body = self.body
        for user in users:
            if user is skip:
                continue
            outbox = user.outbox
            if not outbox:
                user.wake(user)
            outbox.append(self.for_variant(user.variant) if user.variant else body)


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
        #: ``msgid`` values: a random prefix for this run, then a counter (unique, compact).
        self._msgid_prefix = secrets.token_urlsafe(6)
        self._msgid_count = 0
        self._handlers: dict[str, Handler] = {
            name[4:].upper(): getattr(self, name) for name in dir(self) if name.startswith("cmd_")
        }

    # -- output helpers ----------------------------------------------------------------------

    def reply(self, user: User, code: str, *params: str) -> None:
        """Send a numeric (or other server message) addressed to ``user``.

        Parameters before the last may echo what the client sent; one that cannot stand in the
        middle of a line (empty, with a space, or starting with ``:``) is shown as ``*``.
        """
        *middle, last = (user.nick, *params)
        safe = [p if p and " " not in p and p[0] != ":" else "*" for p in middle]
        user.send(fit_message(Message(code, (*safe, last), self.config.name)))

    def notice(self, user: User, text: str) -> None:
        user.send(Message("NOTICE", (user.nick, text), self.config.name).to_bytes())

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
        prefix = source if isinstance(source, str) else source.source
        relay = Relay(Message(command, params, prefix), self.clock(), client_tags, msgid)
        relay.send_to(recipients, skip)

    def next_msgid(self) -> str:
        """A new unique ``msgid`` tag value for one relayed message."""
        self._msgid_count += 1
        return f"{self._msgid_prefix}{self._msgid_count:x}"

    def _no_such_channel(self, user: User, name: str) -> None:
        self.reply(user, N.ERR_NOSUCHCHANNEL, name, "No such channel")

    def visible_channel(self, user: User, name: str) -> Channel | None:
        """The channel, or None after 403 when there is none or it is +s and ``user`` is outside.

        A secret channel does not exist for non-members (as in Solanum and Ergo): no modes, key,
        limit, ban list or topic leak through MODE, TOPIC, KICK, PART or INVITE.
        """
        channel = self.state.find_channel(name)
        if channel is None or ("s" in channel.modes and user not in channel.members):
            self._no_such_channel(user, name)
            return None
        return channel

    def joined_channel(self, user: User, name: str) -> Channel | None:
        """The channel ``user`` is on, or None after 403 (none or hidden) or 442 (not a member)."""
        channel = self.visible_channel(user, name)
        if channel is not None and user not in channel.members:
            self._not_on_channel(user, channel)
            return None
        return channel

    def _not_on_channel(self, user: User, channel: Channel) -> None:
        self.reply(user, N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")

    def _not_operator(self, user: User, channel: Channel) -> None:
        self.reply(user, N.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")

    def fail(self, user: User, command: str, code: str, text: str) -> None:
        """An IRCv3 standard reply: ``FAIL <command> <code> :text``."""
        user.send(Message("FAIL", (command, code, text), self.config.name).to_bytes())

    # -- connection life cycle -----------------------------------------------------------------

    def connect(
        self,
        host: str,
        wake: Callable[[User], None],
        close: Callable[[], None],
        link: object = None,
    ) -> User:
        """A new connection: returns its :class:`User` (unregistered).

        ``wake(user)`` is called when the user's outbox gets its first line; ``close()`` when the
        connection should be closed after the outbox is written.
        """
        user = User(host, wake, close, self.clock(), link)
        self.state.add_connection(user)
        return user

    def handle(self, user: User, message: Message) -> None:
        """Run the handler for one message from ``user``."""
        command = message.command
        handler = self._handlers.get(command)
        if handler is None:
            if user.registered:
                self.reply(user, N.ERR_UNKNOWNCOMMAND, command, "Unknown command")
            else:
                self.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        if not user.registered and command not in PRE_REGISTRATION:
            self.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        handler(user, message)

    def quit(self, user: User, reason: str, error: str | None = None) -> None:
        """End a user's session: tell its channels, send ``ERROR``, close the connection."""
        if user not in self.state.connections:
            return
        if user.registered:
            self.relay(self.state.neighbours(user), user, "QUIT", reason)
        self.state.remove(user, self.clock())
        user.send(Message("ERROR", (f"Closing Link: {user.host} ({error or reason})",)).to_bytes())
        user.close()

    def connection_lost(self, user: User, reason: str) -> None:
        """The transport went away without a QUIT."""
        if user not in self.state.connections:
            return
        if user.registered:
            self.relay(self.state.neighbours(user), user, "QUIT", reason)
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

    # -- registration --------------------------------------------------------------------------

    def cmd_cap(self, user: User, msg: Message) -> None:
        if not msg.params:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "CAP", "Not enough parameters")
            return
        sub = msg.params[0].upper()
        if sub == "LS":
            if not user.registered:
                user.cap_negotiating = True
            version = msg.params[1] if len(msg.params) > 1 else ""
            if (ascii_int(version) or 0) >= 302:
                caps = " ".join(k + (f"={v}" if v else "") for k, v in CAPABILITIES.items())
            else:
                caps = " ".join(CAPABILITIES)
            self._cap_reply(user, "LS", caps)
        elif sub == "LIST":
            self._cap_reply(user, "LIST", " ".join(sorted(user.caps)))
        elif sub == "REQ":
            if not user.registered:
                user.cap_negotiating = True
            wanted = msg.params[1].split() if len(msg.params) > 1 else []
            enable = {c for c in wanted if not c.startswith("-")}
            disable = {c[1:] for c in wanted if c.startswith("-")}
            if not wanted or not (enable | disable) <= CAPABILITIES.keys():
                self._cap_reply(user, "NAK", " ".join(wanted))
                return
            user.caps = frozenset((user.caps | enable) - disable)
            user.variant = (SERVER_TIME if "server-time" in user.caps else 0) | (
                MESSAGE_TAGS if "message-tags" in user.caps else 0
            )
            self._cap_reply(user, "ACK", " ".join(wanted))
        elif sub == "END":
            if not user.registered:
                user.cap_negotiating = False
                self._try_register(user)
        else:
            self.reply(user, N.ERR_INVALIDCAPCMD, msg.params[0], "Invalid CAP command")

    def _cap_reply(self, user: User, sub: str, text: str) -> None:
        user.send(Message("CAP", (user.nick, sub, text), self.config.name).to_bytes())

    def cmd_pass(self, user: User, msg: Message) -> None:
        if user.registered:
            self.reply(user, N.ERR_ALREADYREGISTERED, "You may not reregister")
        elif not msg.params:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "PASS", "Not enough parameters")
        else:
            user.password = msg.params[0]

    def cmd_nick(self, user: User, msg: Message) -> None:
        if not msg.params or not msg.params[0]:
            self.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        nick = msg.params[0]
        if not valid_nick(nick):
            self.reply(user, N.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
            return
        if nick == user.nick:
            return
        if self.state.nick_in_use(nick, by=user):
            self.reply(user, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return
        if not user.registered:
            self.state.set_nick(user, nick)
            self._try_register(user)
            return
        for channel in user.channels.values():
            # A banned member cannot shed the ban by a new nick (ERR_BANONCHAN, as Solanum does).
            if not channel.members[user] and channel.is_banned(user):
                self.reply(user, N.ERR_BANONCHAN, nick, channel.name,
                           "Cannot change nickname while banned on channel")
                return
        old_source = user.source
        self.state.set_nick(user, nick, self.clock())
        self.relay([user, *self.state.neighbours(user)], old_source, "NICK", nick)

    def cmd_user(self, user: User, msg: Message) -> None:
        if user.registered:
            self.reply(user, N.ERR_ALREADYREGISTERED, "You may not reregister")
            return
        if len(msg.params) < 4 or not msg.params[0] or not msg.params[3]:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
            return
        username = "".join(
            ch for ch in msg.params[0] if ch.isascii() and (ch.isalnum() or ch in "-_.")
        )[:10]
        user.username = "~" + (username or "user")
        user.realname = fit_utf8(msg.params[3], REALLEN)
        self._try_register(user)

    def _try_register(self, user: User) -> None:
        if user.registered or user.cap_negotiating or not user.username or not user.folded:
            return
        config = self.config
        if config.password is not None and user.password != config.password:
            self.reply(user, N.ERR_PASSWDMISMATCH, "Password incorrect")
            self.quit(user, "Bad password")
            return
        if self.state.nick_in_use(user.nick, by=user):
            # Taken while this connection was registering: it must pick another one.
            nick = user.nick
            user.nick, user.folded = "*", ""
            self.reply(user, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return
        self.state.mark_registered(user)
        user.last_seen = user.last_message = self.clock()
        self.max_seen_users = max(self.max_seen_users, self.state.registered_count)
        self.reply(user, N.RPL_WELCOME, f"Welcome to the {config.network} Network, {user.source}")
        self.reply(
            user, N.RPL_YOURHOST, f"Your host is {config.name}, running version {VERSION}"
        )
        created = datetime.fromtimestamp(self.created, tz=timezone.utc)
        self.reply(user, N.RPL_CREATED, f"This server was created {created:%Y-%m-%d %H:%M:%S} UTC")
        self.reply(
            user,
            N.RPL_MYINFO,
            config.name,
            VERSION,
            USER_MODES,
            LIST_MODES + PARAM_MODES + SET_PARAM_MODES + FLAG_MODES + PREFIX_MODES,
            LIST_MODES + PARAM_MODES + SET_PARAM_MODES + PREFIX_MODES,
        )
        self._send_isupport(user)
        self._send_lusers(user)
        self._send_motd(user)

    def isupport_tokens(self) -> list[str]:
        """The ISUPPORT (005) tokens: each one true of what this server does."""
        prefix_modes = "".join(PREFIX_MODES)
        prefix_symbols = "".join(PREFIX_SYMBOLS[m] for m in PREFIX_MODES)
        return [
            f"AWAYLEN={AWAYLEN}",
            f"CASEMAPPING={CASEMAPPING}",
            f"CHANLIMIT=#:{CHANLIMIT}",
            f"CHANMODES={LIST_MODES},{PARAM_MODES},{SET_PARAM_MODES},{FLAG_MODES}",
            f"CHANNELLEN={CHANNELLEN}",
            "CHANTYPES=#",
            f"KICKLEN={KICKLEN}",
            f"MAXLIST={LIST_MODES}:{MAXLIST}",
            f"MAXTARGETS={MAXTARGETS}",
            f"MODES={MODES_PER_COMMAND}",
            f"NETWORK={self.config.network}",
            f"NICKLEN={NICKLEN}",
            f"PREFIX=({prefix_modes}){prefix_symbols}",
            f"TARGMAX=PRIVMSG:{MAXTARGETS},NOTICE:{MAXTARGETS},JOIN:,PART:,KICK:1,WHOIS:1",
            f"TOPICLEN={TOPICLEN}",
            "UTF8ONLY",
        ]

    def _send_isupport(self, user: User) -> None:
        tokens = self.isupport_tokens()
        for start in range(0, len(tokens), 12):
            self.reply(user, N.RPL_ISUPPORT, *tokens[start : start + 12], "are supported by this server")

    def _send_lusers(self, user: User) -> None:
        state = self.state
        registered = state.registered_count
        invisible = state.invisible_count
        opers = state.oper_count
        unknown = len(state.connections) - registered
        self.reply(
            user,
            N.RPL_LUSERCLIENT,
            f"There are {registered - invisible} users and {invisible} invisible on 1 servers",
        )
        if opers:
            self.reply(user, N.RPL_LUSEROP, str(opers), "operator(s) online")
        if unknown:
            self.reply(user, N.RPL_LUSERUNKNOWN, str(unknown), "unknown connection(s)")
        if state.channels:
            self.reply(user, N.RPL_LUSERCHANNELS, str(len(state.channels)), "channels formed")
        self.reply(user, N.RPL_LUSERME, f"I have {registered} clients and 0 servers")
        peak = str(self.max_seen_users)
        self.reply(user, N.RPL_LOCALUSERS, str(registered), peak,
                   f"Current local users {registered}, max {peak}")
        self.reply(user, N.RPL_GLOBALUSERS, str(registered), peak,
                   f"Current global users {registered}, max {peak}")

    def _send_motd(self, user: User) -> None:
        motd = self.config.motd
        if not motd:
            self.reply(user, N.ERR_NOMOTD, "MOTD File is missing")
            return
        self.reply(user, N.RPL_MOTDSTART, f"- {self.config.name} Message of the day - ")
        for line in motd:
            self.reply(user, N.RPL_MOTD, f"- {line}")
        self.reply(user, N.RPL_ENDOFMOTD, "End of /MOTD command.")

    # -- simple queries ------------------------------------------------------------------------

    def cmd_ping(self, user: User, msg: Message) -> None:
        if not msg.params:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "PING", "Not enough parameters")
            return
        user.send(Message("PONG", (self.config.name, msg.params[0]), self.config.name).to_bytes())

    def cmd_pong(self, user: User, msg: Message) -> None:
        user.ping_pending = False

    def cmd_quit(self, user: User, msg: Message) -> None:
        reason = fit_utf8(msg.params[0], REASONLEN) if msg.params else ""
        self.quit(user, f"Quit: {reason}" if reason else "Client Quit")

    def cmd_motd(self, user: User, msg: Message) -> None:
        self._send_motd(user)

    def cmd_lusers(self, user: User, msg: Message) -> None:
        self._send_lusers(user)

    def cmd_version(self, user: User, msg: Message) -> None:
        self.reply(user, N.RPL_VERSION, VERSION, self.config.name, "twistedchat IRC daemon")
        self._send_isupport(user)

    def cmd_time(self, user: User, msg: Message) -> None:
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        self.reply(user, N.RPL_TIME, self.config.name, now.strftime("%A %B %d %Y -- %H:%M:%S UTC"))

    def cmd_ison(self, user: User, msg: Message) -> None:
        nicks = [n for p in msg.params for n in p.split()]
        if not nicks:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "ISON", "Not enough parameters")
            return
        online = [found.nick for n in nicks if (found := self.state.find_user(n)) and found.registered]
        self.reply(user, N.RPL_ISON, " ".join(online))

    def cmd_userhost(self, user: User, msg: Message) -> None:
        if not msg.params:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "USERHOST", "Not enough parameters")
            return
        replies = []
        for nick in msg.params[:5]:
            found = self.state.find_user(nick)
            if found and found.registered:
                oper = "*" if found.is_oper else ""
                away = "-" if found.away else "+"
                replies.append(f"{found.nick}{oper}={away}{found.username}@{found.host}")
        self.reply(user, N.RPL_USERHOST, " ".join(replies))

    def cmd_info(self, user: User, msg: Message) -> None:
        for line in (
            f"{VERSION}: an IRC server on Twisted",
            f"Running on {self.config.name}, network {self.config.network}",
        ):
            self.reply(user, N.RPL_INFO, line)
        self.reply(user, N.RPL_ENDOFINFO, "End of INFO list")

    def cmd_away(self, user: User, msg: Message) -> None:
        text = fit_utf8(msg.params[0], AWAYLEN) if msg.params and msg.params[0] else None
        user.away = text
        if text is None:
            self.reply(user, N.RPL_UNAWAY, "You are no longer marked as being away")
        else:
            self.reply(user, N.RPL_NOWAWAY, "You have been marked as being away")
        notify = [u for u in self.state.neighbours(user) if "away-notify" in u.caps]
        if notify:
            self.relay(notify, user, "AWAY", *((text,) if text is not None else ()))

    # -- channels ------------------------------------------------------------------------------

    def cmd_join(self, user: User, msg: Message) -> None:
        if not msg.params or not msg.params[0]:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "JOIN", "Not enough parameters")
            return
        if msg.params[0] == "0":
            for channel in list(user.channels.values()):
                self.relay(channel.members, user, "PART", channel.name, "Left all channels")
                self.state.part(user, channel)
            return
        names = msg.params[0].split(",")
        keys = msg.params[1].split(",") if len(msg.params) > 1 else []
        for index, name in enumerate(names):
            key = keys[index] if index < len(keys) else None
            self._join_one(user, name, key)

    def _join_one(self, user: User, name: str, key: str | None) -> None:
        if not valid_channel_name(name):
            self.reply(user, N.ERR_BADCHANNAME, name or "*", "Illegal channel name")
            return
        channel = self.state.find_channel(name)
        if channel is not None:
            if user in channel.members:
                return
            # An invitation opens +i only; key, limit and bans hold for everyone (see cmd_invite).
            if channel.key is not None and key != channel.key:
                self.reply(user, N.ERR_BADCHANNELKEY, channel.name, "Cannot join channel (+k)")
                return
            if channel.limit is not None and len(channel.members) >= channel.limit:
                self.reply(user, N.ERR_CHANNELISFULL, channel.name, "Cannot join channel (+l)")
                return
            if "i" in channel.modes and not self.state.is_invited(user, channel):
                self.reply(user, N.ERR_INVITEONLYCHAN, channel.name, "Cannot join channel (+i)")
                return
            if channel.is_banned(user):
                self.reply(user, N.ERR_BANNEDFROMCHAN, channel.name, "Cannot join channel (+b)")
                return
        if len(user.channels) >= CHANLIMIT:
            self.reply(user, N.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
            return
        channel = self.state.join(user, name, self.clock())
        self.relay(channel.members, user, "JOIN", channel.name)
        if user.away is not None:
            notify = [m for m in channel.members if m is not user and "away-notify" in m.caps]
            if notify:
                self.relay(notify, user, "AWAY", user.away)
        if channel.topic:
            self._send_topic(user, channel)
        self._send_names(user, channel)

    def cmd_part(self, user: User, msg: Message) -> None:
        if not msg.params or not msg.params[0]:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "PART", "Not enough parameters")
            return
        reason = fit_utf8(msg.params[1], REASONLEN) if len(msg.params) > 1 else None
        for name in msg.params[0].split(","):
            channel = self.joined_channel(user, name)
            if channel is not None:
                params = (channel.name, reason) if reason else (channel.name,)
                self.relay(channel.members, user, "PART", *params)
                self.state.part(user, channel)

    def _send_topic(self, user: User, channel: Channel) -> None:
        self.reply(user, N.RPL_TOPIC, channel.name, channel.topic)
        self.reply(
            user, N.RPL_TOPICWHOTIME, channel.name, channel.topic_setter, str(int(channel.topic_time))
        )

    def cmd_topic(self, user: User, msg: Message) -> None:
        if not msg.params:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "TOPIC", "Not enough parameters")
            return
        channel = self.visible_channel(user, msg.params[0])
        if channel is None:
            return
        member = user in channel.members
        if len(msg.params) == 1:
            if channel.topic:
                self._send_topic(user, channel)
            else:
                self.reply(user, N.RPL_NOTOPIC, channel.name, "No topic is set")
            return
        if not member:
            self._not_on_channel(user, channel)
            return
        if "t" in channel.modes and not channel.is_op(user):
            self._not_operator(user, channel)
            return
        channel.topic = fit_utf8(msg.params[1], TOPICLEN)
        channel.topic_setter = user.source
        channel.topic_time = self.clock()
        self.relay(channel.members, user, "TOPIC", channel.name, channel.topic)

    def _send_names(self, user: User, channel: Channel) -> None:
        is_member = user in channel.members
        if is_member or "s" not in channel.modes:
            multi = "multi-prefix" in user.caps
            full = "userhost-in-names" in user.caps
            if is_member and not multi and not full:
                names = channel.names_text()
            else:
                prefixes = MULTI_PREFIX if multi else HIGHEST_PREFIX
                names = " ".join(
                    prefixes[modes] + (member.source if full else member.nick)
                    for member, modes in channel.members.items()
                    if is_member or "i" not in member.modes
                )
            symbol = "@" if "s" in channel.modes else "="
            head = f":{self.config.name} {N.RPL_NAMREPLY} {user.nick} {symbol} {channel.name} :"
            room = 510 - len(head.encode("utf-8"))
            lines = [f"{head}{chunk}\r\n" for chunk in chunks(names, room)]
            if lines:
                user.send("".join(lines).encode("utf-8"))
        self.reply(user, N.RPL_ENDOFNAMES, channel.name, "End of /NAMES list")

    def cmd_names(self, user: User, msg: Message) -> None:
        if not msg.params or not msg.params[0]:
            self.reply(user, N.RPL_ENDOFNAMES, "*", "End of /NAMES list")
            return
        for name in msg.params[0].split(","):
            channel = self.state.find_channel(name)
            if channel is None:
                self.reply(user, N.RPL_ENDOFNAMES, name, "End of /NAMES list")
            else:
                self._send_names(user, channel)

    def cmd_list(self, user: User, msg: Message) -> None:
        if msg.params and msg.params[0]:
            found = (self.state.find_channel(n) for n in msg.params[0].split(","))
            channels = [c for c in found if c is not None]
        else:
            channels = list(self.state.channels.values())
        self.reply(user, N.RPL_LISTSTART, "Channel", "Users  Name")
        for channel in channels:
            if "s" in channel.modes and user not in channel.members:
                continue
            self.reply(user, N.RPL_LIST, channel.name, str(len(channel.members)), channel.topic)
        self.reply(user, N.RPL_LISTEND, "End of /LIST")

    def cmd_invite(self, user: User, msg: Message) -> None:
        """INVITE <nick> <channel>

        The rule (modern IRC client protocol, Ergo, Solanum, InspIRCd): only a member may invite
        (else 442), and on a +i channel only a channel operator (else 482). An invitation is kept
        only when the channel is +i, and it opens +i alone: key, limit and bans still apply (the
        part Solanum and Ergo agree on; an operator who wants more can lift them). It belongs to
        the invited user, not the nick: gone on quit, on a nick change, once used, or when the
        channel is re-created; at most ``CHANLIMIT`` per user, the oldest dropped first.
        """
        if len(msg.params) < 2:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
            return
        nick, name = msg.params[0], msg.params[1]
        target = self.state.find_user(nick)
        if target is None or not target.registered:
            self.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
            return
        channel = self.joined_channel(user, name)
        if channel is None:
            return
        if "i" in channel.modes and not channel.is_op(user):
            self._not_operator(user, channel)
            return
        if target in channel.members:
            self.reply(user, N.ERR_USERONCHANNEL, target.nick, channel.name, "is already on channel")
            return
        if "i" in channel.modes:
            self.state.invite(target, channel)
        self.reply(user, N.RPL_INVITING, target.nick, channel.name)
        self.relay([target], user, "INVITE", target.nick, channel.name)
        if target.away:
            self.reply(user, N.RPL_AWAY, target.nick, target.away)
        notify = [
            m for m in channel.members
            if m is not user and "invite-notify" in m.caps and channel.is_op(m)
        ]
        if notify:
            self.relay(notify, user, "INVITE", target.nick, channel.name)

    def cmd_kick(self, user: User, msg: Message) -> None:
        if len(msg.params) < 2:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
            return
        channel = self.joined_channel(user, msg.params[0])
        if channel is None:
            return
        if not channel.is_op(user):
            self._not_operator(user, channel)
            return
        reason = fit_utf8(msg.params[2] if len(msg.params) > 2 and msg.params[2] else user.nick,
                          KICKLEN)
        for nick in msg.params[1].split(","):
            target = self.state.find_user(nick)
            if target is None or target not in channel.members:
                self.reply(
                    user, N.ERR_USERNOTINCHANNEL, nick, channel.name, "They aren't on that channel"
                )
                continue
            self.relay(channel.members, user, "KICK", channel.name, target.nick, reason)
            self.state.part(target, channel)
            if channel.folded not in self.state.channels:
                break

    # -- messages ------------------------------------------------------------------------------

    def cmd_privmsg(self, user: User, msg: Message) -> None:
        self._message(user, msg, notice=False)

    def cmd_notice(self, user: User, msg: Message) -> None:
        self._message(user, msg, notice=True)

    def cmd_tagmsg(self, user: User, msg: Message) -> None:
        if "message-tags" not in user.caps:
            self.reply(user, N.ERR_UNKNOWNCOMMAND, "TAGMSG", "Unknown command")
            return
        self._message(user, msg, notice=True, tag_only=True)

    def _message(self, user: User, msg: Message, notice: bool, tag_only: bool = False) -> None:
        command = msg.command
        if not msg.params or not msg.params[0]:
            if not notice:
                self.reply(user, N.ERR_NORECIPIENT, f"No recipient given ({command})")
            return
        if not tag_only and (len(msg.params) < 2 or not msg.params[1]):
            if not notice:
                self.reply(user, N.ERR_NOTEXTTOSEND, "No text to send")
            return
        text = msg.params[1] if not tag_only else None
        # Relayed as ":nick!user@host PRIVMSG target :text" each line must fit in 512 bytes: the
        # text is cut for each target on its own, so a long bogus target costs the others nothing.
        overhead = len(f":{user.source} {command}  :\r\n".encode())
        text_bytes = len(text.encode()) if text is not None else 0
        client_tags = {k: v for k, v in msg.tags.items() if k.startswith("+")} or None
        user.last_message = self.clock()
        targets = msg.params[0].split(",")
        if len(targets) > MAXTARGETS:
            if not notice:
                self.reply(user, N.ERR_TOOMANYTARGETS, targets[MAXTARGETS], "Too many targets")
            targets = targets[:MAXTARGETS]
        echo = "echo-message" in user.caps
        for name in targets:
            recipients: Iterable[User]
            skip = None
            channel = self.state.find_channel(name) if name.startswith("#") else None
            if channel is not None:
                if not channel.can_speak(user):
                    if not notice:
                        self.reply(
                            user, N.ERR_CANNOTSENDTOCHAN, channel.name, "Cannot send to channel"
                        )
                    continue
                name = channel.name
                if tag_only:
                    recipients = [m for m in channel.members if "message-tags" in m.caps]
                else:
                    recipients = channel.members
                skip = None if echo else user
                target = None
            else:
                target = None if name.startswith("#") else self.state.find_user(name)
                if target is None or not target.registered:
                    if not notice:
                        self.reply(user, N.ERR_NOSUCHNICK, name, "No such nick/channel")
                    continue
                name = target.nick
                recipients = [target] if not tag_only or "message-tags" in target.caps else []
                if echo and target is not user:
                    recipients.append(user)
            if text is None:
                params: tuple[str, ...] = (name,)
            else:
                room = MAX_LINE_BYTES - overhead - len(name.encode())
                params = (name, text if text_bytes <= room else fit_utf8(text, room))
            self.relay(recipients, user, command, *params, client_tags=client_tags, skip=skip,
                       msgid=self.next_msgid())
            if target is not None and target.away and not notice:
                self.reply(user, N.RPL_AWAY, target.nick, target.away)

    # -- users ---------------------------------------------------------------------------------

    def cmd_who(self, user: User, msg: Message) -> None:
        mask = msg.params[0] if msg.params and msg.params[0] else "*"
        channel = self.state.find_channel(mask) if mask.startswith("#") else None
        multi = "multi-prefix" in user.caps
        if channel is not None:
            if user in channel.members or "s" not in channel.modes:
                member_of = user in channel.members
                for member in channel.members:
                    if "i" in member.modes and not member_of and not self.state.shares_channel(
                        user, member
                    ):
                        continue
                    self._who_reply(user, member, channel.name, channel.prefix_of(member, multi))
        elif not mask.startswith("#"):
            for other in list(self.state.registered_users()):
                visible = other is user or "i" not in other.modes or self.state.shares_channel(
                    user, other
                )
                if visible and (
                    mask in ("*", "0")
                    or mask_matches(mask, other.nick)
                    or mask_matches(mask, other.host)
                ):
                    self._who_reply(user, other, "*", "")
        self.reply(user, N.RPL_ENDOFWHO, mask, "End of WHO list")

    def _who_reply(self, user: User, other: User, channel: str, prefix: str) -> None:
        flags = ("G" if other.away else "H") + ("*" if other.is_oper else "") + prefix
        self.reply(
            user, N.RPL_WHOREPLY, channel, other.username, other.host, self.config.name,
            other.nick, flags, f"0 {other.realname}",
        )

    def cmd_whois(self, user: User, msg: Message) -> None:
        if not msg.params or not msg.params[-1]:
            self.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        nick = msg.params[-1].split(",")[0]
        target = self.state.find_user(nick)
        if target is None or not target.registered:
            self.reply(user, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
            self.reply(user, N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
            return
        self.reply(user, N.RPL_WHOISUSER, target.nick, target.username, target.host, "*",
                   target.realname)
        multi = "multi-prefix" in user.caps
        channels = [
            channel.prefix_of(target, multi) + channel.name
            for channel in target.channels.values()
            if "s" not in channel.modes or user in channel.members
        ]
        if channels:
            head = f":{self.config.name} {N.RPL_WHOISCHANNELS} {user.nick} {target.nick} :"
            for chunk in chunks(" ".join(channels), MAX_LINE_BYTES - 2 - len(head.encode())):
                self.reply(user, N.RPL_WHOISCHANNELS, target.nick, chunk)
        self.reply(user, N.RPL_WHOISSERVER, target.nick, self.config.name, self.config.network)
        if target.is_oper:
            self.reply(user, N.RPL_WHOISOPERATOR, target.nick, "is an IRC operator")
        if target.away:
            self.reply(user, N.RPL_AWAY, target.nick, target.away)
        idle = int(self.clock() - target.last_message)
        self.reply(user, N.RPL_WHOISIDLE, target.nick, str(idle), str(int(target.signon)),
                   "seconds idle, signon time")
        self.reply(user, N.RPL_ENDOFWHOIS, target.nick, "End of /WHOIS list")

    def cmd_whowas(self, user: User, msg: Message) -> None:
        if not msg.params or not msg.params[0]:
            self.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        nick = msg.params[0].split(",")[0]
        count = msg.params[1] if len(msg.params) > 1 else ""
        entries = self.state.whowas_of(nick)
        limit = ascii_int(count)
        if limit:
            entries = entries[:limit]
        if not entries:
            self.reply(user, N.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
        for entry in entries:
            self.reply(user, N.RPL_WHOWASUSER, entry.nick, entry.username, entry.host, "*",
                       entry.realname)
            until = datetime.fromtimestamp(entry.until, tz=timezone.utc)
            self.reply(user, N.RPL_WHOISSERVER, entry.nick, self.config.name,
                       f"{until:%Y-%m-%d %H:%M:%S} UTC")
        self.reply(user, N.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")

    def cmd_oper(self, user: User, msg: Message) -> None:
        if len(msg.params) < 2:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "OPER", "Not enough parameters")
            return
        name, password = msg.params[0], msg.params[1]
        if not self.config.opers:
            self.reply(user, N.ERR_NOOPERHOST, "No O-lines for your host")
            return
        if self.config.opers.get(name) != password:
            self.reply(user, N.ERR_PASSWDMISMATCH, "Password incorrect")
            return
        if self.state.set_user_mode(user, "o", True):
            user.send(Message("MODE", (user.nick, "+o"), user.source).to_bytes())
        self.reply(user, N.RPL_YOUREOPER, "You are now an IRC operator")

    def cmd_kill(self, user: User, msg: Message) -> None:
        if len(msg.params) < 1:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "KILL", "Not enough parameters")
            return
        if not user.is_oper:
            self.reply(user, N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
            return
        target = self.state.find_user(msg.params[0])
        if target is None:
            self.reply(user, N.ERR_NOSUCHNICK, msg.params[0], "No such nick/channel")
            return
        reason = msg.params[1] if len(msg.params) > 1 and msg.params[1] else "No reason"
        target.send(Message("KILL", (target.nick, reason), user.source).to_bytes())
        self.quit(target, f"Killed ({user.nick} ({reason}))")

    # -- modes ---------------------------------------------------------------------------------

    def cmd_mode(self, user: User, msg: Message) -> None:
        if not msg.params or not msg.params[0]:
            self.reply(user, N.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
            return
        target = msg.params[0]
        if target.startswith("#"):
            channel = self.visible_channel(user, target)
            if channel is not None:
                self._channel_mode(user, channel, msg.params[1:])
            return
        other = self.state.find_user(target)
        if other is None:
            self.reply(user, N.ERR_NOSUCHNICK, target, "No such nick/channel")
        elif other is not user:
            self.reply(user, N.ERR_USERSDONTMATCH, "Cannot change mode for other users")
        elif len(msg.params) == 1:
            self.reply(user, N.RPL_UMODEIS, "+" + "".join(sorted(user.modes)))
        else:
            self._user_mode(user, msg.params[1])

    def _user_mode(self, user: User, modestring: str) -> None:
        adding = True
        applied: list[str] = []
        unknown = False
        for ch in modestring:
            if ch in "+-":
                adding = ch == "+"
            elif ch == "i":
                if self.state.set_user_mode(user, "i", adding):
                    applied.append(("+" if adding else "-") + "i")
            elif ch == "o":
                if not adding and self.state.set_user_mode(user, "o", False):  # +o: OPER only
                    applied.append("-o")
            else:
                unknown = True
        if unknown:
            self.reply(user, N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
        if applied:
            user.send(Message("MODE", (user.nick, _compact_modes(applied)), user.source).to_bytes())

    def _channel_mode(self, user: User, channel: Channel, args: tuple[str, ...]) -> None:
        if not args:
            self.reply(user, N.RPL_CHANNELMODEIS, channel.name,
                       *channel.mode_string(user in channel.members))
            self.reply(user, N.RPL_CREATIONTIME, channel.name, str(int(channel.created)))
            return
        modestring, params = args[0], list(args[1:])
        if modestring in ("b", "+b") and not params:
            for mask, (setter, when) in channel.bans.items():
                self.reply(user, N.RPL_BANLIST, channel.name, mask, setter, str(int(when)))
            self.reply(user, N.RPL_ENDOFBANLIST, channel.name, "End of channel ban list")
            return
        if not channel.is_op(user):
            self._not_operator(user, channel)
            return
        adding = True
        applied: list[str] = []
        applied_params: list[str] = []
        # One MODE costs a bounded reply: at most MODE_LETTERS letters are read, at most
        # MODES_PER_COMMAND of them take a parameter (ISUPPORT MODES), each flag counts once, each
        # error is answered once, and the relayed MODE line keeps within 512 bytes.
        room = MAX_LINE_BYTES - len(
            f":{user.source} MODE {channel.name} {'+x' * MODE_LETTERS} \r\n".encode()
        )
        letters = with_param = 0
        answered: set[str] = set()
        for ch in modestring:
            if ch in "+-":
                adding = ch == "+"
                continue
            letters += 1
            if letters > MODE_LETTERS:
                break
            if ch in answered:
                continue
            sign = "+" if adding else "-"
            if ch in FLAG_MODES:
                answered.add(ch)
                if adding != (ch in channel.modes):
                    (channel.modes.add if adding else channel.modes.discard)(ch)
                    applied.append(sign + ch)
                continue
            if ch not in LIST_MODES + PARAM_MODES + SET_PARAM_MODES + PREFIX_MODES:
                answered.add(ch)
                self.reply(user, N.ERR_UNKNOWNMODE, ch, "is unknown mode char to me")
                continue
            needs_param = ch != "l" or adding
            if needs_param:
                if not params:
                    if ch != "b" and "461" not in answered:
                        answered.add("461")
                        self.reply(user, N.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
                    continue
                if with_param >= MODES_PER_COMMAND:
                    break
                with_param += 1
                param = params.pop(0)
                if len(param.encode()) + 1 > room:
                    continue
            else:
                param = ""
            if ch in PREFIX_MODES:
                target = self.state.find_user(param)
                if target is None:
                    self.reply(user, N.ERR_NOSUCHNICK, param, "No such nick/channel")
                    continue
                if target not in channel.members:
                    self.reply(user, N.ERR_USERNOTINCHANNEL, target.nick, channel.name,
                               "They aren't on that channel")
                    continue
                current = channel.members[target]
                if adding and ch not in current:
                    channel.set_prefixes(
                        target, "".join(m for m in PREFIX_MODES if m in current + ch)
                    )
                elif not adding and ch in current:
                    channel.set_prefixes(target, current.replace(ch, ""))
                else:
                    continue
                applied.append(sign + ch)
                applied_params.append(target.nick)
                room -= len(target.nick) + 1
            elif ch == "b":
                mask = normalize_mask(param)
                if (param.startswith(":") or " " in param or "," in param
                        or len(mask.encode()) > BANLEN):
                    self.reply(user, N.ERR_INVALIDMODEPARAM, channel.name, "b", param,
                               "Invalid ban mask")
                    continue
                if adding and mask not in channel.bans and len(channel.bans) < MAXLIST:
                    channel.bans[mask] = (user.source, self.clock())
                elif not adding and mask in channel.bans:
                    del channel.bans[mask]
                else:
                    continue
                applied.append(sign + ch)
                applied_params.append(mask)
                room -= len(mask.encode()) + 1
            elif ch == "k":
                if adding:
                    if (not param or " " in param or "," in param or param.startswith(":")
                            or len(param.encode()) > KEYLEN):
                        self.reply(user, N.ERR_INVALIDMODEPARAM, channel.name, "k", param or "*",
                                   "Invalid key")
                        continue
                    channel.key = param
                elif channel.key is None:
                    continue
                else:
                    channel.key = None
                    param = "*"
                applied.append(sign + ch)
                applied_params.append(param)
                room -= len(param.encode()) + 1
            elif ch == "l":
                if adding:
                    if not ascii_int(param) or len(param) > 9:
                        self.reply(user, N.ERR_INVALIDMODEPARAM, channel.name, "l", param or "*",
                                   "Invalid limit")
                        continue
                    channel.limit = int(param)
                    applied_params.append(str(channel.limit))
                    room -= len(applied_params[-1]) + 1
                elif channel.limit is None:
                    continue
                else:
                    channel.limit = None
                applied.append(sign + ch)
        if applied:
            self.relay(channel.members, user, "MODE", channel.name,
                       _compact_modes(applied), *applied_params)


def _compact_modes(changes: list[str]) -> str:
    """``["+i", "+n", "-k"]`` -> ``"+in-k"``."""
    out: list[str] = []
    sign = ""
    for change in changes:
        if change[0] != sign:
            sign = change[0]
            out.append(sign)
        out.append(change[1])
    return "".join(out)

