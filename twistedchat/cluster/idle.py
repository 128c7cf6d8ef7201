"""WHOIS idle time (317) of a user on another node, exact when someone asks.

The ``I`` event a node sends when its user speaks goes at most once a minute per user
(:data:`~twistedchat.cluster.carry.IDLE_REFRESH`), so a replica's idle time can be a minute
behind. A WHOIS of a remote user therefore asks the user's own node (``Q``, to its inbox), which
answers with the exact time of the user's last message (``I``, to the asking node's inbox); the
WHOIS (and the asker's later lines) waits for the answer, at most :data:`IDLE_WAIT` seconds,
then answers from the replica as it is.

Bounded against a WHOIS flood: one question per remote user at a time, none again for
:data:`IDLE_FRESH` seconds after it (later WHOISes answer at once from the replica), and at most
:data:`MAX_ASKING` users asked about at once per node (past that, WHOIS answers from the
replica). So the network carries at most one question and one answer (~100 bytes each) per
remote user per ``IDLE_FRESH`` seconds per asking node, however many WHOISes are sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from twistedchat.server.state import User

if TYPE_CHECKING:
    from twistedchat.cluster.carry import CarriedState

#: Seconds an answer counts: a WHOIS within them answers at once, without asking again.
IDLE_FRESH = 5.0
#: The longest a WHOIS waits for the owner's answer (seconds).
IDLE_WAIT = 1.0
#: Remote users asked about at once by one node; past it, WHOIS answers from the replica.
MAX_ASKING = 256


class IdleQueries:
    """This node's questions about remote users' idle times, and the WHOISes waiting on them."""

    def __init__(self, node: CarriedState) -> None:
        self.node = node
        #: When (reactor seconds) each remote user was last asked about.
        self.asked: dict[User, float] = {}
        #: The WHOISes waiting for an answer about each remote user.
        self.waiting: dict[User, list[defer.Deferred[None]]] = {}
        self._timeouts: dict[User, Any] = {}
        #: Questions sent since the start (for tests and operators).
        self.questions = 0

    def fresh(self, asker: User, target: User, rerun: Callable[[], None]) -> bool:
        """Whether WHOIS may answer about ``target`` now: False while its own node is asked
        (``rerun`` runs the WHOIS again when the answer comes, or after IDLE_WAIT; the input
        of ``asker`` is held until then)."""
        node = self.node
        owner = node.ghost_node.get(target)
        if owner is None or node.control.current is None:
            return True  # a local user, or Redis away: the replica is all there is
        now = node.reactor.seconds()
        if target not in self.waiting:
            asked = self.asked.get(target)
            if asked is not None and now - asked < IDLE_FRESH:
                return True
            if len(self.waiting) >= MAX_ASKING:
                return True
            self._ask(owner, target, now)
        held: defer.Deferred[None] = defer.Deferred()
        held.addCallback(self._rerun, asker, rerun)
        self.waiting[target].append(held)
        node.core.hold_input(asker, held)
        return False

    def _ask(self, owner: str, target: User, now: float) -> None:
        node = self.node
        if len(self.asked) > 2 * MAX_ASKING:  # forget old answers (amortised: rarely)
            self.asked = {u: t for u, t in self.asked.items() if now - t < IDLE_FRESH}
        self.asked[target] = now
        self.waiting[target] = []
        self._timeouts[target] = node.reactor.callLater(IDLE_WAIT, self.answered, target)
        self.questions += 1
        node._send_to_node(owner, ["Q", node.node_id, owner, target.nick])

    def answered(self, target: User) -> None:
        """``target``'s idle time came from its node (or the wait ran out): the WHOISes go on."""
        timeout = self._timeouts.pop(target, None)
        if timeout is not None and timeout.active():
            timeout.cancel()
        for held in self.waiting.pop(target, []):
            held.callback(None)

    def _rerun(self, _: Any, asker: User, rerun: Callable[[], None]) -> None:
        if asker in self.node.core.state.connections:
            rerun()


def answer_idle_query(carrier: CarriedState, node: str, fields: list[Any]) -> None:
    """Another node asks when a local user last spoke (``Q``): answer to its inbox alone."""
    user = carrier.local_target(*fields[:2])
    if user is not None:
        carrier._send_to_node(node, ["I", carrier.node_id, user.nick, user.last_message])
