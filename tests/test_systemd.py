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
