"""Right-click menus: on a member (query, whois, op, voice, kick, ban, ignore) and on a conversation
(close, part, rejoin, mute). Each entry is a slash command the window runs, so the menus do
nothing the input line could not."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtWidgets import QMenu, QWidget

from qtclient.qt import present
from twistedchat.client.session import Conversation

Run = Callable[[str], None]


def member_commands(nick: str) -> list[tuple[str, str]]:
    """(label, command) for a member of the current channel; empty labels are separators."""
    return [
        ("Open conversation", f"/query {nick}"),
        ("Who is this?", f"/whois {nick}"),
        ("", ""),
        ("Give op", f"/op {nick}"),
        ("Take op", f"/deop {nick}"),
        ("Give voice", f"/voice {nick}"),
        ("Take voice", f"/devoice {nick}"),
        ("", ""),
        ("Kick", f"/kick {nick}"),
        ("Ban", f"/ban {nick}"),
        ("Ignore", f"/ignore {nick}"),
    ]


def conversation_commands(conversation: Conversation) -> list[tuple[str, str]]:
    """(label, command) for an entry in the conversation list."""
    entries: list[tuple[str, str]] = []
    if conversation.is_channel:
        if conversation.joined:
            entries.append(("Leave the channel", f"/part {conversation.name}"))
        else:
            entries.append(("Rejoin", f"/join {conversation.name}"))
    entries.append(("Unmute" if conversation.muted else "Mute (no counts, no notifications)",
                    "mute"))
    entries.append(("Clear the view", "/clear"))
    if not conversation.is_server:
        entries.append(("Close", "/close"))
    return entries


def build_menu(parent: QWidget, entries: list[tuple[str, str]], run: Run) -> QMenu:
    """A menu running ``run(command)`` for the chosen entry."""
    menu = QMenu(parent)
    for label, command in entries:
        if not label:
            menu.addSeparator()
            continue
        action = present(menu.addAction(label))
        action.setData(command)
        action.triggered.connect(lambda _checked=False, c=command: run(c))
    return menu
