"""Durable count: the reps on screen and the lifetime total survive a restart or a power cut.

Every change is written before it is announced (beep, OLED, STATUS=): a temporary file is
written, fsynced, renamed over the old one and the directory fsynced, so the file on disk is
always either the old or the new state, never half of one. When the directory cannot be
written (read-only, full), the count lives on in memory and is written when possible again.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.errors import StateError

log = logging.getLogger(__name__)
STATE_FILE = "state.json"


@dataclass
class State:
    reps: int = 0  # the count on screen, since the last reset
    total: int = 0  # lifetime reps
    resets: int = 0
    updated: float = 0.0  # wall-clock time of the last change, for people only


class StateStore:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path = self.directory / STATE_FILE
        self.error: str | None = None  # set while the last write failed
        self._dirty = False
        self._last_error_log = float("-inf")

    def load(self) -> State:
        """The saved state, or a fresh one. A damaged file is kept aside, never overwritten."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            state = State(**{k: raw[k] for k in ("reps", "total", "resets", "updated") if k in raw})
            if not all(isinstance(getattr(state, k), int) and getattr(state, k) >= 0 for k in ("reps", "total", "resets")):
                raise ValueError("negative or non-integer counts")
            return state
        except (FileNotFoundError, NotADirectoryError):  # nothing saved yet (or no directory to save in)
            return State()
        except PermissionError as exc:
            raise StateError(f"state file {self.path} is not readable: {exc.strerror}") from None
        except (ValueError, TypeError, OSError) as exc:
            aside = self.path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
            try:
                os.replace(self.path, aside)
            except OSError:
                aside = self.path
            log.error("state file %s is damaged (%s); kept as %s, starting from 0", self.path, exc, aside)
            return State()

    def save(self, state: State) -> bool:
        """Write durably; on failure remember it, keep the state in memory, and return False."""
        state.updated = time.time()
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_name(f".{STATE_FILE}.tmp")
            data = json.dumps(asdict(state), sort_keys=True).encode()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            self._dirty = True
            message = f"cannot write state to {self.directory}: {exc.strerror or exc}"
            if self.error != message or time.monotonic() - self._last_error_log > 60:
                log.error("%s; counting on in memory", message)
                self._last_error_log = time.monotonic()
            self.error = message
            return False
        if self.error:
            log.info("state written to %s again", self.directory)
        self.error = None
        self._dirty = False
        return True

    @property
    def pending(self) -> bool:
        """True while a change is only in memory."""
        return self._dirty
