"""tools/soak.py: a 6-second smoke run (the real soak is run by hand, see docs/reliability.md)."""
import json
import os
import subprocess
import sys

import numpy as np

from conftest import ROOT, make_clip
from test_faults import needs_models
from tools.soak import LoopingSource, proc_status


def test_looping_source_plays_the_clips_in_turn_with_rising_timestamps(tmp_path):
    a, b = make_clip(tmp_path / "a.mp4", frames=5), make_clip(tmp_path / "b.mp4", frames=7)
    plays = []
    source = LoopingSource([a, b], realtime=False, on_loop=plays.append)
    with source:
        times = [source.read().t for _ in range(30)]
    assert plays == [1, 2, 3, 4, 5] and source.frames == 30  # 5 + 7 + 5 + 7 + 5 frames, then b again
    assert all(t1 > t0 for t0, t1 in zip(times, times[1:]))
    status = proc_status()
    assert status["rss_mib"] > 10 and status["fds"] >= 3 and status["threads"] >= 1


@needs_models
def test_soak_smoke(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=24)
    out = tmp_path / "soak.json"
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    proc = subprocess.run([sys.executable, "-m", "tools.soak", "--clip", str(clip), "--duration", "6", "--interval", "1",
                           "--warmup", "2", "--out", str(out), "--state-dir", str(tmp_path / "state")],
                          cwd=ROOT, capture_output=True, text=True, timeout=90, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["exception"] is None and report["frames"] > 24 and report["clip_plays"] >= 1
    assert len(report["samples"]) >= 5
    for key in ("rss_mib", "fds", "threads"):
        assert {"start", "end", "max"} <= set(report[key])
    assert "rss_mib" in proc.stdout and "threads" in proc.stdout
