"""`pushup-counter count-trace` on traces made from ../shared/data's teacher landmarks.

Every dev-manifest clip (hand-counted push-up clips with high confidence, non-ambiguous
negatives) goes through the real CLI, which reads all of them in one process per call batch;
skipped when ../shared/data is absent. The floors guard against regressions; the accuracy
report itself is `python -m tools.eval_counting`.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "MANIFEST.tsv").exists(), reason="../shared/data is absent")


@pytest.fixture(scope="module")
def dev_clips():
    from tools.eval_counting import load_manifest

    clips = [c for c in load_manifest(SHARED_DATA) if c.kind in ("pushup", "negative") and c.label_path.exists()]
    return [c for c in clips if c.kind == "negative" or c.confidence.startswith("high")]


def test_count_trace_on_every_dev_clip(dev_clips, tmp_path):
    from tools.eval_counting import load_trace

    report = {}
    for index, clip in enumerate(dev_clips):
        keypoints, fps = load_trace(clip.label_path)
        trace = tmp_path / f"{index}.npz"
        np.savez(trace, keypoints=keypoints, fps=np.float32(fps))
        proc = subprocess.run([sys.executable, "-m", "appliance", "count-trace", str(trace), "--json"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        report[clip.name] = (clip.kind, clip.truth, json.loads(proc.stdout)["reps"])
    pushups = [(truth, got) for kind, truth, got in report.values() if kind == "pushup"]
    negatives = [got for kind, _, got in report.values() if kind == "negative"]
    print("\n".join(f"{name}: truth {truth}, counted {got}" for name, (_, truth, got) in sorted(report.items())))
    assert len(pushups) >= 20 and len(negatives) >= 50
    within_one = sum(abs(t - g) <= 1 for t, g in pushups) / len(pushups)
    exact = sum(t == g for t, g in pushups) / len(pushups)
    assert within_one >= 0.9 and exact >= 0.7, (exact, within_one)
    assert sum(negatives) <= 15
