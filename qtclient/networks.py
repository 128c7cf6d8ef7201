"""The networks one window shows: each server's session, link and logs, and which one is current.

A mixin of :class:`qtclient.window.MainWindow`: the conversation shown decides the current
network, and :attr:`session` / :attr:`link` are that network's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twistedchat.client.link import SessionLink
from twistedchat.client.session import Conversation, Event, Session


@dataclass(eq=False)
class Network:
    """One server's session, the link that keeps it connected, and its conversation logs."""

    session: Session
    link: SessionLink
    logger: Any = None
    handler: Callable[[Event], None] | None = None


class WindowNetworks:
    """Adding, removing and finding the networks of :class:`MainWindow`."""

    networks: list[Network]
    _network_of: dict[int, Network]
    preferences: Any
    on_event: Any
    current: Any
    _add_conversation: Any
    _remove_conversation: Any

    def add_network(self, session: Session, link: SessionLink, logger: Any = None) -> Network:
        """Show another server's conversations (grouped after the others) in this window."""
        network = Network(session, link, logger)
        network.handler = lambda event: self.on_event(event, network)
        if self.networks:
            session.look_away()  # the user is looking at the first network's conversations
        self.networks.append(network)
        session.set_highlights(self.preferences.highlights)
        for conversation in list(session.conversations.values()):
            self._add_conversation(conversation, network)
        session.subscribe(network.handler)
        return network

    def remove_network(self, network: Network) -> None:
        if network.handler is not None:
            network.session.unsubscribe(network.handler)
        for conversation in list(network.session.conversations.values()):
            self._remove_conversation(conversation)
        self.networks.remove(network)
        if network.logger is not None:
            network.logger.close()

    def network(self, conversation: Conversation | None = None) -> Network:
        """The network of ``conversation`` (default: the current one, else the first)."""
        conversation = conversation or self.current()
        found = self._network_of.get(id(conversation)) if conversation is not None else None
        return found or self.networks[0]

    @property
    def session(self) -> Session:
        """The current conversation's session."""
        return self.network().session

    @property
    def link(self) -> SessionLink:
        return self.network().link

