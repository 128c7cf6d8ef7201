"""What a node carries about its users beyond relayed lines, and the network-wide view it gives.

Relayed lines (JOIN, PRIVMSG, QUIT…) travel as ``L`` events
(:mod:`twistedchat.cluster.outgoing`).
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

``K``, ``O``, ``Q`` and the ``I`` answering a ``Q`` go to the target node's inbox
(:mod:`twistedchat.cluster.inbox`); the others to every node, in the network's one stream.
- ``I`` (idle): when a user last sent a message, at most once a minute per user (WHOIS 317),
  and to one node's inbox as the answer to its ``Q`` (idle.py: a WHOIS of a remote user asks).
- ``Q`` (idle question): a node asks a user's own node for its exact idle time (inbox).
- ``X`` (server ban): an operator's KLINE/DLINE (``+`` with the mask, reason, setter, time set
  and expiry) or UNKLINE/UNDLINE (``-`` with the mask). Each node adds or lifts the same ban in
  its own list (and bans file) and removes its own matching users, as a local KLINE does; a ban
  applied from Redis is never published again. Redis keeps the network's list too (bans.py): a
  node registering applies it and adds (and announces) the bans only it holds, so the network
  converges on the union, at most 10,000 of each kind.

A remote user's record (introduction, burst) carries its account, metadata, real host and server
name too (one dict after the fields `Replicas._user_record` always had). Every field
from Redis is checked before use (:mod:`twistedchat.cluster.checks`): a bad event is logged and
dropped.

The same data answers WHOIS's server (312), LUSERS over the whole network, MONITOR (730/731 as
remote users come, go and change nicks), extended-join and away on JOIN for remote joiners.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from twisted.logger import Logger

from twistedchat.cluster.bans import BanSync, apply_ban
from twistedchat.cluster.checks import (
    NAME_BYTES,
    REASON_BYTES,
    BadEvent,
    metadata_values,
    number,
    optional,
    text,
    user_modes,
    valid_server_name,
)
from twistedchat.cluster.idle import IdleQueries, answer_idle_query
from twistedchat.server.channel import Channel
from twistedchat.server.commands.metadata import (
    Target,
    metadata_on_join,
    notify,
    valid_key,
)
from twistedchat.server.limits import AWAYLEN, METADATA_MAX_KEYS, METADATA_MAX_VALUE_BYTES, REALLEN
from twistedchat.server.owner_data import MemoryMetadata
from twistedchat.server.relay import Relay
from twistedchat.server.state import User
from twistedchat.wire.fitting import fit_message
from twistedchat.wire.message import Message
from twistedchat.wire.names import CHANTYPES, is_channel_name

if TYPE_CHECKING:
    from twistedchat.cluster.inbox import Outboxes
    from twistedchat.cluster.resp import RedisLink
    from twistedchat.server.bans import ServerBan
    from twistedchat.server.core import ServerCore

log = Logger()

#: Seconds between two idle-time refreshes of one user: WHOIS 317 on other nodes is this close.
IDLE_REFRESH = 60.0


class NetworkCounts(NamedTuple):
    """LUSERS over the whole network (this node's users and every remote one)."""

    users: int
    invisible: int
    opers: int
    servers: int
    peak: int


class RemoteCounts:
    """LUSERS' share of the remote users: how many are invisible, how many are operators (kept
    as they come, change and go, so LUSERS never scans them)."""

    def __init__(self) -> None:
        self.invisible = 0
        self.opers = 0
        self._counted: dict[User, tuple[bool, bool]] = {}

    def count(self, ghost: User) -> None:
        """Count ``ghost`` as its modes are now (again, after a change)."""
        now = ("i" in ghost.modes, "o" in ghost.modes)
        before = self._counted.get(ghost, (False, False))
        self.invisible += now[0] - before[0]
        self.opers += now[1] - before[1]
        self._counted[ghost] = now

    def forget(self, ghost: User) -> None:
        """``ghost`` is gone."""
        before = self._counted.pop(ghost, None)
        if before is not None:
            self.invisible -= before[0]
            self.opers -= before[1]


def _tell(ghost: User, recipients: list[User], now: float, command: str, *params: str) -> None:
    """``:ghost COMMAND params`` to local recipients (encoded once), not onto the bus."""
    if recipients:
        Relay(Message(command, params, ghost.source), now, account=ghost.account).send_to(
            recipients)


class CarriedState:
    """The part of :class:`~twistedchat.cluster.node.ClusterNode` that carries user state.

    A mixin: the node provides ``core``, ``node_id``, ``ghost_node``, ``ghosts``, ``outboxes``,
    ``_emit`` (an event for every node) and ``_flush_soon``.
    """

    core: ServerCore
    node_id: str
    prefix: str
    reactor: Any
    control: RedisLink
    ghost_node: dict[User, str]
    ghosts: dict[str, set[User]]
    #: Nodes alive at the last heartbeat (this one included; none known before the first).
    live_nodes: set[str]

    outboxes: Outboxes

    def _emit(self, event: list[Any]) -> None:
        raise NotImplementedError

    def _flush_soon(self) -> None:
        raise NotImplementedError

    def _send_to_node(self, node: str, event: list[Any]) -> None:
        """An event only ``node`` needs: to its inbox, which no other node reads."""
        self.outboxes.add(node, event)
        self._flush_soon()

    def ban_changed(self, ban: ServerBan, lifted: bool = False) -> None:
        """An operator here set or lifted a server ban: every node does the same."""
        self.ban_sync.changed(ban, lifted)

    def _init_carried(self) -> None:
        #: The server name (``--name``) of each node seen (a node keeps its id while it runs).
        self.node_server: dict[str, str] = {}
        #: How many remote users are invisible and operators (LUSERS), and the most seen.
        self.remote = RemoteCounts()
        self.global_peak = 0
        self.live_nodes = set()
        self._ghost_ids = itertools.count(1)
        self.bad_events = 0
        #: When each local user's idle time last went to the network.
        self._idle_sent: dict[User, float] = {}
        self.ban_sync = BanSync(self)
        self.idle_queries = IdleQueries(self)

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

    def spoke(self, user: User) -> None:
        """A local user sent a message: its idle time goes to the network, at most once every
        :data:`IDLE_REFRESH` seconds per user."""
        sent = self._idle_sent.get(user)
        if sent is not None and user.last_message - sent < IDLE_REFRESH:
            return
        if len(self._idle_sent) > 2 * len(self.core.state.connections) + 64:
            live = self.core.state.connections  # forget those gone (amortised: rarely)
            self._idle_sent = {u: t for u, t in self._idle_sent.items() if u in live}
        self._idle_sent[user] = user.last_message
        if self._is_local(user):
            self._emit(["I", self.node_id, user.nick, user.last_message])

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
            self._send_to_node(node, ["O", self.node_id, node, user.nick])

    def disconnect_remote(self, user: User, reason: str, killer: str | None = None,
                          kill_text: str | None = None) -> None:
        """Ask ``user``'s own node to disconnect it (with a KILL line first when ``killer``)."""
        node = self.ghost_node.get(user)
        if node is not None:
            self._send_to_node(node, ["K", self.node_id, node, user.nick, killer, kill_text,
                                      reason])

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
        return NetworkCounts(users, state.invisible_count + self.remote.invisible,
                             state.oper_count + self.remote.opers, len(self.server_names()),
                             self.global_peak)

    def server_names(self) -> list[str]:
        """The network's servers (LINKS, LUSERS): this one first, then every other node alive at
        the last heartbeat or with users here, by name (the workers of one host share theirs;
        a node's id is ``<name>/<pid>-<random>``, or its name)."""
        here = self.core.config.name
        nodes = self.live_nodes | {node for node, users in self.ghosts.items() if users}
        names = {self.node_server.get(node) or node.split("/", 1)[0] for node in nodes}
        names.discard(here)
        return [here, *sorted(name for name in names if valid_server_name(name))]

    # -- in: remote users come, change and go (called by the node) --------------------------------

    def valid(self, check: Callable[[Any], None], kind: str, node: str, data: Any) -> bool:
        """Whether ``data`` from ``node`` passes ``check`` (twistedchat.cluster.checks); if not
        it is logged, counted and dropped."""
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
        self.remote.count(ghost)
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
        server = text(extras.get("server"), NAME_BYTES, word=True, empty=False)
        account = optional(extras.get("account"), NAME_BYTES, word=True)
        real_host = text(extras.get("real_host", ghost.host), NAME_BYTES, word=True,
                         empty=False)
        values = metadata_values(extras.get("metadata", {}))
        self.node_server[node] = server
        ghost.real_host = real_host
        if account != ghost.account:
            self.core.state.set_account(ghost, account)
        store = self.core.state.metadata
        for key in [k for k in store.values(ghost.owner) if k not in values]:
            self.put_metadata(ghost.owner, key, None)
        for key, value in values.items():
            self.put_metadata(ghost.owner, key, value)

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
        self.remote.forget(ghost)

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
        """Apply a carried event (:data:`CARRIED`) from ``node``; a bad one is logged and
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

    def ghost_of(self, node: str, nick: Any) -> User | None:
        """The remote user ``nick`` of ``node``, or None (gone meanwhile, or not that node's)."""
        text(nick, NAME_BYTES, word=True, empty=False)
        found = self.core.state.find_user(nick)
        if found is None or self.ghost_node.get(found) != node:
            return None
        return found

    def local_target(self, target_node: Any, nick: Any) -> User | None:
        """The local user an event sent to ``target_node`` is about (None: not ours, or gone)."""
        if target_node != self.node_id:
            return None
        text(nick, NAME_BYTES, word=True, empty=False)
        user = self.core.state.find_user(nick)
        return user if user is not None and self._is_local(user) else None

    # -- helpers ---------------------------------------------------------------------------------

    def put_metadata(self, owner: str, key: str, value: str | None) -> None:
        """Set a key in this node's memory only: its own node (or the shared db) keeps it."""
        store = self.core.state.metadata
        if isinstance(store, MemoryMetadata):
            MemoryMetadata.put(store, owner, key, value)
        else:
            store.put(owner, key, value)


# -- the carried events, as each node applies another's ------------------------------------------


def _apply_profile(carrier: CarriedState, node: str, fields: list[Any]) -> None:
    """A remote user's modes, away message, real name and account (``P``)."""
    nick, modes, away, realname, account = fields[:5]
    ghost = carrier.ghost_of(node, nick)
    modes = user_modes(modes)
    away = optional(away, AWAYLEN)
    realname = text(realname, REALLEN)
    account = optional(account, NAME_BYTES, word=True)
    if ghost is None:
        return
    core = carrier.core
    now = core.clock()
    ghost.modes = modes
    carrier.remote.count(ghost)
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


def _apply_idle(carrier: CarriedState, node: str, fields: list[Any]) -> None:
    """When a remote user last sent a message (``I``)."""
    nick, when = fields[:2]
    ghost = carrier.ghost_of(node, nick)
    when = number(when)
    if ghost is not None:  # (never ahead of this node's clock)
        ghost.last_message = max(ghost.last_message, min(when, carrier.core.clock()))
        carrier.idle_queries.answered(ghost)  # a WHOIS waiting for it goes on


def _apply_metadata(carrier: CarriedState, node: str, fields: list[Any]) -> None:
    """One key of a remote user's or a channel's metadata (``M``)."""
    setter_nick, name, key, value = fields[:4]
    setter = carrier.ghost_of(node, setter_nick)
    text(name, NAME_BYTES, word=True, empty=False)
    if not isinstance(key, str) or not valid_key(key):
        raise BadEvent(f"bad metadata key {key!r:.80}")
    value = None if value is None else text(value, METADATA_MAX_VALUE_BYTES)
    if setter is None:
        return
    state = carrier.core.state
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
    carrier.put_metadata(target.owner, key, value)
    notify(carrier.core, setter, target, key, value)


def _apply_logout(carrier: CarriedState, node: str, fields: list[Any]) -> None:
    """Log out a local user whose account another node dropped (``O``)."""
    user = carrier.local_target(*fields[:2])
    if user is not None:
        carrier.core.set_account(user, None)


def _apply_kill(carrier: CarriedState, node: str, fields: list[Any]) -> None:
    """Disconnect a local user another node's operator killed (``K``)."""
    target_node, nick, killer, kill_text, reason = fields[:5]
    killer = optional(killer, NAME_BYTES, word=True)
    kill_text = optional(kill_text, REASON_BYTES)
    reason = text(reason, REASON_BYTES, empty=False)
    core = carrier.core
    user = carrier.local_target(target_node, nick)
    if user is None:
        return  # not ours, or gone meanwhile
    if killer is not None:
        user.send(fit_message(Message("KILL", (user.nick, kill_text or "No reason"),
                                      killer)))
    core.quit(user, reason)


#: The carried event kinds and their handlers (given the event's fields after kind and node).
CARRIED: dict[str, Callable[[CarriedState, str, list[Any]], object]] = {
    "P": _apply_profile,
    "M": _apply_metadata,
    "K": _apply_kill,
    "O": _apply_logout,
    "I": _apply_idle,
    "Q": answer_idle_query,
    "X": apply_ban,
}
