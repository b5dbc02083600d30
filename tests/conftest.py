import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
SHARED_DATA = Path(os.environ.get("PUSHUP_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def mock_pins():
    """gpiozero's own MockFactory, reset after each test so pins can be reused."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = previous


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A real AF_UNIX datagram socket standing in for systemd; yields a receive function."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    def receive_all(timeout=0.2):
        messages = []
        sock.settimeout(timeout)
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return messages

    yield receive_all
    sock.close()


def have_models() -> bool:
    return all((MODELS / f"{name}.{ext}").exists() for name in ("keypoints", "recognizer") for ext in ("tflite", "json"))


needs_models = pytest.mark.skipif(not have_models(), reason="models/ has no trained models yet")
