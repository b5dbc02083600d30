"""tools.eval_traces replays collected keypoint traces through the shipped recogniser, gate and counter."""
import numpy as np

from appliance.config import Config
from tools import eval_traces
from tools.render import render_clip

HEADER = "file\tcategory\tsource_repo\treps_counted\tcount_confidence\tview\tnotes\tresolution\n"


def _trace(folder, name, **kw):
    labels = render_clip(None, width=320, height=240, fps=20.0, write_video=False, seed=21, **kw)
    np.savez(folder / f"{name}.npz", keypoints=labels["keypoints"].astype(np.float32), fps=np.float32(labels["fps"]))
    return labels


def test_replays_push_ups_and_a_negative_through_the_shipped_models(tmp_path):
    traces = tmp_path / "traces"
    traces.mkdir()
    pushups = _trace(traces, "set", scenario="pushups", reps=4, tempo=1.0, view="side", get_up=True)
    _trace(traces, "stand", scenario="standing", duration=6.0, view="front")
    (tmp_path / "MANIFEST.tsv").write_text(
        HEADER + f"pushup/set.mp4\tpushup\trendered/set\t{int(pushups['reps'])}\thigh\tside\trendered\t320x240\n"
        "negative/stand.mp4\tnegative\trendered/stand\t0\t\tfront\trendered\t320x240\n")
    config = Config()
    model = eval_traces.pathlib.Path(config.models.dir) / config.models.recognizer
    summary = eval_traces.evaluate(tmp_path, traces, model, config)
    assert summary["all"] == {"clips": 1, "exact": 1, "within_one": 1}
    assert summary["negatives"]["false_reps"] == 0 and summary["wrong"] == []
    [standing] = summary["negative_gate_runs"]  # standing up: the posture check never holds
    assert standing["clip"] == "stand.mp4" and standing["gate_and_posture_s"] == 0.0
    assert standing["model_split"] in ("train", "val")
    # a device that keeps up with only every other frame (10 fps here) counts the same
    half_rate = eval_traces.evaluate(tmp_path, traces, model, config, frame_step=2)
    assert half_rate["all"]["exact"] == 1 and half_rate["negatives"]["false_reps"] == 0


def test_recogniser_runs_every_nth_frame_like_the_pipeline():
    config = Config()
    model = eval_traces.pathlib.Path(config.models.dir) / config.models.recognizer
    kp = np.full((10, 9, 3), 0.5, np.float32)
    prob = eval_traces._probabilities(model, kp, 20.0, 4 / 3, every=3)
    ran = ~np.isnan(prob)
    assert ran.tolist() == [i % 3 == 0 for i in range(10)]
    assert ((prob[ran] >= 0) & (prob[ran] <= 1)).all()
