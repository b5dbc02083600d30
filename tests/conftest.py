import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
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
    """A real AF_UNIX datagram socket standing in for systemd; yields a receive function.

    Like systemd, a thread reads the socket as messages arrive: the kernel queues only
    net.unix.max_dgram_qlen datagrams (often 10), and a sender facing a full queue drops them.
    """
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    received, lock, done = [], threading.Lock(), threading.Event()

    def reader():
        while not done.is_set():
            try:
                message = sock.recv(4096).decode()
            except (socket.timeout, BlockingIOError):
                continue
            with lock:
                received.append(message)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()

    def receive_all(timeout=0.2):
        """Every message since the last call, once none has arrived for ``timeout`` s."""
        while True:
            with lock:
                seen = len(received)
            time.sleep(timeout)
            with lock:
                if len(received) == seen:
                    messages = received[:]
                    received.clear()
                    return messages

    yield receive_all
    done.set()
    thread.join()
    sock.close()


def have_models() -> bool:
    return all((MODELS / f"{name}.{ext}").exists() for name in ("keypoints", "recognizer") for ext in ("tflite", "json"))


needs_models = pytest.mark.skipif(not have_models(), reason="models/ has no trained models yet")


def make_clip(path, frames=20, fps=10, size=(64, 48)):
    """A small H.264 clip whose frames differ (a growing bright band), written with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[:, : (i * 3) % size[0]] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
