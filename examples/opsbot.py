"""Ops helper: ``!kick NICK [REASON]`` and ``!topic TEXT`` for the channel's operators only.

The bot must be a channel operator itself; when it is not, it says what the server answered.

    twistd -n --pidfile= chatbot --channel '#lobby' examples/opsbot.py
"""

from twistedchat.bot import Bot, ServerError, command, require


class OpsBot(Bot):
    """Kicks and sets topics for the channel's operators."""

    nickname = "opsbot"

    @command("kick")
    @require(op=True)
    async def kick_someone(self, event):
        """Kick someone out of this channel: !kick NICK [REASON]."""
        if not event.argv:
            return f"{event.nick}: usage: {self.prefix}kick NICK [REASON]"
        reason = " ".join(event.argv[1:]) or f"asked by {event.nick}"
        return await self.attempt(event, self.kick(event.channel, event.argv[0], reason))

    @command("topic")
    @require(op=True)
    async def set_topic(self, event):
        """Set this channel's topic: !topic TEXT."""
        if not event.args:
            return f"{event.nick}: usage: {self.prefix}topic TEXT"
        return await self.attempt(event, self.topic(event.channel, event.args))

    async def attempt(self, event, done):
        """Wait for the server's verdict; say its refusal."""
        try:
            await done
        except ServerError as error:
            return f"{event.nick}: the server said no: {error.text}"
