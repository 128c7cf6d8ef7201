"""Karma bot: ``alice++`` or ``bob--`` in a channel, ``!karma alice`` to ask; stored, rate-limited.

    twistd -n --pidfile= chatbot --channel '#lobby' --set database=karma.sqlite3 examples/karma.py
"""

from twistedchat.bot import Bot, command, on_message, rate

VOTE = r"(?:^|(?<=\s))([A-Za-z\[\]\\`_^{|}][\w\[\]\\`^{|}-]{0,29})(\+\+|--)(?=\s|$)"


class KarmaBot(Bot):
    """Counts ++ and -- per nick."""

    nickname = "karma"

    @on_message(VOTE)
    @rate(user=30)
    async def vote(self, event):
        """Count the votes in a channel message (three at most)."""
        if event.private:
            return None
        said = []
        for match in event.matches[:3]:
            nick, sign = match[1], match[2]
            if self.state.fold(nick) == self.state.fold(event.nick):
                said.append(f"{event.nick}: no voting for yourself")
                continue
            total = await self.db.add("karma", 1 if sign == "++" else -1, nick=nick)
            said.append(f"{nick} has {total} karma")
        return "; ".join(said)

    @command("karma")
    async def karma(self, event):
        """Someone's karma: !karma NICK (yours without a nick)."""
        nick = event.argv[0] if event.argv else event.nick
        return f"{nick} has {await self.db.get('karma', 0, nick=nick)} karma"
