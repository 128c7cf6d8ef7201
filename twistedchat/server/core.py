"""The chat server's rules around its command table: dispatch, labels, connection life, bans.

No sockets here. Each :class:`User` carries a ``wake`` callable (its outbox got a first line) and
a ``close`` callable; the Twisted adapter in :mod:`twistedchat.server.net` supplies them, tests
supply lists. The handlers live in :mod:`twistedchat.server.commands`, one module per family;
what they send goes through :class:`~twistedchat.server.output.CoreOutput`, the core's base.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twistedchat.server.audit import audit
from twistedchat.server.bans import KLINE, FileBanStore, ServerBan, ServerBans
from twistedchat.server.classes import limits_for
from twistedchat.server.cloak import cloak_host, new_secret
from twistedchat.server.commands import COMMANDS, Command
from twistedchat.server.commands.messages import STATUSMSG
from twistedchat.server.commands.registration import CAPABILITIES, VERSION
from twistedchat.server.config import ServerConfig
from twistedchat.server.opers import check_oper
from twistedchat.server.output import CoreOutput
from twistedchat.server.relay import RelayBus
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
    ChatState,
    Link,
    User,
)
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import fit_message
from twistedchat.wire.message import Message, escape_tag_value
from twistedchat.wire.names import CASEMAPPING, CHANNELLEN, CHANTYPES, NICKLEN

if TYPE_CHECKING:
    from twistedchat.server.accounts import Accounts

__all__ = ["CAPABILITIES", "VERSION", "ServerCore", "add_tag"]

#: Longest ``label`` tag honoured (labeled-response); a longer one is answered without it.
MAX_LABEL = 64


def add_tag(line: bytes, tag: bytes) -> bytes:
    """An encoded line with one more tag (``key=escaped-value``) in front of its others."""
    if line.startswith(b"@"):
        return b"@" + tag + b";" + line[1:]
    return b"@" + tag + b" " + line

log = Logger()


class AdminHooks(Protocol):
    """What the operator commands REHASH, DIE and RESTART ask of the running service."""

    def reload(self) -> tuple[list[str], list[str]]: ...

    def stop_server(self, reason: str, restart: bool) -> None: ...


class ServerCore(CoreOutput):
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
        #: The network link when this server is a node of a cluster (twistedchat.cluster.node);
        #: None for a server on its own, so the hooks below cost one attribute test.
        self.cluster: Any = None
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
        #: Server bans (K-lines, D-lines), kept in ``bans-file`` when it is set.
        self.bans = ServerBans(FileBanStore(config.bans_file) if config.bans_file else None)
        #: The cloak key when the config has none: random, so cloaks change at each start.
        self._spare_cloak_secret: str | None = None
        #: Counters for the metrics: flood and sendq drops, connections refused by a ban.
        self.counters: dict[str, int] = {"flood_drops": 0, "sendq_drops": 0, "bans_hit": 0,
                                         "oper_failures": 0, "throttled": 0}
        #: The running service (REHASH, DIE, RESTART); None when the core runs alone (tests).
        self.admin: AdminHooks | None = None
        #: Timers for delayed answers (a failed OPER); the factory gives its reactor.
        self.timer: IReactorTime | None = None
        #: Checks an ``[[oper]]`` password, firing True or False (a thread; tests replace it).
        self.verify_oper: Callable[..., Deferred[bool]] = check_oper
        #: Failed OPERs per connection still open.
        self.oper_failures: dict[User, int] = {}

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
        self.set_real_host(user, host)
        self.state.add_connection(user)
        audit("connect", address=host, host=user.host)
        return user

    # -- addresses, cloaks and bans ------------------------------------------------------------

    def cloak_secret(self) -> str:
        """The key of host cloaks: the config's, else one made (and warned about) once a run."""
        if self.config.cloak_secret:
            return self.config.cloak_secret
        if self._spare_cloak_secret is None:
            self._spare_cloak_secret = new_secret()
            log.warn("no cloak-secret in the configuration: host cloaks use a random key and "
                     "change at each restart (set cloak-secret to keep them)")
        return self._spare_cloak_secret

    def set_real_host(self, user: User, host: str) -> None:
        """Record where ``user`` really connects from, and the host others see (its cloak).

        Called once per connection (and again by WEBIRC before registration): the cloak is
        computed here, never per message.
        """
        user.real_host = host
        user.host = cloak_host(self.cloak_secret(), host) if self.config.cloak_hosts else host

    def client_fingerprint(self, user: User) -> str | None:
        """The SHA-256 fingerprint of ``user``'s TLS client certificate, if it sent one."""
        fingerprint = getattr(user.link, "client_fingerprint", None)
        return fingerprint() if fingerprint is not None else None

    def permitted(self, user: User, permission: str) -> bool:
        """Whether the operator ``user`` has ``permission``; if not, it is told (481)."""
        if user.is_oper and permission in user.privileges:
            return True
        self.reply(user, N.ERR_NOPRIVILEGES,
                   f"Permission Denied - You need the {permission} operator permission")
        return False

    def sees_real_host(self, viewer: User, user: User) -> bool:
        """Whether ``viewer`` may see ``user``'s real address (itself, or an operator)."""
        return viewer is user or viewer.is_oper

    def ban_masks(self, user: User) -> tuple[str, ...]:
        """The ``user@host`` forms a K-line is matched against: the real host and the cloak."""
        return (f"{user.username}@{user.real_host}", f"{user.username}@{user.host}")

    def ban_matching(self, user: User) -> ServerBan | None:
        """The server ban ``user`` falls under, if any (D-line on its address, or K-line)."""
        now = self.clock()
        return (self.bans.dline_for(user.real_host, now)
                or (self.bans.kline_for(self.ban_masks(user), now) if user.username else None))

    def refuse_banned(self, user: User, ban: ServerBan) -> None:
        """465 and ERROR to a banned connection, counted and logged."""
        self.counters["bans_hit"] += 1
        audit("ban-hit", kind=ban.kind, mask=ban.mask, address=user.real_host, nick=user.nick)
        label = "K-lined" if ban.kind == KLINE else "D-lined"
        self.reply(user, N.ERR_YOUREBANNEDCREEP, f"You are banned from this server: {ban.reason}")
        self.quit(user, label, error=f"{label}: {ban.reason}")

    def enforce_ban(self, ban: ServerBan) -> int:
        """Remove the connected users a new ban covers; how many were removed."""
        now = self.clock()
        removed = 0
        for user in list(self.state.connections):
            if ban.kind == KLINE:
                hit = user.username and self.bans.kline_for(self.ban_masks(user), now) is ban
            else:
                hit = self.bans.dline_for(user.real_host, now) is ban
            if hit:
                self.refuse_banned(user, ban)
                removed += 1
        return removed

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
        self.oper_failures.pop(user, None)
        audit("quit", nick=user.nick, address=user.real_host, reason=error or reason)
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
        self.oper_failures.pop(user, None)
        audit("quit", nick=user.nick, address=user.real_host, reason=reason)

    def sweep(self) -> None:
        """Ping idle users, drop silent ones and connections that never registered."""
        now = self.clock()
        config = self.config
        for ban in self.bans.expire(now):
            audit("ban-expired", kind=ban.kind, mask=ban.mask)
        for user in list(self.state.connections):
            idle = now - user.last_seen
            if not user.registered:
                if now - user.signon >= limits_for(config, user.real_host).registration_timeout:
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
