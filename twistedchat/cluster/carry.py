"""What a node carries about its users beyond relayed lines, and the network-wide view it gives.

Relayed lines (JOIN, PRIVMSG, QUIT…) travel as ``L`` events (:mod:`twistedchat.cluster.node`).
Some changes send no line to anyone, or only to local clients that asked for a capability, yet
every node must know them at once. They travel as events of their own:

- ``P`` (profile): a user's modes, away message, real name and account, sent whole after any of
  them changes (MODE, OPER, AWAY, SETNAME, a login or logout). Each node notifies its own
  clients (``away-notify``, ``setname``, ``account-notify``) of what changed.
- ``M`` (metadata): one key of a user's or a channel's metadata set or deleted.
- ``K`` (kill): an operator on one node disconnects a user of another (KILL, NickServ GHOST);
  only the user's own node disconnects it, so everyone sees its QUIT once.
- ``O`` (log out): NickServ DROP on one node logs out the account's sessions on the others (each
  by its own node, which then sends ``P``).

A remote user's record (introduction, burst) carries its account, metadata, real host and server
name too (one dict after the fields :meth:`ClusterNode._user_record` always had). Every field
from Redis is checked before use: a bad event is logged and dropped (:class:`BadEvent`).

The same data answers WHOIS's server (312), LUSERS over the whole network, MONITOR (730/731 as
remote users come, go and change nicks), extended-join and away on JOIN for remote joiners.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from twisted.logger import Logger

from twistedchat.server.commands.metadata import (
    Target,
    metadata_on_join,
    notify,
    valid_key,
)
from twistedchat.server.commands.registration import REASONLEN
from twistedchat.server.relay import Relay
from twistedchat.server.state import (
    AWAYLEN,
    BANLEN,
    CHANLIMIT,
    FLAG_MODES,
    KEYLEN,
    LIST_MODES,
    MAXLIST,
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_BYTES,
    PARAM_MODES,
    PREFIX_MODES,
    REALLEN,
    SET_PARAM_MODES,
    TOPICLEN,
    USER_MODES,
    Channel,
    MemoryMetadata,
    User,
)
from twistedchat.wire.fitting import fit_message
from twistedchat.wire.message import MAX_LINE_BYTES, Message, valid_tag_key
from twistedchat.wire.names import CHANTYPES, is_channel_name, valid_channel_name, valid_nick

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

log = Logger()

#: Longest server name, account name, host and ``nick!user@host`` taken from another node.
NAME_BYTES = 255
#: Longest quit or kill reason taken from another node (room for "Killed (nick (reason))").
REASON_BYTES = REASONLEN + 128
_FORBIDDEN = frozenset("\r\n\0")
#: Most parameters, client tags and bytes of client tags a relayed line from another node has.
MAX_PARAMS = 15
MAX_TAGS = 32
MAX_TAG_BYTES = 4096
_CHANNEL_MODES = frozenset(LIST_MODES + PARAM_MODES + SET_PARAM_MODES + FLAG_MODES)


class BadEvent(ValueError):
    """An event from Redis that this node will not apply (logged and dropped)."""


class NetworkCounts(NamedTuple):
    """LUSERS over the whole network (this node's users and every remote one)."""

    users: int
    invisible: int
    opers: int
    servers: int
    peak: int


def _text(value: Any, limit: int, *, word: bool = False, empty: bool = True) -> str:
    """``value`` if it is a string that fits in ``limit`` UTF-8 bytes with no CR, LF or NUL
    (and, for a ``word``, no space), else :class:`BadEvent`."""
    if not isinstance(value, str) or len(value.encode("utf-8")) > limit:
        raise BadEvent(f"not a string of at most {limit} bytes: {value!r:.80}")
    if _FORBIDDEN.intersection(value) or (word and (" " in value or value.startswith(":"))):
        raise BadEvent(f"a forbidden character in {value!r:.80}")
    if not empty and not value:
        raise BadEvent("an empty value")
    return value


def _optional(value: Any, limit: int, *, word: bool = False) -> str | None:
    return None if value is None else _text(value, limit, word=word, empty=False)


def _modes(value: Any) -> set[str]:
    letters = _text(value, len(USER_MODES))
    if not set(letters) <= set(USER_MODES):
        raise BadEvent(f"unknown user modes {letters!r}")
    return set(letters)


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > METADATA_MAX_KEYS:
        raise BadEvent("metadata is not a dict of at most the allowed keys")
    for key, item in value.items():
        if not valid_key(key):
            raise BadEvent(f"bad metadata key {key!r:.80}")
        _text(item, METADATA_MAX_VALUE_BYTES)
    return dict(value)


def check_record(record: Any) -> None:
    """A remote user's record (introduction, burst) as :meth:`ClusterNode._ghost` reads it, or
    :class:`BadEvent`: nothing in it may break a line sent to a client, or exceed a limit."""
    if not isinstance(record, list) or len(record) < 8:
        raise BadEvent("a user record is not a list of 8 fields or more")
    nick, username, host, realname, signon, away, modes, memberships = record[:8]
    if not isinstance(nick, str) or not valid_nick(nick):
        raise BadEvent(f"not a nick: {nick!r:.80}")
    _text(username, NAME_BYTES, word=True, empty=False)
    _text(host, NAME_BYTES, word=True, empty=False)
    _text(realname, REALLEN)
    _number(signon)
    _optional(away, AWAYLEN)
    _modes(modes)
    if not isinstance(memberships, dict) or len(memberships) > CHANLIMIT:
        raise BadEvent("memberships are not a dict of at most CHANLIMIT channels")
    for name, prefixes in memberships.items():
        if not valid_channel_name(name) or not isinstance(prefixes, str) or not set(
                prefixes) <= set(PREFIX_MODES):
            raise BadEvent(f"a bad membership {name!r:.80}: {prefixes!r:.20}")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadEvent(f"not a number: {value!r:.80}")
    return value


def check_line(event: Any) -> None:
    """An ``L`` event (a relayed line) as :meth:`ClusterNode._apply_line` reads it, or
    :class:`BadEvent`: its source, command, parameters and tags make one well-formed line."""
    if not isinstance(event, list) or not 9 <= len(event) <= 10:
        raise BadEvent("a relayed line is not a list of 9 or 10 fields")
    source, command, params, tags, msgid, now, extra = event[2:9]
    _text(source, MAX_LINE_BYTES, word=True, empty=False)
    if not (isinstance(command, str) and command.isascii() and command.isalpha()
            and command.isupper() and len(command) <= 16):
        raise BadEvent(f"not a command: {command!r:.80}")
    if not isinstance(params, list) or not params or len(params) > MAX_PARAMS:
        raise BadEvent("parameters are not a list of 1 to 15")
    for param in params[:-1]:
        _text(param, MAX_LINE_BYTES, word=True, empty=False)
    _text(params[-1], MAX_LINE_BYTES)
    if tags is not None:
        if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
            raise BadEvent("client tags are not a dict of at most 32")
        size = 0
        for key, value in tags.items():
            if not isinstance(key, str) or not valid_tag_key(key):
                raise BadEvent(f"not a tag key: {key!r:.80}")
            size += len(key) + len(_text(value, MAX_TAG_BYTES).encode("utf-8")) + 2
        if size > MAX_TAG_BYTES:
            raise BadEvent("client tags too long")
    _optional(msgid, NAME_BYTES, word=True)
    _number(now)
    if extra is not None and (not isinstance(extra, str) or not set(extra) <= set(PREFIX_MODES)):
        raise BadEvent(f"not channel prefixes: {extra!r:.20}")
    if len(event) > 9:
        _optional(event[9], NAME_BYTES, word=True)


def check_channel_record(record: Any) -> None:
    """A channel's record in a burst as the node reads it (its first nine fields), or
    :class:`BadEvent`."""
    if not isinstance(record, list) or len(record) < 9:
        raise BadEvent("a channel record is not a list of 9 fields or more")
    name, created, topic, setter, topic_time, modes, key, limit, bans = record[:9]
    if not isinstance(name, str) or not valid_channel_name(name):
        raise BadEvent(f"not a channel: {name!r:.80}")
    _number(created)
    _text(topic, TOPICLEN)
    _text(setter, MAX_LINE_BYTES, word=True)
    _number(topic_time)
    if not set(_text(modes, len(_CHANNEL_MODES))) <= _CHANNEL_MODES:
        raise BadEvent(f"unknown channel modes {modes!r:.20}")
    _optional(key, KEYLEN, word=True)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise BadEvent(f"not a limit: {limit!r:.20}")
    if not isinstance(bans, list) or len(bans) > MAXLIST:
        raise BadEvent("bans are not a list of at most MAXLIST")
    for ban in bans:
        if not isinstance(ban, list) or len(ban) != 3:
            raise BadEvent("a ban is not [mask, setter, time]")
        _text(ban[0], BANLEN, word=True, empty=False)
        _text(ban[1], MAX_LINE_BYTES, word=True)
        _number(ban[2])


def _tell(ghost: User, recipients: list[User], now: float, command: str, *params: str) -> None:
    """``:ghost COMMAND params`` to local recipients (encoded once), not onto the bus."""
    if recipients:
        Relay(Message(command, params, ghost.source), now, account=ghost.account).send_to(
            recipients)


class CarriedState:
    """The part of :class:`~twistedchat.cluster.node.ClusterNode` that carries user state.

    A mixin: the node provides ``core``, ``node_id``, ``ghost_node``, ``ghosts`` and ``_emit``.
    """

    core: ServerCore
    node_id: str
    ghost_node: dict[User, str]
    ghosts: dict[str, set[User]]
    #: Nodes alive at the last heartbeat (this one included); 1 before the first.
    live_nodes: int

    def _emit(self, event: list[Any]) -> None:
        raise NotImplementedError

    def _init_carried(self) -> None:
        #: The server name (``--name``) of each node seen (a node keeps its id while it runs).
        self.node_server: dict[str, str] = {}
        #: Each remote user's share of the counts (invisible, operator), and the totals.
        self._counted: dict[User, tuple[bool, bool]] = {}
        self.remote_invisible = 0
        self.remote_opers = 0
        self.global_peak = 0
        self.live_nodes = 1
        self._ghost_ids = itertools.count(1)
        self.bad_events = 0

    # -- out: what local users change --------------------------------------------------------

    def is_remote(self, user: User) -> bool:
        """Whether ``user`` is on another node (a replica here)."""
        return user in self.ghost_node

    def _is_local(self, user: User) -> bool:
        return user.registered and user not in self.ghost_node

    def record_extras(self, user: User) -> dict[str, Any]:
        """What a user's record carries beyond its first fields (introductions and bursts)."""
        return {"server": self.core.config.name, "account": user.account,
                "real_host": user.real_host,
                "metadata": dict(self.core.state.metadata.values(user.owner))}

    def user_changed(self, user: User) -> None:
        """A local user's modes, away message, real name or account changed: tell the network."""
        if self._is_local(user):
            self._emit(["P", self.node_id, user.nick, "".join(sorted(user.modes)), user.away,
                        user.realname, user.account])

    def metadata_changed(self, setter: User, target: Target, key: str,
                         value: str | None) -> None:
        """A key of a local user's or a channel's metadata changed here: tell the network."""
        if self._is_local(setter):
            name = target.channel.name if target.channel is not None else target.name
            self._emit(["M", self.node_id, setter.nick, name, key, value])

    def log_out_remote(self, user: User) -> None:
        """Ask ``user``'s own node to log it out (its account was dropped here)."""
        node = self.ghost_node.get(user)
        if node is not None:
            self._emit(["O", self.node_id, node, user.nick])

    def disconnect_remote(self, user: User, reason: str, killer: str | None = None,
                          kill_text: str | None = None) -> None:
        """Ask ``user``'s own node to disconnect it (with a KILL line first when ``killer``)."""
        node = self.ghost_node.get(user)
        if node is not None:
            self._emit(["K", self.node_id, node, user.nick, killer, kill_text, reason])

    # -- questions the commands ask -------------------------------------------------------------

    def server_of(self, user: User) -> str:
        """The name of the server ``user`` is connected to (WHOIS 312, WHO)."""
        node = self.ghost_node.get(user)
        if node is None:
            return self.core.config.name
        return self.node_server.get(node, self.core.config.name)

    def network_counts(self) -> NetworkCounts:
        """Users, invisible users, operators and servers of the whole network (LUSERS)."""
        state = self.core.state
        users = state.registered_count + len(self.ghost_node)
        self.global_peak = max(self.global_peak, users, self.core.max_seen_users)
        # Nodes alive at the last heartbeat; at least this one and every one with users here.
        servers = max(self.live_nodes, 1 + sum(1 for users in self.ghosts.values() if users))
        return NetworkCounts(users, state.invisible_count + self.remote_invisible,
                             state.oper_count + self.remote_opers, servers, self.global_peak)

    # -- in: remote users come, change and go (called by the node) --------------------------------

    def record_ok(self, node: str, record: Any) -> bool:
        """Whether a remote user's record may be applied (else it is logged and dropped)."""
        return self._checked(check_record, "user record", node, record)

    def line_ok(self, node: str, event: Any) -> bool:
        """Whether a relayed line (``L``) may be applied (else it is logged and dropped)."""
        return self._checked(check_line, "L", node, event)

    def channel_record_ok(self, node: str, record: Any) -> bool:
        """Whether a channel's record in a burst may be applied (else logged and dropped)."""
        return self._checked(check_channel_record, "channel record", node, record)

    def _checked(self, check: Callable[[Any], None], kind: str, node: str, data: Any) -> bool:
        try:
            check(data)
        except BadEvent as error:
            self._dropped(kind, node, error)
            return False
        return True

    def adopt_extras(self, node: str, ghost: User, extras: Any, created: bool) -> None:
        """A remote user's record was applied: its extras, counts, and MONITOR if it is new."""
        if created:
            ghost.connection_id = -next(self._ghost_ids)  # its own metadata owner here
        self._recount(ghost)
        if isinstance(extras, dict):
            try:
                self._apply_extras(node, ghost, extras)
            except BadEvent as error:
                self._dropped("user record", node, error)
        if created:
            self.global_peak = max(self.global_peak,
                                   self.core.state.registered_count + len(self.ghost_node))
            self.core.monitor_online(ghost)

    def _apply_extras(self, node: str, ghost: User, extras: dict[str, Any]) -> None:
        server = _text(extras.get("server"), NAME_BYTES, word=True, empty=False)
        account = _optional(extras.get("account"), NAME_BYTES, word=True)
        real_host = _text(extras.get("real_host", ghost.host), NAME_BYTES, word=True,
                          empty=False)
        values = _metadata(extras.get("metadata", {}))
        self.node_server[node] = server
        ghost.real_host = real_host
        if account != ghost.account:
            self.core.state.set_account(ghost, account)
        store = self.core.state.metadata
        for key in [k for k in store.values(ghost.owner) if k not in values]:
            self._put(ghost.owner, key, None)
        for key, value in values.items():
            self._put(ghost.owner, key, value)

    def remote_renamed(self, ghost: User, old_nick: str) -> None:
        """A remote user changed nick: WHOWAS names its server, MONITOR sees the old nick go
        and the new one come."""
        self._whowas_server(ghost, old_nick)
        self.core.monitor_offline(ghost, old_nick)
        self.core.monitor_online(ghost)

    def remote_gone(self, ghost: User, node: str | None = None) -> None:
        """A remote user quit or was split (the node forgot it): WHOWAS, MONITOR, counts."""
        self._whowas_server(ghost, ghost.nick, node)
        self.core.monitor_offline(ghost)
        self._uncount(ghost)

    def _whowas_server(self, ghost: User, nick: str, node: str | None = None) -> None:
        """The WHOWAS entry just remembered for ``nick`` names the node's server."""
        whowas = self.core.state.whowas
        node = node or self.ghost_node.get(ghost)
        server = self.node_server.get(node) if node is not None else None
        if whowas and server is not None and whowas[0].nick == nick and not whowas[0].server:
            whowas[0] = whowas[0]._replace(server=server)

    def remote_joined(self, ghost: User, channel: Channel, relay: Relay) -> None:
        """A remote user's JOIN to local members, as a local JOIN goes: extended-join with its
        account and real name to those who asked, then its away message and metadata."""
        members = channel.members
        extended = [m for m in members if "extended-join" in m.caps]
        if extended:
            Relay(Message("JOIN", (channel.name, ghost.account or "*", ghost.realname),
                          ghost.source), relay.now, relay.client_tags, relay.msgid,
                  relay.account).send_to(extended, ghost)
            relay.send_to([m for m in members if "extended-join" not in m.caps], ghost)
        else:
            relay.send_to(members, ghost)
        if ghost.away is not None:
            _tell(ghost, [m for m in members if "away-notify" in m.caps], relay.now, "AWAY",
                  ghost.away)
        metadata_on_join(self.core, ghost, channel)

    # -- in: the carried events ---------------------------------------------------------------------

    def apply_carried(self, kind: str, node: str, event: list[Any]) -> None:
        """Apply a ``P``, ``M``, ``K`` or ``O`` event from ``node``; a bad one is logged and
        dropped."""
        handler = CARRIED.get(kind)
        if handler is None:
            return
        try:
            handler(self, node, event[2:])
        except (BadEvent, TypeError, ValueError) as error:
            self._dropped(kind, node, error)

    def _dropped(self, kind: str, node: str, error: Exception) -> None:
        self.bad_events += 1
        log.warn("dropped a bad {kind} event from {node}: {error}", kind=kind, node=node,
                 error=str(error)[:200])

    def _ghost_of(self, node: str, nick: Any) -> User | None:
        """The remote user ``nick`` of ``node``, or None (gone meanwhile, or not that node's)."""
        _text(nick, NAME_BYTES, word=True, empty=False)
        found = self.core.state.find_user(nick)
        if found is None or self.ghost_node.get(found) != node:
            return None
        return found

    def _apply_profile(self, node: str, fields: list[Any]) -> None:
        nick, modes, away, realname, account = fields[:5]
        ghost = self._ghost_of(node, nick)
        modes = _modes(modes)
        away = _optional(away, AWAYLEN)
        realname = _text(realname, REALLEN)
        account = _optional(account, NAME_BYTES, word=True)
        if ghost is None:
            return
        core = self.core
        now = core.clock()
        ghost.modes = modes
        self._recount(ghost)
        if away != ghost.away:
            ghost.away = away
            _tell(ghost, core.interested(ghost, "away-notify"), now, "AWAY",
                  *((away,) if away is not None else ()))
        if realname != ghost.realname:
            ghost.realname = realname
            _tell(ghost, core.interested(ghost, "setname"), now, "SETNAME", realname)
        if account != ghost.account:
            core.state.set_account(ghost, account)
            _tell(ghost, core.interested(ghost, "account-notify"), now, "ACCOUNT",
                  account or "*")
            load: Callable[[str], Any] | None = getattr(core.state.metadata, "load", None)
            if load is not None and account is not None:  # the account's kept keys (shared db)
                load(ghost.owner).addErrback(lambda f: log.failure("loading account data", f))

    def _apply_metadata(self, node: str, fields: list[Any]) -> None:
        setter_nick, name, key, value = fields[:4]
        setter = self._ghost_of(node, setter_nick)
        _text(name, NAME_BYTES, word=True, empty=False)
        if not isinstance(key, str) or not valid_key(key):
            raise BadEvent(f"bad metadata key {key!r:.80}")
        value = None if value is None else _text(value, METADATA_MAX_VALUE_BYTES)
        if setter is None:
            return
        state = self.core.state
        if is_channel_name(name, CHANTYPES):
            channel = state.find_channel(name)
            if channel is None:
                return
            target = Target(channel.name, channel.owner, None, channel)
        else:
            if setter.nick != name:
                raise BadEvent(f"{setter.nick} set metadata of {name}")
            target = Target(setter.nick, setter.owner, setter, None)
        values = state.metadata.values(target.owner)
        if value is not None and key not in values and len(values) >= METADATA_MAX_KEYS:
            raise BadEvent(f"more than {METADATA_MAX_KEYS} keys for {name}")
        if values.get(key) == value:
            return
        self._put(target.owner, key, value)
        notify(self.core, setter, target, key, value)

    def _local_target(self, target_node: Any, nick: Any) -> User | None:
        """The local user an event sent to ``target_node`` is about (None: not ours, or gone)."""
        if target_node != self.node_id:
            return None
        _text(nick, NAME_BYTES, word=True, empty=False)
        user = self.core.state.find_user(nick)
        return user if user is not None and self._is_local(user) else None

    def _apply_logout(self, node: str, fields: list[Any]) -> None:
        user = self._local_target(*fields[:2])
        if user is not None:
            self.core.set_account(user, None)

    def _apply_kill(self, node: str, fields: list[Any]) -> None:
        target_node, nick, killer, kill_text, reason = fields[:5]
        killer = _optional(killer, NAME_BYTES, word=True)
        kill_text = _optional(kill_text, REASON_BYTES)
        reason = _text(reason, REASON_BYTES, empty=False)
        core = self.core
        user = self._local_target(target_node, nick)
        if user is None:
            return  # not ours, or gone meanwhile
        if killer is not None:
            user.send(fit_message(Message("KILL", (user.nick, kill_text or "No reason"),
                                          killer)))
        core.quit(user, reason)

    # -- helpers ---------------------------------------------------------------------------------

    def _put(self, owner: str, key: str, value: str | None) -> None:
        """Set a key in this node's memory only: its own node (or the shared db) keeps it."""
        store = self.core.state.metadata
        if isinstance(store, MemoryMetadata):
            MemoryMetadata.put(store, owner, key, value)
        else:
            store.put(owner, key, value)

    def _recount(self, ghost: User) -> None:
        now = ("i" in ghost.modes, "o" in ghost.modes)
        before = self._counted.get(ghost, (False, False))
        self.remote_invisible += now[0] - before[0]
        self.remote_opers += now[1] - before[1]
        self._counted[ghost] = now

    def _uncount(self, ghost: User) -> None:
        before = self._counted.pop(ghost, None)
        if before is not None:
            self.remote_invisible -= before[0]
            self.remote_opers -= before[1]


#: The carried event kinds and their handlers (given the event's fields after kind and node).
CARRIED: dict[str, Callable[[CarriedState, str, list[Any]], None]] = {
    "P": CarriedState._apply_profile,
    "M": CarriedState._apply_metadata,
    "K": CarriedState._apply_kill,
    "O": CarriedState._apply_logout,
}
