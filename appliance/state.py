"""Durable count: the reps on screen and the lifetime total survive a restart or a power cut.

Every change is written before it is announced (beep, OLED, STATUS=): a temporary file is
written, fsynced, renamed over the old one and the directory fsynced, so the file on disk is
always either the old or the new state, never half of one. When the directory cannot be
written (read-only, full), the count lives on in memory and is written when possible again.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.errors import StateError, first_line

log = logging.getLogger(__name__)
STATE_FILE = "state.json"
COUNTS = ("reps", "total", "resets")
STALE_TEMP_S = 60.0  # a temporary file this old was left by a write cut short (power cut, kill)
LOCK_WAIT_S = 2.0  # StateStore.locked: the longest wait for another writer (under the 10 s watchdog)
LOCK_STUCK_S = 60.0  # after a wait ran out, saves this long only try the lock, never wait


@dataclass
class State:
    reps: int = 0  # the count on screen, since the last reset
    total: int = 0  # lifetime reps
    resets: int = 0
    updated: float = 0.0  # wall-clock time of the last change, for people only


def _timestamp(value) -> float:
    """The saved `updated` time, or 0.0 for a bad one (text, NaN, a 400-digit number): it is
    only for people, and must cost no count (nor make `status --json` print NaN)."""
    if type(value) not in (int, float):
        return 0.0
    try:
        value = float(value)
    except OverflowError:
        return 0.0
    return value if math.isfinite(value) else 0.0


class StateStore:
    def __init__(self, directory: str | Path, log_failures: bool = True):
        """`log_failures`: the daemon's "counting on in memory" lines; a command-line tool
        reports the failure itself (store.error) and counts nothing on."""
        self.directory = Path(directory)
        self._log_failures = log_failures
        self.path = self.directory / STATE_FILE
        self.error: str | None = None  # set while the last write failed
        self.written: tuple[int, int] | None = None  # identity() of the file this store last wrote
        self._dirty = False
        self._last_error_log = float("-inf")
        self._lock_stuck_until = float("-inf")  # monotonic: a holder was stuck; do not wait again yet

    def load(self, read_only: bool = False) -> State:
        """The saved state, or a fresh one. A damaged file is kept aside, never overwritten;
        `read_only` (`pushup-counter status`) leaves it where it is and says so instead."""
        if not read_only:
            self._remove_stale_temp_files()
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict) or not all(k in raw for k in COUNTS):
                raise ValueError("not a saved count: reps, total and resets are not all there")
            if not all(type(raw[k]) is int and raw[k] >= 0 for k in COUNTS):  # type(): true is not 1 rep
                raise ValueError("negative or non-integer counts")
            return State(*(raw[k] for k in COUNTS), updated=_timestamp(raw.get("updated")))
        except (FileNotFoundError, NotADirectoryError):  # nothing saved yet (or no directory to save in)
            return State()
        except PermissionError as exc:
            raise StateError(f"state file {self.path} is not readable: {exc.strerror}") from None
        except (ValueError, TypeError, OSError, RecursionError, MemoryError) as exc:
            # RecursionError: json.loads on deeply nested brackets; MemoryError: a huge file
            if read_only:
                raise StateError(f"state file {self.path} is damaged ({first_line(exc)})") from None
            aside = self.path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
            try:
                os.replace(self.path, aside)
            except OSError:
                aside = self.path
            log.error("state file %s is damaged (%s); kept as %s, starting from 0", self.path,
                      first_line(exc), aside)
            return State()

    def _remove_stale_temp_files(self) -> None:
        """Temporary files of writes cut short by a power cut or a kill: nothing else removes
        them. A young one may be a `pushup-counter reset` writing right now: left alone."""
        try:
            leftovers = list(self.directory.glob(f".{STATE_FILE}.*.tmp"))
        except OSError:
            return
        for path in leftovers:
            try:
                if time.time() - path.stat().st_mtime > STALE_TEMP_S:
                    path.unlink()
            except OSError as exc:
                log.debug("leaving %s: %s", path, exc)

    @contextlib.contextmanager
    def locked(self, wait_s: float | None = None):
        """Hold the state directory's lock: the daemon's look for an outside reset and its
        save, and `pushup-counter reset`'s load and save, each happen whole. Without it a reset
        landing while the daemon's temporary file was being fsynced was written over, unseen,
        after the command had said "count reset to 0". The lock is on the directory itself
        (flock on an O_RDONLY descriptor): no lock file whose owner could shut the daemon out.
        Without a directory there is nothing to lock, and the save will say why.

        Waited for at most `wait_s` (LOCK_WAIT_S: the daemon's), then the save goes ahead
        unlocked (logged): the other holder only ever saves, in milliseconds, and a stuck one
        must not freeze the daemon's loop (no frames, no watchdog). A file system without flock (NFS, CIFS, some FUSE)
        saves unlocked, as before the lock."""
        try:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            yield
            return
        try:
            wait_s = LOCK_WAIT_S if wait_s is None else wait_s
            if time.monotonic() < self._lock_stuck_until:
                wait_s = 0.0  # a stuck holder: a 2 s stall at every rep cost reps (found by review)
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        if wait_s > 0:  # once per stuck holder, not at every save
                            log.warning("state directory %s stayed locked for %.0f s; saving without the lock "
                                        "(and without waiting for it for %.0f s)", self.directory, wait_s, LOCK_STUCK_S)
                            self._lock_stuck_until = time.monotonic() + LOCK_STUCK_S
                        break
                    time.sleep(0.01)
                except OSError as exc:  # no flock here: save as if there were no other writer
                    log.debug("no lock on %s: %s", self.directory, exc)
                    break
            yield
        finally:
            os.close(fd)  # releases the lock

    def save(self, state: State) -> bool:
        """Write durably; on failure remember it, keep the state in memory, and return False.

        The temporary file has a name of its own (mkstemp, mode 0600): `pushup-counter reset`
        may write while the daemon does, and with a shared name one could truncate the file
        the other is renaming into place. A full disk may take only part of a write; the rest
        is written or the save fails, so a short file is never renamed over a good one.

        Run as root (`pushup-counter reset` on the image, which has no sudo), the file is given
        to the state directory's owner before it is renamed into place: a root-owned 0600 file
        would be unreadable to the daemon (user pushup), and it would refuse to start.
        """
        state.updated = time.time()
        tmp = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            data = memoryview(json.dumps(asdict(state), sort_keys=True).encode())
            fd, tmp = tempfile.mkstemp(prefix=f".{STATE_FILE}.", suffix=".tmp", dir=self.directory)
            try:
                if os.geteuid() == 0:
                    owner = os.stat(self.directory)
                    os.fchown(fd, owner.st_uid, owner.st_gid)
                while data:
                    written = os.write(fd, data)
                    if written <= 0:
                        raise OSError(errno.ENOSPC, "short write")
                    data = data[written:]
                os.fsync(fd)
                self.written = _identity(os.fstat(fd))
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            tmp = None
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            self._failed(exc)
            return False
        if self.error:
            log.info("state written to %s again", self.directory)
        self.error = None
        self._dirty = False
        return True

    def probe(self) -> bool:
        """Can the directory take a write? The daemon asks at start, so a missing or read-only
        data partition says "storage error" at once, not at the first rep the owner does; a
        failure is then retried like a failed save (`pending`). Nothing is written to the file."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=f".{STATE_FILE}.", suffix=".tmp", dir=self.directory)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            self._failed(exc)
            return False
        return True

    def _failed(self, exc: OSError) -> None:
        self._dirty = True
        message = f"cannot write state to {self.directory}: {exc.strerror or exc}"
        if self._log_failures and (self.error != message or time.monotonic() - self._last_error_log > 60):
            log.error("%s; counting on in memory", message)
            self._last_error_log = time.monotonic()
        self.error = message

    @property
    def pending(self) -> bool:
        """True while a change is only in memory."""
        return self._dirty

    def identity(self) -> tuple[int, int] | None:
        """(inode, mtime) of the file on disk, None if there is none. Every save renames a new
        file into place, so this differs from `written` as soon as another writer has saved."""
        try:
            return _identity(os.stat(self.path))
        except OSError:
            return None


def _identity(info: os.stat_result) -> tuple[int, int]:
    return (info.st_ino, info.st_mtime_ns)
