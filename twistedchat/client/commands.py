"""Slash commands as a chat client's user types them: ``/join #lobby`` -> a :class:`Command`.

Pure parsing, no I/O; :meth:`twistedchat.client.session.Session.execute` carries commands out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from twistedchat.wire.names import is_channel_name

#: One line per command, shown by ``/help`` and in usage errors.
USAGE = {
    "join": "/join #channel[,#other] [key]",
    "part": "/part [#channel] [reason]",
    "msg": "/msg nick-or-#channel text",
    "notice": "/notice nick-or-#channel text",
    "query": "/query nick [text]",
    "me": "/me does something",
    "nick": "/nick newnick",
    "topic": "/topic [#channel] [new topic]",
    "away": "/away [reason]   (/back, or /away alone, to return)",
    "whois": "/whois nick",
    "close": "/close   (leave the channel, or close the private conversation)",
    "quit": "/quit [reason]",
    "raw": "/raw LINE   (any protocol line, e.g. /raw MODE #lobby +m)",
    "help": "/help",
}
ALIASES = {"j": "join", "leave": "part", "m": "msg", "q": "query", "wc": "close",
           "quote": "raw", "exit": "quit", "back": "away", "w": "whois", "action": "me"}
#: Commands that need a current channel or conversation.
NEEDS_TARGET = {"say", "me"}


class CommandError(ValueError):
    """What the user typed cannot be carried out; the message says how to type it."""


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed input: ``name``, its arguments, and the protocol ``line`` when it is just one."""

    name: str
    args: tuple[str, ...] = ()
    line: str = ""


def _clean(text: str) -> str:
    """No line breaks or NULs may reach the wire inside a single protocol line."""
    return text.replace("\r", " ").replace("\n", " ").replace("\0", "")


_SPACE_RE = re.compile(r"\s")


def _first_word(text: str) -> tuple[str, str]:
    """``text`` cut at its first whitespace of any kind, a line break too: (word, rest)."""
    word, *rest = _SPACE_RE.split(text, maxsplit=1)
    return word, rest[0] if rest else ""


def _channel_and_text(name: str, rest: str, target: str | None) -> tuple[str, str]:
    """``[#channel] [text]`` where the channel defaults to the one being looked at."""
    first, text = _first_word(rest)
    if not is_channel_name(first):
        first, text = target or "", rest
    if not is_channel_name(first):
        raise _usage(name)
    return first, text


def _usage(name: str) -> CommandError:
    return CommandError(f"Usage: {USAGE[name]}")


def _channel(name: str) -> str:
    return name if is_channel_name(name) else "#" + name


def parse_input(text: str, target: str | None) -> Command | None:
    """Parse one input line typed while looking at ``target`` (None: the server conversation).

    Returns None for blank input. ``//text`` sends ``/text`` as a message. Commands this
    parser does not know are sent to the server as they are, so ``/mode #c +m`` or ``/kick``
    work as in any IRC client.
    """
    text = text.replace("\0", "")  # never valid on the wire; line breaks are split later
    if not text.strip():
        return None
    if not text.startswith("/") or text.startswith("//"):
        message = text[1:] if text.startswith("//") else text
        if target is None:
            raise CommandError("This is the server window: /join #channel or /msg nick text")
        return Command("say", (target, message))
    word, _, rest = text[1:].partition(" ")
    name = ALIASES.get(word.lower(), word.lower())
    rest = rest.strip()
    if name in NEEDS_TARGET and target is None:
        raise CommandError(f"/{word} needs a channel or conversation open")
    if name == "me":
        if not rest:
            raise _usage("me")
        return Command("me", (target or "", rest))
    if name in ("msg", "notice"):
        to, message = _first_word(rest)
        if not to or not message.strip():
            raise _usage(name)
        return Command(name, (to, message))
    if name == "query":
        nick, message = _first_word(rest)
        if not nick or is_channel_name(nick):
            raise _usage("query")
        return Command("query", (nick, message.strip()))
    if name == "join":
        parts = rest.split()
        if not parts or len(parts) > 2:
            raise _usage("join")
        channels = ",".join(_channel(c) for c in parts[0].split(",") if c)
        line = f"JOIN {channels}" + (f" {parts[1]}" if len(parts) == 2 else "")
        return Command("join", (channels,), _clean(line))
    if name in ("part", "topic"):
        channel, words = _channel_and_text(name, rest, target)
        line = f"{name.upper()} {channel}" + (f" :{words}" if words else "")
        return Command(name, (channel,), _clean(line))
    if name == "nick":
        if not rest or _SPACE_RE.search(rest):
            raise _usage("nick")
        return Command("nick", (rest,), _clean(f"NICK {rest}"))
    if name == "away":
        return Command("away", (rest,), _clean(f"AWAY :{rest}" if rest else "AWAY"))
    if name == "whois":
        if not rest or _SPACE_RE.search(rest):
            raise _usage("whois")
        return Command("whois", (rest,), _clean(f"WHOIS {rest}"))
    if name == "quit":
        return Command("quit", (rest or "Leaving",))
    if name == "close":
        return Command("close")
    if name == "help":
        return Command("help")
    if name == "raw":
        if not rest:
            raise _usage("raw")
        return Command("raw", (rest,), _clean(rest))
    if not word:
        raise CommandError("Type a command after /, or // to send a line starting with /")
    return Command("raw", (text[1:],), _clean(word.upper() + (" " + rest if rest else "")))
