"""One server process as a node of a network kept in Redis (``--cluster redis://host:port/db``).

The node listens on the core's :class:`~twistedchat.server.relay.RelayBus`: every relayed line
that every node needs (JOIN, PART, KICK, QUIT, NICK, TOPIC, MODE, INVITE, WALLOPS) becomes an
event of the network's ordered stream; what users change without a line for every node (user
modes, AWAY, SETNAME, accounts, METADATA, KILL, idle time) travels as events of
:mod:`twistedchat.cluster.carry`. Channel and private messages go only to the inboxes of the
nodes with members in the channel or the target user (inbox.py). What one reactor turn made goes
to Redis in one Lua call, events and inbox batches in the order they were made (sequence numbers,
capped streams, PUBLISH). Every node applies the events of every other node, and its own inbox,
in sequence order to its replica, where remote users are "ghost" :class:`User` objects whose
outbox discards; so NAMES, WHO, WHOIS and LIST answer from local state, and each line is encoded
for local members by the existing fan-out. Nicks are claimed in Redis (a Lua script) before
registration completes or a nick changes, channels before a JOIN creates one (claims.py);
conflicting channel changes settle in the stream's order (order.py). See docs/cluster.md.

This module holds the node's life cycle (connect, register, burst, leave); :class:`ClusterNode`
mixes in the rest by job: the heartbeat and reaping (liveness.py), nick claims (nicks.py), events
out (outgoing.py), events in (incoming.py) and the replicas of remote users (replicas.py).
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from twistedchat.cluster import scripts
from twistedchat.cluster.claims import ChannelClaims
from twistedchat.cluster.collisions import NickCollisions
from twistedchat.cluster.feed import Feed
from twistedchat.cluster.inbox import InboxOrder, Outboxes, inbox_channel, inbox_feed
from twistedchat.cluster.incoming import EventsIn
from twistedchat.cluster.liveness import HEARTBEAT, Liveness
from twistedchat.cluster.nicks import NickHolds
from twistedchat.cluster.order import StreamOrder
from twistedchat.cluster.outgoing import EventsOut
from twistedchat.cluster.pacing import FlushPacer
from twistedchat.cluster.replicas import SPLIT_REASON
from twistedchat.cluster.resp import RedisLink, RedisProtocol
from twistedchat.server.core import ServerCore
from twistedchat.server.net import direct_write_allowed
from twistedchat.server.state import User

log = Logger()


class ClusterNode(Liveness, NickHolds, EventsOut, EventsIn):
    """This process's membership in the network: nick claims, events out, replicas in."""

    def __init__(self, core: ServerCore, url: str, reactor: Any, node_id: str | None = None) -> None:
        self.core = core
        self.reactor = reactor
        self.prefix = f"twistedchat:{core.config.network}:"
        self.node_id = node_id or f"{core.config.name}/{os.getpid()}-{secrets.token_hex(3)}"
        self._own_batch = b'",' + json.dumps(self.node_id).encode() + b","
        self.incarnation = ""
        #: The epoch of the Redis data this node registered in (None before the first time).
        self.epoch: bytes | None = None
        #: Remote users by their node, and each one's node.
        self.ghosts: dict[str, set[User]] = {}
        self.ghost_node: dict[User, str] = {}
        #: Nodes that Redis lists as alive (from the last heartbeat), and since when one is missing.
        self._missing_since: dict[str, float] = {}
        #: Completed nick claims not yet used: user -> folded nick.
        self._claims: dict[User, str] = {}
        self.netjoined: set[str] = set()
        #: Claims waiting for Redis: folded nick -> user.
        self._pending: dict[str, User] = {}
        self._claiming: set[User] = set()
        self._outgoing: list[list[Any]] = []
        self._flush_call: Any = None
        self.pacer = FlushPacer(reactor, core.config.cluster_gather)
        self._hb_unanswered = 0
        self._ping_unanswered = 0
        self.unanswered_since: float | None = None
        self.cut_off = False
        #: Figures for tests and operators.
        self.dropped_batches = 0
        self.applied_batches = 0
        self._init_carried()
        self.beats = 0
        direct = direct_write_allowed(core.config)
        self.subscriber = RedisLink(reactor, url, "subscriber", self._prepare_subscriber, direct)
        self.control = RedisLink(reactor, url, "control", self._prepare_control, direct)
        self.order = StreamOrder()
        #: The network's events (every node reads them) and this node's private messages.
        self.inbox_order = InboxOrder(self)
        self.events = Feed(self.control, reactor, self.prefix + "log", self.prefix + "seq",
                           self.prefix + "epoch", self.inbox_order.apply_events,
                           self.inbox_order.events_restarted, self.inbox_order.events_lost)
        self.inbox = inbox_feed(self)
        self.outboxes = Outboxes(self)
        self._inbox_name = inbox_channel(self.prefix, self.node_id).encode()
        self._heartbeat = task.LoopingCall(self._beat)
        self._heartbeat.clock = reactor
        self._ready: list[defer.Deferred[None]] = []
        self.is_ready = False
        self._started_control = False
        self.channel_claims = ChannelClaims(self)
        self.collisions = NickCollisions(self)
        core.cluster = self
        core.bus.subscribe(self.on_relay)
        core.bus.before_output.append(self.publish_before_output)

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> defer.Deferred[None]:
        """Connect (forever, with backoff); fires once this node is registered and has said hello."""
        self.subscriber.start()
        return self.when_ready()

    def when_ready(self) -> defer.Deferred[None]:
        """Fires once the control connection is registered (at once if it is now)."""
        waiter: defer.Deferred[None] = defer.Deferred()
        if self.is_ready and self.control.current is not None:
            waiter.callback(None)
        else:
            self._ready.append(waiter)
        return waiter

    @defer.inlineCallbacks
    def stop(self, reason: str = SPLIT_REASON) -> Any:
        """Leave the network cleanly: nicks freed, local users gone from every other node."""
        if self._heartbeat.running:
            self._heartbeat.stop()
        self._flush()
        try:
            yield self.control.run(scripts.LEAVE, self.prefix, self.node_id, self.incarnation,
                                   reason)
        except Exception as error:
            log.info("leaving the network: {error}", error=error)
        yield self.control.stop()
        yield self.subscriber.stop()

    def _prepare_subscriber(self, link: RedisProtocol) -> defer.Deferred[Any]:
        link.listen(self._on_message)
        subscribed = link.execute("SUBSCRIBE", self.prefix + "events",
                                  inbox_channel(self.prefix, self.node_id))

        def then(_: Any) -> None:
            if not self._started_control:
                self._started_control = True
                self.control.start()
            else:
                self.reactor.callLater(0, self._catch_up)

        return subscribed.addCallback(then)

    @defer.inlineCallbacks
    def _prepare_control(self, link: RedisProtocol) -> Any:
        """A new control connection: register (a new incarnation), claim our nicks again, burst."""
        held = yield link.execute("HGET", self.prefix + "nodes", self.node_id)
        self.redis_answered()
        reaped = self.epoch is not None and held != self.incarnation.encode()
        self.incarnation = secrets.token_hex(8)
        epoch = yield scripts.REGISTER.run(link, self.prefix, self.node_id, self.incarnation,
                                           secrets.token_hex(8))
        if self.epoch is not None and epoch != self.epoch:
            log.warn("Redis lost the network's data (new epoch); registering our users again")
        self.epoch = epoch
        local = [u for u in self.core.state.users.values()
                 if u.registered and u not in self.ghost_node]
        if local:
            yield self.collisions.claim_again(link, local)
        yield self.channel_claims.resync(link)
        yield self.ban_sync.resync(link)
        self.order.forget()  # what this node sent before may never come back: the bursts settle it
        # Declared dead, Redis lost its data, or this node split the others for want of Redis:
        # it comes back from a split.
        rejoin = reaped or self.cut_off
        self.cut_off = False
        if rejoin:  # a netjoin: the others' first bursts join this node's views
            self.netjoin_pending, self.netjoined = True, set()
        self._outgoing[:0] = [["H", self.node_id], self._burst(rejoin=rejoin)]
        seq = yield self._send(link, self._take_batch()[1])
        self.redis_answered()
        if rejoin and isinstance(seq, int) and seq > 0:
            # What the others did meanwhile reaches this node as their answers to its H, never
            # as a replay of lines made without it.
            self.events.start_at(epoch, seq)
        if self.cut_off:  # cut off again while registering (Redis stalled): register again
            self.reactor.callLater(0, self.control.cut)
        self._hb_unanswered = 0
        if not self._heartbeat.running:
            self._heartbeat.start(HEARTBEAT, now=False)
        self.reactor.callLater(0, self._became_ready)
        self.reactor.callLater(0, self.ban_sync.announce)

    def _became_ready(self) -> None:
        self.is_ready = True
        waiters, self._ready = self._ready, []
        for waiter in waiters:
            if not waiter.called:  # a nick claim that gave up waiting
                waiter.callback(None)

    def burst_again(self) -> None:
        """Tell every node this node's users and channels again (after a forced rename)."""
        self._emit(self._burst())
