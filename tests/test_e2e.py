"""End to end on the project's own rendered clips, with the shipped int8 models, no ../shared.

Each clip's exact rep count comes from the renderer's labels; the appliance never knows the
input is synthetic. Push-up clips must count exactly, the other scenarios zero.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import needs_models

pytestmark = needs_models

PUSHUP_CLIPS = {
    "side_steady": dict(scenario="pushups", reps=6, view="side", tempo=1.0, seed=1),
    "oblique_slow": dict(scenario="pushups", reps=4, view="oblique", tempo=0.5, seed=2, pause_top=0.5),
    "front_fast": dict(scenario="pushups", reps=8, view="front", tempo=2.0, seed=3),
    "front_steady": dict(scenario="pushups", reps=6, view="front", tempo=1.0, seed=13),
    "raised_oblique": dict(scenario="pushups", reps=5, view="oblique", tempo=1.2, seed=4, camera_height=0.6),
    "side_fast": dict(scenario="pushups", reps=9, view="side", tempo=3.0, seed=14),
}
OTHER_CLIPS = {
    "standing": dict(scenario="standing", view="oblique", seed=5, duration=8),
    "walking": dict(scenario="walking", view="side", seed=6, duration=8),
    "squats": dict(scenario="squats", view="oblique", seed=7, duration=10),
    "plank": dict(scenario="plank", view="side", seed=8, duration=10),
    "empty": dict(scenario="empty", view="side", seed=9, duration=5),
}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    from tools.render import render_clip

    folder = tmp_path_factory.mktemp("rendered")
    clips = {}
    for name, spec in {**PUSHUP_CLIPS, **OTHER_CLIPS}.items():
        path = folder / f"{name}.mp4"
        labels = render_clip(path, **spec)
        clips[name] = (path, labels)
    return clips


def count(path):
    proc = subprocess.run([sys.executable, "-m", "appliance", "count", str(path), "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", sorted(PUSHUP_CLIPS))
def test_pushup_clip_counts_exactly(rendered, name):
    path, labels = rendered[name]
    report = count(path)
    assert report["reps"] == int(labels["reps"]), report
    tops = np.asarray(labels["rep_top_times_s"])
    announced = np.asarray(report["rep_times_s"])
    # Each rep is announced once, near its top: a count may come a little before the arms
    # are fully straight (the push is nearly done), never long after.
    offsets = announced - tops
    assert np.all(offsets > -0.7) and np.all(offsets < 1.0), offsets


@pytest.mark.parametrize("name", sorted(OTHER_CLIPS))
def test_other_scenarios_count_nothing(rendered, name):
    path, _ = rendered[name]
    assert count(path)["reps"] == 0


def test_count_saves_keypoints(rendered, tmp_path):
    path, labels = rendered["side_steady"]
    out = tmp_path / "kp.npz"
    proc = subprocess.run([sys.executable, "-m", "appliance", "count", str(path), "--keypoints", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    saved = np.load(out)
    assert saved["keypoints"].shape == labels["keypoints"].shape and saved["keypoints"].dtype == np.float32
    assert saved["pushup_prob"].shape == (len(labels["keypoints"]),)


def test_daemon_reaches_ready_and_announces_every_rep(rendered, tmp_path, notify_socket):
    path, labels = rendered["side_steady"]
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "run", "--source", str(path), "--display", "none", "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    messages = notify_socket()
    assert messages[0].startswith("READY=1")
    statuses = [m for m in messages if "reps=" in m]
    announced = [int(m.split("reps=")[1].split()[0]) for m in statuses]
    reps = int(labels["reps"])
    assert max(announced) == reps and sorted(set(announced)) == list(range(min(announced), reps + 1))
    assert messages[-1] == "STOPPING=1"
    status = subprocess.run([sys.executable, "-m", "appliance", "status", "--state-dir", str(tmp_path / "state"), "--json"], capture_output=True, text=True)
    assert json.loads(status.stdout)["reps"] == reps


def test_dark_check_counts_a_clip_and_finds_nothing_when_it_is_black(rendered):
    """tools.dark_check, behind the README's "too dark" figures: the clip's own count at full
    light, nothing at a fiftieth of it, which appliance.app calls too dark."""
    from appliance.app import TOO_DARK
    from tools.dark_check import count_darkened

    path, labels = rendered["side_steady"]
    _, lit_score, lit_reps = count_darkened(str(path), 1.0)
    pixel, dark_score, dark_reps = count_darkened(str(path), 0.02)
    assert lit_reps == int(labels["reps"]) and dark_reps == 0
    assert pixel < TOO_DARK and dark_score < lit_score
