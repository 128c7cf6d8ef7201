"""Greeter: welcomes everyone who joins one of its channels.

    twistd -n --pidfile= chatbot --server tcp:localhost:1234 --channel '#lobby' examples/greeter.py
"""

from twistedchat.bot import Bot, on_join


class Greeter(Bot):
    """Welcomes newcomers."""

    nickname = "greeter"

    @on_join
    def welcome(self, event):
        """Greet whoever joined."""
        return f"Welcome to {event.channel}, {event.nick}!"
