"""Counting evaluation: our counter vs the seed's and the elbow-angle recipe on teacher traces.

    python -m tools.eval_counting --data ../shared/data --out runs/counting [--plots] [--pipeline]

For every clip in MANIFEST.tsv that has teacher landmarks, builds the project's keypoint trace
(`appliance.keypoints.from_mediapipe33`), runs each counter over it frame by frame
(`appliance.counter.count_trace`, gate open: the counters' own logic must reject non-push-ups)
and reports, per clip and overall:

* push-up clips (hand-counted, `count_confidence` not low): exact-count rate, within-one rate,
  MAE (the mean over clips of |error| / true reps, as in TransRAC and PoseRAC), announce latency
  (median and worst, seconds from the top of a rep to the frame that announced it; tops found
  offline by zero-phase smoothing of the shoulder-above-hands signal, and paired one to one with
  the announcements, in order);
* negative clips: false reps (ambiguous ones -- burpees, upward dog flows marked ambiguous --
  reported apart);
* low-confidence push-up clips apart; riyer8 clips (automatic counts) as a second table;
* a dev / holdout split by source (even / odd source group, duplicated footage kept together),
  so tuning on dev can be checked on holdout.

`--plots` writes per-clip PNGs (signal, thresholds, posture, counted reps, true tops) into
--out/plots; `--pipeline` also runs the real `pushup-counter count VIDEO --json` over the
push-up and negative videos and reports it as a fourth row, "pipeline", in the same tables (and
apart on the models' own train / validation split); when the `pushup-counter` CLI exists, a few traces are also run
through `pushup-counter count-trace TRACE --json` to check it agrees with the in-process count.
Writes --out/results.md, --out/per_clip.tsv and --out/summary.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps

from appliance.counter import COUNTERS, CounterSettings, count_trace
from tools.dataset import is_ambiguous
from appliance.keypoints import (
    LEFT_ELBOW,
    LEFT_SHOULDER,
    LEFT_WRIST,
    RIGHT_ELBOW,
    RIGHT_SHOULDER,
    RIGHT_WRIST,
    from_mediapipe33,
)

# Clips that share footage or a person with another source: keep them in one split group.
SAME_SOURCE = {
    "posemvp": "Djeyrane-Sophie",
    "Tayyab-Abdullah": "Djeyrane-Sophie",
    "omartarek198": "Divyansh3021",
    "mhtruong1031": "ggperroni",
    "Kazutaka101": "APKA-llc",
}
COUNTER_NAMES = ("ours", "seed", "elbow")
PIPELINE = "pipeline"  # `pushup-counter count VIDEO --json`: the shipped int8 models, the gate and our counter
LATENCY_WINDOW_S = 1.5  # an announcement further than this from every top is not timed (reported apart)


@dataclass
class Clip:
    name: str          # file name
    file: str          # MANIFEST path
    kind: str          # pushup | pushup_low | negative | negative_ambiguous | riyer8
    truth: int | None
    confidence: str
    view: str
    group: str
    split: str = "dev"
    notes: str = ""
    video: pathlib.Path | None = None
    label_path: pathlib.Path | None = None
    results: dict = field(default_factory=dict)   # counter name -> dict
    tops: list = field(default_factory=list)


def _int_count(text: str) -> int | None:
    text = text.strip()
    if text.startswith("auto:"):
        vals = [int(v) for v in text[5:].split("/") if v.strip().isdigit()]
        return int(np.median(vals)) if vals else None
    text = text.lstrip("~")
    return int(text) if text.isdigit() else None


def load_manifest(data: pathlib.Path) -> list[Clip]:
    clips = []
    with open(data / "MANIFEST.tsv", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            cat = r["category"]
            base = pathlib.Path(r["file"]).name
            conf = r["count_confidence"].strip()
            if cat in ("pushup", "pushup_synthetic"):
                kind = "pushup_low" if conf.startswith("low") or r["reps_counted"].startswith("~") else "pushup"
                label = data / "teacher_labels_mediapipe" / f"{base}.npz"
            elif cat in ("negative", "negative_synthetic"):
                # the upward-dog flow is "borderline": tools.dataset's one rule, as in training
                kind = "negative_ambiguous" if is_ambiguous("negative", r["notes"], conf) else "negative"
                label = data / "teacher_labels_mediapipe" / f"{base}.npz"
            elif cat.startswith("riyer8"):
                kind = "riyer8"
                sub = pathlib.Path(r["file"]).parent.name
                label = data / "teacher_labels_mediapipe" / "riyer8" / f"{sub}__{base}.npz"
            else:
                continue
            owner = base.split("__")[0]
            group = "riyer8" if kind == "riyer8" else SAME_SOURCE.get(owner, owner)
            truth = 0 if kind.startswith("negative") else _int_count(r["reps_counted"])
            clips.append(Clip(base if kind != "riyer8" else f"{pathlib.Path(r['file']).parent.name}/{base}",
                              r["file"], kind, truth, conf, r["view"], group, notes=r["notes"],
                              video=data / r["file"], label_path=label))
    groups = sorted({c.group for c in clips if c.kind != "riyer8"})
    split = {g: ("dev" if i % 2 == 0 else "holdout") for i, g in enumerate(groups)}
    for i, c in enumerate(clips):
        c.split = split.get(c.group, "dev" if i % 2 == 0 else "holdout")
    return clips


def load_trace(path: pathlib.Path) -> tuple[np.ndarray, float]:
    """The project's [T, 9, 3] keypoint trace and fps from a teacher-landmark file."""
    d = np.load(path)
    if "landmarks33" in d.files:
        lm = d["landmarks33"].astype(np.float32)
    else:
        sub = d["landmarks"].astype(np.float32)
        lm = np.full((sub.shape[0], 33, 4), np.nan, np.float32)
        lm[:, d["mediapipe_indices"]] = sub
    return from_mediapipe33(lm), float(d["fps"])


def true_tops(kp: np.ndarray, fps: float) -> np.ndarray:
    """Frame indices of rep tops, found offline: zero-phase smoothing of the shoulders' height
    above the hands (in clip body-scale units), peaks with a prominence of a real rep."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _true_tops(kp, fps)


def _true_tops(kp: np.ndarray, fps: float) -> np.ndarray:
    sh = np.nanmean(kp[:, [LEFT_SHOULDER, RIGHT_SHOULDER], 1], axis=1)
    wr = np.nanmax(kp[:, [LEFT_WRIST, RIGHT_WRIST], 1], axis=1)
    arm = np.nanmean(np.linalg.norm(kp[:, [LEFT_SHOULDER, RIGHT_SHOULDER], :2]
                                    - kp[:, [LEFT_ELBOW, RIGHT_ELBOW], :2], axis=-1), axis=1)
    sw = np.linalg.norm(kp[:, LEFT_SHOULDER, :2] - kp[:, RIGHT_SHOULDER, :2], axis=-1)
    scale = np.nanmedian(np.fmax(arm, sw))
    s = (wr - sh) / scale
    ok = np.isfinite(s)
    if ok.sum() < 10:
        return np.zeros(0, int)
    s = np.interp(np.arange(len(s)), np.flatnonzero(ok), s[ok])
    b, a = sps.butter(2, min(2.5 / (fps / 2), 0.9))
    sm = sps.filtfilt(b, a, s) if len(s) > 12 else s
    # pad with the lowest level so that a clip ending at (or starting from) the top still has
    # that top found
    padded = np.concatenate([[sm.min()], sm, [sm.min()]])
    peaks, _ = sps.find_peaks(padded, prominence=0.3, distance=max(1, int(0.25 * fps)))
    peaks = np.clip(peaks - 1, 0, len(sm) - 1)
    # the top of a rep = where the push arrives at the top: the first frame after the valley
    # before the peak at which the smoothed signal has covered 90% of the valley-to-peak rise
    # (a peak alone is ill-defined when the person holds the top for a while)
    tops, prev = [], 0
    for p in peaks:
        v = prev + int(np.argmin(sm[prev:p + 1]))
        level = sm[v] + 0.9 * (sm[p] - sm[v])
        tops.append(v + int(np.argmax(sm[v:p + 1] >= level)))
        prev = p
    return np.asarray(tops, dtype=int)


def latencies(rep_frames: list[int], tops: np.ndarray, fps: float, window_s: float = LATENCY_WINDOW_S) -> list[float]:
    """Seconds from each announcement's own top to it (negative = before the top), in time order.

    Announcements and tops are paired one to one at the least total |time apart| (on a line that
    pairing keeps their order), each pair at most ``window_s`` apart; an announcement with no top
    that close (an extra or very late rep) has no latency, and the caller reports it unmatched.
    """
    from scipy.optimize import linear_sum_assignment

    if not len(rep_frames) or not len(tops):
        return []
    d = (np.asarray(rep_frames, float)[:, None] - np.asarray(tops, float)[None, :]) / fps
    n = len(rep_frames)
    far = 1e6
    cost = np.where(np.abs(d) <= window_s, np.abs(d), far)
    unmatched = np.full((n, n), far)
    np.fill_diagonal(unmatched, 2 * window_s)  # unpaired only when no pairing of the others makes room
    rows, cols = linear_sum_assignment(np.hstack([cost, unmatched]))
    pairs = sorted((r, c) for r, c in zip(rows, cols) if c < d.shape[1] and cost[r, c] < far)
    return [float(d[r, c]) for r, c in pairs]


def mean_relative_error(counted, truth) -> float:
    """MAE as in TransRAC and PoseRAC: the mean over clips of |counted - true| / true."""
    counted, truth = np.asarray(counted, float), np.asarray(truth, float)
    return float(np.mean(np.abs(counted - truth) / np.maximum(truth, 1)))


def summarize(clips: list[Clip], name: str) -> dict:
    pos = [c for c in clips if c.kind == "pushup" and name in c.results]
    neg = [c for c in clips if c.kind == "negative" and name in c.results]
    out = {"n_pushup": len(pos), "n_negative": len(neg)}
    if pos:
        err = np.array([c.results[name]["reps"] - c.truth for c in pos])
        truth = np.array([c.truth for c in pos])
        out.update(exact=float(np.mean(err == 0)), within_one=float(np.mean(np.abs(err) <= 1)),
                   mae=mean_relative_error(err + truth, truth),
                   n_exact=int(np.sum(err == 0)), n_within_one=int(np.sum(np.abs(err) <= 1)))
        lats = [x for c in pos for x in c.results[name].get("latency", [])]
        out.update(latency_median=float(np.median(lats)) if lats else math.nan,
                   latency_p90_abs=float(np.percentile(np.abs(lats), 90)) if lats else math.nan,
                   latency_worst=float(np.max(lats)) if lats else math.nan,
                   latency_n=len(lats), announced=int(sum(c.results[name]["reps"] for c in pos)))
    if neg:
        fr = [c.results[name]["reps"] for c in neg]
        out.update(false_reps=int(sum(fr)), neg_clips_with_false=int(sum(1 for x in fr if x)))
    return out


def run_counters(clips: list[Clip], settings: CounterSettings, names=COUNTER_NAMES) -> None:
    for c in clips:
        if c.label_path is None or not c.label_path.exists():
            continue
        kp, fps = load_trace(c.label_path)
        tops = true_tops(kp, fps)
        c.tops = [float(x / fps) for x in tops]
        for n in names:
            r = count_trace(kp, fps, settings, COUNTERS[n])
            c.results[n] = {"reps": r.reps, "rep_times_s": r.rep_times_s,
                            "latency": latencies(r.rep_frames, tops, fps)}


def _fmt(x, pct=False, nd=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.0f}%" if pct else f"{x:.{nd}f}"


def result_names(clips: list[Clip]) -> tuple[str, ...]:
    """The three counters on teacher traces, and the real pipeline beside them when it was run."""
    return COUNTER_NAMES + ((PIPELINE,) if any(PIPELINE in c.results for c in clips) else ())


def overall_table(clips: list[Clip], title: str, names: tuple[str, ...] | None = None) -> list[str]:
    lines = [f"### {title}", "",
             "| counter | push-up clips | exact | within one | MAE | false reps (negative clips with any) "
             "| latency median s | latency p90 abs s | latency worst (latest) s | reps timed (of announced) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n in names or result_names(clips):
        s = summarize(clips, n)
        if not s.get("n_pushup") and not s.get("n_negative"):
            continue
        lines.append(
            f"| {n} | {s.get('n_pushup', 0)} | {_fmt(s.get('exact'), True)} ({s.get('n_exact', 0)}) | "
            f"{_fmt(s.get('within_one'), True)} ({s.get('n_within_one', 0)}) | {_fmt(s.get('mae'))} | "
            f"{s.get('false_reps', '-')} on {s.get('n_negative', 0)} ({s.get('neg_clips_with_false', '-')}) | "
            f"{_fmt(s.get('latency_median'))} | {_fmt(s.get('latency_p90_abs'))} | {_fmt(s.get('latency_worst'))} | "
            f"{s.get('latency_n', 0)} ({s.get('announced', 0)}) |")
    return lines + [""]


def riyer8_table(clips: list[Clip]) -> list[str]:
    lines = ["### riyer8 clips (automatic counts, not hand-checked)", "",
             "| counter | set | clips | exact | within one | MAE | zero counted |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for n in COUNTER_NAMES:
        for sub in ("correct", "wrong"):
            cs = [c for c in clips if c.kind == "riyer8" and c.name.startswith(sub) and n in c.results and c.truth is not None]
            if not cs:
                continue
            err = np.array([c.results[n]["reps"] - c.truth for c in cs])
            tr = np.array([c.truth for c in cs])
            zero = sum(1 for c in cs if c.results[n]["reps"] == 0)
            lines.append(f"| {n} | {sub} | {len(cs)} | {_fmt(np.mean(err == 0), True)} | "
                         f"{_fmt(np.mean(np.abs(err) <= 1), True)} | {_fmt(mean_relative_error(err + tr, tr))} | {zero} |")
    if len(lines) == 4:
        lines = lines[:2] + ["None in this run (`--no-riyer8`, or no riyer8 teacher traces)."]
    return lines + [""]


def per_clip_table(clips: list[Clip], kinds: tuple[str, ...], title: str) -> list[str]:
    names = result_names(clips)
    lines = [f"### {title}", "", "| clip | split | view | true | " + " | ".join(names) + " | ours latency median s |",
             "| --- " * (len(names) + 5) + "|"]
    for c in clips:
        if c.kind not in kinds or not c.results:
            continue
        o = c.results.get("ours", {})
        lat = o.get("latency") or []
        mark = lambda n: (f"**{c.results[n]['reps']}**" if c.results[n]["reps"] != c.truth else str(c.results[n]["reps"])) if n in c.results else "-"
        name = c.name[:60] + (" (ambiguous)" if c.kind == "negative_ambiguous" else "")
        lines.append(f"| {name} | {c.split} | {c.view} | {c.truth} | " + " | ".join(mark(n) for n in names) + " | "
                     f"{_fmt(float(np.median(lat)) if lat else math.nan)} |")
    return lines + [""]


# the three plots in README.md and docs/counting/results.md (small; copied from OUT/plots_small)
DOC_PLOTS = {"side_decline.png": "venkatnarayana24__project-3-2__declined_pushups.mp4",
             "front.png": "Divyansh3021__AI_sports_judge__push_up-3.mp4",
             "negative_upward_dog.png": "vicvaz111__Aris_workout_routine__upward_dog.mp4"}


def plot_clip(c: Clip, settings: CounterSettings, out: pathlib.Path, small: bool = False) -> pathlib.Path | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kp, fps = load_trace(c.label_path)
    r = count_trace(kp, fps, settings, COUNTERS["ours"])
    seed = count_trace(kp, fps, settings, COUNTERS["seed"])
    fig, axes = plt.subplots(2, 1, figsize=(7, 3.6) if small else (11, 5.5), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1.2]}, dpi=80 if small else 90)
    ax = axes[0]
    ax.plot(r.t, r.signal, color="k", lw=1.2, label="shoulders above hands")
    ax.plot(r.t, r.upper, color="tab:green", lw=0.8, ls="--", label="count level")
    ax.plot(r.t, r.lower, color="tab:red", lw=0.8, ls="--", label="descent level")
    for i, tt in enumerate(c.tops):
        ax.axvline(tt, color="tab:blue", lw=0.8, alpha=0.5, label="true top (offline)" if i == 0 else None)
    for i, tt in enumerate(r.rep_times_s):
        j = int(round(tt * fps))
        ax.plot(tt, r.signal[j], "o", color="tab:orange", ms=7, label="counted" if i == 0 else None)
    for i, (tt, why) in enumerate(r.rejected):
        j = min(int(round(tt * fps)), len(r.signal) - 1)
        ax.plot(tt, r.signal[j], "x", color="tab:red", ms=7, label="push not counted" if i == 0 else None)
        ax.annotate(why, (tt, r.signal[j]), fontsize=6, color="tab:red", xytext=(2, -9), textcoords="offset points")
    ax.set_ylabel("arm lengths")
    ax.set_title(f"{c.name[:70]}  true {c.truth}  ours {r.reps}  seed {seed.reps}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", ncol=2)
    ax2 = axes[1]
    ax2.fill_between(r.t, 0, r.posture_ok.astype(float), step="mid", color="tab:green", alpha=0.3, label="posture ok")
    ax2.plot(seed.t, (seed.signal - np.nanmean(seed.signal)) / (np.nanstd(seed.signal) + 1e-9) * 0.25 + 0.5,
             color="gray", lw=0.8, label="seed signal (head height, z)")
    for tt in seed.rep_times_s:
        ax2.axvline(tt, color="gray", lw=0.6, ls=":")
    ax2.set_yticks([])
    ax2.set_xlabel("s")
    ax2.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / (c.name.replace("/", "__") + ".png")
    fig.savefig(path)
    plt.close(fig)
    return path


def _cli() -> list[str] | None:
    exe = shutil.which("pushup-counter")
    if exe is None:
        cand = pathlib.Path(sys.executable).parent / "pushup-counter"
        exe = str(cand) if cand.exists() else None
    return [exe] if exe else None


def check_cli_equivalence(clips: list[Clip], n: int = 3) -> list[str]:
    cli = _cli()
    if cli is None:
        return ["CLI check: `pushup-counter` not installed; skipped."]
    lines = []
    picks = [c for c in clips if c.kind == "pushup" and "ours" in c.results][:n] + \
            [c for c in clips if c.kind == "negative" and "ours" in c.results][:1]
    tmp = pathlib.Path(tempfile.mkdtemp())
    for c in picks:
        kp, fps = load_trace(c.label_path)
        tr = tmp / "trace.npz"
        np.savez(tr, keypoints=kp, fps=np.float32(fps))
        try:
            p = subprocess.run(cli + ["count-trace", str(tr), "--json"], capture_output=True, text=True, timeout=60)
            got = json.loads(p.stdout)
            same = int(got["reps"]) == c.results["ours"]["reps"]
            lines.append(f"CLI check {c.name}: count-trace {got['reps']} vs in-process {c.results['ours']['reps']} "
                         f"{'OK' if same else 'MISMATCH'}")
        except Exception as e:  # report, do not fail the whole evaluation
            lines.append(f"CLI check {c.name}: failed ({type(e).__name__}: {str(e)[:200]})")
    shutil.rmtree(tmp, ignore_errors=True)
    return lines


def run_pipeline(clips: list[Clip], config: pathlib.Path | None = None, timeout_s: float = 600) -> list[str]:
    """Counts each push-up and negative video with the real CLI; the results go beside the counters'
    as PIPELINE. Returns a line for each video it could not count (empty when all went through)."""
    cli = _cli()
    if cli is None:
        return ["Pipeline: `pushup-counter` not installed; skipped."]
    extra = ["--config", str(config)] if config else []
    failed = []
    for c in clips:
        if c.kind not in ("pushup", "negative") or c.video is None or not c.video.exists():
            continue
        try:
            p = subprocess.run(cli + ["count", str(c.video), "--json"] + extra, capture_output=True, text=True, timeout=timeout_s)
            got = json.loads(p.stdout)
            times = got.get("rep_times_s", [])
            fps = float(got.get("fps") or 30.0)
            tops = np.round(np.asarray(c.tops or [], float) * fps)
            c.results[PIPELINE] = {"reps": int(got["reps"]), "rep_times_s": times,
                                   "latency": latencies([round(t * fps) for t in times], tops, fps)}
        except Exception as e:  # report, do not fail the whole evaluation
            failed.append(f"Pipeline failed on {c.name}: {type(e).__name__}: {str(e)[:200]}")
    return failed


def model_split_tables(clips: list[Clip], data: pathlib.Path) -> list[str]:
    """The pipeline on the keypoint and recognition models' own split (tools.dataset), which is not
    the counter's dev / holdout split: footage the models trained on flatters them."""
    from tools.dataset import split_manifest

    model_split = {c.file: c.split for c in split_manifest(data)}
    return (overall_table([c for c in clips if model_split.get(c.file) == "val"],
                          "Pipeline on footage the models were validated on (never trained on)", (PIPELINE,))
            + overall_table([c for c in clips if model_split.get(c.file) == "train"],
                            "Pipeline on footage on the models' training side", (PIPELINE,)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("PUSHUP_DATA", "../shared/data"), type=pathlib.Path)
    ap.add_argument("--out", default="runs/counting", type=pathlib.Path)
    ap.add_argument("--plots", action="store_true", help="write per-clip PNGs into OUT/plots")
    ap.add_argument("--pipeline", action="store_true", help="also run `pushup-counter count VIDEO --json`")
    ap.add_argument("--no-riyer8", action="store_true")
    ap.add_argument("--config", type=pathlib.Path,
                    help="config TOML for the pipeline runs (e.g. [models] dir of candidate models)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a CounterSettings field (repeatable)")
    args = ap.parse_args(argv)

    settings = CounterSettings()
    for kv in args.set:
        k, v = kv.split("=", 1)
        cur = getattr(settings, k)
        setattr(settings, k, type(cur)(v) if not isinstance(cur, bool) else v.lower() in ("1", "true", "yes"))
    clips = load_manifest(args.data)
    if args.no_riyer8:
        clips = [c for c in clips if c.kind != "riyer8"]
    t0 = time.monotonic()
    run_counters(clips, settings)
    failed = run_pipeline(clips, args.config) if args.pipeline else []
    elapsed = time.monotonic() - t0

    command = " ".join(["python -m tools.eval_counting", *(argv if argv is not None else sys.argv[1:])])
    md = ["# Counting results", "",
          f"`{command}` -- {sum(1 for c in clips if c.results)} clips in {elapsed:.0f} s.",
          "",
          "- ours, seed, elbow: the three counters on the MediaPipe teacher's keypoints (`pushup-counter "
          "count-trace`), gate open (no recognition model): each counter's own logic must reject non-push-ups.",
          *(["- pipeline: `pushup-counter count VIDEO --json` on the video itself, with the shipped int8 keypoint "
             "and recognition models, the gate and our counter: what the appliance does."] if args.pipeline else []),
          "- Latency: seconds from the offline top of a rep to the announcing frame (negative = announced just "
          "before the top).", "", *failed, *([""] if failed else [])]
    md += overall_table(clips, "All push-up clips whose count is not of low confidence, and all non-ambiguous negatives")
    # Two rendered clips' counts are automatic ("medium (auto count)"): the same without them.
    md += overall_table([c for c in clips if c.kind != "pushup" or "auto" not in c.confidence],
                        "Hand-counted push-up clips only (automatic counts of rendered clips left out)")
    for sp in ("dev", "holdout"):
        md += overall_table([c for c in clips if c.split == sp], f"{sp} split (by source group)")
    md += riyer8_table(clips)
    md += per_clip_table(clips, ("pushup",), "Push-up clips (bold = wrong)")
    md += per_clip_table(clips, ("pushup_low",), "Low-confidence push-up clips (reported apart)")
    md += per_clip_table([c for c in clips if any(r["reps"] for r in c.results.values())],
                         ("negative", "negative_ambiguous"), "Negative clips with any count (bold = false reps)")
    if args.pipeline:
        md += model_split_tables(clips, args.data)
    md += check_cli_equivalence(clips) + [""]

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text("\n".join(md) + "\n")
    with open(args.out / "per_clip.tsv", "w") as f:
        names = result_names(clips)
        f.write("clip\tkind\tsplit\tview\ttruth\t" + "\t".join(names) + "\tours_rep_times_s\n")
        for c in clips:
            if c.results:
                f.write(f"{c.name}\t{c.kind}\t{c.split}\t{c.view}\t{c.truth}\t"
                        + "\t".join(str(c.results[n]["reps"]) if n in c.results else "-" for n in names)
                        + "\t" + ",".join(f"{x:.2f}" for x in c.results["ours"]["rep_times_s"]) + "\n")
    summary = {n: {sp: summarize([c for c in clips if sp == "all" or c.split == sp], n) for sp in ("all", "dev", "holdout")}
               for n in result_names(clips)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.plots:
        for c in clips:
            if c.kind != "riyer8" and c.results and c.label_path.exists():
                plot_clip(c, settings, args.out / "plots")
        for png, clip_file in DOC_PLOTS.items():
            for c in clips:
                if c.file.endswith(clip_file) and c.label_path.exists():
                    made = plot_clip(c, settings, args.out / "plots_small", small=True)
                    made.rename(made.with_name(png))
    print("\n".join(md[: md.index("### riyer8 clips (automatic counts, not hand-checked)") + 8]))
    print(f"\nwrote {args.out}/results.md, per_clip.tsv, summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
