"""Events in: each batch from the network's feed or this node's inbox applied to the replica."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from twisted.logger import Logger

from twistedchat.cluster.checks import check_line
from twistedchat.cluster.claims import ChannelClaims
from twistedchat.cluster.collisions import NickCollisions
from twistedchat.cluster.feed import Feed
from twistedchat.cluster.order import StreamOrder, member_things
from twistedchat.cluster.outgoing import MESSAGE_COMMANDS, nick_of
from twistedchat.cluster.replicas import Replicas
from twistedchat.server.commands.messages import STATUSMSG, status_members
from twistedchat.server.commands.modes import compact_modes
from twistedchat.server.relay import Relay
from twistedchat.server.state import User
from twistedchat.wire.message import Message
from twistedchat.wire.names import CHANTYPES, is_channel_name

log = Logger()


class EventsIn(Replicas):
    """The part of :class:`~twistedchat.cluster.node.ClusterNode` that applies events.

    A mixin over :class:`~twistedchat.cluster.replicas.Replicas`: the node provides its feeds,
    the stream order, channel claims and nick collisions.
    """

    #: The network's events (every node reads them) and this node's private messages.
    events: Feed
    inbox: Feed
    _inbox_name: bytes
    #: What follows ``[["K`` in a batch this node published: ``",<its id in JSON>,``.
    _own_batch: bytes
    order: StreamOrder
    channel_claims: ChannelClaims
    collisions: NickCollisions
    applied_batches: int

    # -- batches: order, gaps --------------------------------------------------------------------

    def _on_message(self, channel: bytes, data: bytes) -> None:
        if channel == self._inbox_name:
            self.inbox.receive(data)
        else:
            self.events.receive(data)

    def _catch_up(self) -> None:
        """The subscriber reconnected: read what was published while it was away."""
        self.events.catch_up()
        self.inbox.catch_up()

    def _events_lost(self, why: str, count: int) -> None:
        """Batches of events are gone for good: ask every node for its state again."""
        log.warn("lost {count} batches of events ({why}); asking the network to resync",
                 count=count, why=why)
        self.order.forget()
        self._emit(["H", self.node_id])

    def apply_batch(self, payload: bytes) -> None:
        """Apply one batch of events (from the network's feed or this node's inbox)."""
        self.applied_batches += 1
        if (payload.startswith(b'[["') and payload.startswith(self._own_batch, 4)
                and b'["N",' not in payload):
            # This node's own batch back from the stream, with no order marker in it (the text
            # ["N", cannot occur inside a JSON string): nothing to apply, so no JSON to decode.
            return
        try:
            events = json.loads(payload)
        except ValueError:
            log.error("a batch of events was not JSON; skipped")
            return
        for event in events:
            if event[1] == self.node_id:
                if event[0] == "N" and isinstance(event[2], int):
                    self.order.passed(event[2])  # this node's own changes are now in order
                continue
            try:
                self._apply(event)
            except Exception:
                log.failure("applying a {kind} event from {node} failed", kind=event[0],
                            node=event[1])

    def _apply(self, event: list[Any]) -> None:
        kind, node = event[0], event[1]
        if kind == "L":
            if self.valid(check_line, "L", node, event):
                self._apply_line(node, *event[2:])
        elif kind == "U":
            self._ghost(node, event[2])
        elif kind == "B":
            self._apply_burst(node, event[2], event[3], len(event) > 4 and event[4] is True)
        elif kind == "H":
            self._emit(self._burst())
        elif kind == "S":
            self._split_node(node, event[2])
        elif kind == "R":
            self.collisions.taken(event[2], event[3])
        elif kind == "C":
            self.channel_claims.created(event[2], event[3])
        else:
            self.apply_carried(kind, node, event)

    # -- relayed lines ---------------------------------------------------------------------------

    def _apply_line(self, node: str, source: str, command: str, params: list[str],
                    tags: dict[str, str] | None, msgid: str | None, now: float,
                    extra: Any, account: str | None = None) -> None:
        state = self.core.state
        actor = state.find_user(nick_of(source))
        if actor is not None and self.ghost_node.get(actor) != node:
            actor = None  # not (or no longer) that node's user
        relay = Relay(Message(command, tuple(params), source), now, tags, msgid, account)
        if command in MESSAGE_COMMANDS:
            self._deliver_message(relay, command, params[0], actor)
            return
        if actor is None:
            return
        if command in ("JOIN", "PART", "KICK") and self.order.stale(
                member_things(params[0], params[1] if command == "KICK" else actor.nick)[0]):
            return  # this node's own change to that membership comes later in the stream
        if command == "JOIN":
            channel = state.find_channel(params[0])
            if channel is not None and actor in channel.members:
                return
            channel = state.join(actor, params[0], now)
            if channel.members[actor] != extra:
                channel.set_prefixes(actor, extra or "")
            self.remote_joined(actor, channel, relay)
        elif command == "PART":
            channel = state.find_channel(params[0])
            if channel is not None and actor in channel.members:
                relay.send_to(channel.members, actor)
                state.part(actor, channel)
        elif command == "KICK":
            channel = state.find_channel(params[0])
            target = state.find_user(params[1])
            if channel is not None and target is not None and target in channel.members:
                relay.send_to(channel.members)
                state.part(target, channel)
                if target not in self.ghost_node:
                    self.channel_claims.touch(channel.folded)
        elif command == "QUIT":
            relay.send_to(state.neighbours(actor))
            state.remove(actor, now)
            self.ghost_node.pop(actor, None)
            self.ghosts.get(node, set()).discard(actor)
            self.remote_gone(actor, node)
        elif command == "NICK":
            if state.nick_in_use(params[0], by=actor):
                log.warn("{node} renamed {old} to {new}, a nick in use here", node=node,
                         old=actor.nick, new=params[0])
                return
            state.set_nick(actor, params[0], now)
            relay.send_to(state.neighbours(actor))
            self.remote_renamed(actor, nick_of(source))
        elif command == "TOPIC":
            channel = state.find_channel(params[0])
            if channel is not None and not self.order.stale((channel.folded, "topic", "")):
                channel.topic, channel.topic_setter, channel.topic_time = params[1], source, now
                relay.send_to(channel.members)
        elif command == "MODE":
            channel = state.find_channel(params[0])
            if channel is not None and len(params) > 1:
                run = self.order.apply_modes(self.core, actor, channel, params[1], params[2:])
                if run.changes:  # what changed here (a stale change was skipped)
                    Relay(Message(command, (channel.name, compact_modes(run.changes), *run.params),
                                  source), now, tags, msgid, account).send_to(channel.members)
        elif command == "WALLOPS":
            relay.send_to(state.wallops)
        elif command == "INVITE":
            target = state.find_user(params[0])
            channel = state.find_channel(params[1])
            if target is not None and target not in self.ghost_node and channel is not None:
                if "i" in channel.modes:
                    state.invite(target, channel)
                relay.send_to([target])

    def _deliver_message(self, relay: Relay, command: str, target: str,
                         actor: User | None) -> None:
        state = self.core.state
        recipients: Iterable[User]
        status = target[:1] if target[:1] in STATUSMSG else ""
        if is_channel_name(target[len(status):], CHANTYPES):
            channel = state.find_channel(target[len(status):])
            if channel is None:
                return
            recipients = channel.members.local
            if status:  # STATUSMSG: "@#chan" to its operators, "+#chan" to voiced and operators
                recipients = status_members(channel, status)
        else:
            user = state.find_user(target)
            if user is None or user in self.ghost_node:
                return
            recipients = [user]
        if command == "TAGMSG":
            recipients = [u for u in recipients if "message-tags" in u.caps]
        relay.send_to(recipients, actor)
