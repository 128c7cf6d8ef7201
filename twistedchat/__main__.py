"""``python -m twistedchat [options]``: the daemon in the foreground, same as ``twistd -n chat``."""

from __future__ import annotations

import sys


def main() -> None:
    from twisted.scripts.twistd import run

    sys.argv = ["twistd", "--nodaemon", "--pidfile=", "chat", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
