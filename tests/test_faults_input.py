"""Bad input (issue 7): each gets one error line naming the thing, its exit code (config 2,
model 3, source 4, state 5), and the saved count is left exactly as it was.

Most cases need no trained model (a models dir with a hand-written card and a junk file);
the card-mismatch and pixel cases copy the real models into tmp_path and break the copy.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from appliance.__main__ import main
from appliance.state import State, StateStore
from conftest import MODELS
from test_faults import ScriptedSource, make_app, needs_models, saved

CARD = {
    "task": "keypoints",
    "input": {"shape": [1, 96, 96, 3], "dtype": "int8", "scale": 1 / 255, "zero_point": -128},
    "output": {"shape": [1, 24, 24, 9], "dtype": "int8", "scale": 1 / 255, "zero_point": -128, "decoding": "heatmap"},
}


@pytest.fixture
def daemon(tmp_path, monkeypatch, mock_pins):
    """`pushup-counter run` in-process against a saved count; returns (run, state_unchanged)."""
    monkeypatch.setattr("appliance.systemd.setup_logging", lambda level: None)
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
        monkeypatch.delenv(name, raising=False)
    state_dir = tmp_path / "state"
    StateStore(state_dir).save(State(reps=12, total=345, resets=6))
    path = state_dir / "state.json"
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")

    def run(config_text: str = "", source: str | None = None, command: str = "run"):
        config = tmp_path / "config.toml"
        config.write_text(config_text)
        if command == "run":
            argv = ["run", "--config", str(config), "--source", source or str(clip), "--state-dir", str(state_dir), "--display", "none"]
        else:
            argv = ["count", source or str(clip), "--config", str(config)]
        return main(argv)

    def unchanged() -> bool:
        return (path.read_bytes(), os.stat(path).st_mtime_ns) == before and sorted(p.name for p in state_dir.iterdir()) == ["state.json"]

    return run, unchanged


def one_error_line(capsys, *names) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("pushup-counter: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("text, named", [
    ("[camera]\nframe_timeout = 2\n", "[camera].frame_timeout"),
    ("[camera]\nframe_timeout_s = 'soon'\n", "[camera].frame_timeout_s"),
    ("[state]\ndir = 7\n", "[state].dir"),
    ("[models]\nnum_threads = 2.5\n", "[models].num_threads"),
    ("[oled]\nkind = 'none'\n", "[oled]"),
    ("[camera\n", "not valid TOML"),
])
def test_bad_config(daemon, capsys, text, named):
    run, unchanged = daemon
    assert run(text) == 2
    one_error_line(capsys, named, "config.toml")
    assert unchanged()


def test_bad_config_is_shown_on_the_oled(tmp_path, capsys, monkeypatch, mock_pins):
    """The daemon cannot run on a bad config, and systemd gives up after a few restarts: the
    OLED (the default one: the file's [display] is what failed) says "config error" over the
    saved count and stays lit after the exit."""
    import appliance.app as app_module
    from appliance.config import DisplayConfig
    from appliance.display import Screen, draw_screen
    from test_faults import RecordingOled

    monkeypatch.setattr("appliance.systemd.setup_logging", lambda level: None)
    oled, opened = RecordingOled(), []
    monkeypatch.setattr(app_module, "open_oled", lambda config: opened.append(config) or oled)
    StateStore(tmp_path / "state").save(State(reps=12, total=345))
    config = tmp_path / "config.toml"
    config.write_text("[display]\nkind = 'oled'\nbrightness = 3\n")
    assert main(["run", "--config", str(config), "--state-dir", str(tmp_path / "state")]) == 2
    one_error_line(capsys, "[display].brightness", "config.toml")
    assert opened == [DisplayConfig()]
    want = draw_screen(Screen(12, "config error"), oled.size, oled.mode)
    assert np.array_equal(np.asarray(oled.inner.image), np.asarray(want))
    assert oled.persist  # not blanked when the process exits


def test_unreadable_state_file_exits_5_and_is_left_alone(daemon, tmp_path, capsys, monkeypatch):
    """Starting from 0 would overwrite a count we merely failed to read: refuse, say which file.
    (Tests run as root, where chmod does not bite, so the read is made to fail directly.)"""
    import pathlib

    run, unchanged = daemon
    read_text = pathlib.Path.read_text

    def denied(self, *args, **kwargs):
        if self.name == "state.json":
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", denied)
    assert run() == 5
    one_error_line(capsys, f"state file {tmp_path}/state/state.json is not readable")
    monkeypatch.undo()
    assert unchanged()


def fake_models(tmp_path, tflite: bytes | None, card: dict | str | None = CARD):
    """A card (given the file's sha256, so the loader's own checks are reached) and a file."""
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    if tflite is not None:
        (models / "keypoints.tflite").write_bytes(tflite)
    if isinstance(card, dict):
        card = {"sha256": hashlib.sha256(tflite or b"").hexdigest(), **card}
    if card is not None:
        (models / "keypoints.json").write_text(card if isinstance(card, str) else json.dumps(card))
    return f"[models]\ndir = '{models}'\n"


@pytest.mark.parametrize("tflite, card, message", [
    (None, None, "model card not found: {models}/keypoints.json"),
    (None, CARD, "model file not found: {models}/keypoints.tflite"),
    (b"\x18\x00\x00\x00TFL3\x00\x00", CARD, "model file {models}/keypoints.tflite cannot be loaded"),  # truncated
    (b"\x89PNG\r\n\x1a\n" + bytes(200), CARD, "{models}/keypoints.tflite is not a TFLite model"),  # foreign
    (b"", CARD, "{models}/keypoints.tflite is not a TFLite model"),  # empty (a power cut while copying)
    (b"x" * 64, '{"task": "keypoints", "input":', "model card {models}/keypoints.json is unreadable"),
    (b"x" * 64, {**CARD, "task": "recognition"}, "model card for {models}/keypoints.tflite is for task 'recognition'"),
])
def test_bad_model_files_without_trained_models(daemon, tmp_path, capsys, tflite, card, message):
    run, unchanged = daemon
    assert run(fake_models(tmp_path, tflite, card)) == 3
    one_error_line(capsys, message.format(models=tmp_path / "models"))
    assert unchanged()


def test_cli_prints_one_error_line_and_exit_3_for_a_foreign_model(tmp_path):
    """The real process: exit code and stderr as systemd's journal gets them."""
    config = tmp_path / "config.toml"
    config.write_text(fake_models(tmp_path, b"GIF89a" + bytes(100)))
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.run([sys.executable, "-m", "appliance", "run", "--config", str(config), "--source", "x.mp4",
                           "--state-dir", str(tmp_path / "state"), "--display", "none"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 3
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert errors == [f"pushup-counter: error: model file {tmp_path}/models/keypoints.tflite is not a TFLite model (truncated or foreign file)"]
    assert "Traceback" not in proc.stderr


# --- with the real models -------------------------------------------------------------------


def real_models(tmp_path) -> str:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("keypoints", "recognizer"):
        for ext in ("tflite", "json"):
            shutil.copy(MODELS / f"{name}.{ext}", models / f"{name}.{ext}")
    return f"[models]\ndir = '{models}'\n"


def edit_card(tmp_path, name, change):
    path = tmp_path / "models" / f"{name}.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


@needs_models
@pytest.mark.parametrize("name, change, message", [
    ("keypoints", lambda c: c["input"].__setitem__("shape", [1, 64, 64, 3]), "does not match its card: input shape"),
    ("keypoints", lambda c: c["input"].__setitem__("zero_point", c["input"].get("zero_point", 0) + 1), "does not match its card: input quantisation"),
    ("keypoints", lambda c: c["output"].__setitem__("dtype", "float32"), "does not match its card: output dtype"),
    ("keypoints", lambda c: c.__setitem__("keypoints", list(reversed(c["keypoints"]))), "card keypoint order"),
    ("recognizer", lambda c: c.__setitem__("task", "keypoints"), "is for task 'keypoints'"),
    ("recognizer", lambda c: c.__setitem__("sha256", "0" * 64), "sha256 differs"),
    ("recognizer", lambda c: c["input"]["window"].__setitem__("normalisation", "other"), "window normalisation 'other'"),
    ("recognizer", lambda c: c["input"].pop("kind"), "input must be a keypoint window"),
    ("recognizer", lambda c: c["input"]["window"].__setitem__("keypoints", c["input"]["window"]["keypoints"][::-1]), "card keypoint order"),
    ("recognizer", lambda c: c["input"].__setitem__("layout", "NCHW"), "does not match its card: input layout NCHW"),
    # Each model's own layout (either one was accepted for either model, outputs never looked at)
    ("recognizer", lambda c: c["input"].__setitem__("layout", "NHWC"), "does not match its card: input layout NHWC"),
    ("keypoints", lambda c: c["output"].__setitem__("layout", "NCHW"), "does not match its card: output layout NCHW"),
    # A card of infinities or deep nesting: one line, not an OverflowError or RecursionError traceback
    ("keypoints", lambda c: c["input"].__setitem__("zero_point", float("inf")), "input section incomplete"),
    ("keypoints", lambda c: c["input"].__setitem__("shape", [1, 144.9, 192.2, 3]), "input section incomplete"),
])
def test_card_that_does_not_match_the_model(daemon, tmp_path, capsys, name, change, message):
    run, unchanged = daemon
    config = real_models(tmp_path)
    edit_card(tmp_path, name, change)
    assert run(config) == 3
    one_error_line(capsys, f"{tmp_path}/models/{name}", message)
    assert unchanged()


@needs_models
def test_deeply_nested_card(daemon, tmp_path, capsys):
    """json.loads gives up with RecursionError, which is not a ValueError: it was a traceback."""
    run, unchanged = daemon
    config = real_models(tmp_path)
    path = tmp_path / "models" / "keypoints.json"
    path.write_text(path.read_text().rstrip()[:-1] + ', "x": ' + "[" * 100000 + "]" * 100000 + "}")
    assert run(config) == 3
    one_error_line(capsys, f"model card {path} is unreadable")
    assert unchanged()


@needs_models
def test_truncated_real_model(daemon, tmp_path, capsys):
    run, unchanged = daemon
    config = real_models(tmp_path)
    path = tmp_path / "models" / "keypoints.tflite"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert run(config) == 3
    one_error_line(capsys, str(path), "sha256 differs")  # the card's sha256 catches it
    assert unchanged()


@needs_models
@pytest.mark.parametrize("name, field, value", [
    ("keypoints", "sha256", None),  # no sha256: damaged weights would load and count wrong
    ("keypoints", "sha256", "abc123"),
    ("recognizer", "sha256", 12345),
    ("keypoints", "keypoints", 5),
    ("keypoints", "keypoints", None),
    ("keypoints", "input.value_range", ["a", "b"]),
    ("keypoints", "input.value_range", [0.0]),
    ("keypoints", "input.value_range", None),
    ("keypoints", "input.value_range", [1.0, 0.0]),
    ("keypoints", "input.pad_value", "zero"),
    ("keypoints", "input.pad_value", 300),  # loaded, then OverflowError at the first frame
    ("keypoints", "input.pad_value", -1),
    ("keypoints", "input.pad_value", None),
    ("recognizer", "input.window.keypoints", 5),
    ("recognizer", "input.window.step_s", 0),
    ("recognizer", "input.window.step_s", "nan"),
    # What the appliance's window does is fixed: a model trained on another window is refused
    ("recognizer", "input.window.steps", 10),
    ("recognizer", "input.window.min_score", 0.9),
    ("recognizer", "input.window.clip", 1.0),
    ("recognizer", "input.window.clip", None),
    # [0, 255] on an input that holds [0, 1]: every pixel from 1 up became the brightest value
    ("keypoints", "input.value_range", [0, 255]),
])
def test_card_field_of_the_wrong_type_or_range(daemon, tmp_path, capsys, name, field, value):
    """One line naming the card and the field (these were TypeError or ValueError tracebacks)."""
    run, unchanged = daemon
    config = real_models(tmp_path)

    def change(card):
        *parents, key = field.split(".")
        for parent in parents:
            card = card[parent]
        if value is None and key == "sha256":
            card.pop(key)
        else:
            card[key] = value

    edit_card(tmp_path, name, change)
    assert run(config) == 3
    one_error_line(capsys, f"model card {tmp_path}/models/{name}.json: {field} must be")
    assert unchanged()


@needs_models
@pytest.mark.parametrize("command", ["run", "count"])
def test_unreadable_video(daemon, tmp_path, capsys, command):
    run, unchanged = daemon
    config = real_models(tmp_path)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(2000))
    assert run(config, str(junk), command) == 4
    one_error_line(capsys, "junk.mp4")
    assert run(config, str(tmp_path / "absent.mp4"), command) == 4
    one_error_line(capsys, "absent.mp4")
    assert unchanged()


@needs_models
def test_black_saturated_and_malformed_frames_count_nothing_and_lose_nothing(tmp_path, mock_pins, caplog):
    """The real pipeline on frames with nothing in them: no rep, "no person", no crash, the count kept."""
    from appliance.app import load_pipeline
    from appliance.config import Config

    StateStore(tmp_path / "state").save(State(reps=12, total=345))
    pipeline = load_pipeline(Config())
    black = np.zeros((240, 320, 3), np.uint8)
    white = np.full((240, 320, 3), 255, np.uint8)
    script = [("image", black)] * 45 + [("image", white)] * 30 + [("image", np.zeros((240, 320, 3), np.float32)),
                                                                  ("image", np.zeros((240, 320), np.uint8))] + [("image", black)] * 5
    source = ScriptedSource(script, live=False)
    app = make_app(tmp_path, source, pipeline=pipeline)
    statuses = []
    show = app._show
    app._show = lambda: (statuses.append(app._status), show())
    assert app.run() == 0
    state = saved(tmp_path)
    assert (state.reps, state.total) == (12, 345)
    assert statuses[-1] == "no person"
    assert statuses[44] == "too dark"  # 1.5 s of black frames: the brightness, not a missing person
    assert "counting" not in statuses
    assert len([r for r in caplog.records if "skipping bad frame" in r.getMessage()]) == 1


@needs_models
def test_a_runtime_that_refuses_its_arguments_is_one_line_not_the_model_bytes():
    """pybind11's TypeError quotes every argument, the whole model file included (1 MB into
    the journal): the loader turns it into one short line naming the file."""
    from appliance.errors import ModelError
    from appliance.runtime import load_interpreter

    path = MODELS / "recognizer.tflite"
    with pytest.raises(ModelError) as caught:
        load_interpreter(path, num_threads=2**32)
    message = str(caught.value)
    assert message.startswith(f"model file {path} cannot be loaded: ") and "\n" not in message and len(message) < 400
