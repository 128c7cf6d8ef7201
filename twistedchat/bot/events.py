"""What a bot hears: channel, nick and message events turned into channel state and handler calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import task

from twistedchat.bot.permissions import Rate
from twistedchat.client.protocol import ChatClient, split_prefixes

if TYPE_CHECKING:
    from twistedchat.bot.client import BotFactory

#: How often one nick's CTCP queries (VERSION, PING, TIME...) are answered.
CTCP_RATE = Rate(user=10.0)
#: ``nick!user@host`` entries of NAMES replies kept until the list ends (one big channel's worth).
MAX_NAME_SOURCES = 10_000
#: The WHOX query token the bot uses to recognise its own replies.
WHOX_TOKEN = "152"


class BotEvents(ChatClient):
    """The incoming half of a :class:`~twistedchat.bot.client.BotClient`: JOIN, PART, KICK, QUIT,
    NICK, MODE, TOPIC, WHO, messages and CTCP update the bot's state and run its handlers."""

    factory: BotFactory
    _source: str | None
    _name_sources: list[str]
    _reclaim: task.LoopingCall | None

    # -- the wanted nickname ---------------------------------------------------------------------

    def _try_wanted_nick(self) -> None:
        if self.nickname != self.factory.nickname:
            self.setNick(self.factory.nickname)

    def _stop_reclaiming(self) -> None:
        if self._reclaim is not None and self._reclaim.running:
            self._reclaim.stop()
        self._reclaim = None

    def _holder_gone(self, nick: str) -> None:
        if self._reclaim is not None and self.factory.bot.state.fold(nick) == \
                self.factory.bot.state.fold(self.factory.nickname):
            self.setNick(self.factory.nickname)

    # -- channel events --------------------------------------------------------------------------

    def irc_JOIN(self, prefix: str, params: list[str]) -> None:
        bot = self.factory.bot
        nick = prefix.split("!", 1)[0]
        channel = params[0] if params else ""
        account = params[1] if len(params) > 2 else None  # extended-join: channel account :realname
        if nick == self.nickname and "!" in prefix:
            self._source = prefix
        bot.state.joined(channel, prefix, account)
        if nick == self.nickname:
            self.joined(channel)
        else:
            bot.dispatch_join(nick, channel, prefix)

    def joined(self, channel: str) -> None:
        super().joined(channel)
        bot = self.factory.bot
        bot.joined_channels.add(channel.lower())
        bot.logger.info("joined {channel}", channel=channel)
        if self.supported.hasFeature("WHOX"):
            self.sendLine(f"WHO {channel} %tcuhnfa,{WHOX_TOKEN}")

    def irc_RPL_NAMREPLY(self, prefix: str, params: list[str]) -> None:
        if len(params) >= 4:  # with userhost-in-names, entries are nick!user@host: keep the hosts
            symbols = self.prefix_symbols()
            for name in params[3].split():
                source = split_prefixes(name, symbols)[1]
                if "!" in source and len(self._name_sources) < MAX_NAME_SOURCES:
                    self._name_sources.append(source)
        super().irc_RPL_NAMREPLY(prefix, params)

    def namesReceived(self, channel: str, members: list[tuple[str, str]]) -> None:
        state = self.factory.bot.state
        state.names(channel, members)
        for source in self._name_sources:
            state.seen(source)
        self._name_sources = []

    def irc_PART(self, prefix: str, params: list[str]) -> None:
        bot = self.factory.bot
        nick = prefix.split("!", 1)[0]
        channel = params[0] if params else ""
        bot.state.parted(channel, nick)
        if nick == self.nickname:
            self.left(channel)
        else:
            bot.dispatch_event("part", prefix, channel, text=params[1] if len(params) > 1 else "")

    def left(self, channel: str) -> None:
        super().left(channel)
        self.factory.bot.joined_channels.discard(channel.lower())
        self.factory.bot.logger.info("left {channel}", channel=channel)

    def irc_KICK(self, prefix: str, params: list[str]) -> None:
        if len(params) < 2:
            return
        bot = self.factory.bot
        channel, victim = params[0], params[1]
        reason = params[2] if len(params) > 2 else ""
        bot.state.parted(channel, victim)
        if bot.state.is_me(victim) or victim == self.nickname:
            self.kickedFrom(channel, prefix.split("!", 1)[0], reason)
        bot.dispatch_event("kick", prefix, channel, text=reason, target=victim)

    def kickedFrom(self, channel: str, kicker: str, message: str) -> None:
        super().kickedFrom(channel, kicker, message)
        bot = self.factory.bot
        bot.joined_channels.discard(channel.lower())
        bot.logger.warn("kicked from {channel} by {kicker}: {reason}", channel=channel,
                     kicker=kicker, reason=message)
        bot.kicked(channel, kicker, message)

    def irc_QUIT(self, prefix: str, params: list[str]) -> None:
        nick = prefix.split("!", 1)[0]
        bot = self.factory.bot
        channels = bot.state.quit(nick)
        self._holder_gone(nick)
        bot.dispatch_event("quit", prefix, None, text=params[0] if params else "",
                           channels=channels)

    def irc_NICK(self, prefix: str, params: list[str]) -> None:
        if not params:
            return
        old, new = prefix.split("!", 1)[0], params[0]
        bot = self.factory.bot
        channels = bot.state.renamed(old, new)
        if old == self.nickname:
            self.nickChanged(new)
        else:
            self._holder_gone(old)
            bot.dispatch_event("nick", prefix, None, new_nick=new, channels=channels)

    def nickChanged(self, nick: str) -> None:
        super().nickChanged(nick)
        self.factory.bot.state.own_nick = nick
        if self._source is not None:
            self._source = nick + self._source[self._source.index("!"):]
        if nick == self.factory.nickname:
            self._stop_reclaiming()

    def irc_MODE(self, prefix: str, params: list[str]) -> None:
        if len(params) < 2:
            return
        target = params[0]
        if target[:1] not in self.supported.getFeature("CHANTYPES", "#&"):
            return  # our own user modes
        bot = self.factory.bot
        changes = bot.state.mode(target, params[1], params[2:])
        bot.dispatch_event("mode", prefix, target, modes=changes)

    def irc_TOPIC(self, prefix: str, params: list[str]) -> None:
        if len(params) < 2:
            return
        bot = self.factory.bot
        bot.state.topic(params[0], params[1], prefix)
        bot.dispatch_event("topic", prefix, params[0], text=params[1])

    def irc_RPL_TOPIC(self, prefix: str, params: list[str]) -> None:
        if len(params) >= 3:
            self.factory.bot.state.topic(params[1], params[2])

    def irc_RPL_WHOREPLY(self, prefix: str, params: list[str]) -> None:
        # 352 me channel user host server nick flags :hops realname
        if len(params) >= 6:
            self.factory.bot.state.who(params[5], params[2], params[3])

    def _whox_reply(self, params: list[str]) -> None:
        # 354 me token channel user host nick flags account (fields t c u h n f a, in that order)
        if len(params) >= 8 and params[1] == WHOX_TOKEN:
            self.factory.bot.state.who(params[5], params[3], params[4], params[7])

    def irc_ACCOUNT(self, prefix: str, params: list[str]) -> None:
        if params:
            self.factory.bot.state.account(prefix.split("!", 1)[0], params[0])

    def irc_NOTICE(self, prefix: str, params: list[str]) -> None:
        if "!" in prefix and len(params) >= 2 and params[-1][:1] != "\x01":
            target = params[0]
            channel = None if self.factory.bot.state.is_me(target) else target
            self.factory.bot.dispatch_event("notice", prefix, channel, text=params[-1],
                                            tags=self.current_tags)
        super().irc_NOTICE(prefix, params)

    def privmsg(self, user: str, channel: str, message: str) -> None:
        self._message(user, channel, message, action=False)

    def action(self, user: str, channel: str, data: str) -> None:
        self._message(user, channel, data, action=True)

    def _message(self, user: str, target: str, text: str, action: bool) -> None:
        if self.factory.bot.state.is_me(user.split("!", 1)[0]):
            return  # our own line coming back (a relay or a bouncer): never a reason to answer
        channel = None if self.factory.bot.state.is_me(target) or \
            target.lower() == self.nickname.lower() else target
        self.factory.bot.dispatch_message(user, channel, text, action, self.current_tags)

    def ctcpQuery(self, user: str, channel: str, messages: list[tuple[str, Any]]) -> None:
        """CTCP queries other than ACTION get answers at most once per :data:`CTCP_RATE` per
        nick: each answer is a line the bot sends, so queries must not crowd out its output."""
        bot = self.factory.bot
        queries = [m for m in messages if m[0] != "ACTION"]
        if queries:
            wait = bot.rates.check("ctcp", CTCP_RATE, bot.state.fold(user.split("!", 1)[0]),
                                   None, bot.clock.seconds())
            if wait > 0:
                messages = [m for m in messages if m[0] == "ACTION"]
        super().ctcpQuery(user, channel, messages)

    def ctcpQuery_VERSION(self, user: str, channel: str, data: Any) -> None:
        version = self.factory.bot.version
        if version:
            self.ctcpMakeReply(user.split("!", 1)[0], [("VERSION", version)])
