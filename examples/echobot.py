"""Echo bot: repeats every message said to it, in the channel or in private.

    twistd -n --pidfile= chatbot --server tcp:localhost:1234 --channel '#lobby' examples/echobot.py
"""

from twistedchat.bot import Bot, on_message


class EchoBot(Bot):
    """Says back what it hears."""

    nickname = "echobot"

    @on_message()
    def echo(self, event):
        """Repeat the message."""
        return event.text
