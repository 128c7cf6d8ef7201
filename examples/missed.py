"""What did I miss: keeps each channel's last 50 lines; ``!missed`` sends them to you privately.

    twistd -n --pidfile= chatbot --channel '#lobby' examples/missed.py
"""

from collections import defaultdict, deque
from datetime import datetime, timezone

from twistedchat.bot import Bot, command, on_message


class MissedBot(Bot):
    """Replays a channel's recent lines to whoever asks."""

    nickname = "missed"
    keep = 50

    def __init__(self):
        super().__init__()
        self.lines = defaultdict(lambda: deque(maxlen=self.keep))

    @on_message()
    def remember(self, event):
        """Keep a channel line (not the !missed requests)."""
        if event.private or event.command == "missed":
            return
        stamp = event.tags.get("time", "")[11:16] or datetime.now(timezone.utc).strftime("%H:%M")
        said = f"* {event.nick} {event.text}" if event.action else f"<{event.nick}> {event.text}"
        self.lines[self.state.fold(event.channel)].append(f"[{stamp}] {said}")

    @command("missed")
    def missed(self, event):
        """The channel's last lines, sent to you privately: !missed [COUNT]."""
        if event.private:
            return f"usage: {self.prefix}missed in the channel you want to catch up on"
        count = int(event.argv[0]) if event.argv and event.argv[0].isdigit() else self.keep
        lines = list(self.lines[self.state.fold(event.channel)])[-count:] if count else []
        self.say(event.nick, "\n".join(lines) or f"Nothing said in {event.channel} yet.")
