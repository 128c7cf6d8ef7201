"""The server list: several servers, each with its nick, channels, TLS and auto-connect.

:class:`ServerEntry` is remembered in ``QSettings`` (array ``servers``; passwords never: an account's
only in the system keyring, when the user asks);
:class:`ServerListDialog` adds, edits, removes and connects them. Connected servers share the
main window, their conversations grouped per network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from qtclient.dialog import DEFAULT_PORT, ConnectSettings
from qtclient.preferences import form_dialog
from qtclient.secrets import forget_password, keyring_available, load_password, remember_password

#: Most servers kept in the list (each may connect at start).
MAX_SERVERS = 20


@dataclass
class ServerEntry:
    """One server the user keeps: where, as whom, which channels, and whether to connect at start."""

    name: str = ""
    host: str = ""
    port: int = DEFAULT_PORT
    nick: str = ""
    tls: bool = False
    tls_ca: str = ""
    channels: list[str] = field(default_factory=list)
    auto_connect: bool = False
    #: an account to log in to (its password from the keyring, or typed in the edit dialog)
    account: str = ""
    account_password: str = ""
    remember_password: bool = False

    def settings(self) -> ConnectSettings:
        """The connect settings (the first channel; the link joins the rest)."""
        return ConnectSettings(host=self.host, port=self.port, nick=self.nick, tls=self.tls,
                               tls_ca=self.tls_ca,
                               channel=self.channels[0] if self.channels else "",
                               account=self.account, account_password=self.account_password,
                               remember_password=self.remember_password)

    def problem(self) -> str | None:
        if not self.name.strip():
            return "Give the server a name."
        settings = self.settings()
        settings.account_password = settings.account_password or "(asked when connecting)"
        problem = settings.problem()
        if problem is not None:
            return problem
        bad = [c for c in self.channels[1:] if ConnectSettings(
            host="x", nick="x", channel=c).problem()]
        return f"{bad[0]!r} cannot be a channel." if bad else None


def load_servers(store: QSettings) -> list[ServerEntry]:
    entries: list[ServerEntry] = []
    count = store.beginReadArray("servers")
    try:
        for index in range(min(count, MAX_SERVERS)):
            store.setArrayIndex(index)
            try:
                port = int(store.value("port", DEFAULT_PORT))
            except (TypeError, ValueError):
                port = DEFAULT_PORT
            entries.append(ServerEntry(
                name=str(store.value("name", "")), host=str(store.value("host", "")), port=port,
                nick=str(store.value("nick", "")),
                tls=str(store.value("tls", "false")).lower() == "true",
                tls_ca=str(store.value("tls_ca", "")),
                channels=[c for c in str(store.value("channels", "")).split() if c],
                auto_connect=str(store.value("auto_connect", "false")).lower() == "true",
                account=str(store.value("account", "")),
                remember_password=str(store.value("remember_password", "false")).lower()
                == "true"))
    finally:
        store.endArray()
    for entry in entries:
        if entry.remember_password:
            entry.account_password = load_password(entry.host, entry.port, entry.account)
    return entries


def save_servers(store: QSettings, entries: list[ServerEntry]) -> None:
    store.remove("servers")
    store.beginWriteArray("servers", len(entries))
    for index, entry in enumerate(entries[:MAX_SERVERS]):
        store.setArrayIndex(index)
        for key, value in (("name", entry.name), ("host", entry.host), ("port", entry.port),
                           ("nick", entry.nick), ("tls", "true" if entry.tls else "false"),
                           ("tls_ca", entry.tls_ca), ("channels", " ".join(entry.channels)),
                           ("auto_connect", "true" if entry.auto_connect else "false"),
                           ("account", entry.account)):
            store.setValue(key, value)
        remembered = entry.remember_password and remember_password(
            entry.host, entry.port, entry.account, entry.account_password)
        if not remembered and not entry.remember_password:
            forget_password(entry.host, entry.port, entry.account)
        store.setValue("remember_password", "true" if remembered else "false")
    store.endArray()
    store.sync()


class ServerEditDialog(QDialog):
    """Add or edit one server."""

    def __init__(self, entry: ServerEntry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Server")
        self.name = QLineEdit(entry.name)
        self.host = QLineEdit(entry.host)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(entry.port)
        self.nick = QLineEdit(entry.nick)
        self.tls = QCheckBox("Use TLS (encrypted)")
        self.tls.setChecked(entry.tls)
        self.tls_ca = entry.tls_ca
        self.channels = QLineEdit(" ".join(entry.channels))
        self.channels.setPlaceholderText("#one #two")
        self.auto_connect = QCheckBox("Connect when the client starts")
        self.auto_connect.setChecked(entry.auto_connect)
        self.account = QLineEdit(entry.account)
        self.account.setPlaceholderText("log in to an account (optional)")
        self.account_password = QLineEdit(entry.account_password)
        self.account_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.remember = QCheckBox("Remember the password in the system keyring")
        self.remember.setEnabled(keyring_available())
        self.remember.setChecked(entry.remember_password and keyring_available())
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.hide()
        form = QFormLayout()
        for label, widget in (("Name", self.name), ("Server", self.host), ("Port", self.port),
                              ("Nickname", self.nick), ("", self.tls),
                              ("Channels", self.channels), ("", self.auto_connect),
                              ("Account", self.account),
                              ("Account password", self.account_password), ("", self.remember)):
            form.addRow(label, widget)
        form_dialog(self, form, self.error)

    def entry(self) -> ServerEntry:
        return ServerEntry(name=self.name.text().strip(), host=self.host.text().strip(),
                           port=self.port.value(), nick=self.nick.text().strip(),
                           tls=self.tls.isChecked(), tls_ca=self.tls_ca,
                           channels=[c if c.startswith(("#", "&")) else "#" + c
                                     for c in self.channels.text().split()],
                           auto_connect=self.auto_connect.isChecked(),
                           account=self.account.text().strip(),
                           account_password=self.account_password.text(),
                           remember_password=self.remember.isChecked())

    def accept(self) -> None:
        problem = self.entry().problem()
        if problem:
            self.error.setText(problem)
            self.error.show()
            return
        super().accept()


class ServerListDialog(QDialog):
    """The kept servers: Add, Edit, Remove, and Connect (into the main window)."""

    def __init__(self, store: QSettings, connect: Callable[[ServerEntry], object],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Servers")
        self.resize(460, 320)
        self.store = store
        self._connect = connect
        self.entries = load_servers(store)
        self.list = QListWidget()
        self.list.itemDoubleClicked.connect(lambda _item: self.connect_selected())
        self.editor: ServerEditDialog | None = None
        buttons = QVBoxLayout()
        for text, slot in (("Add…", self.add), ("Edit…", self.edit), ("Remove", self.remove),
                           ("Connect", self.connect_selected)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(close)
        self._fill()

    def _fill(self) -> None:
        self.list.clear()
        for entry in self.entries:
            mark = "  (at start)" if entry.auto_connect else ""
            self.list.addItem(f"{entry.name} — {entry.nick}@{entry.host}:{entry.port}{mark}")
        if self.entries:
            self.list.setCurrentRow(0)

    def _save(self) -> None:
        save_servers(self.store, self.entries)
        self._fill()

    def _editing(self, entry: ServerEntry, done: Callable[[ServerEntry], None]) -> None:
        editor = ServerEditDialog(entry, self)
        editor.accepted.connect(lambda: done(editor.entry()))
        editor.open()
        self.editor = editor

    def add(self) -> None:
        if len(self.entries) >= MAX_SERVERS:
            return
        self._editing(ServerEntry(channels=["#lobby"]), self._added)

    def _added(self, entry: ServerEntry) -> None:
        self.entries.append(entry)
        self._save()

    def edit(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.entries):
            self._editing(self.entries[row], lambda entry: self._edited(row, entry))

    def _edited(self, row: int, entry: ServerEntry) -> None:
        self.entries[row] = entry
        self._save()

    def remove(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.entries):
            del self.entries[row]
            self._save()

    def connect_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.entries):
            self._connect(self.entries[row])
