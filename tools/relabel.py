"""A second teacher: BlazePose heavy on the frames behind the keypoint cache, and where it agrees.

The labels in ../shared/data/teacher_labels_mediapipe are one model's guesses (MediaPipe Pose
full). This runs BlazePose heavy's landmark model (pose_landmark_heavy.tflite from npm
@mediapipe/pose, sha256-pinned, in ai-edge-litert; MediaPipe itself is not needed) on the
original video frame behind every cached frame, maps its 33 landmarks to our 9 and marks each
keypoint where the two teachers agree: both see it (visibility >= 0.5) and they are within
``--threshold`` x the clip body scale of each other. ``tools.train_keypoints --agreement``
leaves the points where they disagree unsupervised.

The landmark model wants a person crop rotated upright. MediaPipe's detector comes only inside
a packed web bundle, so the crop is placed the way MediaPipe's tracking places it, from the
first teacher's own keypoints: centred on the hips, turned so that hips -> shoulders points up,
2.8 x the hips-to-head distance on a side (1.7 x the keypoints' extent when that is larger, as
head-on, where the torso is foreshortened).

    python -m tools.relabel --data ../shared/data --out runs/relabel        # ~15 min, 2 cores
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

from appliance import keypoints as kpmod
from tools import metrics
from tools.dataset import REPO, data_root, decode_frames, load_cache

CROP = 256
ROI_PER_HIP_TO_HEAD = 2.8
ROI_PER_EXTENT = 1.7
HEAVY_SHA256 = "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe"  # measured 2026-11-24


def roi_from_keypoints(kp_px: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(centre, unit body-up vector, side) in frame pixels from our 9 teacher keypoints, or None."""
    sh = kp_px[[kpmod.LEFT_SHOULDER, kpmod.RIGHT_SHOULDER], :2]
    hips = kp_px[[kpmod.LEFT_HIP, kpmod.RIGHT_HIP], :2]
    hips = hips[np.isfinite(hips).all(axis=1)]
    if not np.isfinite(sh).all() or not len(hips):
        return None
    mid_hip = hips.mean(axis=0)
    head = kp_px[kpmod.HEAD, :2]
    up = sh.mean(axis=0) - mid_hip
    norm = float(np.linalg.norm(up))
    if norm < 1e-3:
        return None
    reach = float(np.linalg.norm(head - mid_hip)) if np.isfinite(head).all() else 1.3 * norm
    side = ROI_PER_HIP_TO_HEAD * max(reach, norm)
    # head-on the torso is foreshortened: then the keypoints' own extent sets the crop
    pts = kp_px[np.isfinite(kp_px[:, 0]), :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    if ROI_PER_EXTENT * float((hi - lo).max()) > side:
        return (lo + hi) / 2, up / norm, ROI_PER_EXTENT * float((hi - lo).max())
    return mid_hip, up / norm, side


def crop_affine(centre: np.ndarray, up: np.ndarray, side: float) -> np.ndarray:
    """2x3 matrix taking crop pixels (u, v) to frame pixels; the crop's up is the body's up."""
    s = side / CROP
    ex = np.array([-up[1], up[0]])      # crop +u in the frame
    ey = -up                            # crop +v (down) in the frame
    m = np.zeros((2, 3))
    m[:, 0], m[:, 1] = s * ex, s * ey
    m[:, 2] = centre - (CROP / 2) * s * (ex + ey)
    return m


def run_heavy(interp, img: Image.Image, m: np.ndarray) -> tuple[np.ndarray, float]:
    """33 landmarks [33, 4] (frame pixels x, y; z; visibility 0..1) and the pose-presence score."""
    crop = img.transform((CROP, CROP), Image.Transform.AFFINE, tuple(m.reshape(-1)), Image.Resampling.BILINEAR)
    x = (np.asarray(crop, np.float32) / 255.0)[None]
    inp = interp.get_input_details()[0]["index"]
    interp.set_tensor(inp, x)
    interp.invoke()
    outs = {tuple(d["shape"]): d["index"] for d in interp.get_output_details()}
    raw = interp.get_tensor(outs[(1, 195)]).reshape(39, 5)[:33]
    flag = float(interp.get_tensor(outs[(1, 1)]).reshape(-1)[0])
    uv1 = np.c_[raw[:, :2], np.ones(33)]
    xy = uv1 @ m.T
    vis = 1.0 / (1.0 + np.exp(-raw[:, 3]))
    return np.c_[xy, raw[:, 2], vis].astype(np.float32), flag


def _work(args):
    model_path, video, jobs = args
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_path), num_threads=1)
    interp.allocate_tensors()
    by_frame = {fi: (ci, kp) for ci, fi, kp in jobs}
    out = []
    for fi, img in decode_frames(Path(video), set(by_frame)):
        ci, kp_norm = by_frame[fi]
        kp_px = kp_norm.copy()
        kp_px[:, :2] *= (img.width, img.height)
        roi = roi_from_keypoints(kp_px)
        if roi is None:
            continue
        lm, flag = run_heavy(interp, img.convert("RGB"), crop_affine(*roi))
        lm[:, 0] /= img.width
        lm[:, 1] /= img.height
        ours = kpmod.from_mediapipe33(lm[None])[0]
        if flag < 0.5:
            ours[:, 2] = 0.0
        out.append((ci, ours))
    return out


def apply_agreement(cache: dict, agreement) -> int:
    """Unsupervise (visibility 0) the cached teacher points the two teachers disagree on.

    ``agreement`` is this tool's agreement.npz for frames.npz; a merged cache (frames.npz then
    rendered frames, tools.synthetic_cache --merge) starts with the same rows. Returns how many
    points were dropped.
    """
    n = len(agreement["agree"])
    if len(cache["clip"]) < n or not (np.array_equal(cache["clip"][:n], agreement["clip"])
                                      and np.array_equal(cache["frame_index"][:n], agreement["frame_index"])):
        raise ValueError("the agreement file was not made for this cache (rows differ)")
    vis = cache["kp"][:n, :, 2]
    drop = agreement["done"][:, None] & ~agreement["agree"] & (np.nan_to_num(vis) >= metrics.VIS_THRESHOLD)
    vis[drop] = 0.0
    return int(drop.sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--cache", default=str(REPO / "runs" / "cache" / "frames.npz"))
    ap.add_argument("--out", default=str(REPO / "runs" / "relabel"))
    ap.add_argument("--model", default=None, help="pose_landmark_heavy.tflite (else npm pack into a temp dir)")
    ap.add_argument("--threshold", type=float, default=0.25, help="agreement radius, x clip body scale")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit-clips", type=int, default=None, help="debug: only the first N clips")
    a = ap.parse_args(argv)
    root = data_root(a.data)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        if a.model:
            model, info = Path(a.model), {"path": a.model}
        else:
            from tools.evaluate_models import fetch_blazepose

            model, info = fetch_blazepose(Path(tmp), "pose_landmark_heavy.tflite", HEAVY_SHA256)
        if model is None:
            print(f"cannot fetch BlazePose heavy: {info.get('error')}", file=sys.stderr)
            return 2
        sha = hashlib.sha256(model.read_bytes()).hexdigest()
        if sha != HEAVY_SHA256:
            print(f"{model}: sha256 {sha} is not the pinned {HEAVY_SHA256}", file=sys.stderr)
            return 2
        cache = load_cache(Path(a.cache))
        clips = cache["clips"]
        n = len(cache["clip"])
        tasks = []
        for c, meta in enumerate(clips):
            if meta["kind"] == "image":
                continue
            idx = np.flatnonzero(cache["clip"] == c)
            jobs = [(int(i), int(cache["frame_index"][i]), cache["kp_frame"][i]) for i in idx
                    if np.isfinite(cache["kp_frame"][i, :, 0]).any()]
            if jobs:
                tasks.append((model, str(root / meta["file"]), jobs))
        if a.limit_clips:
            tasks = tasks[: a.limit_clips]
        heavy = np.full((n, cache["kp"].shape[1], 3), np.nan, np.float32)
        with Pool(a.workers) as pool:
            for k, res in enumerate(pool.imap_unordered(_work, tasks)):
                for ci, kp in res:
                    heavy[ci] = kp
                if k % 25 == 0:
                    print(f"{k + 1}/{len(tasks)} clips, {time.time() - t0:.0f} s", flush=True)
    done = np.isfinite(heavy[:, :, 0]).any(axis=1)
    sizes = np.array([(clips[c]["width"], clips[c]["height"]) for c in cache["clip"]], np.float32)
    teacher_px = cache["kp_frame"].copy()
    teacher_px[:, :, :2] *= sizes[:, None, :]
    heavy_px = heavy.copy()
    heavy_px[:, :, :2] *= sizes[:, None, :]
    # agreement per point: both see it, within threshold x the clip body scale (teacher's)
    agree = np.ones(heavy.shape[:2], bool)
    dist = np.full(heavy.shape[:2], np.nan, np.float32)
    for c in np.unique(cache["clip"][done]):
        m = (cache["clip"] == c) & done
        t = teacher_px[m].copy()
        t[~(np.nan_to_num(t[..., 2]) >= metrics.VIS_THRESHOLD)] = np.nan
        scale = kpmod.body_scale(t)
        if not np.isfinite(scale) or scale <= 0:
            continue
        d = np.linalg.norm(heavy_px[m, :, :2] - teacher_px[m, :, :2], axis=-1) / scale
        both = (np.nan_to_num(teacher_px[m, :, 2]) >= metrics.VIS_THRESHOLD) & (np.nan_to_num(heavy_px[m, :, 2]) >= metrics.VIS_THRESHOLD)
        dist[m] = d
        agree[m] = both & (np.nan_to_num(d, nan=np.inf) <= a.threshold)
    teacher_sees = np.nan_to_num(teacher_px[..., 2]) >= metrics.VIS_THRESHOLD
    report = {"model": info | {"sha256": sha}, "threshold_body_scale": a.threshold, "frames_relabelled": int(done.sum()),
              "frames_in_cache": n, "seconds": round(time.time() - t0, 1), "splits": {}}
    for split in ("train", "val"):
        for kind in ("pushup", "riyer8", "negative"):
            sel = done & np.array([clips[c]["split"] == split and clips[c]["kind"] == kind for c in cache["clip"]])
            if not sel.any():
                continue
            pts = teacher_sees[sel]
            res = metrics.pck(heavy_px[sel], teacher_px[sel], cache["clip"][sel], a.threshold)
            report["splits"][f"{split}_{kind}"] = {
                "frames": int(sel.sum()),
                "heavy_vs_teacher_pck_body_all": round(res["pck_body_all"], 3),
                "heavy_vs_teacher_pck_body_seven": round(res["pck_body_seven"], 3),
                "heavy_vs_teacher_pck_body_hips": round(res["pck_body_hips"], 3),
                "teacher_points": int(pts.sum()),
                "teacher_points_kept": int((pts & agree[sel]).sum()),
                "kept_share_per_keypoint": dict(zip(kpmod.NAMES, np.round((pts & agree[sel]).sum(0) / np.maximum(pts.sum(0), 1), 3).tolist())),
            }
    np.savez_compressed(out / "agreement.npz", heavy=heavy, agree=agree, dist=dist, done=done, threshold=np.float32(a.threshold),
                        clip=cache["clip"], frame_index=cache["frame_index"])
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
