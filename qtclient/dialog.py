"""The connect dialog: server, port, nickname, password, TLS, channel, account; Join connects.

An account logs in with SASL (or is created first); its password is remembered only in the
system keyring, and only when the user ticks the box (:mod:`qtclient.secrets`).
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import QSettings, Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from qtclient.secrets import (
    forget_password,
    keyring_available,
    load_password,
    remember_password,
)
from twistedchat.wire.names import valid_channel_name, valid_nick

DEFAULT_PORT = 1234
DEFAULT_CHANNEL = "#lobby"


@dataclass
class ConnectSettings:
    """What the dialog asks for (and the command line can give)."""

    host: str = "localhost"
    port: int = DEFAULT_PORT
    nick: str = ""
    password: str = ""
    tls: bool = False
    #: a PEM certificate to trust for TLS (a server's self-signed cert.pem); empty: system CAs
    tls_ca: str = ""
    channel: str = DEFAULT_CHANNEL
    #: log in to this account (SASL), or create it first with ``create_account``
    account: str = ""
    account_password: str = ""
    create_account: bool = False
    #: keep the account password in the system keyring (never in QSettings)
    remember_password: bool = False

    def problem(self) -> str | None:
        """Why these settings cannot be used, in words; None when they can."""
        if not self.host.strip():
            return "Enter the server's name or address."
        if not 0 < self.port < 65536:
            return "The port must be between 1 and 65535."
        if not self.nick:
            return "Choose a nickname."
        if not valid_nick(self.nick):
            return (f"{self.nick!r} cannot be a nickname: use letters, digits and - _ [ ] {{ }}"
                    " \\ ` ^ |, not starting with a digit or -, at most 30 characters.")
        if self.channel and not valid_channel_name(self.channel):
            return f"{self.channel!r} cannot be a channel: it starts with # and has no spaces."
        if self.account and not self.account_password:
            return f"Enter the password of the account {self.account}."
        if self.create_account and not self.account:
            return "Choose the name of the account to create."
        if self.account and not valid_nick(self.account):
            return f"{self.account!r} cannot be an account name (the rules of nicknames)."
        return None


def load_settings(store: QSettings) -> ConnectSettings:
    """The values remembered from the last successful connect (never a password; the account's
    comes from the keyring if the user asked for that)."""
    defaults = ConnectSettings()
    port = store.value("port", defaults.port)
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = defaults.port
    settings = ConnectSettings(
        host=str(store.value("host", defaults.host)),
        port=port,
        nick=str(store.value("nick", defaults.nick)),
        tls=str(store.value("tls", "false")).lower() == "true",
        tls_ca=str(store.value("tls_ca", "")),
        channel=str(store.value("channel", defaults.channel)),
        account=str(store.value("account", "")),
        remember_password=str(store.value("remember_password", "false")).lower() == "true",
    )
    if settings.remember_password:
        settings.account_password = load_password(settings.host, settings.port, settings.account)
    return settings


def save_settings(store: QSettings, settings: ConnectSettings) -> None:
    store.setValue("host", settings.host)
    store.setValue("port", settings.port)
    store.setValue("nick", settings.nick)
    store.setValue("tls", "true" if settings.tls else "false")
    store.setValue("tls_ca", settings.tls_ca)
    store.setValue("channel", settings.channel)
    store.setValue("account", settings.account)
    remembered = settings.remember_password and remember_password(
        settings.host, settings.port, settings.account, settings.account_password)
    if not remembered:
        forget_password(settings.host, settings.port, settings.account)
    store.setValue("remember_password", "true" if remembered else "false")
    store.sync()


class ConnectDialog(QDialog):
    """Asks where to connect; emits :attr:`join_requested` with valid :class:`ConnectSettings`."""

    join_requested = pyqtSignal(object)

    def __init__(self, initial: ConnectSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("twistedchat — connect")
        self.setMinimumWidth(400)
        self.host = QLineEdit(initial.host)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(initial.port)
        self.nick = QLineEdit(initial.nick)
        self.nick.setPlaceholderText("your name in the chat")
        self.nick.setMaxLength(30)
        self.password = QLineEdit(initial.password)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("only if the server needs one")
        self.tls = QCheckBox("Use TLS (encrypted)")
        self.tls.setChecked(initial.tls)
        self.tls_ca = initial.tls_ca
        if initial.tls_ca:
            self.tls.setToolTip(f"Trusting the certificate in {initial.tls_ca}")
        self.channel = QLineEdit(initial.channel)
        self.channel.setPlaceholderText("#channel, or empty")
        self.account = QLineEdit(initial.account)
        self.account.setPlaceholderText("log in to an account (optional)")
        self.account_password = QLineEdit(initial.account_password)
        self.account_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.account_password.setPlaceholderText("the account's password")
        self.create_account = QCheckBox("Create this account")
        self.create_account.setChecked(initial.create_account)
        self.remember = QCheckBox("Remember the password in the system keyring")
        has_keyring = keyring_available()
        self.remember.setEnabled(has_keyring)
        self.remember.setChecked(initial.remember_password and has_keyring)
        if not has_keyring:
            self.remember.setToolTip("No system keyring: the password is never stored")
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # reasons may come from the server
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b")
        self.error.hide()

        form = QFormLayout()
        form.addRow("Server", self.host)
        form.addRow("Port", self.port)
        form.addRow("Nickname", self.nick)
        form.addRow("Password", self.password)
        form.addRow("", self.tls)
        form.addRow("Channel", self.channel)
        form.addRow("Account", self.account)
        form.addRow("Account password", self.account_password)
        form.addRow("", self.create_account)
        form.addRow("", self.remember)
        self.buttons = QDialogButtonBox()
        join_button = self.buttons.addButton("Join", QDialogButtonBox.ButtonRole.AcceptRole)
        assert join_button is not None, "addButton with a role always makes one"
        self.join_button = join_button
        self.join_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.request_join)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        (self.host if not initial.host else self.nick).setFocus()

    def set_values(self, settings: ConnectSettings) -> None:
        """Show ``settings`` (the server the client tried by itself, say)."""
        self.host.setText(settings.host)
        self.port.setValue(settings.port)
        self.nick.setText(settings.nick)
        self.tls.setChecked(settings.tls)
        self.tls_ca = settings.tls_ca
        self.channel.setText(settings.channel)
        self.account.setText(settings.account)
        self.account_password.setText(settings.account_password)

    def values(self) -> ConnectSettings:
        return ConnectSettings(
            host=self.host.text().strip(),
            port=self.port.value(),
            nick=self.nick.text().strip(),
            password=self.password.text(),
            tls=self.tls.isChecked(),
            tls_ca=self.tls_ca,
            channel=self.channel.text().strip(),
            account=self.account.text().strip(),
            account_password=self.account_password.text(),
            create_account=self.create_account.isChecked(),
            remember_password=self.remember.isChecked(),
        )

    def request_join(self) -> None:
        """Join (the button or Enter): check the values, then ask to connect."""
        values = self.values()
        problem = values.problem()
        if problem:
            self.show_error(problem)
            return
        self.set_busy(True)
        self.show_message(f"Connecting to {values.host}:{values.port}…")
        self.join_requested.emit(values)

    def accept(self) -> None:  # Enter in any field
        self.request_join()

    def set_busy(self, busy: bool) -> None:
        self.join_button.setEnabled(not busy)

    def show_message(self, text: str) -> None:
        self.error.setStyleSheet("color: #566573")
        self.error.setText(text)
        self.error.show()

    def show_error(self, text: str, suggested_nick: str | None = None) -> None:
        """Say what went wrong; a suggested nickname is filled in, ready for Join."""
        self.set_busy(False)
        self.error.setStyleSheet("color: #c0392b")
        if suggested_nick:
            text += f". Press Join to use {suggested_nick} instead, or choose another."
            self.nick.setText(suggested_nick)
            self.nick.selectAll()
            self.nick.setFocus()
        self.error.setText(text)
        self.error.show()
