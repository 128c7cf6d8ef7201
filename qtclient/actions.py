"""What the window does for the user beyond typing: switching conversations, multi-line paste,
paging from the input line, typing into the message view, the channel list and the server list.

A mixin of :class:`qtclient.window.MainWindow`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import QApplication, QWidget

from qtclient.channel_list import ChannelListWindow
from qtclient.paste import confirm_paste
from twistedchat.client.session import Conversation, Session


class WindowActions:
    """Switching, paste, paging, typing redirection, channel and server lists of the window."""

    if TYPE_CHECKING:  # WindowNetworks' property: the current network's session

        @property
        def session(self) -> Session: ...

    input: Any
    networks: list[Any]
    channel_list: ChannelListWindow | None
    paste_box: Any
    open_servers: Any
    current: Any
    current_view: Any
    network: Any
    _follow_active: Any
    conversations: Any
    link: Any
    _select: Any
    _update_item: Any

    def prefill(self, text: str) -> None:
        self.input.setText(text)
        self.input.setFocus()

    def run(self, command: str) -> None:
        """Carry out a slash command in the current conversation (menus and keys use this)."""
        self.link.send_input(command, self.current())
        self._follow_active()

    def step(self, delta: int) -> None:
        count = self.conversations.count()
        if count:
            self.conversations.setCurrentRow((self.conversations.currentRow() + delta) % count)

    def select_row(self, row: int) -> None:
        """Alt+number: the conversation at that place in the list."""
        if 0 <= row < self.conversations.count():
            self.conversations.setCurrentRow(row)

    def show_conversation(self, name: str, network: int = -1) -> None:
        """Show the conversation called ``name`` (of the current network, or network number N)."""
        session = self.session if network < 0 else self.networks[network].session
        conversation = session.find(name)
        if conversation is not None:
            self._select(conversation)

    def open_query(self, nick: str) -> None:
        session = self.session
        query = session.open(nick)
        session.activate(query)
        self._select(query)

    def toggle_mute(self, conversation: Conversation) -> None:
        conversation.muted = not conversation.muted
        self._update_item(conversation)


    def ask_paste(self, lines: list[str]) -> None:
        """Several lines were pasted: ask, then send them as messages (paced by the link)."""
        assert isinstance(self, QWidget), "mixed into the main window"
        current = self.current()
        if current is None or current.is_server:
            self.session.error("Paste in a channel or a private conversation", current)
            return
        self.paste_box = confirm_paste(self, lines, current.name,
                                       lambda chosen: self._send_paste(current, chosen))

    def _send_paste(self, conversation: Conversation, lines: list[str]) -> None:
        link = self.network(conversation).link
        for line in lines:
            if line.strip():  # a pasted "/x" is said, not run: //x sends /x
                link.send_input("/" + line if line.startswith("/") else line, conversation)

    def _page(self, down: bool) -> None:
        view = self.current_view()
        if view is not None:
            view.page(down)

    def _type_into_input(self, event: QKeyEvent) -> None:
        self.input.setFocus()
        QApplication.sendEvent(self.input, QKeyEvent(event.type(), event.key(), event.modifiers(),
                                                     event.text()))

    def _show_channel_list(self, session: Session, done: bool) -> None:
        assert isinstance(self, QWidget), "mixed into the main window"
        if self.channel_list is None:
            self.channel_list = ChannelListWindow(self, self._join_listed)
        self.channel_list.session = session
        self.channel_list.show_entries(session.channel_list, done)
        self.channel_list.show()

    def _join_listed(self, name: str) -> None:
        session = self.channel_list.session if self.channel_list else self.session
        for network in self.networks:
            if network.session is session:
                network.link.send_input(f"/join {name}", network.session.server)
        self._follow_active()

    def show_servers(self) -> Any:
        """The server list, from the app (it connects the chosen server into this window)."""
        return self.open_servers() if self.open_servers is not None else None

