"""sd_notify through a real AF_UNIX datagram socket standing in for systemd.

The Notifier sends with Python's socket module, so these run without systemd-python.
"""
import pytest

from appliance.systemd import Notifier


def test_ready_status_watchdog_stopping(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    now = [0.0]
    notifier = Notifier(clock=lambda: now[0])
    assert notifier.watchdog_interval_s == pytest.approx(1.0)
    notifier.ready("ready reps=4 total=10")
    notifier.progress()
    now[0] = 0.5
    notifier.progress()  # not due yet
    now[0] = 1.1
    notifier.progress()
    notifier.status("counting reps=5 total=11")
    notifier.status("counting reps=5 total=11")  # unchanged: not resent
    notifier.stopping()
    assert notify_socket() == [
        "READY=1\nSTATUS=ready reps=4 total=10",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STATUS=counting reps=5 total=11",
        "STOPPING=1",
    ]


def test_no_watchdog_pings_without_watchdog_usec(notify_socket, monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    notifier = Notifier()
    notifier.progress()
    notifier.stopping()
    assert notify_socket() == ["STOPPING=1"]


def test_watchdog_for_another_pid_is_ignored(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert Notifier().watchdog_interval_s is None


@pytest.mark.parametrize("usec", ["0", "-5000000"])
def test_watchdog_usec_of_zero_or_less_is_no_watchdog(notify_socket, monkeypatch, usec):
    """Not an interval <= 0, which would ping on every frame."""
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    notifier = Notifier()
    assert notifier.watchdog_interval_s is None
    notifier.progress()
    notifier.progress()
    assert notify_socket() == []


def test_silent_without_notify_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.ready("ready")  # nothing to send to, nothing raised


def test_a_message_that_did_not_get_through_is_sent_again(tmp_path, monkeypatch):
    """systemd not listening (or its queue full) for a moment: ready() and status() say so, and
    the same status is not skipped as already sent the next time."""
    import socket

    path = tmp_path / "notify.sock"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    notifier = Notifier()
    sent = [notifier.ready("ready reps=0"), notifier.status("ready reps=0")]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(0.5)
        sent.append(notifier.status("ready reps=0"))
        assert sock.recv(4096).decode() == "STATUS=ready reps=0"
        sent.append(notifier.status("ready reps=0"))  # got through: not resent
        sock.settimeout(0.05)
        with pytest.raises(socket.timeout):
            sock.recv(4096)
    assert sent == [False, False, True, True]


@pytest.fixture
def stderr_file(tmp_path, monkeypatch):
    """stderr as a file, the root logger restored after the test, and no systemd-python: the
    fallback a service without python3-systemd logs through."""
    import logging
    import sys

    import appliance.systemd as systemd_module

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # setup_logging replaces them
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(systemd_module, "_journal", None)
    path = tmp_path / "stderr"
    with open(path, "w") as stream:
        yield path, lambda: monkeypatch.setattr(sys, "stderr", stream), stream  # in the test: pytest's capture
        # sets sys.stderr again at each phase


def _log_every_level():
    import logging

    log = logging.getLogger("appliance.test")
    log.error("camera gone")
    log.warning("display write failed")
    log.info("ready")
    log.debug("frame")
    try:
        raise OSError("no space")
    except OSError:
        log.exception("save failed")


def test_without_systemd_python_journal_lines_carry_their_priority(stderr_file, monkeypatch):
    """Under systemd (JOURNAL_STREAM names stderr) journald reads a "<N>" prefix as the line's
    priority; without one it files every line as info, so `journalctl -p warning` showed no
    error (found by review). Every line gets it, a traceback's too, and no second timestamp."""
    import os

    from appliance.systemd import setup_logging

    path, use_as_stderr, stream = stderr_file
    use_as_stderr()
    status = os.fstat(stream.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
    setup_logging("debug")
    _log_every_level()
    stream.flush()
    lines = path.read_text().splitlines()
    assert lines[:4] == ["<3>appliance.test: camera gone", "<4>appliance.test: display write failed",
                         "<6>appliance.test: ready", "<7>appliance.test: frame"]
    assert lines[4] == "<3>appliance.test: save failed" and lines[-1] == "<3>OSError: no space"
    assert len(lines) > 6 and all(line.startswith("<3>") for line in lines[4:])  # the traceback


def test_stderr_that_is_not_the_journal_gets_no_priority_prefix(stderr_file, monkeypatch):
    """JOURNAL_STREAM inherited by a process whose stderr is something else (a terminal, a pipe):
    plain lines with their time and level, as on a desktop."""
    from appliance.systemd import setup_logging

    path, use_as_stderr, stream = stderr_file
    use_as_stderr()
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    setup_logging("info")
    _log_every_level()
    stream.flush()
    first = path.read_text().splitlines()[0]
    assert not first.startswith("<") and first.endswith(" ERROR appliance.test: camera gone")


def test_the_commands_last_error_line_is_an_error_in_the_journal(stderr_file, monkeypatch, tmp_path):
    """The one-line error a command ends with (a bad config, a missing camera: why the daemon
    stopped) is printed, not logged: under systemd it went to the journal as info, so
    `journalctl -p err` did not show it (found by review)."""
    import os

    from appliance.__main__ import main

    path, use_as_stderr, stream = stderr_file
    use_as_stderr()
    bad = tmp_path / "config.toml"
    bad.write_text("[display]\ncolour = 'blue'\n")
    status = os.fstat(stream.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
    assert main(["status", "--config", str(bad)]) == 2
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")  # a terminal that inherited the variable: plain
    assert main(["status", "--config", str(bad)]) == 2
    stream.flush()
    first, second = path.read_text().splitlines()
    assert first.startswith("<3>pushup-counter: error: ") and "[display].colour" in first
    assert second == first[3:]
