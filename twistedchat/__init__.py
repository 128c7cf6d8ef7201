"""twistedchat: a self-hosted chat system on Twisted that speaks the IRC client protocol."""

__version__ = "0.1.0"
