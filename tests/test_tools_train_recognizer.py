"""The recogniser's validation figures judge the gate as the appliance feeds it."""
import numpy as np
import pytest

from appliance.config import ModelsConfig

pytest.importorskip("torch")  # the tools' venv (.venv-tools) runs these
from tools.pose_traces import Trace  # noqa: E402
from tools.train_recognizer import evaluate  # noqa: E402


def test_the_gate_is_fed_only_on_the_frames_the_pipeline_runs_the_recogniser():
    every = ModelsConfig().recognition_every
    T, fps = 90, 30.0
    kp = np.zeros((T, 9, 3), np.float32)
    kp[..., 2] = 1.0
    kp[..., 0] = np.linspace(0.2, 0.8, 9)[None, :]
    kp[..., 1] = 0.5
    negative = Trace("negative/x.mp4", "negative", "val", "ours", kp, fps, 4 / 3, np.zeros(T, np.int8))
    positive = Trace("pushup/y.mp4", "pushup", "val", "ours", kp, fps, 4 / 3, np.ones(T, np.int8))

    def prob_fn(x):  # sure of a push-up on the frames the pipeline skips, sure of nothing where it runs
        return np.array([0.0 if i % every == 0 else 1.0 for i in range(len(x))])

    res = evaluate(prob_fn, [negative, positive])
    assert res["negative_clip_longest_gate_open_s"]["negative/x.mp4"] == 0.0
