"""Connection classes and connect throttling: the limits a connection gets, by its address.

A ``[[class]]`` table in the config file names CIDR ranges and the limits for connections from
them (per address, per CIDR group, registration timeout, sendq, flood); the most specific range
wins, and an address in no class gets the global settings. ``exempt`` lifts the connection
limits and the throttle (a school's NAT address, a web gateway). :class:`Throttle` refuses an
address (IPv6: its /64) that connected too often within a window, for a while.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twistedchat.server.config import ServerConfig

#: IPv6 addresses count per /64 in the per-address limit and the throttle: one host has a /64.
IPV6_HOST_PREFIX = 64
#: Most addresses the throttle remembers; the oldest are forgotten first past this.
THROTTLE_MEMORY = 100_000


@dataclass(frozen=True)
class ConnectionClass:
    """A ``[[class]]``: its ranges and the limits it sets (None: the global setting)."""

    name: str
    hosts: tuple[str, ...]
    max_per_ip: int | None = None
    max_per_cidr: int | None = None
    registration_timeout: float | None = None
    sendq: int | None = None
    flood_burst: int | None = None
    flood_rate: float | None = None
    exempt: bool = False

    def prefix_for(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
        """The longest of this class's ranges holding ``address``, or -1."""
        best = -1
        for host in self.hosts:
            network = ipaddress.ip_network(host, strict=False)
            if network.version == address.version and address in network:
                best = max(best, network.prefixlen)
        return best


#: The keys a ``[[class]]`` table may have (``-`` for ``_``), besides name, hosts and exempt.
CLASS_LIMITS = tuple(f.name for f in fields(ConnectionClass)
                     if f.name not in ("name", "hosts", "exempt"))


@dataclass(frozen=True)
class Limits:
    """What one connection is allowed: its class's values with the global ones filled in."""

    name: str
    max_per_ip: int
    max_per_cidr: int
    registration_timeout: float
    sendq: int
    flood_burst: int
    flood_rate: float
    exempt: bool


def parse_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address in a host as the server shows it, or None (``localhost``, a name)."""
    from twistedchat.server.bans import parse_address as parse

    return parse(host)


def limits_for(config: ServerConfig, host: str) -> Limits:
    """The limits for a connection from ``host``: its most specific class, else the defaults."""
    chosen: ConnectionClass | None = None
    address = parse_address(host) if config.classes else None
    if address is not None:
        best = -1
        for connection_class in config.classes:
            prefix = connection_class.prefix_for(address)
            if prefix > best:
                best, chosen = prefix, connection_class

    def pick(name: str) -> Any:
        value = getattr(chosen, name) if chosen is not None else None
        return getattr(config, name) if value is None else value

    return Limits(name=chosen.name if chosen is not None else "default",
                  exempt=bool(chosen and chosen.exempt),
                  **{name: pick(name) for name in CLASS_LIMITS})


def address_key(host: str) -> str:
    """What the per-address limit and the throttle count: the address (IPv6: its /64)."""
    address = parse_address(host)
    if address is None or address.version == 4:
        return host
    return str(ipaddress.ip_network(f"{address}/{IPV6_HOST_PREFIX}", strict=False))


def cidr_key(config: ServerConfig, host: str) -> str | None:
    """The CIDR group ``host`` counts in for ``max-per-cidr`` (``cidr-v4``/``cidr-v6``)."""
    address = parse_address(host)
    if address is None:
        return None
    prefix = config.cidr_v4 if address.version == 4 else config.cidr_v6
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class Throttle:
    """At most ``count`` connections per address in ``window`` seconds; past that, the address
    is refused for ``duration`` seconds. Memory is bounded (:data:`THROTTLE_MEMORY`)."""

    def __init__(self) -> None:
        self.recent: dict[str, deque[float]] = {}
        self.blocked: dict[str, float] = {}

    def allow(self, key: str, now: float, count: int, window: float, duration: float) -> bool:
        """Record a connection from ``key``; False if it is (now) refused."""
        if not count:
            return True
        until = self.blocked.get(key)
        if until is not None:
            if now < until:
                return False
            del self.blocked[key]
        times = self.recent.get(key)
        if times is None:
            if len(self.recent) >= THROTTLE_MEMORY:
                del self.recent[next(iter(self.recent))]
            times = self.recent[key] = deque()
        while times and now - times[0] >= window:
            times.popleft()
        times.append(now)
        if len(times) > count:
            del self.recent[key]
            if len(self.blocked) >= THROTTLE_MEMORY:
                del self.blocked[next(iter(self.blocked))]
            self.blocked[key] = now + duration
            return False
        return True

    def prune(self, now: float, window: float) -> None:
        """Forget addresses with nothing in the window and blocks that ended (the sweep)."""
        for key in [k for k, times in self.recent.items() if not times or now - times[-1] >= window]:
            del self.recent[key]
        for key in [k for k, until in self.blocked.items() if now >= until]:
            del self.blocked[key]
