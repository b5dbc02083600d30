"""The real daemon process on a rendered push-up clip (issue 7): SIGKILL at random points
loses no announced rep, SIGTERM stops cleanly within 2 s, and frame rate does not change the
count. Needs the trained models (models/) and the renderer (tools/render).

`pushup-counter run --source CLIP --realtime` plays the clip at its own pace, as the camera
would; a real AF_UNIX datagram socket stands in for systemd (NOTIFY_SOCKET) and records
READY/STATUS/WATCHDOG/STOPPING; gpiozero runs on mock pins.
"""
from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time

import av
import pytest

from conftest import ROOT
from test_faults import SystemdHarness, needs_models

pytestmark = needs_models
render = pytest.importorskip("tools.render", reason="tools/render is not there yet")

REPS = re.compile(r"\breps=(\d+)\b")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A side-view clip at 30 fps, 3 push-ups from the plank (about 5 s), and the number of
    reps the pipeline counts in it offline (`pushup-counter count`): what a full real-time
    run must add to the saved count. Whether that equals the label is test_e2e's business;
    here it must be at least one, or there is no announced rep to lose."""
    from appliance.app import load_pipeline
    from appliance.config import Config
    from appliance.sources import VideoFileSource

    path = tmp_path_factory.mktemp("clip") / "pushups.mp4"
    labels = render.render_clip(path, reps=3, view="side", seed=1, fps=30.0, tempo=1.0, get_up=False)
    pipeline = load_pipeline(Config())
    counted = 0
    with VideoFileSource(path) as source:
        while (frame := source.read()) is not None:
            counted += pipeline.process(frame).rep_counted
    assert counted >= 1, f"the models count no rep in {path} (label {int(labels['reps'])}); see test_e2e"
    return path, counted, len(labels["keypoints"]) / 30.0


@pytest.fixture
def systemd(tmp_path):
    harness = SystemdHarness(tmp_path / "notify.sock")
    yield harness
    harness.close()


class Daemon:
    """One `pushup-counter run` process and the notify messages it sent."""

    def __init__(self, clip, state_dir, harness, tmp_path, n, watchdog_usec=None):
        self.harness = harness
        self.first = len(harness.messages)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
               "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.log = open(tmp_path / f"daemon-{n}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--source", str(clip), "--realtime",
                                      "--state-dir", str(state_dir), "--display", "none"],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def messages(self) -> list[str]:
        return [m for _, m in self.harness.messages[self.first:]]

    def announced(self) -> list[int]:
        return [int(REPS.search(m).group(1)) for m in self.messages() if m.startswith(("STATUS=", "READY=1")) and REPS.search(m)]

    def wait_for(self, predicate, timeout=60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if self.proc.poll() is not None:
                return predicate()
            time.sleep(0.01)
        return False

    def ready(self) -> str | None:
        return next((m for m in self.messages() if m.startswith("READY=1")), None)

    def finish(self):
        self.proc.wait(timeout=30)
        time.sleep(0.15)  # let the harness take the last datagrams
        self.log.close()


@pytest.fixture
def status(capsys):
    """`pushup-counter status --state-dir D --json`, in-process (a subprocess would add seconds of imports)."""
    from appliance.__main__ import main

    def read(state_dir) -> dict:
        capsys.readouterr()
        assert main(["status", "--state-dir", str(state_dir), "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    return read


def check_state_file(state_dir) -> None:
    """Never half-written: the file parses, nothing was quarantined as damaged."""
    json.loads((state_dir / "state.json").read_text())
    assert not [p for p in state_dir.iterdir() if p.name.startswith("state.json.corrupt")]


def test_sigkill_at_random_points_loses_no_announced_rep(clip, systemd, status, tmp_path):
    path, clip_reps, duration = clip
    state_dir = tmp_path / "state"
    rng = random.Random(20261124)
    saved = 0
    plans = ["right after a rep"] + [rng.uniform(0.3, duration - 0.5) for _ in range(2)]
    for n, plan in enumerate(plans):
        daemon = Daemon(path, state_dir, systemd, tmp_path, n)
        assert daemon.wait_for(daemon.ready), "no READY=1"
        assert REPS.search(daemon.ready()).group(1) == str(saved)  # the count continues where it was
        if plan == "right after a rep":
            assert daemon.wait_for(lambda: any(r > saved for r in daemon.announced()), timeout=duration + 10)
        else:
            time.sleep(plan)
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.finish()
        check_state_file(state_dir)
        after = status(state_dir)["reps"]
        announced = daemon.announced()
        assert max(announced) <= after, f"kill {n} ({plan}): announced {max(announced)} but saved {after}"
        assert after >= saved
        saved = after
    daemon = Daemon(path, state_dir, systemd, tmp_path, len(plans))
    assert daemon.wait_for(daemon.ready)
    daemon.finish()
    assert daemon.proc.returncode == 0
    final = status(state_dir)
    assert final["reps"] == saved + clip_reps  # a full play counts the clip, on top of what survived
    assert max(daemon.announced()) == final["reps"] and daemon.messages()[-1] == "STOPPING=1"


def test_sigterm_stops_within_two_seconds_with_the_count_saved(clip, systemd, status, tmp_path):
    path, _, duration = clip
    state_dir = tmp_path / "state"
    daemon = Daemon(path, state_dir, systemd, tmp_path, 0, watchdog_usec=1_500_000)
    assert daemon.wait_for(lambda: any(r >= 1 for r in daemon.announced()), timeout=duration + 30)
    sent = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.proc.wait(timeout=10)
    took = time.monotonic() - sent
    daemon.finish()
    assert daemon.proc.returncode == 0 and took < 2.0
    assert daemon.messages()[-1] == "STOPPING=1"
    assert status(state_dir)["reps"] == max(daemon.announced())
    pings = [t for t, m in systemd.messages[daemon.first:] if m == "WATCHDOG=1"]
    assert len(pings) >= 3 and max(b - a for a, b in zip(pings, pings[1:])) < 1.5  # alive while frames flow
    log = (tmp_path / "daemon-0.log").read_text()
    assert "stopped at" in log and "Traceback" not in log


def resample(src, dst, keep_every: int) -> float:
    """Every Nth frame of src into dst at fps/N: the same motion seen by a slower camera."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        fps = float(inp.streams.video[0].average_rate)
        stream = out.add_stream("libx264", rate=int(round(fps / keep_every)))
        stream.pix_fmt = "yuv420p"
        for i, frame in enumerate(inp.decode(video=0)):
            if i == 0:
                stream.width, stream.height = frame.width, frame.height
            if i % keep_every == 0:
                image = frame.to_ndarray(format="rgb24")
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return fps / keep_every


def test_same_clip_at_30_15_and_10_fps_counts_the_same(clip, tmp_path, capsys):
    from appliance.__main__ import main

    path, clip_reps, _ = clip
    counts = {}
    for keep in (1, 2, 3):
        video = path if keep == 1 else tmp_path / f"clip_{keep}.mp4"
        fps = 30.0 if keep == 1 else resample(path, video, keep)
        assert main(["count", str(video), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["fps"] == pytest.approx(fps, rel=0.01)
        counts[round(fps)] = report["reps"]
    assert counts == {30: clip_reps, 15: clip_reps, 10: clip_reps}
