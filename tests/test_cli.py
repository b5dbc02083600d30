"""The command line as a user meets it: exit codes, one-line errors, JSON."""
import json
import subprocess
import sys
import types

import numpy as np
import pytest

from appliance.__main__ import main
from tests.conftest import needs_models
from appliance.state import State, StateStore


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def test_status_and_reset(tmp_path, capsys):
    StateStore(tmp_path).save(State(reps=9, total=40))
    assert main(["status", "--state-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reps"] == 9
    assert main(["reset", "--state-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["status", "--state-dir", str(tmp_path), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["reps"] == 0 and status["total"] == 40


@pytest.mark.parametrize("command", ["status", "reset"])
def test_missing_state_dir_is_one_line(tmp_path, capsys, command):
    assert main([command, "--state-dir", str(tmp_path / "nope")]) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "state directory not found" in err and "nope" in err
    assert not (tmp_path / "nope").exists()  # reset did not make a new, unread count


def test_bad_config_exits_2_with_one_line_naming_the_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[display]\nbrightness = 3\n")
    code, out, err = run_cli("run", "--config", str(config), "--source", "x.mp4", "--state-dir", str(tmp_path))
    assert code == 2
    assert err.strip().count("\n") == 0 and "[display].brightness" in err


@pytest.fixture(scope="module")
def rendered_trace():
    """Exact keypoints of the project's rendered person doing 5 push-ups, seen from the side."""
    from tools.render import render_clip

    labels = render_clip("unused.mp4", scenario="pushups", reps=5, view="side", tempo=1.0, seed=11, write_video=False)
    return labels["keypoints"].astype(np.float32), float(labels["fps"]), int(labels["reps"])


@pytest.mark.parametrize("count", [7, 9])
def test_count_trace_json(tmp_path, rendered_trace, count):
    keypoints, fps, reps = rendered_trace
    trace = tmp_path / "trace.npz"
    np.savez(trace, keypoints=keypoints[:, :count], fps=np.float32(fps))
    code, out, err = run_cli("count-trace", str(trace), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["reps"] == reps == 5 and len(report["rep_times_s"]) == 5


def test_count_trace_refuses_a_foreign_file(tmp_path):
    trace = tmp_path / "trace.npz"
    np.savez(trace, frames=np.zeros(3))
    code, out, err = run_cli("count-trace", str(trace))
    assert code == 4 and "trace.npz" in err and err.strip().count("\n") == 0


def test_count_trace_of_a_bare_npy_array_is_one_line(tmp_path, capsys):
    trace = tmp_path / "x.npy"
    np.save(trace, np.zeros((10, 9, 3), np.float32))
    assert main(["count-trace", str(trace)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x.npy" in err and "not an .npz archive" in err


@pytest.mark.parametrize("damage", ["empty", "truncated", "short"])
def test_count_trace_of_an_empty_or_damaged_archive_is_one_line(tmp_path, capsys, damage):
    """np.load raised EOFError or zipfile.BadZipFile, neither a ValueError: tracebacks."""
    good = tmp_path / "good.npz"
    np.savez(good, keypoints=np.zeros((30, 9, 3), np.float32), fps=np.float32(30))
    data = {"empty": b"", "truncated": good.read_bytes()[: good.stat().st_size // 2], "short": b"PK\x03\x04" + bytes(10)}[damage]
    trace = tmp_path / "trace.npz"
    trace.write_bytes(data)
    assert main(["count-trace", str(trace)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trace.npz is not a keypoint trace" in err


@pytest.mark.parametrize("fps", [float("inf"), 1e300, 1001.0, 0.0, float("nan")])
def test_count_trace_refuses_an_fps_no_camera_has(tmp_path, capsys, fps):
    """inf or 1e300 counted 0 reps without a word."""
    trace = tmp_path / "trace.npz"
    np.savez(trace, keypoints=np.zeros((30, 9, 3), np.float32), fps=np.float64(fps))
    assert main(["count-trace", str(trace)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trace.npz" in err and "fps above 0 and at most 1000" in err


def test_log_level_in_any_case(monkeypatch):
    import logging

    from appliance.systemd import setup_logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # setup_logging replaces them: restored after the test
    monkeypatch.setattr(root, "level", root.level)
    setup_logging("debug")
    assert root.level == logging.DEBUG and len(root.handlers) == 1


def test_unknown_log_level_is_one_line_listing_the_levels(tmp_path, capsys):
    argv = ["run", "--log-level", "verbose", "--source", "x.mp4", "--state-dir", str(tmp_path), "--display", "none"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'verbose'" in err and "debug, info, warning, error, critical" in err


@pytest.mark.parametrize("argv", [
    ["count", "{clip}", "--keypoints", "{blocked}/x.npz"],
    ["run", "--source", "{clip}", "--display", "none", "--state-dir", "{tmp}/state", "--record", "{blocked}/rec"],
], ids=["count --keypoints", "run --record"])
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(tmp_path, argv):
    """A path through a regular file: exit 6 with one line naming it, at once, not a traceback
    after the whole clip has been counted."""
    from tests.conftest import make_clip

    clip = make_clip(tmp_path / "clip.mp4")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    code, out, err = run_cli(*[a.format(clip=clip, blocked=blocked, tmp=tmp_path) for a in argv])
    assert code == 6
    errors = [line for line in err.splitlines() if line.startswith("pushup-counter: error:")]
    assert len(errors) == 1 and str(blocked) in errors[0] and "Traceback" not in err
    assert not (tmp_path / "state" / "state.json").exists() or json.loads((tmp_path / "state" / "state.json").read_text())["reps"] == 0


def test_count_keypoints_to_a_directory_is_one_line_before_any_work(tmp_path, capsys):
    """numpy would have written kpdir.npz beside it without a word."""
    (tmp_path / "kpdir").mkdir()
    assert main(["count", str(tmp_path / "absent.mp4"), "--keypoints", str(tmp_path / "kpdir")]) == 6
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kpdir: it is a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kpdir"]


@needs_models
def test_count_keypoints_are_written_to_the_exact_path_given(tmp_path, capsys):
    """Not to noext.npz, the name numpy makes of a path without the suffix."""
    from tests.conftest import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=5)
    assert main(["count", str(clip), "--keypoints", str(tmp_path / "noext")]) == 0
    assert not (tmp_path / "noext.npz").exists()
    with np.load(tmp_path / "noext") as saved:
        assert saved["keypoints"].shape[0] == 5 and saved["keypoints"].shape[2] == 3


def test_reset_that_cannot_write_says_so_once_without_the_daemons_words(tmp_path, capsys, caplog, monkeypatch):
    """Not "counting on in memory": a command-line reset counts nothing on."""
    from appliance import state as state_module

    StateStore(tmp_path).save(State(reps=3, total=3))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(state_module.tempfile, "mkstemp", refuse)
    assert main(["reset", "--state-dir", str(tmp_path)]) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write state" in err
    assert not [r for r in caplog.records if "in memory" in r.getMessage()]


def stub_pipeline(monkeypatch, bad=()):
    """`count` and `run` on the stub pipeline of test_faults (no models); frames whose index is
    in `bad` raise FrameError, as the real pipeline does for a frame it cannot use."""
    from appliance.frames import FrameError
    from tests.test_faults import StubPipeline

    def on_process(frame):
        if frame.index in bad:
            raise FrameError(f"frame {frame.index}: broken")

    def load(config):
        pipeline = StubPipeline(on_process)
        pipeline.keypoint_model = types.SimpleNamespace(count=9)  # what count --keypoints asks of it
        return pipeline

    monkeypatch.setattr("appliance.app.load_pipeline", load)
    monkeypatch.setattr("appliance.systemd.setup_logging", lambda level: None)


@pytest.mark.parametrize("command", ["count", "run"])
def test_a_video_of_frames_too_small_to_use_is_one_line_exit_4(tmp_path, monkeypatch, capsys, mock_pins, command):
    """Frames under 8 px on a side: `count` ended in a FrameError traceback (exit 1), and `run`
    skipped every frame and said 0 reps (found by review). Both: one line naming the file, exit 4."""
    from tests.conftest import make_clip

    clip = make_clip(tmp_path / "tiny.mp4", frames=5, size=(6, 6))
    stub_pipeline(monkeypatch)
    argv = ["count", str(clip)] if command == "count" else \
        ["run", "--source", str(clip), "--display", "none", "--state-dir", str(tmp_path / "state")]
    assert main(argv) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"video file {clip} has no usable frame: 5 skipped" in err and "at least 8x8" in err


def test_count_skips_bad_frames_as_run_does(tmp_path, monkeypatch, capsys):
    from tests.conftest import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=10)
    stub_pipeline(monkeypatch, bad={1, 2})
    assert main(["count", str(clip), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["frames"], report["skipped_frames"], report["reps"]) == (8, 2, 0)
    assert main(["count", str(clip)]) == 0
    assert capsys.readouterr().out.strip() == f"0 reps in {clip} (8 frames, 2 skipped: frame 1: broken)"


def test_run_whose_recording_cannot_be_finished_exits_6_with_one_line(tmp_path, monkeypatch, capsys, mock_pins):
    """The GIF is written only when the run ends; a disk full then was a warning and exit 0 (found by review)."""
    import os

    from tests.conftest import make_clip

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    clip = make_clip(tmp_path / "clip.mp4", frames=5)
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "oled.gif").symlink_to("/dev/full")
    stub_pipeline(monkeypatch)
    argv = ["run", "--source", str(clip), "--display", "none", "--state-dir", str(tmp_path / "state"), "--record", str(tmp_path / "rec")]
    assert main(argv) == 6
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write the OLED animation {tmp_path}/rec/oled.gif: No space left on device" in err


def test_run_with_the_default_camera_and_no_picamera2_exits_4_at_once(tmp_path, monkeypatch, capsys, mock_pins):
    """A desktop `pushup-counter run`: waited 90 s of "camera error" retries before exit 4 (found by review)."""
    import time

    monkeypatch.setitem(sys.modules, "picamera2", None)
    monkeypatch.setitem(sys.modules, "libcamera", None)
    stub_pipeline(monkeypatch)
    start = time.monotonic()
    assert main(["run", "--display", "none", "--state-dir", str(tmp_path / "state")]) == 4
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "picamera2 is not installed" in err and "--source webcam" in err


def test_count_trace_replays_a_gappy_trace_on_its_own_times(tmp_path, rendered_trace, capsys):
    """count --keypoints saved only a nominal fps and count-trace put frame i at i / fps: a clip
    whose camera dropped frames (or a variable-rate phone clip) replayed on another clock, its
    reps at other times (found by review). With each frame's time ("t") it replays as counted."""
    keypoints, fps, reps = rendered_trace
    n = len(keypoints)
    kept = np.concatenate([np.arange(n // 2), np.arange(n // 2, n, 2)])  # every 2nd frame in the second half
    full, gappy = tmp_path / "full.npz", tmp_path / "gappy.npz"
    np.savez(full, keypoints=keypoints, fps=np.float32(fps))  # an older trace: no t
    np.savez(gappy, keypoints=keypoints[kept], fps=np.float32(fps), t=kept / fps)
    assert main(["count-trace", str(full), "--json"]) == 0
    want = json.loads(capsys.readouterr().out)["rep_times_s"]
    assert main(["count-trace", str(gappy), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["reps"] == reps == len(want) and got["frames"] == len(kept)
    assert np.allclose(got["rep_times_s"], want, atol=2.5 / fps), (got["rep_times_s"], want)


def test_count_trace_takes_repeated_stamps_and_slow_or_paused_times(tmp_path):
    """The frame rate is the trace's mean: each stamp twice (a source that repeats PTS) or a
    2-frame trace 2 s apart were refused by a median step of 0 or under 1 fps."""
    for times in (np.repeat(np.arange(15) / 15, 2), np.array([0.0, 2.0])):
        trace = tmp_path / "trace.npz"
        np.savez(trace, keypoints=np.zeros((len(times), 9, 3), np.float32), fps=np.float32(30), t=times)
        assert main(["count-trace", str(trace)]) == 0


@pytest.mark.parametrize("times", [
    np.arange(29) / 30,       # one short
    np.zeros(30),             # all at 0 s: counted 0 reps without a word (found by review)
    np.full(30, 1e300),
    np.arange(30) * 33.3,     # milliseconds, not seconds
])
def test_count_trace_refuses_times_that_do_not_fit(tmp_path, capsys, times):
    trace = tmp_path / "trace.npz"
    np.savez(trace, keypoints=np.zeros((30, 9, 3), np.float32), fps=np.float32(30), t=times)
    assert main(["count-trace", str(trace)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trace.npz: t must be one finite, non-decreasing time" in err


def test_count_saves_each_frames_time_with_the_keypoints(tmp_path, monkeypatch, capsys):
    """A variable-frame-rate clip: the saved t are the frames' own times, not i / fps."""
    import av
    from fractions import Fraction

    times = [0.0, 0.033, 0.066, 0.5, 0.533, 1.5, 1.533, 3.0]
    clip = tmp_path / "vfr.mkv"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    stub_pipeline(monkeypatch, bad={2})
    out = tmp_path / "k.npz"
    assert main(["count", str(clip), "--keypoints", str(out)]) == 0
    with np.load(out) as data:
        assert data["keypoints"].shape == (7, 9, 3) and float(data["fps"]) > 0
        assert np.allclose(data["t"], [t for i, t in enumerate(times) if i != 2], atol=1e-3)
    assert main(["count-trace", str(out), "--json"]) == 0  # and count-trace reads it
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["frames"] == 7
