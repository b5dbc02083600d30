"""Talking to systemd: READY, WATCHDOG, STATUS, STOPPING through sd_notify, and journald logging.

The notify protocol is one datagram to $NOTIFY_SOCKET, sent here with Python's socket module
rather than systemd-python's sd_notify: that C call holds the GIL and blocks without limit
while the socket's queue is full, and raises InterruptedError when SIGTERM lands during the
send. Here a send waits at most SEND_TIMEOUT_S with the GIL released, retries EINTR, and a
failure is logged (at most once a minute) instead of stopping the count. Silent when
NOTIFY_SOCKET is unset, so the same daemon runs on a desktop. Journald logging uses
systemd-python (apt python3-systemd on the Pi) when it is there, else stderr with each line's
syslog priority as a "<N>" prefix.

The watchdog is pinged only from the main loop after it has processed a frame (or while it
waits to retry the camera): a stuck loop stops the pings and systemd restarts the service.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time

from appliance.errors import ConfigError

log = logging.getLogger(__name__)

try:
    from systemd import journal as _journal
except ImportError:  # desktop without systemd-python: log to stderr
    _journal = None


SEND_TIMEOUT_S = 0.5


def _notify_address(value: str | None):
    """$NOTIFY_SOCKET -> an AF_UNIX address ("@name" is the abstract namespace), or None."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET=%s is not a unix socket path; systemd will not hear from us", value)
    return None


class Notifier:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._address = _notify_address(os.environ.get("NOTIFY_SOCKET"))
        self.enabled = self._address is not None
        self.watchdog_interval_s = self._watchdog_interval()
        self._last_ping = float("-inf")
        self._last_status = None
        self._last_error_log = float("-inf")

    @staticmethod
    def _watchdog_interval() -> float | None:
        """Ping three times per WatchdogSec (systemd asks for at least twice). A value of 0 or
        less is systemd's "no watchdog": None, rather than a ping on every frame."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            usec = int(usec)
        except ValueError:
            return None
        return usec / 1e6 / 3.0 if usec > 0 else None

    def _send(self, message: str) -> bool:
        """False when systemd did not get the message (worth sending again); True when it did,
        or when there is no systemd to tell."""
        if not self.enabled:
            return True
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT_S)
                sock.sendto(message.encode(), self._address)
            return True
        except OSError as exc:  # socket.timeout included
            now = time.monotonic()
            if now - self._last_error_log >= 60.0:
                self._last_error_log = now
                log.warning("cannot notify systemd (%s): %s", message.split("\n")[0], exc or type(exc).__name__)
            return False

    def ready(self, status: str) -> bool:
        """READY=1 with a first STATUS=; False when it did not get through, and the caller must
        send it again: without it systemd kills the start at TimeoutStartSec."""
        if not self._send(f"READY=1\nSTATUS={status}"):
            return False
        self._last_status = status
        return True

    def status(self, status: str) -> bool:
        """STATUS=, unless systemd already has this one; one that did not get through is sent
        again at the next call. False when it did not get through."""
        if status == self._last_status:
            return True
        if not self._send(f"STATUS={status}"):
            return False
        self._last_status = status
        return True

    def progress(self, now_due: bool = False) -> None:
        """The main loop processed a frame: ping the watchdog if it is due. `now_due`: ping
        anyway, before a wait the loop cannot ping through (the power-off command's)."""
        if self.watchdog_interval_s is None:
            return
        now = self._clock()
        if now_due or now - self._last_ping >= self.watchdog_interval_s:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def log_level(name: str) -> str:
    """--log-level / PUSHUP_LOG_LEVEL in any case -> logging's name; else a one-line error
    (logging itself takes only upper case, and says so with a traceback)."""
    if name.lower() not in LOG_LEVELS:
        raise ConfigError(f"log level {name!r} (--log-level or PUSHUP_LOG_LEVEL) must be one of {', '.join(LOG_LEVELS)}")
    return name.upper()


SYSLOG_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def syslog_priority(levelno: int) -> int:
    """logging's level -> syslog's priority (crit 2 ... debug 7); levels in between round down
    to the next named one (a level 35 is a warning)."""
    named = [level for level in sorted(SYSLOG_PRIORITY) if level <= levelno]
    return SYSLOG_PRIORITY[named[-1]] if named else 7


class PriorityFormatter(logging.Formatter):
    """sd-daemon(3)'s "<N>" prefix on every line (a traceback's too): journald reads it from a
    service's stderr (SyslogLevelPrefix=, on by default) as the line's priority. No time: the
    journal stamps each line itself."""

    def __init__(self):
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def error_line_prefix() -> str:
    """"<3>" (error) for the one-line error a command ends with, when stderr is the journal:
    printed, not logged, it was filed as info, and `journalctl -p err` did not say why the
    daemon stopped (found by review)."""
    return f"<{SYSLOG_PRIORITY[logging.ERROR]}>" if _stderr_is_the_journal() else ""


def _stderr_is_the_journal() -> bool:
    """systemd connected stderr to the journal: JOURNAL_STREAM names its device and inode
    (as systemd.exec(5) says to check: a child started from a terminal may inherit the variable)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        status = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):  # unset or malformed, or stderr is no file (captured)
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


def setup_logging(level: str = "INFO") -> None:
    """journald when systemd started us (JOURNAL_STREAM is set), stderr otherwise. Without
    systemd-python under systemd, stderr is the journal: each line then carries its priority
    as a "<N>" prefix (or journald files every line, errors included, as info)."""
    level = log_level(level)
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    if _journal is not None and os.environ.get("JOURNAL_STREAM"):
        handler = _journal.JournalHandler(SYSLOG_IDENTIFIER="pushup-counter")
        handler.setFormatter(logging.Formatter("%(message)s"))
    elif _stderr_is_the_journal():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PriorityFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
