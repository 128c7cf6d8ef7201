"""Who creates a channel, decided in Redis: one operator however many nodes race to create it.

A JOIN that would create a channel this node's replica does not have waits (the user's later
lines wait behind it, as a nick claim does) for :data:`~twistedchat.cluster.scripts.CHANNEL_CLAIM`.
The first claim creates the channel: its user gets ``@`` and the claim's creation time, which
a ``C`` event gives every replica. A later claim finds the channel made (its creator's JOIN may
not have reached this node yet): the user joins it without ``@``. Redis also counts which
nodes have local members in each channel; when the last one leaves, the claim goes, so the next
JOIN creates the channel again. While Redis is away a node creates channels on its own, and the
resync on its return settles them (the lower creation time wins, as InspIRCd does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from twistedchat.cluster import merge, scripts
from twistedchat.cluster.resp import RedisProtocol
from twistedchat.server.state import Channel, User
from twistedchat.wire.names import casefold, valid_channel_name

if TYPE_CHECKING:
    from twistedchat.cluster.node import ClusterNode

log = Logger()

#: A grant: whether this node created the channel, and its creation time (None: made while
#: Redis was away, with no claim).
Grant = tuple[bool, float | None]


class ChannelClaims:
    """This node's channel claims: held JOINs, and which channels Redis counts it in."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        #: Channels Redis counts this node in (it has, or just had, local members there).
        self.noted: set[str] = set()
        #: Channels whose local membership changed this turn (checked against ``noted``).
        self.touched: set[str] = set()
        #: Answered claims not yet used by the JOIN that asked: user -> folded channel -> grant.
        self.granted: dict[User, dict[str, Grant]] = {}
        #: Creation times to announce after the creator's JOIN event (folded channel -> time).
        self.announce: dict[str, float] = {}
        self._settle_call: Any = None

    # -- the JOIN hook ---------------------------------------------------------------------------

    def holds(self, joiner: User, names: list[str], rerun: Callable[[], None],
              asker: User | None = None) -> bool:
        """Whether ``joiner`` may join ``names`` now: False while a claim for a channel the JOIN
        would create is asked of Redis; ``rerun`` runs the command again once it is answered,
        the input of ``asker`` (the one who sent it: the joiner, or an operator's SAJOIN) held
        until then. A registered channel ChanServ revived empty is created too."""
        node = self.node
        state = node.core.state
        granted = self.granted.get(joiner, {})
        wanted = []
        for name in names:
            if not valid_channel_name(name) or casefold(name) in granted:
                continue
            channel = state.find_channel(name)
            if channel is None or not channel.members:
                wanted.append(casefold(name))
        wanted = list(dict.fromkeys(wanted))
        if not wanted or node.control.current is None:
            return True  # nothing to create, or Redis away: created here, settled on the resync
        if self.touched:
            self.settle()  # a LEAVE of one of these channels goes to Redis before the claim
        created = repr(node.core.clock())
        claim = node.control.run(scripts.CHANNEL_CLAIM, node.prefix, node.node_id,
                                 node.incarnation, "new",
                                 *[t for f in wanted for t in (f, created)])
        asker = asker or joiner
        claim.addBoth(self._claimed, joiner, asker, wanted, rerun)
        node.core.hold_input(asker, claim)
        return False

    def _claimed(self, result: Any, joiner: User, asker: User, wanted: list[str],
                 rerun: Callable[[], None]) -> None:
        node = self.node
        grants = self.granted.setdefault(joiner, {})
        if isinstance(result, list):
            for index, folded in enumerate(wanted):
                grants[folded] = (result[2 * index] == 1, float(result[2 * index + 1]))
            self.noted.update(wanted)
            self.touch(*wanted)  # if the user is gone, or no longer joins, the count goes
        else:
            if result == -1:
                node.control.cut()  # fenced: this node registers again
            for folded in wanted:
                grants[folded] = (True, None)
        connections = node.core.state.connections
        if joiner not in connections or asker not in connections:
            self.granted.pop(joiner, None)
            return
        try:
            rerun()
        finally:
            self.granted.pop(joiner, None)

    def created(self, name: str, created: float) -> None:
        """A ``C`` event: the channel's creation time, as its claim in Redis has it. A replica
        holding an older one keeps it (a channel made apart, which wins: merge.py)."""
        channel = self.node.core.state.find_channel(name)
        if channel is not None and isinstance(created, (int, float)):
            channel.created = min(channel.created, created)

    def joined(self, user: User, channel: Channel) -> None:
        """``user`` (local) has just joined ``channel``: apply its claim, if it asked one."""
        grant = self.granted.get(user, {}).pop(channel.folded, None)
        if grant is None:
            return
        created_here, created = grant
        if created is None:
            return
        channel.created = created
        if created_here:  # (with @ as a lone server gives it; none in a revived registered one)
            self.announce[channel.folded] = created
        elif channel.members[user]:
            channel.set_prefixes(user, "")  # another node created it first

    # -- Redis's count of the nodes with members in a channel -------------------------------------

    def relayed(self, command: str, nick: str, params: Sequence[str]) -> None:
        """A local user's line went out to the network: a JOIN, PART, KICK or QUIT may change
        which channels this node has members in; a channel's creation time follows the JOIN that
        created it (a ``C`` event)."""
        node = self.node
        if command == "JOIN":
            folded = casefold(params[0])
            if folded not in self.noted:
                self.touch(folded)
            created = self.announce.pop(folded, None)
            if created is not None:
                node.emit(["C", node.node_id, params[0], created])
        elif command in ("PART", "KICK"):
            self.touch(casefold(params[0]))
        elif command == "QUIT":
            user = node.core.state.find_user(nick)
            if user is not None and user not in node.ghost_node:
                self.touch(*user.channels)

    def touch(self, *folded: str) -> None:
        """Local membership of these channels may have changed: settle Redis's count this turn."""
        self.touched.update(folded)
        if self._settle_call is None:
            self._settle_call = self.node.reactor.callLater(0, self.settle)

    def settle(self) -> None:
        """Tell Redis which touched channels this node now has (or no longer has) members in."""
        if self._settle_call is not None and self._settle_call.active():
            self._settle_call.cancel()
        self._settle_call = None
        node = self.node
        channels = node.core.state.channels
        note: list[str] = []
        leave: list[str] = []
        for folded in self.touched:
            channel = channels.get(folded)
            local = channel is not None and any(m not in node.ghost_node for m in channel.members)
            if local and folded not in self.noted:
                assert channel is not None
                note += [folded, repr(channel.created)]
                self.noted.add(folded)
            elif not local and folded in self.noted:
                leave.append(folded)
                self.noted.discard(folded)
        self.touched.clear()
        if note:
            node.control.run(scripts.CHANNEL_CLAIM, node.prefix, node.node_id, node.incarnation,
                             "new", *note).addErrback(_ignored)
        if leave:
            node.control.run(scripts.CHANNEL_LEAVE, node.prefix, node.node_id,
                             *leave).addErrback(_ignored)

    @defer.inlineCallbacks
    def resync(self, link: RedisProtocol) -> Any:
        """A new registration: Redis counts this node in exactly the channels it has members in."""
        node = self.node
        mine = {folded: channel for folded, channel in node.core.state.channels.items()
                if any(m not in node.ghost_node for m in channel.members)}
        counted = yield link.execute("SMEMBERS", f"{node.prefix}nc:{node.node_id}")
        stale = [c for c in (folded.decode() for folded in counted) if c not in mine]
        if stale:
            yield scripts.CHANNEL_LEAVE.run(link, node.prefix, node.node_id, *stale)
        if mine:
            results = yield scripts.CHANNEL_CLAIM.run(
                link, node.prefix, node.node_id, node.incarnation, "again",
                *[t for folded, channel in mine.items() for t in (folded, repr(channel.created))])
            if isinstance(results, list):
                for channel, recorded in zip(mine.values(), results[1::2], strict=True):
                    self._settle_time(channel, float(recorded))
        self.noted = set(mine)

    def _settle_time(self, channel: Channel, recorded: float) -> None:
        """Redis recorded an older creation time for ``channel`` than this node's (another node
        made it apart: a partition, or Redis came back empty): this node's view lost, as the
        other node's burst will show every replica, so it drops its modes and prefixes now and
        tells its members (merge.py)."""
        if recorded < channel.created:
            before = merge.view(channel)
            merge.lose(channel, recorded)
            merge.show(self.node.core, channel, before)


def _ignored(failure: Any) -> None:
    """Redis away: the resync on its return counts this node's channels again."""
