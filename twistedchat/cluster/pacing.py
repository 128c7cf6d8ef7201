"""When a node's batch of events leaves: in the same reactor turn on a quiet network, at most
once per gather window when lines follow each other closely.

Every batch costs one Redis script call and a wake-up in every process of the network, whatever
it carries; on a busy channel at a moderate rate each line would otherwise travel alone. The
pacer lets the first line after a quiet spell leave at once (no added latency), and holds lines
that come within ``window`` seconds of the last batch until the window is over, so they share
one batch. A full batch (``node.MAX_BATCH``) still leaves at once, so nothing waits unbounded.
"""

from __future__ import annotations

from typing import Any


class FlushPacer:
    """Says how long the next batch waits: 0 after a quiet spell, else the rest of the window."""

    def __init__(self, clock: Any, window: float) -> None:
        if window < 0:
            raise ValueError("the gather window cannot be negative")
        self.clock = clock
        #: Seconds between two batches at the most (0: every reactor turn's lines go at once).
        self.window = window
        self._last_sent = float("-inf")

    def delay(self) -> float:
        """Seconds until the batch being gathered may leave."""
        if not self.window:
            return 0.0
        return max(0.0, self._last_sent + self.window - self.clock.seconds())

    def sent(self) -> None:
        """A batch just left."""
        self._last_sent = self.clock.seconds()
