"""Server bans across the cluster: the ``X`` event an operator's KLINE/DLINE or UNKLINE/UNDLINE
sends, and how another node applies it (:mod:`twistedchat.cluster.carry` lists it with the other
carried events)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from twistedchat.cluster.checks import NAME_BYTES, REASON_BYTES, BadEvent, number, text
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


def apply_ban(carrier: CarriedState, node: str, fields: list[Any]) -> None:
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
        return
    reason, set_by, set_at, expires = fields[3:7]
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise BadEvent(f"a ban reason longer than {MAX_REASON} characters")
    reason = text(reason, REASON_BYTES, empty=False)
    set_by = text(set_by, NAME_BYTES, word=True, empty=False)
    set_at, expires = number(set_at), number(expires)
    if expires and expires <= max(set_at, core.clock()):
        return  # lapsed already
    held = (core.bans.klines.get(casefold(mask)) if kind == KLINE
            else core.bans.dlines.get(mask, (None, None))[1])
    if held is not None and (held.reason, held.set_by, held.set_at, held.expires) == (
            reason, set_by, set_at, expires):
        return  # known already (a burst announces every ban its node holds)
    try:
        ban = core.bans.add(kind, mask, reason, set_by, set_at,
                            expires - set_at if expires else 0.0, save=False)
    except BanError as error:  # a full list here
        raise BadEvent(str(error)) from None
    carrier.ban_sync.save_soon()
    core.enforce_ban(ban)


class BanSync:
    """This node's side of server bans across the network: its burst announces every ban it
    holds (so the network converges on the union, at most ``MAX_BANS`` of each kind), and bans
    applied from Redis are written to the bans file once per reactor turn, never published."""

    def __init__(self, carrier: CarriedState) -> None:
        self.carrier = carrier
        self._save_call: Any = None
        #: Bans this node announced in its bursts since it started.
        self.announced = 0

    def announce(self) -> None:
        """(Re)registered: every ban in force here goes to the network (``X`` events, in
        batches of at most MAX_BATCH), so a ban set while this node was alone or down, or only
        in its bans file, reaches every node."""
        carrier = self.carrier
        now = carrier.core.clock()
        for ban in carrier.core.bans.all():
            if not ban.expired(now):
                carrier._emit(ban_event(carrier.node_id, ban, False))
                self.announced += 1

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
