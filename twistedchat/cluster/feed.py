"""One ordered feed of batches from Redis: pub/sub to be quick, a capped stream to be complete.

Each batch arrives as ``<epoch> <seq> <payload>`` on a pub/sub channel and is also kept in a
capped stream (entry id ``0-<seq>``). Pub/sub is at-most-once, so a receiver applies batches in
sequence order, holds those that come early, and reads a gap back with XRANGE; after its
subscriber connection comes back it reads what it missed the same way. A new epoch (Redis lost
its data, or the feed was made anew) starts the count again. Two feeds use this: the network's
events (every node) and each node's inbox of channel and private messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

if TYPE_CHECKING:
    from twistedchat.cluster.resp import RedisLink

log = Logger()

#: Batches held out of order while a gap is filled; past this the gap is given up.
MAX_HELD = 10_000


class Feed:
    """The receiving end of one feed: sequence order, gaps filled from the stream."""

    def __init__(self, control: RedisLink, reactor: Any, log_key: str, seq_key: str,
                 epoch_key: str, apply: Callable[[bytes], None],
                 restarted: Callable[[], None], lost: Callable[[str, int], None],
                 from_start: bool = False) -> None:
        self.control = control
        self.reactor = reactor
        self.log_key, self.seq_key, self.epoch_key = log_key, seq_key, epoch_key
        #: Called with each batch's payload, in order.
        self.apply = apply
        #: Called when the feed starts again (a new epoch), and when batches are gone for good
        #: (with why, and how many).
        self.restarted = restarted
        self.lost = lost
        #: Batches gone for good since the start (the stream no longer held them).
        self.lost_batches = 0
        #: Whether every batch of the feed is for this node (its inbox: nothing is sent to it
        #: before it registers), or it starts at the first batch it sees (the network's events).
        self.from_start = from_start
        #: Sequence of the last batch applied (None: none seen yet) and batches waiting for a gap.
        self.last_seq: int | None = None
        self.seen_epoch: bytes | None = None
        self.held: dict[int, bytes] = {}
        #: (epoch, sequence): batches of that epoch before that sequence are never applied.
        self.floor: tuple[bytes, int] | None = None
        self.filling = False
        self.gaps_filled = 0

    def receive(self, data: bytes) -> None:
        """One pub/sub message of this feed."""
        epoch, seq_text, payload = data.split(b" ", 2)
        seq = int(seq_text)
        if epoch != self.seen_epoch:
            # First batch seen, or the feed started again (its sequence restarted): start there.
            self.last_seq = seq - 1 if self.seen_epoch is None and not self.from_start else 0
            self.seen_epoch = epoch
            self.held.clear()
            self.restarted()
        self._raise_floor()
        assert self.last_seq is not None
        if seq <= self.last_seq:
            return  # seen already (a gap fill raced the live message), or before the floor
        self.held[seq] = payload
        self.drain()

    def drain(self) -> None:
        """Apply the batches that are next in order; ask for a gap's batches."""
        held = self.held
        while held and self.last_seq is not None and self.last_seq + 1 in held:
            self.last_seq += 1
            self.apply(held.pop(self.last_seq))
        if held and not self.filling:
            if len(held) > MAX_HELD:
                self.skip_gap("too many batches waiting")
            else:
                self.fill_gap()

    def catch_up(self) -> None:
        """The subscriber reconnected: read what was published while it was away."""
        if self.last_seq is None and not self.from_start:
            return
        asked = self.control.execute("MGET", self.epoch_key, self.seq_key)

        def got(reply: list[bytes | None]) -> None:
            epoch, value = reply
            if epoch is None or value is None or self.filling:
                return
            if epoch != self.seen_epoch:  # the feed started again while we were away
                self.seen_epoch, self.last_seq = epoch, 0
                self.held.clear()
                self.restarted()
            self._raise_floor()
            if int(value) > (self.last_seq or 0):
                self.fill_gap(int(value))

        asked.addCallbacks(got, lambda failure: None)

    def start_at(self, epoch: bytes, seq: int) -> None:
        """Never apply the batches of ``epoch`` before ``seq``: this node registered again after
        it was cut off, and its burst (and the others' answers to it) replace that history,
        which was made without it."""
        self.floor = (epoch, seq)
        self._raise_floor()
        self.drain()

    def _raise_floor(self) -> None:
        if self.floor is None or self.floor[0] != self.seen_epoch or self.last_seq is None:
            return
        floor = self.floor[1] - 1
        if self.last_seq < floor:
            self.last_seq = floor
            self.held = {seq: batch for seq, batch in self.held.items() if seq > floor}

    def fill_gap(self, upto: int | None = None) -> None:
        """Read the missing batches (up to ``upto``, or up to the first one held) back."""
        assert self.last_seq is not None
        first = self.last_seq + 1
        last = upto if upto is not None else min(self.held) - 1
        self.filling = True
        asked = self.control.execute("XRANGE", self.log_key, f"0-{first}", f"0-{last}")

        def got(entries: list[Any]) -> None:
            self.filling = False
            for entry_id, fields in entries:
                seq = int(entry_id.split(b"-")[1])
                if self.last_seq is not None and seq > self.last_seq:
                    self.held.setdefault(seq, fields[1])
            self.gaps_filled += 1
            assert self.last_seq is not None
            missing = self.last_seq + 1 not in self.held and (
                bool(self.held) or (upto is not None and upto > self.last_seq))
            if missing:
                self.skip_gap("the stream no longer holds them", upto)
            else:
                self.drain()

        def failed(failure: Any) -> None:
            self.filling = False
            self.reactor.callLater(0.05, self.drain)  # Redis away: try again shortly

        asked.addCallbacks(got, failed)

    def skip_gap(self, why: str, upto: int | None = None) -> None:
        """Batches are gone for good: apply what follows (the owner decides what else to do).
        The gap ends before the first batch held, or at ``upto`` when none is held."""
        assert self.last_seq is not None
        last = min(self.held) - 1 if self.held else upto
        if last is None or last <= self.last_seq:
            return
        count = last - self.last_seq
        self.last_seq = last
        self.lost_batches += count
        self.lost(why, count)
        self.drain()
