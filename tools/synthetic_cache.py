"""Rendered training frames in the same cache format as tools.dataset, and a merge with it.

The renderer's labels are exact (every keypoint, occluded or not, and the push-up phase), so
rendered clips teach the models the appliance's own floor-level views and the project's own
sample person. All rendered clips go to the training side: validation stays real footage.

    python -m tools.synthetic_cache --out runs/cache/synthetic.npz --clips 60
    python -m tools.synthetic_cache --floor --out runs/cache/floor.npz --clips 35
    python -m tools.synthetic_cache --merge runs/cache/frames.npz runs/cache/synthetic.npz --out runs/cache/merged.npz
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tools.dataset import letterbox_image

REPO = Path(__file__).resolve().parents[1]
EVERY = 3  # keep every 3rd rendered frame
UNSURE_S = 0.4  # recognition label margin around the start and end of the push-up phase

VIEWS = ("side", "oblique", "front", "oblique-left", "side-left")
OTHER = ("plank", "standing", "walking", "squats", "empty")


def clip_specs(count: int, seed: int = 100) -> list[dict]:
    """A deterministic mix: 60% push-up clips of every view, tempo and depth, 40% other scenes."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(count):
        size = [(320, 240), (320, 240), (480, 270)][i % 3]
        spec = dict(seed=seed + i, view=VIEWS[i % len(VIEWS)], width=size[0], height=size[1],
                    fps=float(rng.choice([20.0, 25.0, 30.0])),
                    camera_height=float(rng.choice([0.05, 0.1, 0.15, 0.4, 0.9])))
        if i % 5 < 3:
            spec.update(scenario="pushups", reps=int(rng.integers(3, 8)), tempo=float(rng.choice([0.4, 0.7, 1.0, 1.5, 2.2, 3.0])),
                        depth=str(rng.choice(["full", "full", "shallow", "mixed"])), sag=float(rng.choice([0.0, 0.0, 0.1])),
                        pause_top=float(rng.choice([0.0, 0.0, 0.6])), get_up=bool(rng.random() < 0.7))
        else:
            spec.update(scenario=OTHER[i % len(OTHER)], duration=float(rng.uniform(5, 9)))
        specs.append(spec)
    return specs


def floor_specs(count: int, seed: int = 700) -> list[dict]:
    """Hard negatives on the mat (tools.render.motion.FLOOR_FLOWS: cat-cow, sphinx, cobra, child's
    pose and downward dog, sitting, bird-dog), every view, floor-level to tripod cameras."""
    from tools.render.motion import FLOOR_FLOWS

    rng = np.random.default_rng(seed)
    flows = sorted(FLOOR_FLOWS)
    specs = []
    for i in range(count):
        size = [(320, 240), (320, 240), (480, 270)][i % 3]
        specs.append(dict(seed=seed + i, scenario="floor", flow=flows[i % len(flows)], view=VIEWS[(i // len(flows)) % len(VIEWS)],
                          width=size[0], height=size[1], fps=float(rng.choice([20.0, 25.0, 30.0])),
                          camera_height=float(rng.choice([0.05, 0.1, 0.15, 0.4, 0.9])), duration=float(rng.uniform(6, 10))))
    return specs


def pushup_phase_labels(labels: dict) -> np.ndarray:
    """1 while doing push-ups, 0 otherwise, -1 for the uncertain edges of the push-up phase."""
    fps = float(labels["fps"])
    count = len(labels["keypoints"])
    t = np.arange(count) / fps
    out = np.zeros(count, np.int8)
    tops = np.asarray(labels["rep_top_times_s"], np.float64)
    bottoms = np.asarray(labels["rep_bottom_times_s"], np.float64)
    if str(labels["scenario"]) != "pushups" or tops.size == 0:
        return out
    start = (bottoms[0] if bottoms.size else tops[0]) - 0.8
    end = tops[-1] + 0.3
    out[(t >= start) & (t <= end)] = 1
    for edge in (start, end):
        out[np.abs(t - edge) < UNSURE_S] = -1
    return out


def render_cache(out: Path, count: int, floor: bool = False) -> dict:
    from tools.render import render_clip

    frames, kps, kpfs, labels, clip_ids, frame_idx, table = [], [], [], [], [], [], []
    t0 = time.time()
    tmp = out.parent / "synthetic_tmp.mp4"
    for ci, spec in enumerate(floor_specs(count) if floor else clip_specs(count)):
        rendered: list[np.ndarray] = []
        lab = render_clip(tmp, write_video=False, frames_out=rendered, **spec)
        phase = pushup_phase_labels(lab)
        for i in range(0, len(rendered), EVERY):
            arr, box = letterbox_image(Image.fromarray(rendered[i]))
            kf = lab["keypoints"][i].astype(np.float32).copy()
            ki = kf.copy()
            ki[:, :2] = box.frame_to_input(kf[:, :2])
            frames.append(arr)
            kps.append(ki)
            kpfs.append(kf)
            labels.append(int(phase[i]))
            clip_ids.append(ci)
            frame_idx.append(i)
        # kind follows tools.dataset's kinds so the trainers weigh rendered clips like real ones
        name = f"{spec['scenario']}-{spec['flow']}" if floor else spec["scenario"]
        table.append(dict(file=f"synthetic/{ci:03d}_{name}_{spec['view']}", category="synthetic",
                          kind="pushup" if spec["scenario"] == "pushups" else "negative", ambiguous=False, split="train", group=f"synthetic-{ci}", source_repo="project renderer",
                          notes=json.dumps(spec), reps=str(int(lab["reps"])), confidence="exact", view=spec["view"],
                          width=spec["width"], height=spec["height"], fps=spec["fps"], frames=len(rendered),
                          kept=len(range(0, len(rendered), EVERY))))
        print(f"[{ci + 1}/{count}] {table[-1]['file']}: {len(rendered)} frames", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, frames=np.stack(frames), kp=np.stack(kps), kp_frame=np.stack(kpfs), label=np.asarray(labels, np.int8),
             clip=np.asarray(clip_ids, np.int32), frame_index=np.asarray(frame_idx, np.int32), clips=np.asarray(json.dumps(table)))
    return {"clips": count, "frames": len(frames), "seconds": round(time.time() - t0, 1)}


def merge(paths: list[Path], out: Path) -> dict:
    """Concatenate caches; clip ids are renumbered so each keeps its own clip table rows."""
    parts = {k: [] for k in ("frames", "kp", "kp_frame", "label", "clip", "frame_index")}
    table = []
    for path in paths:
        data = np.load(path)
        offset = len(table)
        table += json.loads(str(data["clips"]))
        for key in parts:
            values = data[key]
            parts[key].append(values + offset if key == "clip" else values)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **{k: np.concatenate(v) for k, v in parts.items()}, clips=np.asarray(json.dumps(table)))
    return {"caches": [str(p) for p in paths], "frames": int(sum(len(v) for v in parts["label"])), "clips": len(table)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "runs" / "cache" / "synthetic.npz"))
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--floor", action="store_true",
                    help="render the floor scenario (yoga and other poses on the mat, floor_specs) instead")
    ap.add_argument("--merge", nargs="+", type=Path, help="caches to concatenate into --out instead of rendering")
    args = ap.parse_args(argv)
    summary = merge(args.merge, Path(args.out)) if args.merge else render_cache(Path(args.out), args.clips, args.floor)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
