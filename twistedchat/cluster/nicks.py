"""Nick claims in Redis: the hooks registration and NICK ask before a nick is used or changed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from twistedchat.cluster import scripts
from twistedchat.cluster.parts import NodeParts
from twistedchat.server.commands.registration import try_register
from twistedchat.server.state import User
from twistedchat.wire import numerics as N
from twistedchat.wire.message import Message
from twistedchat.wire.names import casefold

#: Seconds a nick claim waits for Redis to come back before the user is told to retry (437).
CLAIM_WAIT = 5.0


class NickHolds(NodeParts):
    """The part of :class:`~twistedchat.cluster.node.ClusterNode` that claims and frees nicks.

    A mixin: the node provides ``core``, the control link, its identity in Redis, ``when_ready``,
    ``_emit`` and ``_user_record``.
    """

    #: Completed nick claims not yet used: user -> folded nick.
    _claims: dict[User, str]
    #: Claims waiting for Redis: folded nick -> user.
    _pending: dict[str, User]
    _claiming: set[User]

    if TYPE_CHECKING:
        def when_ready(self) -> defer.Deferred[None]: ...

        def _emit(self, event: list[Any]) -> None: ...

        def _user_record(self, user: User) -> list[Any]: ...

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
