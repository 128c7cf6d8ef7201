"""Server bans: K-lines (``user@host`` masks) and D-lines (addresses and CIDR ranges), with expiry.

:class:`ServerBans` is plain Python (the core asks it at connect and at registration); what keeps
the bans across restarts is a :class:`BanStore`: :class:`FileBanStore` writes the ``bans-file``
setting's file (one ban a line, tab-separated, replaced atomically on each change); a database
store can implement the same two methods later.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from twistedchat.wire.names import casefold, mask_matches

KLINE = "K"
DLINE = "D"
#: The most bans of each kind kept: every connection is checked against the D-lines.
MAX_BANS = 10_000
#: Longest reason kept, in characters.
MAX_REASON = 200
#: The file format's first line.
FILE_HEADER = "# twistedchat server bans v1: kind, mask, set at, expires (0: never), by, reason"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BanError(ValueError):
    """A ban mask, duration or file line that cannot be used; the message says why."""


@dataclass(frozen=True)
class ServerBan:
    """One K-line or D-line."""

    kind: str
    mask: str
    reason: str
    set_by: str
    set_at: float
    #: when it lapses (a Unix time), or 0 for never
    expires: float = 0.0

    def expired(self, now: float) -> bool:
        return bool(self.expires) and now >= self.expires

    def to_line(self) -> str:
        fields = (self.kind, self.mask, f"{self.set_at:.0f}", f"{self.expires:.0f}",
                  self.set_by, self.reason)
        return "\t".join(field.replace("\t", " ").replace("\n", " ") for field in fields)

    @classmethod
    def from_line(cls, line: str) -> ServerBan:
        parts = line.split("\t")
        if len(parts) != 6:
            raise BanError("expected 6 tab-separated fields")
        kind, mask, set_at, expires, set_by, reason = parts
        if kind not in (KLINE, DLINE):
            raise BanError(f"unknown kind {kind!r}")
        try:
            set_time, expiry = float(set_at), float(expires)
        except ValueError:
            raise BanError("times must be numbers") from None
        mask = kline_mask(mask) if kind == KLINE else str(dline_network(mask))
        return cls(kind, mask, reason, set_by, set_time, expiry)


def kline_mask(mask: str) -> str:
    """A checked ``user@host`` mask (``host`` alone means ``*@host``)."""
    if "@" not in mask:
        mask = "*@" + mask
    user, _, host = mask.partition("@")
    if not user or not host or " " in mask or "," in mask or "@" in host or len(mask) > 100:
        raise BanError(f"{mask!r} is not a user@host mask")
    if host.strip("*?.:") == "":
        raise BanError(f"{mask!r} would match every host")
    return mask


def dline_network(mask: str) -> Network:
    """An address or CIDR range (IPv4 or IPv6); ``0::1`` as the server shows ``::1`` is taken."""
    text = mask[1:] if mask.startswith("0:") else mask
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise BanError(f"{mask!r} is not an address or a CIDR range") from None
    if network.prefixlen < (8 if network.version == 4 else 16):
        raise BanError(f"{mask!r} is too wide a range")
    return network


def parse_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address in a host as the server shows it, or None (``localhost``, a name)."""
    try:
        address = ipaddress.ip_address(host[1:] if host.startswith("0:") else host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class BanStore(Protocol):
    """Where bans live between runs: all of them read at start, all of them written on a change."""

    def load(self) -> list[ServerBan]: ...

    def save(self, bans: Iterable[ServerBan]) -> None: ...


class FileBanStore:
    """The ``bans-file``: one ban a line, written to a temporary file and renamed over the old."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> list[ServerBan]:
        """Every ban in the file (none if it does not exist yet); a bad line is a :class:`BanError`."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as error:
            raise BanError(f"bans-file: cannot read {self.path}: {error}") from None
        bans = []
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                bans.append(ServerBan.from_line(line))
            except BanError as error:
                raise BanError(f"bans-file: {self.path} line {number}: {error}") from None
        return bans

    def save(self, bans: Iterable[ServerBan]) -> None:
        """Replace the file with ``bans`` in one rename (a crash leaves the old or the new)."""
        directory = os.path.dirname(os.path.abspath(self.path))
        descriptor, temporary = tempfile.mkstemp(prefix=".bans-", dir=directory)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(FILE_HEADER + "\n")
                for ban in bans:
                    handle.write(ban.to_line() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise


class ServerBans:
    """The K-lines and D-lines in force, and the store that keeps them."""

    def __init__(self, store: BanStore | None = None) -> None:
        self.store = store
        self.klines: dict[str, ServerBan] = {}
        self.dlines: dict[str, tuple[Network, ServerBan]] = {}
        #: the D-lines on more than one address (the others are found by a dict lookup)
        self.ranges: dict[str, tuple[Network, ServerBan]] = {}
        if store is not None:
            self._fill(store.load())

    def _fill(self, bans: Iterable[ServerBan]) -> None:
        self.klines.clear()
        self.dlines.clear()
        self.ranges.clear()
        for ban in bans:
            self._put(ban)

    def _put(self, ban: ServerBan) -> None:
        if ban.kind == KLINE:
            self.klines[casefold(ban.mask)] = ban
        else:
            network = dline_network(ban.mask)
            self.dlines[ban.mask] = (network, ban)
            if network.num_addresses > 1:
                self.ranges[ban.mask] = (network, ban)

    def use_store(self, store: BanStore | None) -> None:
        """Switch to another store (a reload changed ``bans-file``): its bans replace ours."""
        self.store = store
        self._fill(store.load() if store is not None else [])

    def all(self) -> list[ServerBan]:
        return [*self.klines.values(), *(ban for _, ban in self.dlines.values())]

    def _save(self) -> None:
        if self.store is not None:
            self.store.save(self.all())

    def save(self) -> None:
        """Write every ban to the store now (after adds made with ``save=False``)."""
        self._save()

    def add(self, kind: str, mask: str, reason: str, set_by: str, now: float,
            duration: float = 0.0, save: bool = True) -> ServerBan:
        """Set (or replace) a ban; raises :class:`BanError` for a bad mask or a full list.
        ``save=False`` leaves writing the store to a later :meth:`save` (many bans at once)."""
        if kind == KLINE:
            mask = kline_mask(mask)
            table: Collection[str] = self.klines  # only its size and keys are read here
            key = casefold(mask)
        else:
            mask = str(dline_network(mask))
            table = self.dlines
            key = mask
        if key not in table and len(table) >= MAX_BANS:
            raise BanError(f"there are already {MAX_BANS} of those bans")
        ban = ServerBan(kind, mask, reason[:MAX_REASON] or "No reason", set_by, now,
                        now + duration if duration else 0.0)
        self._put(ban)
        if save:
            self._save()
        return ban

    def remove(self, kind: str, mask: str) -> ServerBan | None:
        """Lift a ban; the ban lifted, or None if there was none with that mask."""
        if kind == KLINE:
            found = self.klines.pop(casefold(kline_mask(mask)), None)
        else:
            key = str(dline_network(mask))
            self.ranges.pop(key, None)
            entry = self.dlines.pop(key, None)
            found = entry[1] if entry else None
        if found is not None:
            self._save()
        return found

    def expire(self, now: float) -> list[ServerBan]:
        """Drop the bans whose time is up; the ones dropped."""
        lapsed = [ban for ban in self.all() if ban.expired(now)]
        for ban in lapsed:
            if ban.kind == KLINE:
                self.klines.pop(casefold(ban.mask), None)
            else:
                self.dlines.pop(ban.mask, None)
                self.ranges.pop(ban.mask, None)
        if lapsed:
            self._save()
        return lapsed

    def dline_for(self, host: str, now: float) -> ServerBan | None:
        """The D-line covering ``host`` (an address as the server shows it), if any."""
        if not self.dlines:
            return None
        address = parse_address(host)
        if address is None:
            return None
        # One address is one dict lookup; only ranges are scanned (a connect costs little however
        # many single-address D-lines there are).
        exact = self.dlines.get(f"{address}/{address.max_prefixlen}")
        if exact is not None and not exact[1].expired(now):
            return exact[1]
        for network, ban in self.ranges.values():
            if address.version == network.version and address in network and not ban.expired(now):
                return ban
        return None

    def kline_for(self, masks: Iterable[str], now: float) -> ServerBan | None:
        """The K-line matching any of ``masks`` (``user@realhost``, ``user@cloak``), if any."""
        if not self.klines:
            return None
        masks = list(masks)
        for ban in self.klines.values():
            if not ban.expired(now) and any(mask_matches(ban.mask, m) for m in masks):
                return ban
        return None
