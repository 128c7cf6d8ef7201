"""Per-bot settings: a TOML file and ``--set key=value``, checked against the bot's attributes.

Every public, non-method class attribute of a bot is a setting (``nickname``, ``channels``,
``rate``, ``database``... and whatever the bot's own class adds). A value must have the type of
the attribute's default; a wrong key or value is an error that names it. ``server`` and
``password`` are connection settings that ``twistd chatbot`` takes from the file too.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from twistedchat.wire.names import is_channel_name, valid_nick

if TYPE_CHECKING:
    from twistedchat.bot.core import Bot

#: Keys that are about the connection, not the bot object.
CONNECTION_KEYS = ("server", "password")
#: Settings that must be positive numbers.
POSITIVE = ("burst", "rate", "queue_limit", "offline_limit", "nick_retry")
#: Settings no file may change (code, not data).
NOT_SETTINGS = ("client_class",)


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


def _tomllib() -> ModuleType:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    raise ConfigError("settings files and --set need Python 3.11 or later (tomllib)")


def load_file(path: str | Path) -> dict[str, Any]:
    """The settings in a TOML file (top-level keys)."""
    tomllib = _tomllib()
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"rate=1.5"`` -> ``("rate", 1.5)``: the value read as TOML when it is, else as text."""
    key, separator, raw = text.partition("=")
    key = key.strip()
    if not separator or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE")
    tomllib = _tomllib()

    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except (tomllib.TOMLDecodeError, KeyError):
        value = raw
    return key, value


def settings_of(bot: Bot) -> dict[str, Any]:
    """Every setting of ``bot``'s class with its default value."""
    found: dict[str, Any] = {}
    for cls in reversed(type(bot).__mro__):
        for name, value in vars(cls).items():
            if (name.startswith("_") or name in NOT_SETTINGS or callable(value)
                    or isinstance(value, (property, staticmethod, classmethod))
                    or inspect.isdatadescriptor(value)):
                continue
            found[name] = value
    return found


def apply_settings(bot: Bot, settings: dict[str, Any]) -> None:
    """Set each setting on ``bot`` (its instance attributes), checking keys and types."""
    known = settings_of(bot)
    for key, value in settings.items():
        if key in CONNECTION_KEYS:
            continue
        if key not in known:
            raise ConfigError(f"unknown setting {key!r} (settings: {', '.join(sorted(known))})")
        setattr(bot, key, _convert(key, value, known[key]))


def _convert(key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no",
                                                        "off", "0"):
            value = value.lower() in ("true", "yes", "on", "1")
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, not {value!r}")
    elif isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected a whole number, not {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, not {value!r}")
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected text, not {value!r}")
    elif isinstance(default, (list, tuple)):
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key}: expected a list of text, not {value!r}")
    elif default is not None:
        raise ConfigError(f"{key}: a {type(default).__name__} cannot be set from a file")
    if key in POSITIVE and not value > 0:
        raise ConfigError(f"{key}: must be above 0, not {value!r}")
    if key == "nickname" and not valid_nick(value):
        raise ConfigError(f"nickname: {value!r} is not a valid nickname")
    if key == "channels":
        bad = [c for c in value if not channel_to_join(c)]
        if bad:
            raise ConfigError(f"channels: {bad[0]!r} is not a channel name like '#lobby'")
    return value


def channel_to_join(name: str) -> bool:
    """True for a name a bot may be told to join (a channel prefix; no space, comma, CR, LF, NUL)."""
    return is_channel_name(name) and not any(c in name for c in " ,\r\n\0")
