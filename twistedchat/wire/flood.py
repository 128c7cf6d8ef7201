"""Per-client limits that need time but no I/O: the flood token bucket."""

from __future__ import annotations


class TokenBucket:
    """``burst`` lines at once, then ``rate`` lines per second.

    ``take(now)`` spends a token and returns 0.0, or returns how many seconds remain until one is
    available (and spends nothing).
    """

    __slots__ = ("burst", "rate", "tokens", "stamp")

    #: The shortest wait ``take`` asks for. Refilling for exactly the wait it returned can land a
    #: rounding error short of a whole token; the wait then asked for would be too small to move a
    #: clock at today's UNIX time, and a timer set for it would be due "now", again and again.
    MIN_WAIT = 0.001

    def __init__(self, burst: int, rate: float, now: float) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("a token bucket needs burst >= 1 and rate > 0")
        self.burst = burst
        self.rate = rate
        self.tokens = float(burst)
        self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0.0: one is), spending nothing."""
        tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, now: float) -> float:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return max((1.0 - self.tokens) / self.rate, self.MIN_WAIT)
