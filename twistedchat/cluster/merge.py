"""Two views of one channel, settled as InspIRCd settles a netjoin: the lower creation time wins.

Two nodes can each hold a channel of one name made apart: while Redis was away, or cut off from
it (a partition), or after Redis came back empty. When their views meet (a burst, or the claims a
node makes again when it registers) every replica applies the same rule:

- the side with the **later** creation time loses: it takes the winner's creation time and drops
  its channel modes, key, limit, lists (bans, exceptions, invite exceptions), topic and every
  member's prefixes; the winner's modes, lists, topic and prefixes then apply;
- a view that arrives with a later creation time than the channel's has lost: its modes are
  ignored and its members join without prefixes;
- **equal** times merge: flag modes and the lists are joined (each keeps its cap: the oldest
  ``MAXLIST``), the greater key and the higher limit win, and the topic set last wins. Only
  across a split (replicas.py says when): otherwise the stream's order already made the views
  one, and a burst a little stale must not bring back a mode removed meanwhile; the topic set
  last still wins.

Whatever the order the views arrive in, every replica ends equal. Local members see what
changed as a netjoin shows it: ``MODE`` (and ``TOPIC``) lines from this server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from twistedchat.server.channel import Channel
from twistedchat.server.commands.modes import compact_modes
from twistedchat.server.limits import MAXLIST, MODES_PER_COMMAND, PREFIX_MODES
from twistedchat.server.relay import Relay
from twistedchat.server.state import User
from twistedchat.wire.message import Message

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

#: Parameter bytes in one ``MODE`` line a merge sends (well inside a 512-byte line).
MODE_PARAM_BYTES = 300


class ChannelView(NamedTuple):
    """What local members were last shown of a channel: compared after a merge."""

    modes: frozenset[str]
    key: str | None
    limit: int | None
    lists: tuple[frozenset[str], frozenset[str], frozenset[str]]
    members: dict[User, str]
    topic: str


def view(channel: Channel) -> ChannelView:
    """A copy of ``channel``'s modes, lists, prefixes and topic (before a merge)."""
    return ChannelView(frozenset(channel.modes), channel.key, channel.limit,
                       (frozenset(channel.bans), frozenset(channel.excepts),
                        frozenset(channel.invex)),
                       dict(channel.members), channel.topic)


def _lists(info: list[Any]) -> list[list[Any]]:
    """A record's bans, exceptions and invite exceptions (the last two absent from older
    records)."""
    return [*info[8:11], *[[]] * (11 - max(len(info), 9))]


def adopt(channel: Channel, info: list[Any]) -> None:
    """Take another node's record of a channel (a burst's) as it is."""
    _name, created, topic, setter, topic_time, modes, key, limit = info[:8]
    channel.created = created
    channel.topic, channel.topic_setter, channel.topic_time = topic, setter, topic_time
    channel.modes, channel.key, channel.limit = set(modes), key, limit
    channel.bans, channel.excepts, channel.invex = (
        {mask: (who, when) for mask, who, when in entries} for entries in _lists(info))


def lose(channel: Channel, created: float) -> None:
    """This view of ``channel`` lost to an older one made at ``created``: it drops its modes,
    lists, topic and prefixes (the winner's come with its record)."""
    channel.created = created
    channel.modes, channel.key, channel.limit = set(), None, None
    channel.bans, channel.excepts, channel.invex = {}, {}, {}
    channel.topic, channel.topic_setter, channel.topic_time = "", "", 0.0
    for member in channel.members:
        channel.members[member] = ""
    channel.forget_names()


def merge(channel: Channel, info: list[Any], join: bool = True) -> bool:
    """Settle ``channel`` with another node's record of it; True when that node's side counts
    (an equal or lower creation time), so its members keep their prefixes. ``join``: views of
    equal age join (a netjoin); without it only a newer topic is taken."""
    _name, created, topic, setter, topic_time, modes, key, limit = info[:8]
    if created > channel.created:
        return False  # their side lost: its modes and prefixes are ignored
    if created < channel.created:
        lose(channel, created)
        join = True
    if (topic_time, topic, setter) > (channel.topic_time, channel.topic, channel.topic_setter):
        channel.topic, channel.topic_setter, channel.topic_time = topic, setter, topic_time
    if not join:
        return True
    channel.modes |= set(modes)
    if key is not None and (channel.key is None or key > channel.key):
        channel.key = key
    if limit is not None and (channel.limit is None or limit > channel.limit):
        channel.limit = limit
    channel.bans, channel.excepts, channel.invex = (
        _joined(ours, theirs) for ours, theirs in zip(
            (channel.bans, channel.excepts, channel.invex), _lists(info), strict=True))
    return True


def _joined(ours: dict[str, tuple[str, float]],
            theirs: list[Any]) -> dict[str, tuple[str, float]]:
    """Two views of one list joined, keeping the oldest MAXLIST (the same whatever the order
    of merges)."""
    joined = dict(ours)
    for mask, who, when in theirs:
        joined.setdefault(mask, (who, when))
    if len(joined) > MAXLIST:
        joined = dict(sorted(joined.items(), key=lambda item: (item[1][1], item[0]))[:MAXLIST])
    return joined


def _changes(channel: Channel, before: ChannelView) -> list[tuple[str, str | None]]:
    """The mode changes from ``before`` to ``channel`` now, as (``+x``/``-x``, parameter)."""
    changes: list[tuple[str, str | None]] = [(f"-{m}", None) for m in sorted(before.modes)
                                             if m not in channel.modes]
    changes += [(f"+{m}", None) for m in sorted(channel.modes - before.modes)]
    if before.key is not None and channel.key != before.key:
        changes.append(("-k", before.key))
    if channel.key is not None and channel.key != before.key:
        changes.append(("+k", channel.key))
    if before.limit is not None and channel.limit is None:
        changes.append(("-l", None))
    elif channel.limit is not None and channel.limit != before.limit:
        changes.append(("+l", str(channel.limit)))
    for letter, old, now in zip("beI", before.lists,
                                (channel.bans, channel.excepts, channel.invex), strict=True):
        changes += [(f"-{letter}", mask) for mask in sorted(old) if mask not in now]
        changes += [(f"+{letter}", mask) for mask in sorted(now) if mask not in old]
    for member, prefixes in channel.members.items():
        had = before.members.get(member, "")
        changes += [(f"-{m}", member.nick) for m in PREFIX_MODES if m in had and m not in prefixes]
        changes += [(f"+{m}", member.nick) for m in PREFIX_MODES if m in prefixes and m not in had]
    return changes


def show(core: ServerCore, channel: Channel, before: ChannelView) -> None:
    """Tell local members what a merge changed, from this server as a netjoin shows it: ``MODE``
    lines of at most ``MODES_PER_COMMAND`` changes, then the topic if it changed."""
    now = core.clock()
    server = core.config.name
    changes = _changes(channel, before)
    while changes:
        line: list[tuple[str, str | None]] = []
        size = 0
        while changes and len(line) < MODES_PER_COMMAND and (
                not line or size + len(changes[0][1] or "") < MODE_PARAM_BYTES):
            change = changes.pop(0)
            size += len(change[1] or "") + 1
            line.append(change)
        params = [param for _, param in line if param is not None]
        Relay(Message("MODE", (channel.name, compact_modes([c for c, _ in line]), *params),
                      server), now).send_to(channel.members)
    if channel.topic != before.topic:
        Relay(Message("TOPIC", (channel.name, channel.topic), server), now).send_to(
            channel.members)
