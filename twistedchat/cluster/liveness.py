"""A node's liveness: its heartbeat to Redis, the reaping of nodes that fell silent, and the
split of every other node's users when this node has had no working Redis for as long."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from twistedchat.cluster import scripts
from twistedchat.cluster.parts import NodeParts
from twistedchat.cluster.replicas import SPLIT_REASON
from twistedchat.cluster.resp import RedisUnavailable
from twistedchat.server.state import User

if TYPE_CHECKING:
    from twistedchat.cluster.inbox import InboxOrder

log = Logger()

#: A node silent this long (ms, Redis time) is reaped by the others; a node that has had no
#: answer from Redis this long (reactor time) splits the others' users (it is cut off).
DEAD_AFTER_MS = 3000
#: Seconds between heartbeats.
HEARTBEAT = 1.0
#: Heartbeats left unanswered before the control connection is cut and redialled.
HEARTBEATS_MISSED = 3
#: Nicks of dead nodes freed per heartbeat (the rest on the next one).
REAP_CHUNK = 1000
#: The metrics counter of the times this node found itself cut off from Redis.
CUT_OFF = "cluster_cut_off"


class Liveness(NodeParts):
    """The part of :class:`~twistedchat.cluster.node.ClusterNode` that beats and reaps.

    A mixin: the node provides the links, its identity in Redis, its ghosts and ``_split_node``.
    """

    ghosts: dict[str, set[User]]
    ghost_node: dict[User, str]
    live_nodes: set[str]
    #: Heartbeats (control) and PINGs (subscriber) not answered yet, and heartbeats answered.
    _hb_unanswered: int
    _ping_unanswered: int
    beats: int
    #: Since when (reactor seconds) a node with ghosts here is missing from Redis's live list.
    _missing_since: dict[str, float]
    #: When (reactor seconds) the oldest heartbeat Redis has not answered left (None: Redis
    #: answered the last one, or the registration since). A heartbeat fails at once while the
    #: control link is down, so this is also about when the link went.
    unanswered_since: float | None
    #: Whether this node split every remote user for want of Redis and has not registered again
    #: since (its next registration is a return from a split, and events wait for it).
    cut_off: bool
    inbox_order: InboxOrder

    if TYPE_CHECKING:
        def _split_node(self, node: str, reason: str) -> None: ...

    def _beat(self) -> None:
        self._check_cut_off()
        if self.unanswered_since is None:
            self.unanswered_since = self.reactor.seconds()
        if self._ping_unanswered >= HEARTBEATS_MISSED:
            log.warn("the Redis subscriber connection is silent; reconnecting")
            self._ping_unanswered = 0
            self.subscriber.cut()
        elif self.subscriber.current is not None:
            self._ping_unanswered += 1
            self.subscriber.execute("PING").addCallbacks(self._pong, lambda failure: None)
        if self._hb_unanswered >= HEARTBEATS_MISSED:
            log.warn("Redis has not answered {n} heartbeats; reconnecting", n=self._hb_unanswered)
            self._hb_unanswered = 0
            self.control.cut()
            return
        self._hb_unanswered += 1
        beat = self.control.run(scripts.HEARTBEAT, self.prefix, self.node_id, self.incarnation,
                                DEAD_AFTER_MS, REAP_CHUNK)
        beat.addCallbacks(self._beat_answered, self._beat_failed)

    def _pong(self, _: Any) -> None:
        self._ping_unanswered = 0

    def redis_answered(self) -> None:
        """Redis answered this node's control connection: it is not cut off for now."""
        self.unanswered_since = None

    def _check_cut_off(self) -> None:
        """No working Redis for DEAD_AFTER_MS (the control link down, or its heartbeats
        unanswered, that long), the time after which the others reap this node: split their
        users here.

        Local users see every remote user leave with ``*.net *.split`` (MONITOR, WHOWAS, as a
        reap shows it) and channels keep their local members; local delivery goes on. The
        control link is cut so that the next registration, once Redis answers again, is a return
        from a split: it asks every node for its state (``H``) and their bursts bring their
        users back with JOINs. A blip shorter than that splits nobody.
        """
        since = self.unanswered_since
        if self.cut_off or since is None or self.reactor.seconds() - since < DEAD_AFTER_MS / 1000:
            return
        remote = len(self.ghost_node)
        log.warn("no working Redis for {seconds} s: this node is cut off; splitting the "
                 "{count} users of the other nodes", seconds=DEAD_AFTER_MS / 1000, count=remote)
        self.cut_off = True
        counters = self.core.counters
        counters[CUT_OFF] = counters.get(CUT_OFF, 0) + 1
        self.live_nodes = {self.node_id}
        self.inbox_order.release()  # what waited for events goes now, before the split
        for node in list(self.ghosts):
            self._split_node(node, SPLIT_REASON)
        self._missing_since.clear()
        self._hb_unanswered = 0
        self.control.cut()

    def _beat_answered(self, reply: list[Any]) -> None:
        self._hb_unanswered = 0
        self.redis_answered()
        self.beats += 1
        if reply[0] == 0:
            log.warn("this node was declared dead (fenced); registering again")
            self.control.cut()
            return
        live = {node.decode() for node in reply[1:]}
        self.live_nodes = live
        now = self.reactor.seconds()
        for node in list(self.ghosts):
            if node in live:
                self._missing_since.pop(node, None)
            elif now - self._missing_since.setdefault(node, now) >= DEAD_AFTER_MS / 1000:
                self._split_node(node, SPLIT_REASON)

    def _beat_failed(self, failure: Any) -> None:
        if not failure.check(RedisUnavailable):
            log.failure("heartbeat failed", failure)
