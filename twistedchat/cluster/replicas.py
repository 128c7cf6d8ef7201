"""Replicas of remote users and their channels: introductions, bursts, and splits when they go."""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from twistedchat.cluster import merge
from twistedchat.cluster.carry import CarriedState
from twistedchat.cluster.checks import check_channel_record, check_record
from twistedchat.server.channel import REMOTE_OUTBOX
from twistedchat.server.relay import Relay
from twistedchat.server.state import Channel, User
from twistedchat.wire.message import Message
from twistedchat.wire.names import casefold

log = Logger()

SPLIT_REASON = "*.net *.split"


def _nothing(*_: Any) -> None:
    pass


class Replicas(CarriedState):
    """The part of :class:`~twistedchat.cluster.node.ClusterNode` that keeps remote users.

    A remote user is a "ghost" :class:`User` whose outbox discards, with what
    :class:`~twistedchat.cluster.carry.CarriedState` carries about it. The node provides ``core``,
    ``node_id``, ``ghosts``, ``ghost_node`` and ``_missing_since``.
    """

    #: Since when (reactor seconds) a node with ghosts here is missing from Redis's live list.
    _missing_since: dict[str, float]
    #: Whether this node came back from a split (its first burst from each node joins views of
    #: equal age), and the nodes whose burst it has had since.
    netjoin_pending = False
    netjoined: set[str]

    # -- users -----------------------------------------------------------------------------------

    def _user_record(self, user: User) -> list[Any]:
        return [user.nick, user.username, user.host, user.realname, user.signon, user.away,
                "".join(sorted(user.modes)),
                {channel.name: channel.members[user] for channel in user.channels.values()},
                self.record_extras(user)]

    def _ghost(self, node: str, record: list[Any]) -> User | None:
        """Create or refresh the replica of a remote user; its channels follow in bursts."""
        if not self.valid(check_record, "user record", node, record):
            return None
        nick, username, host, realname, signon, away, modes = record[:7]
        state = self.core.state
        folded = casefold(nick)
        holder = state.users.get(folded)
        if holder is not None and self.ghost_node.get(holder) != node:
            if holder not in self.ghost_node:
                log.warn("{node} introduced {nick}, a nick of ours; ignored", node=node, nick=nick)
                return None
            self._split_user(holder, SPLIT_REASON)  # Redis gave the nick to another node since
            holder = None
        ghost = holder
        if ghost is None:
            ghost = User(host, _nothing, _nothing, signon)
            ghost.outbox = REMOTE_OUTBOX
            ghost.nick, ghost.folded, ghost.registered = nick, folded, True
            state.users[folded] = ghost
            self.ghosts.setdefault(node, set()).add(ghost)
            self.ghost_node[ghost] = node
        ghost.username, ghost.host, ghost.realname = username, host, realname
        ghost.signon, ghost.away, ghost.modes = signon, away, set(modes)
        self.adopt_extras(node, ghost, record[8] if len(record) > 8 else None, holder is None)
        return ghost

    def _split_user(self, ghost: User, reason: str) -> None:
        """A remote user is gone: QUIT to local neighbours, then forget it."""
        state = self.core.state
        Relay(Message("QUIT", (reason,), ghost.source), self.core.clock()).send_to(
            state.neighbours(ghost))
        state.remove(ghost, self.core.clock())
        node = self.ghost_node.pop(ghost, None)
        if node is not None:
            self.ghosts.get(node, set()).discard(ghost)
        self.remote_gone(ghost, node)

    def _split_node(self, node: str, reason: str) -> None:
        for ghost in list(self.ghosts.pop(node, ())):
            self._split_user(ghost, reason)
        self._missing_since.pop(node, None)

    # -- bursts ----------------------------------------------------------------------------------

    def _burst(self, rejoin: bool = False) -> list[Any]:
        """Everything other nodes need to know about this node's users and their channels;
        ``rejoin``: this node comes back from a split (its channels join the others' views)."""
        users = [u for u in self.core.state.users.values()
                 if u.registered and u not in self.ghost_node]
        channels: dict[str, Channel] = {}
        for user in users:
            channels.update(user.channels)
        return ["B", self.node_id, [self._user_record(u) for u in users],
                [self._channel_record(c) for c in channels.values()], rejoin]

    @staticmethod
    def _channel_record(channel: Channel) -> list[Any]:
        return [channel.name, channel.created, channel.topic, channel.topic_setter,
                channel.topic_time, "".join(sorted(channel.modes)), channel.key, channel.limit,
                *([[mask, setter, when] for mask, (setter, when) in entries.items()]
                  for entries in (channel.bans, channel.excepts, channel.invex))]

    def _apply_burst(self, node: str, users: list[Any], channels: list[Any],
                     rejoin: bool = False) -> None:
        """A node's whole state: its users and memberships become exactly these; its channels
        settle with this replica's by InspIRCd's rule (merge.py), and local members see what
        that changed. Views of equal age join only across a split: the burst of a node that
        comes back (``rejoin``), or the first burst of each node after this one came back;
        otherwise the stream's order already made them one (a burst may be a little stale)."""
        infos = {casefold(record[0]): record for record in channels
                 if self.valid(check_channel_record, "channel record", node, record)}
        present = {casefold(record[0]) for record in users}
        for ghost in list(self.ghosts.get(node, ())):
            if ghost.folded not in present:
                self._split_user(ghost, SPLIT_REASON)
        state = self.core.state
        shown: dict[str, merge.ChannelView] = {}
        counts: dict[str, bool] = {}
        join = rejoin is True or (self.netjoin_pending and node not in self.netjoined)
        self.netjoined.add(node)
        for folded, info in infos.items():
            channel = state.channels.get(folded)
            if channel is not None:
                shown[folded] = merge.view(channel)
                counts[folded] = merge.merge(channel, info, join)
        now = self.core.clock()
        for record in users:
            member = self._ghost(node, record)
            if member is None:
                continue
            self._burst_memberships(member, record[7], infos, counts, now)
        for folded, before in shown.items():
            channel = state.channels.get(folded)
            if channel is not None:
                merge.show(self.core, channel, before)

    def _burst_memberships(self, ghost: User, memberships: dict[str, str],
                           infos: dict[str, list[Any]], counts: dict[str, bool],
                           now: float) -> None:
        """A remote user's channels become exactly ``memberships`` (channel -> prefixes); its
        prefixes count where its node's view of the channel did not lose (``counts``)."""
        state = self.core.state
        wanted = {casefold(name): (name, prefixes) for name, prefixes in memberships.items()}
        for folded, joined in list(ghost.channels.items()):
            if folded not in wanted:
                Relay(Message("PART", (joined.name,), ghost.source), now).send_to(
                    joined.members, ghost)
                state.part(ghost, joined)
        for folded, (name, prefixes) in wanted.items():
            channel = state.channels.get(folded)
            info = infos.get(folded)
            if channel is None:
                channel = state.channels[folded] = Channel(name, info[1] if info else now)
                if info:
                    merge.adopt(channel, info)
                counts[folded] = True
            if not counts.get(folded, True):
                prefixes = ""
            if ghost not in channel.members:
                channel.members[ghost] = prefixes
                channel.forget_names()
                ghost.channels[folded] = channel
                self.remote_joined(ghost, channel,
                                   Relay(Message("JOIN", (channel.name,), ghost.source), now,
                                         account=ghost.account))
            elif channel.members[ghost] != prefixes:
                channel.set_prefixes(ghost, prefixes)
