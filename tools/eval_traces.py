"""Quick full-pipeline counting check on collected keypoint traces: recogniser, gate, counter.

    python -m tools.eval_traces --data ../shared/data --traces runs/traces_e \
        [--recognizer models/recognizer.tflite] [--config FILE]

`tools.eval_counting --pipeline` decodes every video and runs the keypoint model, which takes
about 10 minutes. The keypoints of the shipped model are already in the traces
(`python -m tools.pose_traces collect`). This tool replays them instead, in seconds:
- the recogniser (.tflite through appliance.models, or a float .pt checkpoint) runs on every
  ``recognition_every``-th frame, as `appliance.pipeline` does;
- the gate and the counter use the config's settings (defaults without --config).
The counts match the full pipeline's when the traces come from the shipped keypoint model. Use
it to compare recognisers, gate or counter settings, or (``--frame-step N``) to see what a slower
device, which processes only every Nth camera frame, would count.
Prints exact / within one for the dev and holdout splits of tools.eval_counting, the false reps
on negatives, and every wrong clip. For the negative clips it also prints how long each one
holds the gate open at a stretch: the recogniser's gate alone, and the gate fused with the
counter's push-up posture check (both must hold on a frame), which is what a rep has to pass;
split by the models' train / validation footage (tools.dataset).
"""
from __future__ import annotations

import argparse
import csv
import pathlib

import numpy as np

from appliance.config import Config, load_config
from appliance.counter import count_trace
from appliance.gate import Gate
from tools.dataset import data_root, split_manifest
from tools.eval_counting import load_manifest
from tools.metrics import longest_run_seconds
from tools.pose_traces import frame_aspect


def _aspects(root: pathlib.Path) -> dict[str, float]:
    with open(root / "MANIFEST.tsv", newline="") as fh:
        return {pathlib.Path(row["file"]).stem: frame_aspect(row.get("resolution") or "")
                for row in csv.DictReader(fh, delimiter="\t")}


def _probabilities(recognizer: pathlib.Path, keypoints: np.ndarray, fps: float, aspect: float, every: int) -> np.ndarray:
    """P(push-up) per frame, NaN where the recogniser did not run (as the pipeline feeds the gate)."""
    prob = np.full(len(keypoints), np.nan, np.float32)
    if recognizer.suffix == ".tflite":
        from appliance.models import RecognitionModel

        model = RecognitionModel(recognizer)
        for i in range(len(keypoints)):
            model.observe(i / fps, keypoints[i])
            if i % every == 0:
                prob[i] = model.predict(aspect)
        return prob
    import torch

    from appliance.recognition import window_at
    from tools.export_tflite import build_net
    from tools.train_recognizer import predict

    net = build_net("recognizer", torch.load(recognizer, map_location="cpu"))
    times = np.arange(len(keypoints)) / fps
    idx = np.arange(0, len(keypoints), every)
    if len(idx):
        prob[idx] = predict(net, np.stack([window_at(times, keypoints, times[i], aspect) for i in idx]))
    return prob


def _model_split(root: pathlib.Path) -> dict[str, str]:
    """Clip file name -> "train" or "val": the footage split the models were trained on."""
    return {pathlib.Path(c.file).name: c.split for c in split_manifest(root)}


def evaluate(root: pathlib.Path, traces: pathlib.Path, recognizer: pathlib.Path, config: Config,
             frame_step: int = 1) -> dict:
    aspects = _aspects(root)
    model_split = _model_split(root)
    rows, gate_runs = [], []
    for clip in load_manifest(root):
        if clip.kind not in ("pushup", "negative"):
            continue
        path = traces / f"{pathlib.Path(clip.file).stem}.npz"
        if not path.exists():
            continue
        data = np.load(path)
        keypoints, fps = data["keypoints"].astype(np.float32), float(data["fps"])
        keypoints, fps = keypoints[::frame_step], fps / frame_step  # a slower device drops frames
        prob = _probabilities(recognizer, keypoints, fps, aspects[pathlib.Path(clip.file).stem],
                              config.models.recognition_every)
        gate = Gate(config.gate.open_threshold, config.gate.close_threshold, config.gate.time_constant_s)
        is_open = np.array([gate.update(i / fps, None if np.isnan(p) else float(p)) for i, p in enumerate(prob)])
        result = count_trace(keypoints, fps, config.counter, gate=is_open)
        rows.append((clip, result.reps, [why for _, why in result.rejected]))
        if clip.kind == "negative":
            gate_runs.append({"clip": clip.name, "model_split": model_split.get(pathlib.Path(clip.file).name, "?"),
                              "gate_s": round(longest_run_seconds(is_open, fps), 2),
                              "gate_and_posture_s": round(longest_run_seconds(is_open & result.posture_ok, fps), 2)})
    summary = {}
    for split in ("dev", "holdout", "all"):
        errors = [reps - c.truth for c, reps, _ in rows if c.kind == "pushup" and split in (c.split, "all")]
        summary[split] = {"clips": len(errors), "exact": int(sum(e == 0 for e in errors)),
                          "within_one": int(sum(abs(e) <= 1 for e in errors))}
    negatives = [(c, reps) for c, reps, _ in rows if c.kind == "negative"]
    summary["negatives"] = {"clips": len(negatives), "false_reps": int(sum(r for _, r in negatives)),
                            "clips_with_false_reps": int(sum(r > 0 for _, r in negatives))}
    summary["negative_gate_runs"] = gate_runs
    summary["wrong"] = [{"clip": c.name, "true": c.truth, "counted": reps, "refused": why[:6]}
                        for c, reps, why in rows if reps != c.truth]
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--traces", required=True, help="our keypoint model's traces (tools.pose_traces collect)")
    ap.add_argument("--recognizer", default=None, help=".tflite or float .pt (default: the config's model)")
    ap.add_argument("--config", default=None, help="appliance config file ([gate], [counter], [models])")
    ap.add_argument("--frame-step", type=int, default=1,
                    help="keep every Nth frame: the counts of a device that manages only fps/N frames a second")
    a = ap.parse_args(argv)
    config = load_config(a.config) if a.config else Config()
    recognizer = pathlib.Path(a.recognizer) if a.recognizer else pathlib.Path(config.models.dir) / config.models.recognizer
    s = evaluate(data_root(a.data), pathlib.Path(a.traces), recognizer, config, a.frame_step)
    for split in ("dev", "holdout", "all"):
        v = s[split]
        print(f"{split:8s} exact {v['exact']}/{v['clips']}  within one {v['within_one']}/{v['clips']}")
    n = s["negatives"]
    print(f"negatives: {n['false_reps']} false reps on {n['clips']} clips ({n['clips_with_false_reps']} clips with any)")
    for split in ("val", "train"):
        runs = [r for r in s["negative_gate_runs"] if r["model_split"] == split]
        for key, what in (("gate_s", "gate"), ("gate_and_posture_s", "gate and posture")):
            print(f"{split:5s} negatives, {what:16s} open at a stretch: over 0.5 s {sum(r[key] > 0.5 for r in runs)}, "
                  f"over 1.5 s {sum(r[key] > 1.5 for r in runs)} of {len(runs)} clips; longest "
                  f"{max((r[key] for r in runs), default=0):.2f} s")
    unknown = sum(r["model_split"] == "?" for r in s["negative_gate_runs"])
    if unknown:
        print(f"({unknown} negative clips not in the models' split: left out of the two lines above)")
    for w in s["wrong"]:
        print(f"  {w['clip'][:60]:60s} true {w['true']} counted {w['counted']}  refused: {', '.join(w['refused'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
