"""The command line as a user meets it: exit codes, one-line errors, JSON."""
import json
import subprocess
import sys

import numpy as np
import pytest

from appliance.__main__ import main
from appliance.state import State, StateStore


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def test_status_and_reset(tmp_path, capsys):
    StateStore(tmp_path).save(State(reps=9, total=40))
    assert main(["status", "--state-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[ "reps"] == 9
    assert main(["reset", "--state-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["status", "--state-dir", str(tmp_path), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["reps"] == 0 and status["total"] == 40


def test_status_of_a_missing_state_dir_is_one_line(tmp_path, capsys):
    assert main(["status", "--state-dir", str(tmp_path / "nope")]) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err


def test_bad_config_exits_2_with_one_line_naming_the_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[display]\nbrightness = 3\n")
    code, out, err = run_cli("run", "--config", str(config), "--source", "x.mp4", "--state-dir", str(tmp_path))
    assert code == 2
    assert err.strip().count("\n") == 0 and "[display].brightness" in err


def plank_trace(reps=5, fps=30.0, period_s=2.0, count=9):
    """A side-view plank whose shoulders and head dip and rise `reps` times."""
    t = np.arange(int((reps + 1.5) * period_s * fps)) / fps
    depth = np.where(t > 0.5 * period_s, 0.5 - 0.5 * np.cos(2 * np.pi * (t - 0.5 * period_s) / period_s), 0.0)
    depth[t > (reps + 0.5) * period_s] = 0.0
    base = np.array([[0.30, 0.80], [0.31, 0.68], [0.32, 0.55], [0.24, 0.52], [0.33, 0.55], [0.32, 0.68], [0.31, 0.80], [0.60, 0.60], [0.61, 0.60]])
    kp = np.zeros((len(t), 9, 3), np.float32)
    kp[:, :, :2] = base
    kp[:, :, 2] = 0.9
    drop = 0.12 * depth
    for i, share in ((1, 0.5), (2, 1.0), (3, 1.0), (4, 1.0), (5, 0.5), (7, 0.5), (8, 0.5)):
        kp[:, i, 1] += share * drop
    return kp[:, :count], fps


@pytest.mark.parametrize("count", [7, 9])
def test_count_trace_json(tmp_path, count):
    keypoints, fps = plank_trace(reps=5, count=count)
    trace = tmp_path / "trace.npz"
    np.savez(trace, keypoints=keypoints, fps=np.float32(fps))
    code, out, err = run_cli("count-trace", str(trace), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["reps"] == 5 and len(report["rep_times_s"]) == 5


def test_count_trace_refuses_a_foreign_file(tmp_path):
    trace = tmp_path / "trace.npz"
    np.savez(trace, frames=np.zeros(3))
    code, out, err = run_cli("count-trace", str(trace))
    assert code == 4 and "trace.npz" in err and err.strip().count("\n") == 0
