"""Private messages to one node's inbox: decoded only by the node of the user they are for.

A PRIVMSG, NOTICE or TAGMSG to a remote user is not an event of the whole network: it goes to
its target node's inbox (a pub/sub channel and a capped stream of its own, see
:data:`~twistedchat.cluster.scripts.INBOX`), in batches per target node, one script call per
reactor turn for all of them. The receiving node reads its inbox as a :class:`Feed` (sequence
order, gaps read back from the stream), so messages from one sender to one target keep their
order and none is lost or repeated while the stream holds them.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from twistedchat.cluster import scripts
from twistedchat.cluster.feed import Feed
from twistedchat.cluster.resp import RedisUnavailable

if TYPE_CHECKING:
    from twistedchat.cluster.node import ClusterNode

log = Logger()

#: The metrics counter (``core.counters``) of inbox batches lost for good: private messages
#: for this node's users that its inbox no longer held when the node came to read them.
INBOX_LOST = "cluster_inbox_batches_lost"


def inbox_channel(prefix: str, node_id: str) -> str:
    """The pub/sub channel (and stream key) of a node's inbox."""
    return f"{prefix}inbox:{node_id}"


def inbox_feed(node: ClusterNode) -> Feed:
    """This node's inbox, as it reads it."""
    prefix, me = node.prefix, node.node_id

    def lost(why: str, count: int) -> None:
        counters = node.core.counters
        counters[INBOX_LOST] = counters.get(INBOX_LOST, 0) + count
        log.warn("{count} batches of private messages for this node's users were lost ({why}); "
                 "{total} since the start", count=count, why=why, total=counters[INBOX_LOST])

    return Feed(node.control, node.reactor, inbox_channel(prefix, me), f"{prefix}is:{me}",
                f"{prefix}ie:{me}", node.apply_batch, lambda: None, lost, from_start=True)


class Outboxes:
    """Private messages waiting for this turn's flush, by target node."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.waiting: dict[str, list[list[Any]]] = {}
        self.count = 0
        #: Batches that could not be sent (Redis away): dropped, never queued.
        self.dropped = 0

    def add(self, target_node: str, event: list[Any]) -> None:
        self.waiting.setdefault(target_node, []).append(event)
        self.count += 1

    def flush(self) -> None:
        """Send every target node its batch, in one script call."""
        if not self.waiting:
            return
        waiting, self.waiting, self.count = self.waiting, {}, 0
        node = self.node
        if node.control.current is None:
            self.dropped += len(waiting)
            return
        pairs = [text for target, events in waiting.items()
                 for text in (target, json.dumps(events, separators=(",", ":")))]
        sent = node.control.run(scripts.INBOX, node.prefix, node.node_id, node.incarnation,
                                secrets.token_hex(8), *pairs)
        sent.addErrback(self._failed, len(waiting))

    def _failed(self, failure: Any, batches: int) -> None:
        self.dropped += batches
        if not failure.check(RedisUnavailable):
            log.failure("sending private messages failed", failure)
