"""Reloading the running daemon: the config file, MOTD, opers, bans file and TLS certificates again.

:class:`ConfigReload` is mixed into :class:`~twistedchat.server.service.ChatService`; SIGHUP and
the REHASH command reach :meth:`ConfigReload.reload`. Nobody is disconnected.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from twistedchat.server.bans import BanError, FileBanStore
from twistedchat.server.config import ConfigError, ServerConfig, load_config, reload_into
from twistedchat.server.net import ChatFactory
from twistedchat.server.tls import ReloadableTLS, TLSFactory, read_tls_settings

log = Logger()


class ConfigReload:
    """Applies a fresh configuration to the running service, or refuses it whole."""

    config: ServerConfig
    #: the command-line settings, which a reload keeps over the config file's
    overrides: dict[str, Any]
    factory: ChatFactory
    #: the TLS settings of each ``ssl:`` listener, which :meth:`reload` replaces
    tls: dict[str, list[ReloadableTLS]]
    reloads_ok: int
    reloads_refused: int

    def reload(self) -> tuple[list[str], list[str]]:
        """Read the config file, the MOTD, the oper file and the TLS certificates again; apply
        what can change live.

        For SIGHUP now and the REHASH command later. Nobody is disconnected: the running
        :class:`ServerConfig` is updated in place, and TLS listeners give new connections the
        new certificate. Returns (settings changed, settings that changed in the file but need
        a restart). Anything that does not load raises :class:`ConfigError` and changes nothing.
        """
        source = self.config.config_file or "the command line"
        try:
            fresh = load_config(self.config.config_file, self.overrides)
            certificates = self._read_certificates()
        except ConfigError as error:
            self.reloads_refused += 1
            log.error("reload refused, the running configuration is kept: {error}",
                      error=str(error))
            raise
        bans_file = self.config.bans_file
        changed, kept = reload_into(self.config, fresh)
        if self.config.bans_file != bans_file:
            try:
                self.factory.core.bans.use_store(
                    FileBanStore(self.config.bans_file) if self.config.bans_file else None)
            except BanError as error:
                log.error("the new bans file is not used: {error}", error=str(error))
        for listeners, settings in certificates:
            for reloadable, new in zip(listeners, settings, strict=True):
                reloadable.replace(new)
        if certificates:
            changed.append("tls certificates")
        self.reloads_ok += 1
        log.info("configuration reloaded from {source}: {changed}", source=source,
                 changed=", ".join(changed) if changed else "nothing changed")
        if kept:
            log.warn("changed but only applied at the next start: {kept}", kept=", ".join(kept))
        return changed, kept

    def _read_certificates(self) -> list[tuple[list[ReloadableTLS], list[Any]]]:
        """Every TLS listener's key and certificate, read and checked again (not yet used)."""
        fresh = []
        for description, listeners in self.tls.items():
            engine = "stdlib" if isinstance(listeners[0], TLSFactory) else "twisted"
            try:
                settings = read_tls_settings(description, engine)
            except Exception as error:  # OSError, OpenSSL's errors, a key that does not match
                raise ConfigError(f"port: cannot use {description!r}: {error}") from None
            if len(settings) != len(listeners):
                raise ConfigError(f"port: {description!r} no longer has the same TLS layers")
            fresh.append((listeners, settings))
        return fresh
