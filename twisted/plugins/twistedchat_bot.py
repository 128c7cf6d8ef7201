"""twistd plugin: ``twistd -n chatbot --server tcp:localhost:1234 BOTFILE.py`` runs a chat bot."""

from twisted.application.service import ServiceMaker

chatbot = ServiceMaker(
    "twistedchat bot",
    "twistedchat.bot.tap",
    "A twistedchat bot, defined in a Python file.",
    "chatbot",
)
