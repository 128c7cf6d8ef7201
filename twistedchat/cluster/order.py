"""One order for channel changes on every replica: the order of the event stream in Redis.

A node applies its own users' channel changes at once (the local path stays as fast as a lone
server's) and publishes them; every other node applies them in stream order. Two changes to one
thing made at the same instant on two nodes (``+k a`` on one, ``+k b`` on the other; ``+o`` and
``-o`` of one member; a KICK and a JOIN of one user) would then leave each sender with its own
change last. So each node remembers which things its own unsequenced changes touched ("pending"
until its batch comes back in the stream, marked by an ``N`` event): a remote change to such a
thing is older in the stream's order than the node's own, which every other node applies after
it, so the node skips it (and does not show it to its users). Everything else it applies. Every
replica so ends with, for each thing, the change the stream ordered last.

The things: a channel's flag modes, key, limit and topic; each list entry (+b/+e/+I mask); each
member's membership and each of its prefixes (a JOIN, PART or KICK sets all three).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from twistedchat.server.commands.modes import CHANNEL_MODES, ChannelMode, ModeRun, list_mask
from twistedchat.server.state import LIST_MODES, PREFIX_MODES
from twistedchat.wire.names import casefold

if TYPE_CHECKING:
    from twistedchat.server.channel import Channel
    from twistedchat.server.core import ServerCore
    from twistedchat.server.state import User

#: One thing a change sets: (folded channel, what, folded nick or mask or "").
Thing = tuple[str, str, str]


def mode_changes(modestring: str,
                 params: list[str]) -> Iterator[tuple[int, bool, str, ChannelMode, str]]:
    """Each change of a relayed MODE line: (the index of its letter, adding, the letter, its
    mode, its parameter or "")."""
    adding = True
    params = list(params)
    for index, letter in enumerate(modestring):
        if letter in "+-":
            adding = letter == "+"
            continue
        spec = CHANNEL_MODES.get(letter)
        if spec is None:
            continue
        takes = spec.param_on_set if adding else spec.param_on_unset
        yield index, adding, letter, spec, params.pop(0) if takes and params else ""


def mode_things(channel: str, modestring: str, params: list[str]) -> Iterator[tuple[Thing, int]]:
    """Each change of a MODE line as (the thing it sets, the index of its letter)."""
    folded = casefold(channel)
    for index, _, letter, _, param in mode_changes(modestring, params):
        if letter in PREFIX_MODES:
            yield (folded, letter, casefold(param)), index
        elif letter in LIST_MODES:
            yield (folded, letter, list_mask(letter, param) or param), index
        else:
            yield (folded, letter, ""), index


def member_things(channel: str, nick: str) -> list[Thing]:
    """What a JOIN, PART or KICK sets: the membership and, with it, the member's prefixes.
    (The membership is the first: a remote JOIN, PART or KICK is stale when it is.)"""
    folded, who = casefold(channel), casefold(nick)
    return [(folded, "member", who), *((folded, letter, who) for letter in PREFIX_MODES)]


def line_things(command: str, source_nick: str, params: list[str]) -> list[Thing]:
    """The things a relayed JOIN, PART, KICK, TOPIC or MODE line sets."""
    if not params:
        return []
    folded = casefold(params[0])
    if command in ("JOIN", "PART"):
        return member_things(params[0], source_nick)
    if command == "KICK" and len(params) > 1:
        return member_things(params[0], params[1])
    if command == "TOPIC":
        return [(folded, "topic", "")]
    if command == "MODE" and len(params) > 1:
        return [thing for thing, _ in mode_things(params[0], params[1], params[2:])]
    return []


class StreamOrder:
    """This node's unsequenced channel changes, and the batches that carry them."""

    def __init__(self) -> None:
        #: thing -> number of the newest local batch that changed it.
        self.pending: dict[Thing, int] = {}
        #: The number of the batch being filled, and whether it changes anything.
        self.number = 1
        self._marked = False

    def wrote(self, things: list[Thing]) -> None:
        """Local changes going out in the current batch."""
        for thing in things:
            self.pending[thing] = self.number
        self._marked = self._marked or bool(things)

    def seal(self, node_id: str) -> tuple[int, list[Any] | None]:
        """The current batch goes out: its number, and the ``N`` event it must carry (if any)."""
        number, marked = self.number, self._marked
        self.number += 1
        self._marked = False
        return number, (["N", node_id, number] if marked else None)

    def passed(self, number: int) -> None:
        """Batch ``number`` came back in the stream (or never will): its changes are ordered."""
        if self.pending:
            self.pending = {t: n for t, n in self.pending.items() if n > number}

    def forget(self) -> None:
        """The stream restarted or lost batches: a resync settles the replicas."""
        self.pending.clear()

    def stale(self, thing: Thing) -> bool:
        """Whether a remote change to ``thing`` comes before this node's own in the stream."""
        return thing in self.pending

    def apply_modes(self, core: ServerCore, actor: User, channel: Channel, modestring: str,
                    params: Sequence[str]) -> ModeRun:
        """Apply channel mode changes another node made (with the same setters as MODE), but
        those this node's own later changes override; the run says what changed here."""
        run = ModeRun(core, actor, channel)
        stale = {index for thing, index in mode_things(channel.name, modestring, list(params))
                 if thing in self.pending}
        for index, adding, letter, spec, param in mode_changes(modestring, list(params)):
            if index not in stale:
                spec.apply(run, adding, letter, param)
        return run
