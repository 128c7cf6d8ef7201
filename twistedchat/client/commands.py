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
    "names": "/names [#channel]",
    "kick": "/kick [#channel] nick [reason]",
    "ban": "/ban [#channel] nick-or-mask",
    "mode": "/mode [#channel-or-nick] [changes]",
    "op": "/op nick [nick...]",
    "deop": "/deop nick [nick...]",
    "voice": "/voice nick [nick...]",
    "devoice": "/devoice nick [nick...]",
    "invite": "/invite nick [#channel]",
    "list": "/list [mask]   (opens the channel list)",
    "ctcp": "/ctcp nick REQUEST   (VERSION, PING, TIME...)",
    "ignore": "/ignore [nick-or-mask]   (alone: the ignore list)",
    "unignore": "/unignore nick-or-mask",
    "clear": "/clear   (empty this conversation's view)",
    "reconnect": "/reconnect",
    "raw": "/raw LINE   (any protocol line, e.g. /raw MODE #lobby +m)",
    "help": "/help",
}
ALIASES = {"j": "join", "leave": "part", "m": "msg", "q": "query", "wc": "close",
           "quote": "raw", "exit": "quit", "back": "away", "w": "whois", "action": "me"}
#: Commands that need a current channel or conversation.
NEEDS_TARGET = {"say", "me"}
#: Commands that change a member's prefix: the mode letter and its sign.
MEMBER_MODES = {"op": "+o", "deop": "-o", "voice": "+v", "devoice": "-v"}
#: The most nicks one /op (or /voice...) line changes, as servers take at most a few modes a line.
MAX_MODES = 4


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
    if name in _CHANNEL_COMMANDS:
        return _CHANNEL_COMMANDS[name](name, rest, target)
    if name in ("ctcp", "ignore", "unignore", "clear", "reconnect"):
        return _client_command(name, rest)
    if name == "raw":
        if not rest:
            raise _usage("raw")
        return Command("raw", (rest,), _clean(rest))
    if not word:
        raise CommandError("Type a command after /, or // to send a line starting with /")
    return Command("raw", (text[1:],), _clean(word.upper() + (" " + rest if rest else "")))


def _current_channel(name: str, target: str | None) -> str:
    if target is None or not is_channel_name(target):
        raise CommandError(f"/{name} needs a channel: {USAGE[name]}")
    return target


def _names(name: str, rest: str, target: str | None) -> Command:
    channel = rest.split()[0] if rest else _current_channel(name, target)
    return Command("names", (channel,), _clean(f"NAMES {channel}"))


def _kick(name: str, rest: str, target: str | None) -> Command:
    channel, words = _channel_and_text(name, rest, target)
    nick, reason = _first_word(words.strip())
    if not nick:
        raise _usage(name)
    reason = reason.strip().removeprefix(":")
    line = f"KICK {channel} {nick}" + (f" :{reason}" if reason else "")
    return Command("kick", (channel, nick), _clean(line))


def _ban(name: str, rest: str, target: str | None) -> Command:
    channel, words = _channel_and_text(name, rest, target)
    mask = words.strip()
    if not mask or _SPACE_RE.search(mask):
        raise _usage(name)
    if not any(c in mask for c in "!@*"):
        mask += "!*@*"
    return Command("ban", (channel, mask), _clean(f"MODE {channel} +b {mask}"))


def _mode(name: str, rest: str, target: str | None) -> Command:
    first, _ = _first_word(rest)
    if first and not first.startswith(("+", "-")):
        return Command("raw", (rest,), _clean(f"MODE {rest}"))  # a named channel or nick
    where = target if target is not None else ""
    if not where:
        if rest:
            raise _usage(name)
        return Command("raw", (), "MODE")  # the server answers with its usage
    return Command("raw", (rest,), _clean(f"MODE {where} {rest}".rstrip()))


def _member_mode(name: str, rest: str, target: str | None) -> Command:
    channel = _current_channel(name, target)
    nicks = rest.split()
    if not nicks or len(nicks) > MAX_MODES:
        raise CommandError(f"Usage: {USAGE[name]} (at most {MAX_MODES})")
    sign, letter = tuple(MEMBER_MODES[name])
    line = f"MODE {channel} {sign}{letter * len(nicks)} {' '.join(nicks)}"
    return Command(name, (channel, *nicks), _clean(line))


def _invite(name: str, rest: str, target: str | None) -> Command:
    words = rest.split()
    if not words or len(words) > 2:
        raise _usage(name)
    channel = words[1] if len(words) == 2 else _current_channel(name, target)
    return Command("invite", (words[0], channel), _clean(f"INVITE {words[0]} {channel}"))


def _list(name: str, rest: str, target: str | None) -> Command:
    return Command("list", (rest,), _clean("LIST" + (f" {rest}" if rest else "")))


_CHANNEL_COMMANDS = {"names": _names, "kick": _kick, "ban": _ban, "mode": _mode,
                     "op": _member_mode, "deop": _member_mode, "voice": _member_mode,
                     "devoice": _member_mode, "invite": _invite, "list": _list}


def _client_command(name: str, rest: str) -> Command:
    """Commands the client carries out itself (or that need more than one protocol line)."""
    if name == "ctcp":
        nick, request = _first_word(rest)
        if not nick or not request.strip():
            raise _usage(name)
        word, args = _first_word(request.strip())
        payload = word.upper() + (f" {args}" if args else "")
        return Command("ctcp", (nick, payload), _clean(f"PRIVMSG {nick} :\x01{payload}\x01"))
    if name == "unignore" and not rest:
        raise _usage(name)
    if name in ("ignore", "unignore") and _SPACE_RE.search(rest):
        raise _usage(name)
    return Command(name, (rest,) if rest else ())
