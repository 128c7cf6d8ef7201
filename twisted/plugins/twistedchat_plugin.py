"""twistd plugin: ``twistd -n chat --port 1234`` runs the twistedchat daemon."""

from twisted.application.service import ServiceMaker

chat = ServiceMaker(
    "twistedchat",
    "twistedchat.server.tap",
    "An IRC-compatible chat server (twistedchat).",
    "chat",
)
