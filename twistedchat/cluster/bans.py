"""Server bans across the cluster: the ``X`` event an operator's KLINE/DLINE or UNKLINE/UNDLINE
sends, how another node applies it (:mod:`twistedchat.cluster.carry` lists it with the other
carried events), and the network's list of bans Redis keeps for nodes that register."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from twistedchat.cluster.checks import NAME_BYTES, REASON_BYTES, BadEvent, number, text
from twistedchat.cluster.resp import RedisProtocol
from twistedchat.server.bans import (
    DLINE,
    KLINE,
    MAX_REASON,
    BanError,
    ServerBan,
    dline_network,
    kline_mask,
)
from twistedchat.wire.names import casefold

if TYPE_CHECKING:
    from twistedchat.cluster.carry import CarriedState

log = Logger()


def ban_event(node_id: str, ban: ServerBan, lifted: bool) -> list[Any]:
    """The ``X`` event for a ban set (``+``, all its fields) or lifted (``-``, kind and mask)."""
    if lifted:
        return ["X", node_id, "-", ban.kind, ban.mask]
    return ["X", node_id, "+", ban.kind, ban.mask, ban.reason, ban.set_by, ban.set_at,
            ban.expires]


def _ban_mask(kind: Any, mask: Any) -> str:
    """A ban's kind and mask from another node, parsed as a local KLINE/DLINE parses them."""
    if kind not in (KLINE, DLINE):
        raise BadEvent(f"unknown ban kind {kind!r:.20}")
    mask = text(mask, NAME_BYTES, word=True, empty=False)
    try:
        return kline_mask(mask) if kind == KLINE else str(dline_network(mask))
    except BanError as error:
        raise BadEvent(str(error)) from None


#: What :func:`apply_ban` returns for a ban whose time is up already.
LAPSED = "lapsed"


def apply_ban(carrier: CarriedState, node: str, fields: list[Any]) -> str | None:
    """A server ban another node's operator set (``+``, or a node's burst announced) or lifted
    (``-``): the same here, and this node's own users it covers are removed (``X``). A ban held
    already, the same in every field, changes nothing."""
    change, kind, mask = fields[:3]
    if change not in ("+", "-"):
        raise BadEvent(f"unknown ban change {change!r:.20}")
    mask = _ban_mask(kind, mask)
    core = carrier.core
    if change == "-":
        try:
            core.bans.remove(kind, mask)
        except OSError as error:
            log.warn("lifted a ban from {node}, but the bans file could not be written: "
                     "{error}", node=node, error=str(error))
        return None
    reason, set_by, set_at, expires = fields[3:7]
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise BadEvent(f"a ban reason longer than {MAX_REASON} characters")
    reason = text(reason, REASON_BYTES, empty=False)
    set_by = text(set_by, NAME_BYTES, word=True, empty=False)
    set_at, expires = number(set_at), number(expires)
    if expires and expires <= max(set_at, core.clock()):
        return LAPSED
    held = (core.bans.klines.get(casefold(mask)) if kind == KLINE
            else core.bans.dlines.get(mask, (None, None))[1])
    if held is not None and (held.reason, held.set_by, held.set_at, held.expires) == (
            reason, set_by, set_at, expires):
        return None  # known already (Redis's list, or another node's announcement)
    try:
        ban = core.bans.add(kind, mask, reason, set_by, set_at,
                            expires - set_at if expires else 0.0, save=False)
    except BanError as error:  # a full list here
        raise BadEvent(str(error)) from None
    carrier.ban_sync.save_soon()
    core.enforce_ban(ban)
    return None


#: The Redis hash (under the network's prefix) of the network's server bans: ``<kind> <mask>``
#: -> JSON ``[reason, set by, time set, expiry]``.
BANS_KEY = "bans"
#: Fields per HSET/HDEL when a node adds what Redis lacks.
BANS_CHUNK = 1000


def _field(kind: str, mask: str) -> str:
    return f"{kind} {mask}"


def _value(ban: ServerBan) -> str:
    return json.dumps([ban.reason, ban.set_by, ban.set_at, ban.expires], separators=(",", ":"))


class BanSync:
    """Server bans across the network, kept in Redis too (a hash, :data:`BANS_KEY`).

    An operator's KLINE/DLINE sets the ban in the hash and sends ``X`` to every node; UNKLINE/
    UNDLINE deletes it and sends ``X -``. A node that registers (its start, its return after
    Redis or the node was away, Redis come back empty) applies every ban the hash holds, then
    adds the ones it holds that the hash lacks (set while it was alone or down, or only in its
    bans file) and announces them: the network converges on the union, each node's list capped
    at ``MAX_BANS`` of each kind. A ban lifted while Redis was away is lifted there on the
    return. Bans applied from Redis are written to the bans file once per reactor turn and
    never published again.
    """

    def __init__(self, carrier: CarriedState) -> None:
        self.carrier = carrier
        self._save_call: Any = None
        #: Bans this node held that Redis lacked, waiting to be announced (after registration).
        self._unannounced: list[ServerBan] = []
        #: Bans lifted here while Redis was away: deleted from Redis on its return (and
        #: announced then, as the bans Redis lacked are).
        self._lifted_away: set[tuple[str, str]] = set()
        self._unannounced_lifts: list[tuple[str, str]] = []
        #: Bans this node announced since it started (added to Redis from its own list).
        self.announced = 0

    def changed(self, ban: ServerBan, lifted: bool) -> None:
        """An operator here set or lifted ``ban``: Redis's hash and every node follow."""
        carrier = self.carrier
        key = carrier.prefix + BANS_KEY
        field = _field(ban.kind, ban.mask)
        if lifted:
            self._lifted_away.add((ban.kind, ban.mask))
            deleted = carrier.control.execute("HDEL", key, field)
            deleted.addCallbacks(lambda _: self._lifted_away.discard((ban.kind, ban.mask)),
                                 _ignored)
        else:
            self._lifted_away.discard((ban.kind, ban.mask))
            carrier.control.execute("HSET", key, field, _value(ban)).addErrback(_ignored)
        carrier._emit(ban_event(carrier.node_id, ban, lifted))

    @defer.inlineCallbacks
    def resync(self, link: RedisProtocol) -> Any:
        """A new registration: lift in Redis what was lifted here meanwhile, apply every ban
        Redis holds, add the ones only this node holds (announced once registered)."""
        carrier = self.carrier
        core = carrier.core
        key = carrier.prefix + BANS_KEY
        lifts = sorted(self._lifted_away)
        fields = [_field(kind, mask) for kind, mask in lifts]
        for start in range(0, len(fields), BANS_CHUNK):
            yield link.execute("HDEL", key, *fields[start:start + BANS_CHUNK])
        self._lifted_away.clear()
        self._unannounced_lifts = lifts
        stored = yield link.execute("HGETALL", key)
        known: set[str] = set()
        lapsed: list[bytes] = []
        for field, value in zip(stored[::2], stored[1::2], strict=True):
            try:
                kind, mask = field.decode().split(" ", 1)
                fields = ["+", kind, mask, *json.loads(value)]
                if apply_ban(carrier, "redis", fields) is LAPSED:
                    lapsed.append(field)
                known.add(_field(kind, _ban_mask(kind, mask)))
            except (BadEvent, TypeError, ValueError) as error:
                carrier._dropped("X", "redis", error)
        if lapsed:
            yield link.execute("HDEL", key, *lapsed)
        now = core.clock()
        missing = [ban for ban in core.bans.all()
                   if not ban.expired(now) and _field(ban.kind, ban.mask) not in known]
        for start in range(0, len(missing), BANS_CHUNK):
            chunk = missing[start:start + BANS_CHUNK]
            yield link.execute("HSET", key, *[text for ban in chunk
                                              for text in (_field(ban.kind, ban.mask),
                                                           _value(ban))])
        self._unannounced = missing

    def announce(self) -> None:
        """Registered (called once the connection is ready): the bans Redis lacked go to every
        node (``X`` events, in batches of at most MAX_BATCH)."""
        carrier = self.carrier
        lifts, self._unannounced_lifts = self._unannounced_lifts, []
        for kind, mask in lifts:
            carrier._emit(["X", carrier.node_id, "-", kind, mask])
        bans, self._unannounced = self._unannounced, []
        for ban in bans:
            carrier._emit(ban_event(carrier.node_id, ban, False))
        self.announced += len(bans)

    def save_soon(self) -> None:
        """Write the bans file once at the end of this reactor turn (a burst may bring many)."""
        if self._save_call is None:
            self._save_call = self.carrier.reactor.callLater(0, self._save)

    def _save(self) -> None:
        self._save_call = None
        try:
            self.carrier.core.bans.save()
        except OSError as error:  # in force here all the same (as a local KLINE would be)
            log.warn("set bans from other nodes, but the bans file could not be written: "
                     "{error}", error=str(error))


def _ignored(failure: Any) -> None:
    """Redis away: the registration on its return brings its bans in line."""
