"""``twistedchat [options]`` (or ``python -m twistedchat``): the daemon in the foreground, as
``twistd -n chat``; twistd's own logging and process options are accepted too.
``twistedchat hashpw`` prints an argon2id hash of an operator password for the config file."""

from __future__ import annotations

import sys

#: twistd options (before ``chat`` on a twistd command line) that take a value ...
TWISTD_VALUE_OPTIONS = {"--logfile": "-l", "--logger": None, "--prefix": None, "--pidfile": None,
                        "--uid": "-u", "--gid": "-g", "--umask": None, "--reactor": "-r"}
#: ... and those that are flags.
TWISTD_FLAGS = {"--syslog": None}


def split_arguments(args: list[str]) -> tuple[list[str], list[str]]:
    """(twistd's options, the chat options) from one command line in any order."""
    short_value = {short: long for long, short in TWISTD_VALUE_OPTIONS.items() if short}
    twistd: list[str] = []
    chat: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        name = arg.split("=", 1)[0]
        name = short_value.get(name, name)
        if name in TWISTD_VALUE_OPTIONS:
            if "=" in arg:
                twistd.append(f"{name}={arg.split('=', 1)[1]}")
            elif index + 1 < len(args):
                twistd.append(f"{name}={args[index + 1]}")
                index += 1
            else:
                twistd.append(arg)  # twistd says the value is missing
        elif name in TWISTD_FLAGS:
            twistd.append(arg)
        else:
            chat.append(arg)
        index += 1
    return twistd, chat


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["hashpw"]:
        from twistedchat.server.opers import hashpw_main

        raise SystemExit(hashpw_main(args[1:]))
    from twisted.scripts.twistd import run

    twistd, chat = split_arguments(args)
    if not any(option.startswith("--pidfile") for option in twistd):
        twistd.append("--pidfile=")
    sys.argv = ["twistd", "--nodaemon", *twistd, "chat", *chat]
    run()


if __name__ == "__main__":
    main()
