"""What the daemon checks and adjusts about its own process: the open-files limit, the paths twistd
must write (pidfile, log file) before and after ``--uid`` drops privileges, and the JSON log choice."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twistedchat.server.config import ConfigError

if TYPE_CHECKING:
    from twisted.python import usage

#: Where Linux keeps the largest open-files limit a process may have.
NR_OPEN_PATH = "/proc/sys/fs/nr_open"


def raise_open_files_limit() -> tuple[int, int] | None:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit; (soft limit before, after), or None
    where the platform has no such limit.

    At the usual soft limit of 1,024 the daemon could take about a thousand clients; the hard
    limit (LimitNOFILE= under systemd, ``ulimit -Hn``) is what the admin actually allowed.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not Unix
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        # Linux refuses an infinite soft limit for files; its ceiling is fs.nr_open.
        try:
            with open(NR_OPEN_PATH) as handle:
                target = int(handle.read())
        except (OSError, ValueError):
            return soft, soft
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, target


def writable_by(directory: str, uid: int, gid: int) -> bool:
    """Whether user ``uid`` (group ``gid`` and its supplementary groups) can create and remove a
    root-owned file in ``directory`` (the pidfile and a rotated log are made before ``--uid``)."""
    if uid == 0:
        return True
    try:
        info = os.stat(directory)
    except OSError:
        return False
    if info.st_mode & stat.S_ISVTX and info.st_uid != uid:
        return False  # sticky (like /tmp): only a file's owner may remove it, and root made it
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IWUSR)
    if info.st_gid in _groups_of(uid, gid):
        return bool(info.st_mode & stat.S_IWGRP)
    return bool(info.st_mode & stat.S_IWOTH)


def readable_by(path: str, uid: int, gid: int) -> bool:
    """Whether user ``uid`` (group ``gid`` and its supplementary groups) may read ``path``."""
    if uid == 0:
        return True
    try:
        info = os.stat(path)
    except OSError:
        return False
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IRUSR)
    if info.st_gid in _groups_of(uid, gid):
        return bool(info.st_mode & stat.S_IRGRP)
    return bool(info.st_mode & stat.S_IROTH)


def _groups_of(uid: int, gid: int) -> set[int]:
    import pwd

    try:
        name = pwd.getpwuid(uid).pw_name
        return set(os.getgrouplist(name, gid))
    except (KeyError, OSError):
        return {gid}


@dataclass
class TwistdContext:
    """The twistd options the chat service must know about (pidfile, logs, ``--uid``)."""

    nodaemon: bool = True
    pidfile: str | None = None
    logfile: str | None = None
    syslog: bool = False
    uid: int | None = None
    gid: int | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TwistdContext:
        """From twistd's own (parent) options; relative paths resolved against ``--rundir``."""
        rundir = os.path.abspath(options.get("rundir") or ".")
        nodaemon = bool(options.get("nodaemon") or options.get("debug"))
        pidfile = options.get("pidfile") or None
        logfile = options.get("logfile") or None
        if logfile is None and not nodaemon:
            logfile = "twistd.log"
        if logfile == "-":
            logfile = None
        uid, gid = options.get("uid"), options.get("gid")
        if uid is not None and gid is None:
            import pwd

            try:
                gid = pwd.getpwuid(uid).pw_gid
            except KeyError:
                gid = None
        return cls(
            nodaemon=nodaemon,
            pidfile=os.path.join(rundir, pidfile) if pidfile else None,
            logfile=os.path.join(rundir, logfile) if logfile else None,
            syslog=bool(options.get("syslog")),
            uid=uid,
            gid=gid,
        )

    def _files(self) -> list[tuple[str, str, str]]:
        files = []
        if self.pidfile:
            files.append(("pidfile", self.pidfile, "--pidfile=PATH in a writable directory, "
                                                   "or --pidfile= for none"))
        if self.logfile and not self.syslog:
            files.append(("log file", self.logfile, "--logfile=PATH in a writable directory, "
                                                    "or --syslog"))
        return files

    def check_writable_paths(self) -> None:
        """Refuse, with the fix, a pidfile or log file twistd could not create (not a traceback).

        Tries what twistd will do: create the file (removed again at once, since twistd reads
        an existing pidfile as a running daemon's), or open an existing one for writing.
        """
        for what, path, fix in self._files():
            try:
                if os.path.exists(path):
                    with open(path, "ab"):
                        pass
                else:
                    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                    os.unlink(path)
            except OSError as error:
                raise ConfigError(f"cannot write the {what} {path}: "
                                  f"{(error.strerror or str(error)).lower()}; give {fix}") from None

    def privilege_warnings(self, reread: Iterable[str] = ()) -> list[str]:
        """What will fail once ``--uid`` has dropped root: pidfile removal, log rotation, and
        reading again on reload the files in ``reread`` (config, MOTD, oper file)."""
        if self.uid is None or self.gid is None:
            return []
        warnings = [
            f"{path} cannot be read again on reload: uid {self.uid} (after --uid) may not read "
            "it; give that user or its group read access"
            for path in reread if not readable_by(path, self.uid, self.gid)
        ]
        for what, path, _fix in self._files():
            directory = os.path.dirname(path)
            if not writable_by(directory, self.uid, self.gid):
                effect = ("will be left behind at exit" if what == "pidfile"
                          else "cannot be rotated (SIGUSR1 and size rotation will fail)")
                warnings.append(
                    f"the {what} {path} {effect}: its directory {directory} is not writable by "
                    f"uid {self.uid} after --uid; use a directory that user owns (systemd: "
                    "RuntimeDirectory= / LogsDirectory=)")
        return warnings

    def use_json_log(self, options: usage.Options) -> None:
        """Make twistd log JSON (``--log-format json``) through its own ``--logger`` hook."""
        from twistedchat.server import logs

        if options.get("syslog"):
            raise ConfigError("log-format json: --syslog writes text lines; use one or the other")
        if options.get("logger"):
            raise ConfigError("log-format json: --logger already chooses the log format")
        logs.set_json_target(self.logfile)
        options["logger"] = "twistedchat.server.logs.json_log_observer"
