"""The daemon: configuration, chat state, command handling, the network adapter and the service."""
