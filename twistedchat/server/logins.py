"""Brute-force brakes for logins: failed attempts per account and per address, as token buckets."""

from __future__ import annotations

from twistedchat.wire.flood import TokenBucket
from twistedchat.wire.names import casefold


class LoginLimiter:
    """Counts failed logins; ``wait`` says how long an account or address must wait before trying.

    Each account may fail ``account_burst`` times at once, then once per ``account_interval``
    seconds; each address likewise with its own figures. At most ``max_tracked`` keys are kept:
    when full, keys whose bucket has refilled go first, then the oldest.
    """

    def __init__(
        self,
        account_burst: int = 5,
        account_interval: float = 60.0,
        address_burst: int = 10,
        address_interval: float = 30.0,
        max_tracked: int = 10_000,
    ) -> None:
        self._figures = {
            "account": (account_burst, 1.0 / account_interval),
            "address": (address_burst, 1.0 / address_interval),
        }
        self.max_tracked = max_tracked
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def _keys(self, account: str | None, address: str | None) -> list[tuple[str, str]]:
        keys = []
        if account:
            keys.append(("account", casefold(account)))
        if address:
            keys.append(("address", address))
        return keys

    def wait(self, account: str | None, address: str | None, now: float) -> float:
        """Seconds before the next attempt for this account from this address (0.0: go ahead)."""
        buckets = (self._buckets.get(key) for key in self._keys(account, address))
        return max((bucket.wait(now) for bucket in buckets if bucket is not None), default=0.0)

    def failed(self, account: str | None, address: str | None, now: float) -> None:
        """Count one failed attempt against the account and the address."""
        for key in self._keys(account, address):
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room(now)
                burst, rate = self._figures[key[0]]
                bucket = self._buckets[key] = TokenBucket(burst, rate, now)
            bucket.take(now)

    def succeeded(self, account: str | None, now: float) -> None:
        """A good login clears the account's count (its address keeps its own)."""
        if account:
            self._buckets.pop(("account", casefold(account)), None)

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_tracked:
            return
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.stamp) * bucket.rate >= bucket.burst:
                del self._buckets[key]  # refilled: as if it had never failed
        while len(self._buckets) >= self.max_tracked:
            del self._buckets[next(iter(self._buckets))]
