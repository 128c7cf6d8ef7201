"""Events out: relayed lines other nodes need, to the network's events or to some nodes' inboxes.

Channel and private messages go to the inboxes of the nodes that have recipients (inbox.py);
every other relayed line other nodes need is an event of the network's ordered stream. A reactor
turn's segments of both go out in the order they were made, in one script call.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from twistedchat.cluster import scripts
from twistedchat.cluster.claims import ChannelClaims
from twistedchat.cluster.inbox import Outboxes
from twistedchat.cluster.order import StreamOrder, line_things
from twistedchat.cluster.pacing import FlushPacer
from twistedchat.cluster.parts import NodeParts
from twistedchat.cluster.resp import RedisProtocol, RedisUnavailable
from twistedchat.server.commands.messages import STATUSMSG
from twistedchat.server.relay import Relay
from twistedchat.server.state import User
from twistedchat.wire.names import CHANTYPES, casefold, is_channel_name

log = Logger()

#: Events kept for one batch; past this they are sent at once.
MAX_BATCH = 500

#: Relayed commands that other nodes must see.
MESSAGE_COMMANDS = frozenset({"PRIVMSG", "NOTICE", "TAGMSG"})
#: (AWAY, SETNAME, ACCOUNT and user modes travel as profile events: twistedchat.cluster.carry.)
STATE_COMMANDS = frozenset({"JOIN", "PART", "KICK", "QUIT", "NICK", "TOPIC", "MODE", "INVITE",
                            "WALLOPS"})


def nick_of(source: str) -> str:
    """The nick of a ``nick!user@host`` source."""
    return source.split("!", 1)[0]


class EventsOut(NodeParts):
    """The part of :class:`~twistedchat.cluster.node.ClusterNode` that sends events.

    A mixin: the node provides ``core``, the control link, its identity in Redis, its ghosts,
    the stream order, channel claims, outboxes and ``_release`` (a nick claim freed).
    """

    ghost_node: dict[User, str]
    order: StreamOrder
    channel_claims: ChannelClaims
    outboxes: Outboxes
    pacer: FlushPacer
    #: This turn's events, and the call that sends them.
    _outgoing: list[list[Any]]
    _flush_call: Any
    dropped_batches: int

    if TYPE_CHECKING:
        def _release(self, folded: str) -> None: ...

    def emit(self, event: list[Any]) -> None:
        """Send ``event`` to every node, in this turn's batch."""
        self._emit(event)

    def on_relay(self, relay: Relay) -> None:
        """The bus subscriber: a relayed line that other nodes need becomes an event."""
        message = relay.message
        command = message.command
        if command in MESSAGE_COMMANDS:
            targets = self.message_nodes(message.params[0])
            if targets:
                self.outboxes.add_to(targets, [
                    "L", self.node_id, message.source or "", command, list(message.params),
                    relay.client_tags or None, relay.msgid, relay.now, None, relay.account])
                self._flush_soon()
            return
        if command not in STATE_COMMANDS:
            return
        source = message.source or ""
        extra: Any = None
        state = self.core.state
        if command == "JOIN":
            actor = state.find_user(nick_of(source))
            channel = state.find_channel(message.params[0])
            if actor is None or channel is None or actor in self.ghost_node:
                return
            extra = channel.members.get(actor, "")
            last = self._outgoing[-1] if self._outgoing else None
            if last is not None and last[0] == "L" and (
                    last[2:5] == [source, "JOIN", [message.params[0]]]):
                return  # the plain copy of the extended-join line just sent
        elif command == "INVITE" and self._outgoing and self._outgoing[-1][0] == "L" and (
                self._outgoing[-1][3] == "INVITE"
                and self._outgoing[-1][4] == list(message.params)):
            return  # the invite-notify copy of the invitation just sent
        params = list(message.params[:1] if command == "JOIN" else message.params)
        self._emit(["L", self.node_id, source, command, params,
                    relay.client_tags or None, relay.msgid, relay.now, extra, relay.account])
        if command in STATE_COMMANDS and is_channel_name(message.params[0], CHANTYPES):
            self.order.wrote(line_things(command, nick_of(source), list(message.params)))
            self.channel_claims.relayed(command, nick_of(source), message.params)
        elif command == "QUIT":
            self.channel_claims.relayed(command, nick_of(source), message.params)
        old = casefold(nick_of(source))
        if command == "QUIT" or (command == "NICK" and old != casefold(message.params[0])):
            self._release(old)  # (a change of case keeps the same claim)

    def message_nodes(self, target: str) -> list[str]:
        """The other nodes a message to ``target`` (a channel, ``@#channel`` or ``+#channel``, or
        a nick) must reach: those with members in the channel (as this node's replica knows
        them), or the user's node."""
        ghost_node = self.ghost_node
        if target[:1] in STATUSMSG:
            target = target[1:]
        if is_channel_name(target, CHANTYPES):
            channel = self.core.state.find_channel(target)
            if channel is None or not ghost_node:
                return []
            members = channel.members
            routes = channel.routes  # (kept while no member left: a join changes the count)
            if routes is None or routes[0] != len(members):
                remote = ghost_node.keys() & members.keys()  # (a set operation, in C)
                routes = channel.routes = (len(members),
                                           list({ghost_node[member] for member in remote}))
            return routes[1]
        recipient = self.core.state.find_user(target)
        node = ghost_node.get(recipient) if recipient is not None else None
        return [node] if node is not None else []

    def _emit(self, event: list[Any]) -> None:
        if self.outboxes.count:
            self.outboxes.seal()  # after the inbox lines made before it
        self._outgoing.append(event)
        self._flush_soon()

    def _seal_events(self) -> None:
        """Close the open segment of events (inbox lines follow it)."""
        events = len(self._outgoing)
        number, payload = self._take_batch()
        self.outboxes.seal_events(number, payload, events)

    def _flush_soon(self) -> None:
        if len(self._outgoing) + self.outboxes.pending >= MAX_BATCH:
            self._flush()
        elif self._flush_call is None:
            self._flush_call = self.reactor.callLater(self.pacer.delay(), self._flush)

    def publish_before_output(self) -> None:
        """This turn's clients are about to be written to: publish the turn's batch first.

        (A hook of the bus, run at the start of the output flush.) The batch still holds every
        line of the turn, but the other nodes get it before this node's own fan-out rather than
        after it, so they start delivering at once. A gather window still holds it.
        """
        if self._flush_call is not None and not self.pacer.delay():
            self._flush()

    def _take_batch(self) -> tuple[int, bytes]:
        """This turn's events as one payload, and the batch's number (see order.py)."""
        batch, self._outgoing = self._outgoing, []
        number, marker = self.order.seal(self.node_id)
        if marker is not None:
            batch.append(marker)
        return number, json.dumps(batch, separators=(",", ":")).encode()

    def _flush(self) -> None:
        """Send this turn's segments in one script call; while Redis is away they are dropped."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self.channel_claims.touched:
            # A channel's last local member left: the claim goes before anyone sees the PART.
            self.channel_claims.settle()
        if self._outgoing:
            self._seal_events()
        pairs, numbers = self.outboxes.take()
        if not pairs:
            return
        self.pacer.sent()
        link = self.control.current
        if link is None:
            self._not_sent(None, pairs, numbers)
            return
        sent = scripts.SEND.run(link, self.prefix, self.node_id, self.incarnation,
                                secrets.token_hex(8), *pairs)
        sent.addCallbacks(self._sent, self._not_sent, callbackArgs=(numbers,),
                          errbackArgs=(pairs, numbers))

    def _sent(self, result: int, numbers: list[int]) -> None:
        if result == -1:  # fenced: nothing of the turn is in Redis
            self._fenced()
            for number in numbers:
                self.order.passed(number)

    def _fenced(self) -> None:
        log.warn("a publish was fenced: this node is registering again")
        self.control.cut()

    def _not_sent(self, failure: Any, pairs: list[str | bytes], numbers: list[int]) -> None:
        self.outboxes.count_dropped(pairs)
        for number in numbers:
            self.order.passed(number)
        if failure is not None and not failure.check(RedisUnavailable):
            log.failure("publishing events failed", failure)

    def _send(self, link: RedisProtocol, payload: bytes) -> defer.Deferred[Any]:
        sent = scripts.PUBLISH.run(link, self.prefix, self.node_id, self.incarnation, payload)

        def check(seq: int) -> int:
            if seq == -1:
                self._fenced()
            return seq

        return sent.addCallback(check)
