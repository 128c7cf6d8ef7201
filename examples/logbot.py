"""Logger: appends every message in its channels to a file, one line each.

    twistd -n --pidfile= chatbot --server tcp:localhost:1234 --channel '#lobby' --set path=lobby.log examples/logbot.py

Lines look like ``2026-11-25T00:30:00.000Z #lobby <alice> hello`` (the server's time when it
sends ``server-time``, else ours).
"""

from datetime import datetime, timezone

from twistedchat.bot import Bot, on_message


class LogBot(Bot):
    """Writes its channels to a file."""

    nickname = "logbot"
    path = "chat.log"  # a setting: --set path=lobby.log

    @on_message()
    def log(self, event):
        """Append one channel message to the file."""
        if event.private:
            return
        stamp = event.tags.get("time") or datetime.now(timezone.utc).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
        text = f"* {event.nick} {event.text}" if event.action else f"<{event.nick}> {event.text}"
        with open(self.path, "a", encoding="utf-8") as log_file:
            log_file.write(f"{stamp} {event.channel} {text}\n")
