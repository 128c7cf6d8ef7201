"""One server process as a node of a network kept in Redis (``--cluster redis://host:port/db``).

The node listens on the core's :class:`~twistedchat.server.relay.RelayBus`: every relayed line
that other nodes need (channel messages to remote members, JOIN, PART, KICK, QUIT, NICK,
TOPIC, MODE, INVITE, WALLOPS) becomes an event; what users change without a line for every node
(user modes, AWAY, SETNAME, accounts, METADATA, KILL, idle time) travels as events of
:mod:`twistedchat.cluster.carry`. The events of one reactor turn go to Redis as one batch (one Lua
call: sequence number, capped stream, PUBLISH). Every node applies every other
node's batches in sequence order to its replica, where remote users are "ghost" :class:`User`
objects whose outbox discards; so NAMES, WHO, WHOIS and LIST answer from local state, and each
line is encoded for local members by the existing fan-out. Nicks are claimed in Redis (a Lua
script) before registration completes or a nick changes, channels before a JOIN creates one
(claims.py); private messages go to the target node's inbox instead (inbox.py); conflicting
channel changes settle in the stream's order (order.py). See docs/cluster.md.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from twistedchat.cluster import scripts
from twistedchat.cluster.carry import CarriedState
from twistedchat.cluster.checks import check_channel_record, check_line, check_record
from twistedchat.cluster.claims import ChannelClaims
from twistedchat.cluster.collisions import NickCollisions
from twistedchat.cluster.feed import Feed
from twistedchat.cluster.inbox import Outboxes, inbox_channel, inbox_feed
from twistedchat.cluster.order import StreamOrder, line_things, member_things
from twistedchat.cluster.pacing import FlushPacer
from twistedchat.cluster.resp import RedisLink, RedisProtocol, RedisUnavailable
from twistedchat.server.commands.modes import compact_modes
from twistedchat.server.commands.registration import try_register
from twistedchat.server.core import ServerCore
from twistedchat.server.net import direct_write_allowed
from twistedchat.server.relay import REMOTE_OUTBOX, Relay
from twistedchat.server.state import Channel, User
from twistedchat.wire import numerics as N
from twistedchat.wire.message import Message
from twistedchat.wire.names import CHANTYPES, casefold, is_channel_name

log = Logger()

#: A node silent this long (ms, Redis time) is reaped by the others.
DEAD_AFTER_MS = 3000
#: Seconds between heartbeats.
HEARTBEAT = 1.0
#: Heartbeats left unanswered before the control connection is cut and redialled.
HEARTBEATS_MISSED = 3
#: Nicks of dead nodes freed per heartbeat (the rest on the next one).
REAP_CHUNK = 1000
#: Events kept for one batch; past this they are sent at once.
MAX_BATCH = 500
SPLIT_REASON = "*.net *.split"
#: Seconds a nick claim waits for Redis to come back before the user is told to retry (437).
CLAIM_WAIT = 5.0

#: Relayed commands that other nodes must see.
MESSAGE_COMMANDS = frozenset({"PRIVMSG", "NOTICE", "TAGMSG"})
#: (AWAY, SETNAME, ACCOUNT and user modes travel as profile events: twistedchat.cluster.carry.)
STATE_COMMANDS = frozenset({"JOIN", "PART", "KICK", "QUIT", "NICK", "TOPIC", "MODE", "INVITE",
                            "WALLOPS"})


def _nothing(*_: Any) -> None:
    pass


def _nick_of(source: str) -> str:
    return source.split("!", 1)[0]


class ClusterNode(CarriedState):
    """This process's membership in the network: nick claims, events out, replicas in."""

    def __init__(self, core: ServerCore, url: str, reactor: Any, node_id: str | None = None) -> None:
        self.core = core
        self.reactor = reactor
        self.prefix = f"twistedchat:{core.config.network}:"
        self.node_id = node_id or f"{core.config.name}/{os.getpid()}-{secrets.token_hex(3)}"
        self.incarnation = ""
        #: The epoch of the Redis data this node registered in (None before the first time).
        self.epoch: bytes | None = None
        #: Remote users by their node, and each one's node.
        self.ghosts: dict[str, set[User]] = {}
        self.ghost_node: dict[User, str] = {}
        #: Nodes that Redis lists as alive (from the last heartbeat), and since when one is missing.
        self._missing_since: dict[str, float] = {}
        #: Completed nick claims not yet used: user -> folded nick.
        self._claims: dict[User, str] = {}
        #: Claims waiting for Redis: folded nick -> user.
        self._pending: dict[str, User] = {}
        self._claiming: set[User] = set()
        self._outgoing: list[list[Any]] = []
        self._flush_call: Any = None
        self.pacer = FlushPacer(reactor, core.config.cluster_gather)
        self._hb_unanswered = 0
        self._ping_unanswered = 0
        #: Figures for tests and operators.
        self.dropped_batches = 0
        self.applied_batches = 0
        self._init_carried()
        self.beats = 0
        direct = direct_write_allowed(core.config)
        self.subscriber = RedisLink(reactor, url, "subscriber", self._prepare_subscriber, direct)
        self.control = RedisLink(reactor, url, "control", self._prepare_control, direct)
        self.order = StreamOrder()
        #: The network's events (every node reads them) and this node's private messages.
        self.events = Feed(self.control, reactor, self.prefix + "log", self.prefix + "seq",
                           self.prefix + "epoch", self.apply_batch, self.order.forget,
                           self._events_lost)
        self.inbox = inbox_feed(self)
        self.outboxes = Outboxes(self)
        self._inbox_name = inbox_channel(self.prefix, self.node_id).encode()
        self._heartbeat = task.LoopingCall(self._beat)
        self._heartbeat.clock = reactor
        self._ready: list[defer.Deferred[None]] = []
        self.is_ready = False
        self._started_control = False
        self.channel_claims = ChannelClaims(self)
        self.collisions = NickCollisions(self)
        core.cluster = self
        core.bus.subscribe(self.on_relay)

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> defer.Deferred[None]:
        """Connect (forever, with backoff); fires once this node is registered and has said hello."""
        self.subscriber.start()
        return self.when_ready()

    def when_ready(self) -> defer.Deferred[None]:
        """Fires once the control connection is registered (at once if it is now)."""
        waiter: defer.Deferred[None] = defer.Deferred()
        if self.is_ready and self.control.current is not None:
            waiter.callback(None)
        else:
            self._ready.append(waiter)
        return waiter

    @defer.inlineCallbacks
    def stop(self, reason: str = SPLIT_REASON) -> Any:
        """Leave the network cleanly: nicks freed, local users gone from every other node."""
        if self._heartbeat.running:
            self._heartbeat.stop()
        self._flush()
        try:
            yield self.control.run(scripts.LEAVE, self.prefix, self.node_id, self.incarnation,
                                   reason)
        except Exception as error:
            log.info("leaving the network: {error}", error=error)
        yield self.control.stop()
        yield self.subscriber.stop()

    def _prepare_subscriber(self, link: RedisProtocol) -> defer.Deferred[Any]:
        link.listen(self._on_message)
        subscribed = link.execute("SUBSCRIBE", self.prefix + "events",
                                  inbox_channel(self.prefix, self.node_id))

        def then(_: Any) -> None:
            if not self._started_control:
                self._started_control = True
                self.control.start()
            else:
                self.reactor.callLater(0, self._catch_up)

        return subscribed.addCallback(then)

    @defer.inlineCallbacks
    def _prepare_control(self, link: RedisProtocol) -> Any:
        """A new control connection: register (a new incarnation), claim our nicks again, burst."""
        self.incarnation = secrets.token_hex(8)
        epoch = yield scripts.REGISTER.run(link, self.prefix, self.node_id, self.incarnation,
                                           secrets.token_hex(8))
        if self.epoch is not None and epoch != self.epoch:
            log.warn("Redis lost the network's data (new epoch); registering our users again")
        self.epoch = epoch
        local = [u for u in self.core.state.users.values()
                 if u.registered and u not in self.ghost_node]
        if local:
            yield self.collisions.claim_again(link, local)
        yield self.channel_claims.resync(link)
        self.order.forget()  # what this node sent before may never come back: the bursts settle it
        self._outgoing[:0] = [["H", self.node_id], self._burst()]
        yield self._send(link, self._take_batch()[1])
        self._hb_unanswered = 0
        if not self._heartbeat.running:
            self._heartbeat.start(HEARTBEAT, now=False)
        self.reactor.callLater(0, self._became_ready)

    def _became_ready(self) -> None:
        self.is_ready = True
        waiters, self._ready = self._ready, []
        for waiter in waiters:
            if not waiter.called:  # a nick claim that gave up waiting
                waiter.callback(None)

    def burst_again(self) -> None:
        """Tell every node this node's users and channels again (after a forced rename)."""
        self._emit(self._burst())

    def emit(self, event: list[Any]) -> None:
        """Send ``event`` to every node, in this turn's batch."""
        self._emit(event)

    # -- heartbeat and reaping -------------------------------------------------------------------

    def _beat(self) -> None:
        if self._ping_unanswered >= HEARTBEATS_MISSED:
            log.warn("the Redis subscriber connection is silent; reconnecting")
            self._ping_unanswered = 0
            self.subscriber.cut()
        elif self.subscriber.current is not None:
            self._ping_unanswered += 1
            self.subscriber.execute("PING").addCallbacks(self._pong, lambda failure: None)
        if self._hb_unanswered >= HEARTBEATS_MISSED:
            log.warn("Redis has not answered {n} heartbeats; reconnecting", n=self._hb_unanswered)
            self._hb_unanswered = 0
            self.control.cut()
            return
        self._hb_unanswered += 1
        beat = self.control.run(scripts.HEARTBEAT, self.prefix, self.node_id, self.incarnation,
                                DEAD_AFTER_MS, REAP_CHUNK)
        beat.addCallbacks(self._beat_answered, self._beat_failed)

    def _pong(self, _: Any) -> None:
        self._ping_unanswered = 0

    def _beat_answered(self, reply: list[Any]) -> None:
        self._hb_unanswered = 0
        self.beats += 1
        if reply[0] == 0:
            log.warn("this node was declared dead (fenced); registering again")
            self.control.cut()
            return
        live = {node.decode() for node in reply[1:]}
        self.live_nodes = live
        now = self.reactor.seconds()
        for node in list(self.ghosts):
            if node in live:
                self._missing_since.pop(node, None)
            elif now - self._missing_since.setdefault(node, now) >= DEAD_AFTER_MS / 1000:
                self._split_node(node, SPLIT_REASON)

    def _beat_failed(self, failure: Any) -> None:
        if not failure.check(RedisUnavailable):
            log.failure("heartbeat failed", failure)

    # -- nick claims (the hooks in registration and NICK) ----------------------------------------

    def holds_nick(self, user: User, nick: str | None = None, retry: Message | None = None) -> bool:
        """Whether this node holds ``nick`` (default: the user's) in Redis for ``user``.

        True once: the claim is spent. Otherwise a claim is started and False returned; when it
        completes, registration is tried again (or ``retry``, the NICK, is handled again).
        """
        folded = casefold(nick) if nick is not None else user.folded
        if self._claims.get(user) == folded:
            del self._claims[user]
            return True
        if user in self._claiming:
            # One claim at a time per connection: a flood of NICKs costs Redis one round trip.
            if user.registered:
                self.core.reply(user, N.ERR_UNAVAILRESOURCE, nick or user.nick,
                                "Nick change in progress, try again")
            return False
        if folded in self._pending:
            if self._pending[folded] is not user:
                self.core.reply(user, N.ERR_NICKNAMEINUSE, nick or user.nick,
                                "Nickname is already in use")
                if not user.registered:
                    user.nick, user.folded = "*", ""
            return False
        self._pending[folded] = user
        self._claiming.add(user)
        if self.control.current is not None:
            claim = self.control.run(scripts.CLAIM, self.prefix, self.node_id, self.incarnation,
                                     "new", folded, repr(user.signon))
        else:
            # Redis is away (or not reached yet): wait a bounded time for it, never longer.
            claim = self.when_ready().addTimeout(CLAIM_WAIT, self.reactor)
            claim.addCallback(lambda _: self.control.run(
                scripts.CLAIM, self.prefix, self.node_id, self.incarnation, "new", folded,
                repr(user.signon)))
        claim.addBoth(self._claimed, user, folded, nick or user.nick, retry)
        return False

    def _claimed(self, result: Any, user: User, folded: str, nick: str,
                 retry: Message | None) -> None:
        self._pending.pop(folded, None)
        self._claiming.discard(user)
        core = self.core
        if not isinstance(result, list) or result[0] != 1:
            if isinstance(result, list):  # another node holds it
                core.reply(user, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            else:  # Redis away, or this node fenced (it registers again): try again shortly
                if result == -1:
                    self.control.cut()
                core.reply(user, N.ERR_UNAVAILRESOURCE, nick,
                           "Nick/channel is temporarily unavailable (the network is resyncing)")
            if not user.registered and user.folded == folded:
                user.nick, user.folded = "*", ""
            elif not user.registered and user.folded and user in core.state.connections:
                try_register(core, user)  # it asked for another nick meanwhile: claim that one
            return
        if user not in core.state.connections:
            self._release(folded)
            return
        self._claims[user] = folded
        try:
            if retry is not None:
                core.handle(user, retry)
            elif not user.registered:
                try_register(core, user)
                if user.registered:
                    self._emit(self._introduction(user))
        finally:
            if self._claims.pop(user, None) is not None and user.folded != folded:
                self._release(folded)

    def _release(self, folded: str) -> None:
        released = self.control.run(scripts.RELEASE, self.prefix, self.node_id, folded)
        released.addErrback(lambda failure: None)  # a lost link: the node's resync settles it

    def _introduction(self, user: User) -> list[Any]:
        return ["U", self.node_id, self._user_record(user)]

    # -- events out ------------------------------------------------------------------------------

    def on_relay(self, relay: Relay) -> None:
        """The bus subscriber: a relayed line that other nodes need becomes an event."""
        message = relay.message
        command = message.command
        if command in MESSAGE_COMMANDS:
            target = message.params[0]
            if is_channel_name(target, CHANTYPES):
                channel = self.core.state.find_channel(target)
                if channel is None or not any(m in self.ghost_node for m in channel.members):
                    return  # no other node has members: nothing to publish
            else:
                recipient = self.core.state.find_user(target)
                if recipient is None or recipient not in self.ghost_node:
                    return
                self.outboxes.add(self.ghost_node[recipient], [
                    "L", self.node_id, message.source or "", command, list(message.params),
                    relay.client_tags or None, relay.msgid, relay.now, None, relay.account])
                self._flush_soon()
                return
        elif command not in STATE_COMMANDS:
            return
        source = message.source or ""
        extra: Any = None
        state = self.core.state
        if command == "JOIN":
            actor = state.find_user(_nick_of(source))
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
            self.order.wrote(line_things(command, _nick_of(source), list(message.params)))
            self.channel_claims.relayed(command, _nick_of(source), message.params)
        elif command == "QUIT":
            self.channel_claims.relayed(command, _nick_of(source), message.params)
        old = casefold(_nick_of(source))
        if command == "QUIT" or (command == "NICK" and old != casefold(message.params[0])):
            self._release(old)  # (a change of case keeps the same claim)

    def _emit(self, event: list[Any]) -> None:
        self._outgoing.append(event)
        self._flush_soon()

    def _flush_soon(self) -> None:
        if len(self._outgoing) + self.outboxes.count >= MAX_BATCH:
            self._flush()
        elif self._flush_call is None:
            self._flush_call = self.reactor.callLater(self.pacer.delay(), self._flush)

    def _take_batch(self) -> tuple[int, bytes]:
        """This turn's events as one payload, and the batch's number (see order.py)."""
        batch, self._outgoing = self._outgoing, []
        number, marker = self.order.seal(self.node_id)
        if marker is not None:
            batch.append(marker)
        return number, json.dumps(batch, separators=(",", ":")).encode()

    def _flush(self) -> None:
        """Publish this turn's events as one batch; while Redis is away they are dropped."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self.channel_claims.touched:
            # A channel's last local member left: the claim goes before anyone sees the PART.
            self.channel_claims.settle()
        self.outboxes.flush()
        if not self._outgoing:
            return
        link = self.control.current
        number, payload = self._take_batch()
        self.pacer.sent()
        if link is None:
            self.dropped_batches += 1
            self.order.passed(number)
            return
        self._send(link, payload).addCallbacks(self._published, self._publish_failed,
                                               callbackArgs=(number,), errbackArgs=(number,))

    def _published(self, seq: int, number: int) -> None:
        if seq == -1:  # fenced: the batch is not in the stream
            self.order.passed(number)

    def _send(self, link: RedisProtocol, payload: bytes) -> defer.Deferred[Any]:
        sent = scripts.PUBLISH.run(link, self.prefix, self.node_id, self.incarnation, payload)

        def check(seq: int) -> int:
            if seq == -1:
                log.warn("a publish was fenced: this node is registering again")
                self.control.cut()
            return seq

        return sent.addCallback(check)

    def _publish_failed(self, failure: Any, number: int) -> None:
        self.dropped_batches += 1
        self.order.passed(number)
        if not failure.check(RedisUnavailable):
            log.failure("publishing events failed", failure)

    # -- events in: order, gaps ------------------------------------------------------------------

    def _on_message(self, channel: bytes, data: bytes) -> None:
        if channel == self._inbox_name:
            self.inbox.receive(data)
        else:
            self.events.receive(data)

    def _catch_up(self) -> None:
        """The subscriber reconnected: read what was published while it was away."""
        self.events.catch_up()
        self.inbox.catch_up()

    def _events_lost(self, why: str) -> None:
        """Batches of events are gone for good: ask every node for its state again."""
        log.warn("lost batches of events ({why}); asking the network to resync", why=why)
        self.order.forget()
        self._emit(["H", self.node_id])

    def apply_batch(self, payload: bytes) -> None:
        """Apply one batch of events (from the network's feed or this node's inbox)."""
        self.applied_batches += 1
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
            self._apply_burst(node, event[2], event[3])
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

    # -- replicas: users ----------------------------------------------------------------------------

    def _user_record(self, user: User) -> list[Any]:
        return [user.nick, user.username, user.host, user.realname, user.signon, user.away,
                "".join(sorted(user.modes)),
                {channel.name: channel.members[user] for channel in user.channels.values()},
                self.record_extras(user)]

    def _ghost(self, node: str, record: list[Any]) -> User | None:
        """Create or refresh the replica of a remote user; its channels follow in bursts."""
        if not self.valid(check_record, "user record", node, record):
            return None
        nick, username, host, realname, signon, away, modes = record[:7]
        state = self.core.state
        folded = casefold(nick)
        holder = state.users.get(folded)
        if holder is not None and self.ghost_node.get(holder) != node:
            if holder not in self.ghost_node:
                log.warn("{node} introduced {nick}, a nick of ours; ignored", node=node, nick=nick)
                return None
            self._split_user(holder, SPLIT_REASON)  # Redis gave the nick to another node since
            holder = None
        ghost = holder
        if ghost is None:
            ghost = User(host, _nothing, _nothing, signon)
            ghost.outbox = REMOTE_OUTBOX
            ghost.nick, ghost.folded, ghost.registered = nick, folded, True
            state.users[folded] = ghost
            self.ghosts.setdefault(node, set()).add(ghost)
            self.ghost_node[ghost] = node
        ghost.username, ghost.host, ghost.realname = username, host, realname
        ghost.signon, ghost.away, ghost.modes = signon, away, set(modes)
        self.adopt_extras(node, ghost, record[8] if len(record) > 8 else None, holder is None)
        return ghost

    def _split_user(self, ghost: User, reason: str) -> None:
        """A remote user is gone: QUIT to local neighbours, then forget it."""
        state = self.core.state
        Relay(Message("QUIT", (reason,), ghost.source), self.core.clock()).send_to(
            state.neighbours(ghost))
        state.remove(ghost, self.core.clock())
        node = self.ghost_node.pop(ghost, None)
        if node is not None:
            self.ghosts.get(node, set()).discard(ghost)
        self.remote_gone(ghost, node)

    def _split_node(self, node: str, reason: str) -> None:
        for ghost in list(self.ghosts.pop(node, ())):
            self._split_user(ghost, reason)
        self._missing_since.pop(node, None)

    # -- replicas: bursts ----------------------------------------------------------------------------

    def _burst(self) -> list[Any]:
        """Everything other nodes need to know about this node's users and their channels."""
        users = [u for u in self.core.state.users.values()
                 if u.registered and u not in self.ghost_node]
        channels: dict[str, Channel] = {}
        for user in users:
            channels.update(user.channels)
        return ["B", self.node_id, [self._user_record(u) for u in users],
                [self._channel_record(c) for c in channels.values()]]

    @staticmethod
    def _channel_record(channel: Channel) -> list[Any]:
        return [channel.name, channel.created, channel.topic, channel.topic_setter,
                channel.topic_time, "".join(sorted(channel.modes)), channel.key, channel.limit,
                [[mask, setter, when] for mask, (setter, when) in channel.bans.items()]]

    def _apply_burst(self, node: str, users: list[Any], channels: list[Any]) -> None:
        """A node's whole state: its users and memberships become exactly these."""
        infos = {casefold(record[0]): record for record in channels
                 if self.valid(check_channel_record, "channel record", node, record)}
        present = {casefold(record[0]) for record in users}
        for ghost in list(self.ghosts.get(node, ())):
            if ghost.folded not in present:
                self._split_user(ghost, SPLIT_REASON)
        now = self.core.clock()
        for record in users:
            member = self._ghost(node, record)
            if member is None:
                continue
            self._burst_memberships(member, record[7], infos, now)

    def _burst_memberships(self, ghost: User, memberships: dict[str, str],
                           infos: dict[str, list[Any]], now: float) -> None:
        """A remote user's channels become exactly ``memberships`` (channel -> prefixes)."""
        state = self.core.state
        wanted = {casefold(name): (name, prefixes) for name, prefixes in memberships.items()}
        for folded, joined in list(ghost.channels.items()):
            if folded not in wanted:
                Relay(Message("PART", (joined.name,), ghost.source), now).send_to(
                    joined.members, ghost)
                state.part(ghost, joined)
        for folded, (name, prefixes) in wanted.items():
            channel = state.channels.get(folded)
            info = infos.get(folded)
            if channel is None:
                channel = state.channels[folded] = Channel(name, info[1] if info else now)
                if info:
                    self._adopt(channel, info)
            elif info:
                self._merge(channel, info)
            if ghost not in channel.members:
                channel.members[ghost] = prefixes
                channel.forget_names()
                ghost.channels[folded] = channel
                Relay(Message("JOIN", (channel.name,), ghost.source), now).send_to(
                    channel.members, ghost)
            elif channel.members[ghost] != prefixes:
                channel.set_prefixes(ghost, prefixes)

    @staticmethod
    def _adopt(channel: Channel, info: list[Any]) -> None:
        name, created, topic, setter, topic_time, modes, key, limit, bans = info
        channel.created = created
        channel.topic, channel.topic_setter, channel.topic_time = topic, setter, topic_time
        channel.modes, channel.key, channel.limit = set(modes), key, limit
        channel.bans = {mask: (who, when) for mask, who, when in bans}

    def _merge(self, channel: Channel, info: list[Any]) -> None:
        """Settle two views of a channel as InspIRCd does: the lower creation time wins."""
        if info[1] < channel.created:
            self._adopt(channel, info)
        elif info[4] > channel.topic_time:
            channel.topic, channel.topic_setter, channel.topic_time = info[2], info[3], info[4]

    # -- replicas: relayed lines -------------------------------------------------------------------

    def _apply_line(self, node: str, source: str, command: str, params: list[str],
                    tags: dict[str, str] | None, msgid: str | None, now: float,
                    extra: Any, account: str | None = None) -> None:
        state = self.core.state
        actor = state.find_user(_nick_of(source))
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
            self.remote_renamed(actor, _nick_of(source))
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
        if is_channel_name(target, CHANTYPES):
            channel = state.find_channel(target)
            if channel is None:
                return
            recipients = channel.members
        else:
            user = state.find_user(target)
            if user is None or user in self.ghost_node:
                return
            recipients = [user]
        if command == "TAGMSG":
            recipients = [u for u in recipients if "message-tags" in u.caps]
        relay.send_to(recipients, actor)
