"""Train the push-up recogniser on keypoint windows (appliance.recognition).

    python -m tools.pose_traces collect --data ../shared/data --out runs/traces   # our model's traces
    python -m tools.pose_traces collect-rendered --clips 60 --out runs/traces_rendered   # optional
    python -m tools.train_recognizer --data ../shared/data --traces runs/traces --out runs/rec

Training windows come from both the teacher's traces (clean, every clip) and our int8 keypoint
model's traces (what the appliance will feed it); teacher windows get extra keypoint noise.
Augmentation: horizontal flip with left/right swap, tempo (window step 0.07 to 0.14 s),
rotation, scale, jitter, dropped keypoints, a history cut short (the first seconds after the
person appears). Validation is on held-out footage (tools.dataset split) with our model's
traces, beside the recogniser that was shipped when the traces were collected (its output is
recorded in them; runs/traces was collected with the earlier frame recogniser). P(push-up) is
measured as the appliance computes it: the mean over the window and its mirror image.

Writes runs/rec/{last.pt,history.json,metrics.json,curves.png}.

    python -m tools.train_recognizer --traces runs/traces_tta --average A/last.pt B/last.pt --out runs/rec_avg

trains nothing: it averages the logits of recognisers trained apart (tools.nets.AveragedRecognizer),
validates the average like a trained one and writes it as one checkpoint that tools.export_tflite
turns into one int8 model.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from appliance import keypoints as kpmod
from appliance.recognition import STEP_S, WINDOW_STEPS, mirror_window, window_at
from tools import metrics
from tools.dataset import REPO, data_root
from tools.nets import MotionRecognizerNet, count_macs, count_params
from tools.pose_traces import Trace, load_rendered, load_traces
from tools.trainlib import Schedule, save_curves, seed_all

TEMPO_STEPS = (0.07, 0.1, 0.14)
# The labels this run trains on, as its metrics.json records them for the recogniser's card
# (tools.cards): change it with tools.dataset.clip_labels or synthetic_cache.pushup_phase_labels.
TARGETS = ("per frame (tools.dataset.clip_labels): 1 = push-up clip with the person down inside the active span "
           "(pauses up to 2 s inside a set included; 0.5 s unsure margin at transitions), every riyer8 frame with "
           "a person; 0 = negative clips and standing/set-up frames (unsure in top-down clips); rendered clips: 1 from "
           "0.8 s before the first rep's bottom to 0.3 s after the last top, unsure at both edges "
           "(tools.synthetic_cache.pushup_phase_labels); the window ending at a frame carries that frame's label")


def tools_commit() -> str | None:
    """The commit the tools ran at, '-dirty' when tracked files differ from it; None outside git."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=20).stdout.strip()

    try:
        return git("rev-parse", "--short", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except Exception:
        return None


def trace_windows(tr: Trace, stride: int = 1, step_s: float = STEP_S) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows [N, T, K, 3] ending at every ``stride``-th labelled frame, labels [N], frame index [N]."""
    idx = np.arange(0, len(tr.keypoints), stride)
    idx = idx[tr.labels[idx] >= 0]
    times = tr.times
    wins = np.stack([window_at(times, tr.keypoints, times[i], tr.aspect, WINDOW_STEPS, step_s) for i in idx]) if len(idx) else \
        np.zeros((0, WINDOW_STEPS, tr.keypoints.shape[1], 3), np.float32)
    return wins, tr.labels[idx].astype(np.float32), idx


def build_training_set(traces: list[Trace], stride: int, rendered_weight: float = 1.0) -> dict:
    xs, ys, ws, teach = [], [], [], []
    for tr in traces:
        if tr.split != "train":
            continue
        for step in TEMPO_STEPS:
            x, y, _ = trace_windows(tr, stride, step)
            if not len(x):
                continue
            xs.append(x)
            ys.append(y)
            # every clip counts about equally, whatever its length; our traces weigh double
            weight = (2.0 if tr.source == "ours" else 1.0) * (rendered_weight if tr.kind == "rendered" else 1.0)
            ws.append(np.full(len(y), weight / np.sqrt(len(y)), np.float32))
            teach.append(np.full(len(y), tr.source == "teacher"))
    y = np.concatenate(ys)
    w = np.concatenate(ws)
    for label in (0.0, 1.0):  # balance the classes
        w[y == label] *= 0.5 / w[y == label].sum()
    return {"x": np.concatenate(xs), "y": y, "w": w / w.sum(), "teacher": np.concatenate(teach)}


def augment(x: np.ndarray, teacher: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = x.copy()
    n, t, k, _ = x.shape
    flip = rng.random(n) < 0.5
    x[flip] = mirror_window(x[flip])
    seen = x[..., 2:3] > 0  # after the mirror, which swaps left and right scores too
    angle = rng.normal(0, np.deg2rad(8), n)
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    scale = np.exp(rng.normal(0, 0.12, n))[:, None, None]
    xx, yy = x[..., 0].copy(), x[..., 1].copy()
    x[..., 0] = (c * xx - s * yy) * scale
    x[..., 1] = (s * xx + c * yy) * scale
    sigma = np.where(teacher, rng.uniform(0.03, 0.25, n), rng.uniform(0.0, 0.08, n))[:, None, None, None]
    x[..., :2] += rng.normal(0, 1, (n, t, k, 2)) * sigma
    outlier = rng.random((n, t, k)) < np.where(teacher, 0.04, 0.01)[:, None, None]
    x[..., :2][outlier] += rng.normal(0, 1.0, (int(outlier.sum()), 2))
    drop = rng.random((n, t, k)) < rng.uniform(0, 0.15, n)[:, None, None]
    seen = seen[..., 0] & ~drop
    cut = rng.random(n) < 0.15  # history starts late: the person just got into view
    starts = rng.integers(0, t - 3, n)
    for i in np.flatnonzero(cut):
        seen[i, : starts[i]] = False
    x[..., :2] = np.clip(x[..., :2], -4, 4) * seen[..., None]
    x[..., 2] = seen
    return x


def to_nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def predict(model, x: np.ndarray, batch: int = 2048) -> np.ndarray:
    """P(push-up) per window as the appliance computes it: the mean over the window and its mirror."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            for windows in (x[i:i + batch], mirror_window(x[i:i + batch])):
                out.append(torch.sigmoid(model(to_nchw(windows))).numpy()[:, 0])
    if not out:
        return np.zeros(0)
    return 0.5 * (np.concatenate(out[0::2]) + np.concatenate(out[1::2]))


def evaluate(prob_fn, traces: list[Trace], source: str = "ours") -> dict:
    """Frame-level AUC on validation footage, and the negative clips' longest smoothed-open stretch."""
    from appliance.config import GateConfig, ModelsConfig
    from appliance.gate import Gate

    gate_config = GateConfig()
    every = ModelsConfig().recognition_every  # the pipeline runs the recogniser on every Nth frame only
    scores, labels, recorded_scores, recorded_labels = [], [], [], []
    open_negatives, gate_open_negatives = {}, {}
    for tr in traces:
        if tr.split != "val" or tr.source != source:
            continue
        x, y, idx = trace_windows(tr)
        p = prob_fn(x)
        scores.append(p)
        labels.append(y)
        if tr.recorded_prob is not None:
            ip = np.nan_to_num(tr.recorded_prob[idx], nan=0.0)
            recorded_scores.append(ip)
            recorded_labels.append(y)
        if tr.kind == "negative":
            sm = metrics.smoothed(p, tr.fps, 1.0)
            open_negatives[tr.clip] = round(metrics.longest_run_seconds(sm > 0.5, tr.fps), 2)
            # the appliance's own gate (config defaults) on the same probabilities, fed as the pipeline feeds it
            gate = Gate(gate_config.open_threshold, gate_config.close_threshold, gate_config.time_constant_s)
            is_open = np.array([gate.update(i / tr.fps, float(q) if i % every == 0 else None) for i, q in zip(idx, p)])
            gate_open_negatives[tr.clip] = round(metrics.longest_run_seconds(is_open, tr.fps), 2)
    s, y = np.concatenate(scores), np.concatenate(labels)
    res = {"frames_positive": int(y.sum()), "frames_negative": int((1 - y).sum()), "roc_auc": metrics.roc_auc(s, y),
           "accuracy": float(((s > 0.5) == (y > 0.5)).mean()), "fpr_negative_frames": float((s[y == 0] > 0.5).mean()),
           "tpr": float((s[y == 1] > 0.5).mean()),
           "negative_clips": len(open_negatives),
           "negative_clips_open_over_1p5s": sorted(k for k, v in open_negatives.items() if v > 1.5),
           "negative_clip_longest_open_s": open_negatives,
           "gate": f"appliance gate, config defaults: open {gate_config.open_threshold}, close "
                   f"{gate_config.close_threshold}, time constant {gate_config.time_constant_s} s",
           "negative_clips_gate_open_over_0p5s": sorted(k for k, v in gate_open_negatives.items() if v > 0.5),
           "negative_clips_gate_open_over_1p5s": sorted(k for k, v in gate_open_negatives.items() if v > 1.5),
           "negative_clip_longest_gate_open_s": gate_open_negatives}
    if recorded_scores:
        res["recorded_prob_same_frames_roc_auc"] = metrics.roc_auc(np.concatenate(recorded_scores), np.concatenate(recorded_labels))
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--traces", default=str(REPO / "runs" / "traces"), help="our model's traces (tools.pose_traces collect)")
    ap.add_argument("--rendered", default=str(REPO / "runs" / "traces_rendered"),
                    help="rendered clips' traces (tools.pose_traces collect-rendered); training only; '' for none")
    ap.add_argument("--extra-traces", nargs="*", default=[],
                    help="more folders of keypoint traces (other keypoint models, other rendered sets): training "
                         "only, so the recogniser learns the errors of more than one keypoint model")
    ap.add_argument("--rendered-weight", type=float, default=0.5, help="per-clip weight of a rendered clip against a real one")
    ap.add_argument("--out", default=str(REPO / "runs" / "rec"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--stride", type=int, default=2, help="training windows end every Nth frame")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--average", nargs="+", default=None, metavar="CKPT",
                    help="train nothing: average these recognisers' logits, validate on --traces, save to --out")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rng = seed_all(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    traces = load_traces(data_root(a.data), Path(a.traces) if a.traces else None)
    if a.average:
        return average(a, traces, out)
    if a.rendered and Path(a.rendered).exists():
        traces += load_rendered(Path(a.rendered))
    for extra in map(Path, a.extra_traces):
        more = load_rendered(extra) if any(extra.glob("render_*.npz")) else load_traces(data_root(a.data), extra)
        traces += [tr for tr in more if tr.split == "train" and (tr.source == "ours" or tr.kind == "rendered")]
    train = build_training_set(traces, a.stride, a.rendered_weight)
    print(f"{len(traces)} traces; {len(train['y'])} training windows ({train['y'].mean():.2f} positive), "
          f"built in {time.time() - t0:.0f} s", flush=True)

    model = MotionRecognizerNet(kpmod.FULL_COUNT, WINDOW_STEPS, a.width)
    shape = (1, 3, WINDOW_STEPS, kpmod.FULL_COUNT)
    print(f"params {count_params(model)}, MACs {count_macs(model, shape)}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-3)
    sched = Schedule(a.lr, a.steps, 0, warmup=100)
    history = []
    losses = []
    t_train = time.time()
    for step in range(a.steps):
        model.train()
        for g in opt.param_groups:
            g["lr"] = sched.lr(step)
        i = rng.choice(len(train["y"]), a.batch, p=train["w"])
        x = to_nchw(augment(train["x"][i], train["teacher"][i], rng))
        y = torch.from_numpy(train["y"][i])
        loss = F.binary_cross_entropy_with_logits(model(x)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            res = evaluate(lambda w: predict(model, w), traces)
            row = {"step": step + 1, "seconds": round(time.time() - t_train, 1), "loss": float(np.mean(losses[-a.eval_every:])),
                   "val_auc": res["roc_auc"], "val_negative_clips_open": len(res["negative_clips_open_over_1p5s"])}
            history.append(row)
            print(json.dumps(row), flush=True)
    torch.save({"model": model.state_dict(), "arch": "motion", "width": a.width, "steps_per_window": WINDOW_STEPS,
                "step_s": STEP_S, "args": vars(a)}, out / "last.pt")
    save_curves(history, out, ["loss", "val_auc"], "motion recogniser")
    write_metrics(model, traces, out, {"train_windows": int(len(train["y"])), "steps": a.steps,
                                       "wall_seconds": round(time.time() - t0, 1), "threads": a.threads, "args": vars(a),
                                       "targets": TARGETS, "tools_commit": tools_commit()})


def write_metrics(model, traces: list[Trace], out: Path, run: dict) -> None:
    """Final validation on our traces and the teacher's, written with the run's facts to metrics.json."""
    final = {"ours": evaluate(lambda w: predict(model, w), traces),
             "teacher": evaluate(lambda w: predict(model, w), traces, "teacher")}
    shape = (1, 3, WINDOW_STEPS, kpmod.FULL_COUNT)
    (out / "metrics.json").write_text(json.dumps(
        {**run, "params": count_params(model), "macs": count_macs(model, shape), "val": final}, indent=1))
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "negative_clip_longest_open_s"} for k, v in final.items()}, indent=1))


def average(a, traces: list[Trace], out: Path) -> None:
    """Save and validate the logit average of the ``--average`` checkpoints."""
    from tools.export_tflite import build_net

    ckpt = {"members": [torch.load(p, map_location="cpu") for p in a.average], "arch": "motion-average",
            "sources": a.average, "args": vars(a)}
    torch.save(ckpt, out / "last.pt")
    runs = []
    for p in a.average:
        m = Path(p).parent / "metrics.json"
        t = json.loads(m.read_text()) if m.exists() else {}
        runs.append({"checkpoint": p, **{k: t.get(k) for k in ("train_windows", "steps", "wall_seconds", "threads", "args",
                                                              "targets", "tools_commit")}})
    # the average was trained on its members' labels: one text where they agree, none where a member has no record
    targets = {r["targets"] for r in runs}
    record = {"targets": targets.pop()} if len(targets) == 1 and None not in targets else {}
    write_metrics(build_net("recognizer", ckpt), traces, out,
                  {"members": runs, "wall_seconds": round(sum(r["wall_seconds"] or 0 for r in runs), 1), "args": vars(a),
                   **record, "tools_commit": tools_commit()})


if __name__ == "__main__":
    main()
