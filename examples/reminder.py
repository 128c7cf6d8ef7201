"""Reminder bot: ``!remind 10m tea is ready``; reminders are stored, so they survive restarts.

    twistd -n --pidfile= chatbot --channel '#lobby' --set database=reminders.sqlite3 examples/reminder.py
"""

import re

from twistedchat.bot import Bot, command, example

DELAY = re.compile(r"^(\d{1,6})([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ReminderBot(Bot):
    """Says your reminders when they are due, across restarts."""

    nickname = "reminder"
    per_user = 5  # reminders one nick may have waiting
    most = 500  # reminders waiting in all
    longest = 30 * 86400  # seconds

    async def started(self):
        """Schedule the reminders stored by an earlier run."""
        for key, item in (await self.db.items(prefix="reminder:")).items():
            self.call_later(item["due"] - self.clock.seconds(), self.fire, key, item)

    @command("remind", aliases=["in"])
    @example("!remind 10m tea is ready")
    async def remind(self, event):
        """Remind you of something later: !remind DELAY TEXT (DELAY like 30s, 10m, 2h, 1d)."""
        delay, _, text = event.args.partition(" ")
        match = DELAY.match(delay)
        if not match or not text.strip():
            return f"{event.nick}: usage: {self.prefix}remind 10m TEXT"
        seconds = int(match[1]) * UNITS[match[2]]
        if seconds > self.longest:
            return f"{event.nick}: at most {self.longest // 86400} days ahead, please"
        waiting = await self.db.items(prefix="reminder:")
        if len(waiting) >= self.most:
            return f"{event.nick}: too many reminders waiting; try again later"
        if sum(item["nick"] == event.nick for item in waiting.values()) >= self.per_user:
            return f"{event.nick}: you have {self.per_user} reminders waiting already"
        key = f"reminder:{await self.db.add('last_id')}"
        item = {"nick": event.nick, "target": event.reply_target, "text": text.strip(),
                "due": self.clock.seconds() + seconds}
        await self.db.set(key, item)
        self.call_later(seconds, self.fire, key, item)
        return f"{event.nick}: I will remind you in {delay}."

    async def fire(self, key, item):
        """Say a due reminder and forget it."""
        self.say(item["target"], f"{item['nick']}: reminder: {item['text']}")
        await self.db.delete(key)
