"""``--log-format json``: twisted.logger's JSON events, one a line, where twistd would write text."""

from __future__ import annotations

import io
import sys
from typing import IO, Any, cast

from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import ILogObserver, jsonFileLogObserver
from twisted.python.logfile import LogFile

#: The log file for JSON events (None: standard output); set from the options before twistd
#: calls :func:`json_log_observer` through its ``--logger`` hook, which takes no arguments.
_json_target: str | None = None


def set_json_target(path: str | None) -> None:
    """Where :func:`json_log_observer` will write: a log file path, or None for stdout."""
    global _json_target
    _json_target = path


def json_log_observer() -> ILogObserver:
    """A JSON log observer (twistd ``--logger`` factory): one event per line, no separators."""
    output: Any
    if _json_target is None:
        output = sys.stdout
    else:
        output = LogFile.fromFullPath(_json_target)
        _rotate_on_sigusr1(output)
    return jsonFileLogObserver(cast(IO[Any], _Text(output)), recordSeparator="")


class _Text(io.TextIOBase):
    """Flush after each event, so a collector tailing the file sees whole lines at once."""

    def __init__(self, output: Any) -> None:
        self._output = output

    def write(self, text: str) -> int:
        self._output.write(text)
        self._output.flush()
        return len(text)


def _rotate_on_sigusr1(log_file: LogFile) -> None:
    """SIGUSR1 rotates the log file, as twistd does for its text log."""
    import signal

    if signal.getsignal(signal.SIGUSR1) not in (None, signal.SIG_DFL):
        return

    def rotate(number: int, frame: Any) -> None:
        from twisted.internet import reactor

        IReactorFromThreads(reactor).callFromThread(log_file.rotate)

    signal.signal(signal.SIGUSR1, rotate)
