"""Lines for some nodes only, to their inboxes: decoded only by the nodes they are for.

A PRIVMSG, NOTICE or TAGMSG to a channel goes to the inboxes of the nodes with members in that
channel, one to a remote user to its node's inbox: not to the network's events, which every node
decodes. Each inbox is a pub/sub channel and a sequence of its own; what a turn sends to inboxes
is stored once, in a capped log every inbox shares (:data:`~twistedchat.cluster.scripts.SEND`).
The receiving node reads its inbox as a :class:`Feed` (sequence order, gaps read back from the
shared log, :class:`InboxFeed`), so the lines of one sender keep their order and none is lost or
repeated while the log holds them.

A reactor turn's output is a sequence of segments, kept in the order they were made: a batch of
events (the network's stream), then inbox batches (one per target node), then events again...
A user's JOIN then PRIVMSG, or PRIVMSG then PART, thus lands in two segments in that order, and
the whole turn goes in one script call, which publishes them in that order; a node reads both
feeds on one subscriber connection, so it receives them in that order too. When pub/sub lost
an event, an inbox batch written after it waits while it is read back (:class:`InboxOrder`).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from twistedchat.cluster.feed import Feed

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from twistedchat.cluster.node import ClusterNode

log = Logger()

#: The metrics counter (``core.counters``) of inbox batches lost for good: private messages
#: for this node's users that its inbox no longer held when the node came to read them.
INBOX_LOST = "cluster_inbox_batches_lost"


def inbox_channel(prefix: str, node_id: str) -> str:
    """The pub/sub channel (and stream key) of a node's inbox."""
    return f"{prefix}inbox:{node_id}"


def inbox_feed(node: ClusterNode) -> InboxFeed:
    """This node's inbox, as it reads it (each batch after the events it follows)."""

    def lost(why: str, count: int) -> None:
        counters = node.core.counters
        counters[INBOX_LOST] = counters.get(INBOX_LOST, 0) + count
        log.warn("{count} batches of channel and private messages for this node's users were lost ({why}); "
                 "{total} since the start", count=count, why=why, total=counters[INBOX_LOST])

    return InboxFeed(node, lost)


#: Entries of the shared inbox log read per XRANGE while a gap is filled.
READ_PAGE = 500


class InboxFeed(Feed):
    """This node's inbox: batches published to this node alone, kept in the log every inbox
    shares (:data:`~twistedchat.cluster.scripts.SEND`: one entry per sending turn, listing its
    targets with their sequence numbers). A gap is read back from the entry of the last batch
    applied, keeping the batches addressed to this node."""

    def __init__(self, node: ClusterNode, lost: Callable[[str, int], None]) -> None:
        prefix, me = node.prefix, node.node_id
        super().__init__(node.control, node.reactor, f"{prefix}ilog", f"{prefix}is:{me}",
                         f"{prefix}ie:{me}", self._apply, self._restarted, lost,
                         from_start=True)
        self._receive = node.inbox_order.receive
        self._me = me.encode()
        #: The log entry of the last batch applied (None: none since the inbox (re)started).
        self.last_entry: int | None = None

    def receive(self, data: bytes) -> None:
        """One pub/sub message of this inbox: one batch, or one sent to several nodes at once
        (``*<count> <node> <epoch> <seq>... <payload>``), of which this node takes its own."""
        if data[:1] != b"*":
            super().receive(data)
            return
        count_text, rest = data[1:].split(b" ", 1)
        count = int(count_text)
        parts = rest.split(b" ", 3 * count)
        for at in range(0, 3 * count, 3):
            if parts[at] == self._me:
                self.accept(parts[at + 1], int(parts[at + 2]), parts[-1])
                return

    def _apply(self, payload: bytes) -> None:
        entry = entry_of(payload)
        if entry is not None:
            self.last_entry = entry
        self._receive(payload)

    def _restarted(self) -> None:
        self.last_entry = None  # (a new epoch may be a new log: Redis lost its data)

    def read_back(self, first: int, last: int) -> Deferred[list[tuple[int, bytes]]]:
        """This node's batches ``first`` to ``last`` still in the shared log: from the entry of
        the last batch applied (or the log's start) to the entry of the batch after ``last``
        when it is held (or the log's end), a page at a time."""
        following = self.held.get(last + 1)
        end = entry_of(following) if following is not None else None
        stop = "+" if end is None else f"0-{end}"
        found: list[tuple[int, bytes]] = []

        def page(start: str) -> Deferred[list[tuple[int, bytes]]]:
            asked = self.control.execute("XRANGE", self.log_key, start, stop, "COUNT", READ_PAGE)

            def got(entries: list[Any]) -> Any:
                for entry_id, fields in entries:
                    found.extend(self._mine(entry_id.split(b"-")[1], fields, first, last))
                if len(entries) < READ_PAGE or (found and found[-1][0] >= last):
                    return found
                return page(f"0-{int(entries[-1][0].split(b'-')[1]) + 1}")

            return asked.addCallback(got)

        return page("-" if self.last_entry is None else f"0-{self.last_entry}")

    def _mine(self, entry: bytes, fields: list[bytes], first: int,
              last: int) -> Iterator[tuple[int, bytes]]:
        """The batches of one log entry addressed to this node, between ``first`` and ``last``."""
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        for delivery in values[b"d"].split(b"\n"):
            target, seq_text, after, at = delivery.rsplit(b" ", 3)
            seq = int(seq_text)
            if target == self._me and first <= seq <= last:
                yield seq, after + b":" + entry + b" " + values[at]


def entry_of(payload: bytes) -> int | None:
    """The shared log entry an inbox batch was stored in (None: not said)."""
    if payload[:1] == b"[":  # (written without the events' sequence)
        return None
    _, said, entry = payload.partition(b" ")[0].partition(b":")
    return int(entry) if said else None


#: Seconds an inbox batch waits for the events it follows before it is applied anyway.
MAX_WAIT = 1.0


class InboxOrder:
    """Inbox batches applied after the events sequenced before them.

    Each inbox batch carries the sequence number of the network's last event when it was
    written. When pub/sub lost that event (or the subscriber was away), the batch waits while the
    event is read back, so a JOIN comes before the PRIVMSG that followed it; it is applied anyway
    when the events start again or are lost for good, or after :data:`MAX_WAIT`. (An event that
    follows a lost inbox batch is not held back: events carry nothing about inboxes.)
    """

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        #: Inbox batches waiting, in order: (the events' sequence they follow, the batch).
        self.waiting: deque[tuple[int, bytes]] = deque()
        self._timer: Any = None
        #: Batches that had to wait (figures for tests and operators).
        self.waited = 0

    def receive(self, payload: bytes) -> None:
        """One inbox batch, in the inbox's order: applied now, or once its events are."""
        if payload[:1] == b"[":  # (written without the events' sequence)
            after, body = 0, payload
        else:
            head, body = payload.split(b" ", 1)
            after = int(head.split(b":", 1)[0])  # (``<after>:<log entry>``)
        if not self.waiting and self._caught_up(after):
            self.node.apply_batch(body)
            return
        self.waiting.append((after, body))
        self.waited += 1
        events = self.node.events
        if not self._caught_up(after) and not events.filling and not events.held:
            events.fill_gap(after)  # nothing told the events feed yet that it missed some
        if self._timer is None:
            self._timer = self.node.reactor.callLater(MAX_WAIT, self.release)

    def _caught_up(self, after: int) -> bool:
        last = self.node.events.last_seq
        return last is None or last >= after

    def apply_events(self, payload: bytes) -> None:
        """One batch of the network's events (the events feed's order), then the inbox batches
        that waited for it. A node cut off from Redis applies no events until it registers
        again: it split the other nodes' users, and their bursts bring them back then."""
        if not self.node.cut_off:
            self.node.apply_batch(payload)
        waiting = self.waiting
        while waiting and self._caught_up(waiting[0][0]):
            self.node.apply_batch(waiting.popleft()[1])
        if not waiting:
            self._stop_timer()

    def events_restarted(self) -> None:
        """The events feed starts again (a new epoch): what waited goes now."""
        self.node.order.forget()
        self.release()

    def events_lost(self, why: str, *more: Any) -> None:
        """Events are gone for good: what waited goes now, and the network resynchronises.
        (``more``: whatever else the feed says about them, passed on.)"""
        self.release()
        self.node._events_lost(why, *more)

    def release(self) -> None:
        """Apply every waiting batch (its events are late or gone)."""
        self._stop_timer()
        while self.waiting:
            self.node.apply_batch(self.waiting.popleft()[1])

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


class Outboxes:
    """This turn's lines for other nodes, in order: sealed segments, then the open inbox segment.

    The node keeps the open segment of events (``node._outgoing``); at most one of the two open
    segments holds anything, since adding to one seals the other.
    """

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        #: The open inbox segment: target node -> its events (one list shared by the targets of
        #: a channel line).
        self.waiting: dict[str, list[list[Any]]] = {}
        #: Events in the open inbox segment (one per target node).
        self.count = 0
        #: Sealed segments as SEND's (target, payload) pairs ("" for the network's events), the
        #: events they hold, and the numbers of the event batches among them (order.py).
        self.sealed: list[str | bytes] = []
        self.sealed_events = 0
        self.numbers: list[int] = []
        #: Inbox batches that could not be sent (Redis away): dropped, never queued.
        self.dropped = 0

    def add(self, target_node: str, event: list[Any]) -> None:
        """``event`` to one node's inbox, after everything this turn made so far."""
        self.add_to((target_node,), event)

    def add_to(self, target_nodes: Iterable[str], event: list[Any]) -> None:
        """``event`` to each of these nodes' inboxes."""
        if self.node._outgoing:
            self.node._seal_events()
        waiting = self.waiting
        for target in target_nodes:
            waiting.setdefault(target, []).append(event)
            self.count += 1

    def seal(self) -> None:
        """Close the open inbox segment: one batch per target node (targets that get the same
        events, as the nodes of one channel do, share one encoding)."""
        if not self.waiting:
            return
        waiting, self.waiting = self.waiting, {}
        self.sealed_events += self.count
        self.count = 0
        # The events' ids (they live until the end) -> their JSON's place among SEND's ARGV,
        # which the script reads for "=<n>": a payload is sent once however many nodes get it.
        sent: dict[tuple[int, ...], str] = {}
        sealed = self.sealed
        for target, events in waiting.items():
            key = tuple(map(id, events))
            reference = sent.get(key)
            if reference is None:
                sent[key] = f"={len(sealed) + 6}"  # ARGV: prefix, node, incarnation, epoch, pairs
                sealed += (target, json.dumps(events, separators=(",", ":")))
            else:
                sealed += (target, reference)

    def seal_events(self, number: int, payload: bytes, events: int) -> None:
        """A batch of the network's events, after the segments before it."""
        self.sealed += ("", payload)
        self.sealed_events += events
        self.numbers.append(number)

    @property
    def pending(self) -> int:
        """Events waiting in this turn, sealed or not (the node's open events segment aside)."""
        return self.count + self.sealed_events

    def take(self) -> tuple[list[str | bytes], list[int]]:
        """Everything of this turn as SEND's pairs, and its event batches' numbers."""
        self.seal()
        pairs, numbers = self.sealed, self.numbers
        self.sealed, self.numbers, self.sealed_events = [], [], 0
        return pairs, numbers

    def count_dropped(self, pairs: list[str | bytes]) -> None:
        """These segments were not sent."""
        inboxes = sum(1 for target in pairs[::2] if target)
        self.dropped += inboxes
        self.node.dropped_batches += len(pairs) // 2 - inboxes
