"""Accounts, services and history wired into a running core: SASL, REGISTER, NickServ, ChanServ,
nick ownership, registered channels and CHATHISTORY, all over one open :class:`Store`.

:func:`attach_store` gives a core its store: it adds the account commands to the core's own
command table, offers the capabilities (``sasl``, ``draft/account-registration``,
``draft/chathistory``, ``batch``, ``account-notify``, ``extended-join``), subscribes the
:class:`HistoryRecorder` to the relay bus and keeps metadata and read markers in the store.
Only password checks and history reads wait; the client's later lines wait behind them
(``hold_input``), in order.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from twistedchat.server.commands.table import Command
from twistedchat.server.core import add_tag
from twistedchat.server.history_lines import HistoryEncoder, tag_variant
from twistedchat.server.history_recorder import HistoryRecorder
from twistedchat.server.kept_owners import StoredMetadata, StoredReadMarkers
from twistedchat.server.logins import LoginLimiter
from twistedchat.server.registered import prefixes_for, restore, saved_state
from twistedchat.server.sasl import MECHANISMS, SaslExchange
from twistedchat.server.state import Channel, User
from twistedchat.storage.base import Store
from twistedchat.storage.model import (
    HistoryLine,
    StoreError,
    channel_conversation,
    direct_conversation,
)
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import fit_message
from twistedchat.wire.message import Message
from twistedchat.wire.names import CHANTYPES, casefold, is_channel_name

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

log = Logger()

#: Most lines one CHATHISTORY answer holds (ISUPPORT CHATHISTORY).
CHATHISTORY_LIMIT = 100
#: The service pseudo-users' nicks (casefolded) -> their names: nobody may take these nicks or
#: account names.
SERVICES = {"nickserv": "NickServ", "chanserv": "ChanServ"}
#: Most SASL exchanges half-done at once before abandoned ones (gone connections) are swept.
MAX_EXCHANGES = 1000
#: Password operations (REGISTER, IDENTIFY, DROP, SET PASSWORD) one connection may start per run.
MAX_PASSWORD_TRIES = 20

ACCOUNT_CAPS = {
    "sasl": ",".join(MECHANISMS),
    "draft/account-registration": "before-connect",
    "draft/chathistory": "",
    "account-notify": "",
    "extended-join": "",
    "account-tag": "",
}


class Accounts:
    """A core's accounts and services over one store (``core.accounts``)."""

    def __init__(self, core: ServerCore, store: Store, clock: IReactorTime) -> None:
        self.core = core
        self.store = store
        self.clock = clock
        self.limiter = LoginLimiter()
        #: accounts created per address: 5 at once, then one every 10 minutes
        self.creations = LoginLimiter(address_burst=5, address_interval=600.0)
        self.exchanges: dict[User, SaslExchange] = {}
        self.enforcing: dict[User, IDelayedCall] = {}
        #: password operations started per connection id (REGISTER floods)
        self.password_tries: dict[int, int] = {}
        #: Most lines one CHATHISTORY answer holds (ISUPPORT CHATHISTORY).
        self.history_limit = CHATHISTORY_LIMIT
        #: history lines as clients get them, kept for the next answer holding them
        self.encoder = HistoryEncoder()

    # -- login -----------------------------------------------------------------------------------
    def log_in(self, user: User, account: str) -> None:
        """``user`` proved it owns ``account``: 900, the account hooks, metadata loaded."""
        found = self.store.account(account)
        name = found.name if found is not None else account
        self.core.set_account(user, name)
        self.core.reply(user, N.RPL_LOGGEDIN, user.source if user.registered else f"{user.nick}!*@*",
                        name, f"You are now logged in as {name}")
        cancel = self.enforcing.pop(user, None)
        if cancel is not None and cancel.active():
            cancel.cancel()
        loads = [self.core.state.metadata, self.core.state.read_markers]
        for kept in loads:
            load = getattr(kept, "load", None)
            if load is not None:
                load(user.owner).addErrback(lambda f: log.failure("loading account data", f))

    def password_budget(self, user: User) -> bool:
        """Whether this connection may start one more password operation (counted)."""
        used = self.password_tries.get(user.connection_id, 0)
        if used >= MAX_PASSWORD_TRIES:
            return False
        self.password_tries[user.connection_id] = used + 1
        if len(self.password_tries) > 10_000:
            live = {u.connection_id for u in self.core.state.connections}
            self.password_tries = {k: v for k, v in self.password_tries.items() if k in live}
        return True

    # -- nick ownership --------------------------------------------------------------------------
    def check_nick(self, user: User) -> None:
        """A registered user now has this nick: if an account owns it, ask it to identify."""
        if not user.registered:
            return
        owner = self.store.nick_owner(user.nick)
        if owner is None or (user.account is not None and casefold(user.account) == owner):
            old = self.enforcing.pop(user, None)
            if old is not None and old.active():
                old.cancel()
            return
        if user in self.enforcing and self.enforcing[user].active():
            return
        timeout = self.core.config.nick_enforce_timeout
        self.service_notice(user, "NickServ", f"This nickname is registered. Identify with "
                            f"/msg NickServ IDENTIFY <password> within {timeout:g} seconds, "
                            "or you will be renamed.")
        nick = user.folded
        self.enforcing[user] = self.clock.callLater(timeout, self._enforce, user, nick)

    def _enforce(self, user: User, folded: str) -> None:
        self.enforcing.pop(user, None)
        if user not in self.core.state.connections or user.folded != folded:
            return
        owner = self.store.nick_owner(user.nick)
        if owner is None or (user.account is not None and casefold(user.account) == owner):
            return
        guest = self.guest_nick()
        self.service_notice(user, "NickServ", f"You did not identify: your nick is now {guest}.")
        old_source = user.source
        old_nick = user.nick
        self.core.state.set_nick(user, guest, self.core.clock())
        self.core.relay([user, *self.core.state.neighbours(user)], old_source, "NICK", guest)
        self.core.monitor_offline(user, old_nick)
        self.core.monitor_online(user)

    def guest_nick(self) -> str:
        """A free nick no account owns: ``Guest`` and digits."""
        while True:
            nick = f"Guest{secrets.randbelow(100000):05d}"
            if not self.core.state.nick_in_use(nick) and self.store.nick_owner(nick) is None:
                return nick

    def forget(self, user: User) -> None:
        """``user`` is gone: its timers and half-done exchanges go too."""
        call = self.enforcing.pop(user, None)
        if call is not None and call.active():
            call.cancel()
        self.exchanges.pop(user, None)
        self.password_tries.pop(user.connection_id, None)

    # -- services --------------------------------------------------------------------------------
    def service_source(self, service: str) -> str:
        """A service pseudo-user's ``nick!user@host``."""
        return self.core.state.services[casefold(service)].source

    def service_notice(self, user: User, service: str, text: str) -> None:
        """A NOTICE from a service pseudo-user."""
        user.send(fit_message(Message("NOTICE", (user.nick, text), self.service_source(service))))

    # -- registered channels ---------------------------------------------------------------------
    def revive(self, name: str) -> Channel | None:
        """A registered channel nobody is in: created empty with its kept state, so its key,
        limit, bans and +i hold for the first to join. None when not registered or live."""
        state = self.core.state
        if state.find_channel(name) is not None:
            return None
        registered = self.store.registered_channel(name)
        if registered is None:
            return None
        channel = Channel(registered.name, self.core.clock())
        restore(channel, registered)
        state.channels[channel.folded] = channel
        return channel

    def enforce_mode_lock(self, channel: Channel) -> None:
        """Set back the flag modes a registered channel's mode lock (ChanServ SET MLOCK) keeps:
        ChanServ tells the members, as services do when an operator changes a locked mode."""
        registered = self.store.registered_channel(channel.name)
        if registered is None:
            return
        adding = "".join(m for m in registered.mlock_on if m not in channel.modes)
        removing = "".join(m for m in registered.mlock_off if m in channel.modes)
        if not adding and not removing:
            return
        channel.modes = (channel.modes | set(adding)) - set(removing)
        change = (f"+{adding}" if adding else "") + (f"-{removing}" if removing else "")
        self.core.relay(channel.members, self.service_source("ChanServ"), "MODE", channel.name,
                        change)
        self.save_channel(channel)

    def save_channel(self, channel: Channel) -> None:
        """Keep a registered channel's topic, modes, key, limit and bans (written behind)."""
        if self.store.registered_channel(channel.name) is None:
            return
        try:
            self.store.update_channel(channel.name, **saved_state(channel))
        except StoreError as error:
            log.warn("not kept for {channel}: {error}", channel=channel.name, error=str(error))

    def status_on_join(self, user: User, channel: Channel) -> None:
        """Give a joining member of a registered channel its access-list status."""
        registered = self.store.registered_channel(channel.name)
        if registered is None:
            return
        given = prefixes_for(registered, casefold(user.account) if user.account else None)
        if given and channel.members.get(user) != given:
            channel.members[user] = given
            channel.forget_names()
            modes = "+" + given
            self.core.relay(channel.members, self.service_source("ChanServ"),
                            "MODE", channel.name, modes, *([user.nick] * len(given)))

    # -- history ---------------------------------------------------------------------------------
    def may_read(self, user: User, target: str) -> str | None:
        """The conversation ``user`` may read for ``target``, or None (no such or not allowed).

        Channel history: a member, or anyone for a channel that is neither +s nor +i (live), or a
        registered channel kept without +s/+i. Private history: only between ``user``'s account
        and the account of ``target`` (a logged-in nick or an account name)."""
        if is_channel_name(target, CHANTYPES):
            channel = self.core.state.find_channel(target)
            if channel is not None:
                if user in channel.members or not ({"s", "i"} & channel.modes):
                    return channel_conversation(target)
                return None
            registered = self.store.registered_channel(target)
            if registered is not None and not ({"s", "i"} & set(registered.modes)):
                return channel_conversation(target)
            return None
        if user.account is None:
            return None
        other_user = self.core.state.users.get(casefold(target))
        other = other_user.account if other_user is not None and other_user.account else target
        if self.store.account(other) is None:
            return None
        return direct_conversation(user.account, other)

    def send_batch(self, user: User, kind: str, params: tuple[str, ...], lines: list[bytes],
                   label: str | None = None) -> None:
        """``BATCH +ref kind params``, the lines tagged with the batch, ``BATCH -ref``."""
        ref = self.core.next_batch()
        tag = f"batch={ref}".encode()
        self._send_in_batch(user, ref, kind, params, b"".join(add_tag(line, tag) for line in lines),
                            label)

    def send_history(self, user: User, target: str, lines: list[HistoryLine],
                     label: str | None = None) -> None:
        """A ``chathistory`` batch of stored lines as ``user`` gets them: time and msgid tags
        (as its caps ask), the original source; each line encoded once per tag variant."""
        ref = self.core.next_batch()
        body = self.encoder.batch_lines(lines, tag_variant(user.caps), ref)
        self._send_in_batch(user, ref, "chathistory", (target,), body, label)

    def _send_in_batch(self, user: User, ref: str, kind: str, params: tuple[str, ...], body: bytes,
                       label: str | None) -> None:
        """``BATCH +ref kind params`` (labelled), ``body`` (lines tagged already), ``BATCH -ref``."""
        name = self.core.config.name
        start_tags = {"label": label} if label else {}
        start = Message("BATCH", (f"+{ref}", kind, *params), name, tags=start_tags)
        end = Message("BATCH", (f"-{ref}",), name)
        user.send(start.to_bytes() + body + end.to_bytes())


def attach_store(core: ServerCore, store: Store, clock: IReactorTime) -> Accounts:
    """Give ``core`` its store: accounts, services, registered channels and history."""
    accounts = Accounts(core, store, clock)
    core.accounts = accounts
    core.capabilities.update(ACCOUNT_CAPS)
    metadata, markers = StoredMetadata(store), StoredReadMarkers(store)
    core.state.metadata, core.state.read_markers = metadata, markers
    for channel in store.registered_channels():
        for kept in (metadata, markers):
            kept.load("channel:" + channel.folded).addErrback(
                lambda f: log.failure("loading a registered channel's data", f))

    def account_of(nick: str) -> str | None:
        user = core.state.users.get(casefold(nick))
        return user.account if user is not None else None

    core.bus.subscribe(HistoryRecorder(store, account_of))
    from twistedchat.server.commands import accounts as handlers
    from twistedchat.server.commands import services

    core.state.services.update(services.service_users(core))
    for entry in (*handlers.ACCOUNT_COMMANDS, *services.SERVICE_COMMANDS):
        core.commands[entry.name] = entry
    # the services' wrappers go around the accounts' (a RESTRICTED channel is left out of a
    # JOIN before a registered channel is revived for it)
    for wrappers in (handlers.WRAPPED, services.SERVICE_WRAPPED):
        for name, wrapper in wrappers.items():
            core.commands[name] = _wrap(core.commands[name], wrapper)
    return accounts


def _wrap(original: Command, wrapper: Callable[..., None]) -> Command:
    """``original`` with its handler run inside ``wrapper(handler, core, user, msg)``."""
    handler = original.handler

    def wrapped(core: ServerCore, user: User, msg: Message) -> None:
        wrapper(handler, core, user, msg)

    wrapped.__doc__ = handler.__doc__
    return original._replace(handler=wrapped)


