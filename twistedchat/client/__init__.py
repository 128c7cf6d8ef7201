"""The client side: the IRCClient-based protocol, the session model, slash commands and reconnects."""
