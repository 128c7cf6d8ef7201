"""What a bot sends: messages (kept while offline) and channel commands that report a result."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from twistedchat.bot.client import one_line, valid_word
from twistedchat.bot.output import OfflineBuffer, Outgoing
from twistedchat.bot.state import ChannelTracker
from twistedchat.wire.names import normalize_mask

if TYPE_CHECKING:
    from twistedchat.bot.client import BotClient, BotFactory


class BotActions:
    """The :class:`~twistedchat.bot.core.Bot` methods that talk to the server."""

    client: BotClient | None
    factory: BotFactory | None
    state: ChannelTracker
    logger: Logger
    offline_limit: int
    _offline: OfflineBuffer

    def say(self, target: str, text: str, *, max_lines: int | None = None,
            priority: int = 0) -> None:
        """Send ``text`` to a channel or nick, split into as many lines as it needs.

        ``max_lines`` cuts a long text (ending it with ``…``); a higher ``priority`` goes
        before waiting lines of lower priority. Each target has its own queue and targets take
        turns, so a long answer to one user does not hold up a short one to another. While the
        bot is disconnected, what it says waits (the last :attr:`offline_limit` messages).
        """
        self._send("PRIVMSG", target, text, max_lines=max_lines, priority=priority)

    def notice(self, target: str, text: str, *, max_lines: int | None = None,
               priority: int = 0) -> None:
        """Like :meth:`say`, as a NOTICE (which bots should use to talk to other bots)."""
        self._send("NOTICE", target, text, max_lines=max_lines, priority=priority)

    def _send(self, command_name: str, target: str, text: str, **options: Any) -> None:
        client = self.client
        if client is None or not client._registered:
            self.keep_for_later(command_name, target, text, **options)
            return
        client.send_message(command_name, target, text, **options)

    def keep_for_later(self, command_name: str, target: str, text: str, **options: Any) -> None:
        """Keep a message until the next sign-on (the oldest go beyond :attr:`offline_limit`)."""
        self._offline.add(Outgoing(command_name, target, text, options))
        if self._offline.dropped == 1:
            self.logger.warn("not connected: keeping only the last {limit} messages",
                             limit=self.offline_limit)

    def flush_offline(self) -> None:
        """Send what was said while disconnected (called after sign-on)."""
        for item in self._offline.drain():
            self._send(item.command, item.target, item.text, **item.options)

    def join(self, channel: str, key: str | None = None) -> defer.Deferred[None]:
        """Join ``channel``; fails with a :class:`ServerError` (banned, invite only, full...)."""
        if not valid_word(channel) or (key is not None and not valid_word(key)):
            return defer.fail(ValueError(f"not a channel (and key): {channel!r}"))
        if self.factory is not None and channel.lower() not in (
                c.lower() for c in self.factory.channels):
            self.factory.channels.append(channel)
        line = f"JOIN {channel}" + (f" {key}" if key else "")
        return self._command(line, [channel], ("403", "405", "471", "473", "474", "475", "476"))

    def part(self, channel: str, reason: str | None = None) -> defer.Deferred[None]:
        """Leave ``channel`` (and do not rejoin it on reconnect)."""
        line = f"PART {channel}" + (f" :{one_line(reason)}" if reason else "")
        return self._command(line, [channel], ("403", "442"))

    def kick(self, channel: str, nick: str, reason: str = "") -> defer.Deferred[None]:
        """Kick ``nick``; fails with the server's error (``482``: the bot is not an operator)."""
        line = f"KICK {channel} {nick}" + (f" :{one_line(reason)}" if reason else "")
        return self._command(line, [channel, nick], ("401", "403", "441", "442", "482"))

    def topic(self, channel: str, text: str) -> defer.Deferred[None]:
        """Set the topic of ``channel``."""
        return self._command(f"TOPIC {channel} :{one_line(text)}", [channel], ("403", "442", "482"))

    def mode(self, target: str, modes: str, *args: str) -> defer.Deferred[None]:
        """Change modes (``mode("#lobby", "+o", "alice")``)."""
        line = " ".join(["MODE", target, modes, *args])
        return self._command(line, [target, modes, *args],
                             ("401", "403", "441", "442", "472", "482", "501", "502"))

    def ban(self, channel: str, who: str) -> defer.Deferred[None]:
        """Ban a nick (as ``*!*@host`` when the bot has seen the host) or a mask."""
        return self.mode(channel, "+b", self._ban_mask(who))

    def unban(self, channel: str, who: str) -> defer.Deferred[None]:
        """Lift a ban set by :meth:`ban` (the same nick or mask)."""
        return self.mode(channel, "-b", self._ban_mask(who))

    def _ban_mask(self, who: str) -> str:
        person = self.state.person(who) if "!" not in who and "@" not in who else None
        if person is not None and person.host:
            return f"*!*@{person.host}"
        return normalize_mask(who)

    def _command(self, line: str, subjects: Iterable[str],
                 codes: Iterable[str]) -> defer.Deferred[None]:
        if self.client is None:
            return defer.fail(ConnectionError("not connected"))
        return self.client.command(line, subjects, codes)
