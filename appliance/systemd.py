"""Talking to systemd: READY, WATCHDOG, STATUS, STOPPING through sd_notify, and journald logging.

Uses systemd-python (apt python3-systemd on the Pi). Silent when NOTIFY_SOCKET is unset, so
the same daemon runs on a desktop. The watchdog is pinged only from the main loop after it
has processed a frame: a stuck loop stops the pings and systemd restarts the service.
"""
from __future__ import annotations

import logging
import os
import sys
import time

log = logging.getLogger(__name__)

try:
    from systemd import daemon as _daemon
    from systemd import journal as _journal
except ImportError:  # desktop without systemd-python: nothing to notify, nothing to journal
    _daemon = None
    _journal = None


class Notifier:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET")) and _daemon is not None
        if os.environ.get("NOTIFY_SOCKET") and _daemon is None:
            log.warning("NOTIFY_SOCKET is set but systemd-python is not installed; systemd will not hear from us")
        self.watchdog_interval_s = self._watchdog_interval()
        self._last_ping = float("-inf")
        self._last_status = None

    @staticmethod
    def _watchdog_interval() -> float | None:
        """Ping three times per WatchdogSec (systemd asks for at least twice)."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 1e6 / 3.0
        except ValueError:
            return None

    def _send(self, message: str) -> None:
        if self.enabled:
            _daemon.notify(message)

    def ready(self, status: str) -> None:
        self._last_status = status
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        if status != self._last_status:
            self._last_status = status
            self._send(f"STATUS={status}")

    def progress(self) -> None:
        """The main loop processed a frame: ping the watchdog if it is due."""
        if self.watchdog_interval_s is None:
            return
        now = self._clock()
        if now - self._last_ping >= self.watchdog_interval_s:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")


def setup_logging(level: str = "INFO") -> None:
    """journald when systemd started us (JOURNAL_STREAM is set), stderr otherwise."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    if _journal is not None and os.environ.get("JOURNAL_STREAM"):
        handler = _journal.JournalHandler(SYSLOG_IDENTIFIER="pushup-counter")
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
