"""Two nodes holding users with one nick, as InspIRCd settles it: the older signon keeps it.

It can happen only when nodes claim their users' nicks again (Redis lost its data, or a node cut
off from Redis was split by the others while a newer user took one of its nicks). CLAIM's
``again`` mode decides in Redis; the node that loses renames its user to a Guest nick computed
from the nick and the node (so every replica renames the user the same way on the ``R`` event)
and tells the user why.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from twistedchat.cluster import scripts
from twistedchat.cluster.resp import RedisProtocol
from twistedchat.server.relay import Relay
from twistedchat.server.state import User
from twistedchat.wire.message import Message

if TYPE_CHECKING:
    from twistedchat.cluster.node import ClusterNode

log = Logger()


def guest_nick(folded: str, node: str) -> str:
    """The nick a user of ``node`` gets when an older user elsewhere keeps ``folded``: the same
    on every node, so each replica renames it as its own node does."""
    digest = hashlib.sha256(f"{node} {folded}".encode()).digest()
    return f"Guest{int.from_bytes(digest[:4], 'big') % 10**6:06d}"


def claim_args(users: Iterable[User]) -> list[str]:
    """CLAIM's (folded nick, signon) pairs for ``users``."""
    return [text for user in users for text in (user.folded, repr(user.signon))]


class NickCollisions:
    """This node's side of nick collisions: claiming again, losing a nick, following a rename."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self._burst_call: Any = None

    @defer.inlineCallbacks
    def claim_again(self, link: RedisProtocol, users: list[User]) -> Any:
        """A new registration: claim the local users' nicks again; rename those that lose."""
        node = self.node
        results = yield scripts.CLAIM.run(link, node.prefix, node.node_id, node.incarnation,
                                          "again", *claim_args(users))
        for user, held in zip(users, results, strict=True):
            if not held:
                self.lost(user)

    def lost(self, user: User) -> None:
        """A user who signed on earlier on another node holds this user's nick: rename this one
        to a Guest nick and say why."""
        node = self.node
        core = node.core
        fallback = guest_nick(user.folded, node.node_id)
        if core.state.nick_in_use(fallback, by=user):
            fallback = f"Guest{secrets.randbelow(10**6):06d}"
        log.warn("nick {nick} belongs to an older user on another node; renaming", nick=user.nick)
        lost, old = user.nick, user.source
        core.state.set_nick(user, fallback, core.clock())
        core.relay([user, *core.state.neighbours(user)], old, "NICK", fallback)
        core.notice(user, f"Nick collision: {lost} belongs to an older connection on another "
                          f"server of this network; you are now {fallback}")
        claim = node.control.run(scripts.CLAIM, node.prefix, node.node_id, node.incarnation,
                                 "new", *claim_args([user]))
        claim.addErrback(lambda failure: None)  # a lost link: the next resync claims it
        if self._burst_call is None:  # nodes that ignored this user's old nick learn it now
            self._burst_call = node.reactor.callLater(0, self._burst_again)

    def _burst_again(self) -> None:
        self._burst_call = None
        self.node.burst_again()

    def taken(self, folded: str, loser: str) -> None:
        """An ``R`` event: a node took ``folded`` from ``loser`` by the older-signon rule."""
        node = self.node
        state = node.core.state
        user = state.users.get(folded)
        if user is None:
            return
        owner = node.ghost_node.get(user)
        if owner is None:
            if loser == node.node_id:
                self.lost(user)
        elif owner == loser:  # the replica follows the rename the loser makes
            old = user.source
            now = node.core.clock()
            state.set_nick(user, guest_nick(folded, loser), now)
            Relay(Message("NICK", (user.nick,), old), now).send_to(state.neighbours(user))
