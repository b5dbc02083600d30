"""Keypoint traces with per-frame push-up labels: what the recogniser is trained and judged on.

Two traces per clip when available: the MediaPipe teacher's (``../shared/data``) and our own
int8 keypoint model's, as the appliance sees it (``pushup-counter count CLIP --keypoints``,
collected by ``python -m tools.pose_traces collect``). Labels and the train/validation split
come from tools.dataset (split by source footage).

Rendered clips (tools.render, the mix of tools.synthetic_cache.clip_specs) add the views and
scenes the real footage has few of -- head-on push-ups, floor-level cameras, a static plank --
with exact labels: ``collect-rendered`` renders them and runs the same CLI on each. They only
ever go to the training side.

    python -m tools.pose_traces collect --data ../shared/data --out runs/traces   # ~8 min, 2 cores
    python -m tools.pose_traces collect --data ../shared/data --out runs/traces_cand --config cand.toml --kinds pushup,negative
    python -m tools.pose_traces collect-rendered --clips 60 --out runs/traces_rendered   # ~5 min
    python -m tools.pose_traces collect-rendered --floor --clips 36 --seed 700 --out runs/traces_floor
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.dataset import REPO, clip_labels, data_root, load_teacher, read_manifest, split_manifest


@dataclass
class Trace:
    clip: str  # MANIFEST file
    kind: str  # pushup | riyer8 | negative
    split: str  # train | val
    source: str  # teacher | ours
    keypoints: np.ndarray  # [T, 9, 3] frame-normalised
    fps: float
    aspect: float  # frame width / height
    labels: np.ndarray  # [T] 1 push-up, 0 not, -1 unsure
    recorded_prob: np.ndarray | None = None  # P(push-up) of the recogniser shipped when the trace was collected

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self.keypoints)) / self.fps


def trace_name(clip_file: str) -> str:
    """runs/traces file stem for a MANIFEST path (riyer8 clips share names across forms)."""
    p = Path(clip_file)
    return f"{p.parent.name}__{p.stem}" if "riyer8" in clip_file else p.stem


def frame_aspect(resolution: str) -> float:
    try:
        w, h = (int(v) for v in resolution.lower().split("x"))
        return w / h
    except ValueError:
        return 16 / 9


def load_traces(root: Path, ours_dir: Path | None, kinds=("pushup", "riyer8", "negative")) -> list[Trace]:
    clips = split_manifest(root)
    traces = []
    for c in clips:
        if c.kind not in kinds or c.ambiguous:
            continue
        teacher = load_teacher(root, c)
        if teacher is None:
            continue
        kp, lm33 = teacher
        fps = float(np.load(root / c.teacher)["fps"])
        labels = clip_labels(c, lm33, kp, fps)
        aspect = frame_aspect(c.resolution)
        traces.append(Trace(c.file, c.kind, c.split, "teacher", kp, fps, aspect, labels))
        ours = ours_dir / f"{trace_name(c.file)}.npz" if ours_dir else None
        if ours is not None and ours.exists():
            d = np.load(ours)
            okp = d["keypoints"].astype(np.float32)
            n = min(len(okp), len(labels))
            prob = d["pushup_prob"].astype(np.float32)[:n] if "pushup_prob" in d.files else None
            traces.append(Trace(c.file, c.kind, c.split, "ours", okp[:n], float(d["fps"]), aspect, labels[:n], prob))
    return traces


def load_rendered(folder: Path) -> list[Trace]:
    """Rendered clips: exact keypoints as the 'teacher', our model's keypoints as 'ours'."""
    from tools.synthetic_cache import pushup_phase_labels

    traces = []
    for ours in sorted(folder.glob("render_*.npz")):
        labels_path = folder / "videos" / ours.name
        if not labels_path.exists():
            continue
        lab = dict(np.load(labels_path, allow_pickle=True))
        y = pushup_phase_labels(lab)
        d = np.load(ours)
        okp = d["keypoints"].astype(np.float32)
        n = min(len(okp), len(y))
        aspect = float(lab["width"]) / float(lab["height"]) if "width" in lab else 4 / 3
        name = f"rendered/{ours.stem}"
        exact = lab["keypoints"].astype(np.float32)
        traces.append(Trace(name, "rendered", "train", "teacher", exact, float(lab["fps"]), aspect, y))
        traces.append(Trace(name, "rendered", "train", "ours", okp[:n], float(d["fps"]), aspect, y[:n]))
    return traces


def _run_cli(jobs: list[tuple[Path, Path]], workers: int, config: str | None = None) -> None:
    """``pushup-counter count VIDEO --keypoints OUT [--config FILE]`` for each (video, out) not yet done."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(job):
        video, dest = job
        if dest.exists():
            return
        cmd = [sys.executable, "-m", "appliance", "count", str(video), "--keypoints", str(dest)]
        if config:
            cmd += ["--config", str(config)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        if p.returncode != 0:
            print(f"{video}: {p.stderr.strip().splitlines()[-1:]}", flush=True)

    with ThreadPoolExecutor(workers) as pool:
        for i, _ in enumerate(pool.map(one, jobs)):
            if i % 50 == 0:
                print(f"{i}/{len(jobs)}", flush=True)


def collect(root: Path, out: Path, workers: int = 2, config: str | None = None,
            kinds: tuple[str, ...] = ("pushup", "riyer8", "negative")) -> None:
    """Run the real CLI (the shipped models, or the config's) on every clip; keep its keypoints."""
    out.mkdir(parents=True, exist_ok=True)
    clips = [c for c in read_manifest(root) if c.kind in kinds]
    _run_cli([(root / c.file, out / f"{trace_name(c.file)}.npz") for c in clips], workers, config)


def collect_rendered(out: Path, count: int, seed: int, workers: int = 2, floor: bool = False,
                     config: str | None = None) -> None:
    from tools.render import render_clip
    from tools.synthetic_cache import clip_specs, floor_specs

    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, spec in enumerate(floor_specs(count, seed) if floor else clip_specs(count, seed)):
        video = videos / f"render_{i:03d}.mp4"
        if not video.exists():
            render_clip(video, **spec)  # writes video and its labels (.npz, with width and height)
        jobs.append((video, out / f"render_{i:03d}.npz"))
    _run_cli(jobs, workers, config)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["collect", "collect-rendered"])
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=None, help="default runs/traces, or runs/traces_rendered")
    ap.add_argument("--clips", type=int, default=60, help="collect-rendered: how many clips")
    ap.add_argument("--seed", type=int, default=500, help="collect-rendered: first clip seed (the frame cache uses 100)")
    ap.add_argument("--floor", action="store_true",
                    help="collect-rendered: only hard negatives on the mat (yoga flows, lying, sitting)")
    ap.add_argument("--config", default=None,
                    help="appliance config for the CLI, e.g. [models] dir = a candidate model folder, or "
                         "[models] flip_average = false for one-pass keypoints")
    ap.add_argument("--kinds", default="pushup,riyer8,negative",
                    help="collect: which MANIFEST kinds (pushup,negative is enough for tools.eval_traces)")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    if a.command == "collect":
        collect(data_root(a.data), Path(a.out or REPO / "runs" / "traces"), a.workers, a.config, tuple(a.kinds.split(",")))
    else:
        collect_rendered(Path(a.out or REPO / "runs" / "traces_rendered"), a.clips, a.seed, a.workers, a.floor, a.config)


if __name__ == "__main__":
    main()
