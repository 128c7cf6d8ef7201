"""A node's liveness: its heartbeat to Redis, and the reaping of nodes that fell silent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from twistedchat.cluster import scripts
from twistedchat.cluster.parts import NodeParts
from twistedchat.cluster.replicas import SPLIT_REASON
from twistedchat.cluster.resp import RedisUnavailable
from twistedchat.server.state import User

log = Logger()

#: A node silent this long (ms, Redis time) is reaped by the others.
DEAD_AFTER_MS = 3000
#: Seconds between heartbeats.
HEARTBEAT = 1.0
#: Heartbeats left unanswered before the control connection is cut and redialled.
HEARTBEATS_MISSED = 3
#: Nicks of dead nodes freed per heartbeat (the rest on the next one).
REAP_CHUNK = 1000


class Liveness(NodeParts):
    """The part of :class:`~twistedchat.cluster.node.ClusterNode` that beats and reaps.

    A mixin: the node provides the links, its identity in Redis, its ghosts and ``_split_node``.
    """

    ghosts: dict[str, set[User]]
    live_nodes: set[str]
    #: Heartbeats (control) and PINGs (subscriber) not answered yet, and heartbeats answered.
    _hb_unanswered: int
    _ping_unanswered: int
    beats: int
    #: Since when (reactor seconds) a node with ghosts here is missing from Redis's live list.
    _missing_since: dict[str, float]

    if TYPE_CHECKING:
        def _split_node(self, node: str, reason: str) -> None: ...

    def _beat(self) -> None:
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

    def _beat_answered(self, reply: list[Any]) -> None:
        self._hb_unanswered = 0
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
