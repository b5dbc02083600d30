"""Build the frame cache used to train and validate the keypoint and recognition models.

Reads the shared data folder by path (``--data``, else ``$PUSHUP_DATA``, else ``../shared/data``
relative to the repository), decodes every clip with PyAV (rotation is honoured; the data README
says it is already applied), keeps every Nth frame, letterboxes it into the model input
(``appliance.geometry.Letterbox``) and stores frames, teacher keypoints (``from_mediapipe33``
order) and recognition labels in one ``.npz`` under ``runs/`` (never in the repository).

Train/validation split is by source footage: clips are grouped with a union-find over their
source repository and every other repository named in their MANIFEST ``notes`` ("same footage
as ..."), and whole groups go to one side. The riyer8 set carries no person metadata, and the
same people and rooms recur across its clip numbers and its correct/ and wrong/ folders (found by
comparing frames), so no split of it is by footage: all of it goes to training, and so does any
group holding a clip whose footage riyer8 also has (``SAME_FOOTAGE_AS_RIYER8``, found with
``python -m tools.footage_twins``).

    python -m tools.dataset --data ../shared/data --out runs/cache/frames.npz
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from dataclasses import dataclass, asdict
from pathlib import Path

import numpy as np
from PIL import Image

from appliance import keypoints as kpmod
from appliance.geometry import Letterbox

REPO = Path(__file__).resolve().parents[1]
CACHE_W, CACHE_H = 192, 144  # the keypoint model's input; the recognizer resamples from it
VIS_THRESHOLD = 0.5
RIYER8_BLOCK = 20
VAL_FRACTION = 0.22
SPLIT_SEED = 7
# A CrossFit stock video that riyer8 cut into clips too (correct/correct49.mp4): frame thumbnails
# correlate at r 0.98, the next closest pair of a validation clip and a training clip at 0.85.
SAME_FOOTAGE_AS_RIYER8 = ("pushup/APKA-llc__exercise-tracking__videos_pushup_good.mp4",)


def data_root(arg: str | None = None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("PUSHUP_DATA")
    if env:
        return Path(env)
    return (REPO / ".." / "shared" / "data").resolve()


@dataclass
class Clip:
    file: str
    category: str
    source_repo: str
    notes: str
    reps: str
    confidence: str
    view: str
    resolution: str = ""  # MANIFEST "WxH" of the clip as stored
    kind: str = ""  # pushup | riyer8 | negative | image
    group: str = ""
    split: str = ""
    ambiguous: bool = False
    teacher: str = ""


def read_manifest(root: Path) -> list[Clip]:
    clips = []
    with open(root / "MANIFEST.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            c = Clip(
                file=row["file"], category=row["category"], source_repo=row["source_repo"] or "",
                notes=row.get("notes") or "", reps=row.get("reps_counted") or "",
                confidence=row.get("count_confidence") or "", view=row.get("view") or "",
                resolution=row.get("resolution") or "",
            )
            cat = c.category
            if cat.startswith("riyer8"):
                c.kind = "riyer8"
            elif cat.startswith("pushup"):
                c.kind = "pushup"
            elif cat.startswith("negative"):
                c.kind = "negative"
            else:
                c.kind = "image"
            c.ambiguous = is_ambiguous(c.kind, c.notes, c.confidence)
            name = Path(c.file).name
            if c.kind == "riyer8":
                form = Path(c.file).parent.name
                c.teacher = f"teacher_labels_mediapipe/riyer8/{form}__{name}.npz"
            elif c.kind != "image":
                c.teacher = f"teacher_labels_mediapipe/{name}.npz"
            clips.append(c)
    return clips


def keypoint_frames(cache: dict, split: str) -> np.ndarray:
    """Cache indices of one split's video frames whose teacher saw both shoulders."""
    clips = cache["clips"]
    in_split = np.array([clips[c]["split"] == split and clips[c]["kind"] != "image" for c in cache["clip"]])
    has = np.isfinite(cache["kp"][:, 2, 0]) & np.isfinite(cache["kp"][:, 4, 0])
    return np.flatnonzero(in_split & has)


def split_manifest(root: Path) -> list[Clip]:
    """The manifest's clips with their footage groups and train / validation split."""
    clips = read_manifest(root)
    assign_groups(clips)
    assign_split(clips)
    return clips


def assign_groups(clips: list[Clip]) -> None:
    """Union-find over source repository, owners named in notes, riyer8 clip-number blocks.

    The riyer8 blocks no longer decide anything (assign_split keeps riyer8 out of validation);
    they stay so that the group list, and with it the seeded order the other clips are drawn
    in, is the one the shipped models were trained with.
    """
    parent: dict[str, str] = {}

    def find(a):
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    def base_key(c: Clip) -> str:
        if c.kind == "riyer8":
            m = re.search(r"(\d+)", Path(c.file).stem)
            idx = int(m.group(1)) if m else 0
            return f"riyer8:{Path(c.file).parent.name}:{idx // RIYER8_BLOCK}"
        if c.kind == "image":
            return f"image:{Path(c.file).stem}"
        return f"repo:{c.source_repo}"

    owners = {}
    for c in clips:
        if c.kind in ("pushup", "negative") and "/" in c.source_repo:
            owner = c.source_repo.split("/")[0]
            if len(owner) >= 5:
                owners.setdefault(owner.lower(), base_key(c))
    for c in clips:
        key = base_key(c)
        find(key)
        notes = c.notes.lower()
        for owner, okey in owners.items():
            if owner in notes:
                union(key, okey)
    # images that are consecutive frames of one scene share a group
    for c in clips:
        if c.kind == "image" and re.match(r"basketball\d", Path(c.file).stem):
            union(base_key(c), "image:basketball1")
    for c in clips:
        c.group = find(base_key(c))


def assign_split(clips: list[Clip], val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED) -> None:
    groups = sorted({c.group for c in clips})
    rng = np.random.default_rng(seed)
    order = [groups[i] for i in rng.permutation(len(groups))]
    by_group: dict[str, list[Clip]] = {}
    for c in clips:
        by_group.setdefault(c.group, []).append(c)
    val: set[str] = set()
    for kind in ("pushup", "negative", "image"):  # riyer8: training only (module docstring)
        total = sum(1 for c in clips if c.kind == kind)
        target = val_fraction * total
        have = sum(1 for g in val for c in by_group[g] if c.kind == kind)
        for g in order:
            if have >= target:
                break
            if g in val:
                continue
            members = by_group[g]
            n = sum(1 for c in members if c.kind == kind)
            if n == 0:
                continue
            # avoid swallowing a huge group that would overshoot badly
            if have + n > target * 1.6 and have > 0:
                continue
            val.add(g)
            have += n
    val -= {c.group for c in clips if c.file in SAME_FOOTAGE_AS_RIYER8}
    for c in clips:
        c.split = "val" if c.group in val else "train"


def load_teacher(root: Path, clip: Clip) -> tuple[np.ndarray, np.ndarray] | None:
    """Teacher keypoints [T, 9, 3] (frame-normalised x, y, visibility) and raw 33 (or None)."""
    path = root / clip.teacher
    if not clip.teacher or not path.exists():
        return None
    return load_teacher_file(path)


def load_teacher_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One teacher landmark file -> our keypoints [T, 9, 3] and the raw 33 landmarks."""
    d = np.load(path)
    if "landmarks33" in d:
        lm33 = d["landmarks33"].astype(np.float32)
    else:
        lm = d["landmarks"].astype(np.float32)
        idx = d["mediapipe_indices"]
        lm33 = np.full((lm.shape[0], 33, 4), np.nan, np.float32)
        lm33[:, idx] = lm
    return kpmod.from_mediapipe33(lm33), lm33


SMOOTH_S = 0.2        # teacher smoothing window (seconds), centred: labels may look ahead
JUMP_BODY_SCALES = 0.25  # a point this far from its smoothed track is a teacher glitch


def smooth_teacher_track(kp: np.ndarray, fps: float, window_s: float = SMOOTH_S,
                         jump: float = JUMP_BODY_SCALES) -> np.ndarray:
    """Teacher keypoints [T, K, 3] (frame-normalised, visibility) smoothed over time.

    Each keypoint's track is median-filtered over ``window_s`` (centred; offline labels may
    look ahead) within runs of frames where it is seen (visibility >= VIS_THRESHOLD). A point
    further than ``jump`` x the clip's body scale from that median was a one-frame glitch of
    the teacher: it is marked unseen (visibility 0) instead of being trusted or moved.
    """
    from scipy.ndimage import median_filter

    out = np.array(kp, dtype=np.float32, copy=True)
    half = max(1, int(round(window_s * fps / 2)))
    seen = np.isfinite(out[..., :2]).all(-1) & (np.nan_to_num(out[..., 2]) >= VIS_THRESHOLD)
    masked = out.copy()
    masked[~seen] = np.nan
    scale = kpmod.body_scale(masked)
    for k in range(out.shape[1]):
        idx = np.flatnonzero(seen[:, k])
        if len(idx) == 0:
            continue
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        for run in runs:
            if len(run) < 2 * half + 1:
                continue
            track = out[run, k, :2]
            med = median_filter(track, size=(2 * half + 1, 1), mode="nearest")
            if np.isfinite(scale) and scale > 0:
                glitch = np.linalg.norm(track - med, axis=-1) > jump * scale
                out[run[glitch], k, 2] = 0.0
            out[run, k, :2] = med
    return out


def smooth_cached_labels(cache: dict, root: Path) -> int:
    """Replace the training rows' teacher points with smoothed ones (smooth_teacher_track on the
    full-rate teacher track of each clip); validation rows keep the raw teacher, so metrics stay
    comparable. Returns how many points became unseen as glitches."""
    dropped = 0
    for cid, meta in enumerate(cache["clips"]):
        if meta.get("split") != "train" or not meta.get("teacher") or meta.get("kind") == "image":
            continue
        path = root / meta["teacher"]
        rows = np.flatnonzero(cache["clip"] == cid)
        if not path.exists() or not len(rows):
            continue
        kp, _ = load_teacher_file(path)
        smooth = smooth_teacher_track(kp, float(meta.get("fps") or 30.0))
        fi = cache["frame_index"][rows]
        ok = fi < len(smooth)
        rows, fi = rows[ok], fi[ok]
        new = smooth[fi]
        was_seen = np.nan_to_num(cache["kp"][rows, :, 2]) >= VIS_THRESHOLD
        dropped += int((was_seen & (new[..., 2] < VIS_THRESHOLD)).sum())
        lb = Letterbox(int(meta["width"]), int(meta["height"]), CACHE_W, CACHE_H)
        cache["kp_frame"][rows] = new
        cache["kp"][rows, :, :2] = lb.frame_to_input(new[..., :2])
        cache["kp"][rows, :, 2] = new[..., 2]
    return dropped


SET_GAP_S = 2.0  # pushup_labels: a pause between 'down' stretches this short is inside the set


def is_ambiguous(kind: str, notes: str, confidence: str) -> bool:
    """A MANIFEST clip the data's README marks as neither clearly a push-up nor clearly not:
    burpees and the upward-dog flow ("ambiguous", "borderline") among the negatives, wall
    push-ups among the push-ups ("ambiguous for a floor" counter). The one rule, for training
    and for every evaluation."""
    text = f"{notes} {confidence}".lower()
    if kind == "negative":
        return "ambiguous" in text or "borderline" in text
    if kind == "pushup":
        return "ambiguous for a floor" in text
    return False


def pushup_labels(lm33: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame recognition label for a push-up clip: 1 active, 0 set-up/standing, -1 unsure.

    A frame is 'standing' when the torso is near vertical and, where ankles are known, the feet
    are well below the hips. Active = between the first and last non-standing frames of the
    longest stretch with the person down, with a 0.5 s unsure margin at each transition.
    Frames without a teacher are unsure.
    """
    T = lm33.shape[0]
    sh = np.nanmean(lm33[:, [11, 12], :2], axis=1) if T else np.zeros((0, 2))
    hip = np.nanmean(lm33[:, [23, 24], :2], axis=1) if T else np.zeros((0, 2))
    ank = np.nanmean(lm33[:, [27, 28], :2], axis=1) if T else np.zeros((0, 2))
    d = hip - sh
    torso = np.hypot(d[:, 0], d[:, 1])
    vertical = np.abs(d[:, 1]) > 1.3 * np.abs(d[:, 0])
    feet_below = (ank[:, 1] - hip[:, 1]) > 0.5 * torso
    feet_known = np.isfinite(ank[:, 1])
    standing = vertical & np.where(feet_known, feet_below, d[:, 1] > 0)
    valid = np.isfinite(d[:, 0])
    down = valid & ~standing
    labels = np.full(T, -1, np.int8)
    labels[valid & standing] = 0
    if down.any():
        # close gaps of up to SET_GAP_S in 'down': seen head-on or from above, the top of each
        # rep of a set looks like an upright torso, and must not become a negative
        idx = np.flatnonzero(down)
        gap = max(1, int(round(SET_GAP_S * fps)))
        filled = down.copy()
        for a, b in zip(idx[:-1], idx[1:]):
            if 1 < b - a <= gap:
                filled[a:b] = True
        labels[filled] = 1
        # transitions are unsure
        margin = max(1, int(round(0.5 * fps)))
        change = np.flatnonzero(np.diff(filled.astype(np.int8)) != 0)
        for ch in change:
            labels[max(0, ch - margin + 1): ch + margin + 1] = -1
    return labels


def clip_labels(clip, lm33: np.ndarray, kp: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame recognition labels of a MANIFEST clip (1 push-up, 0 not, -1 unsure).

    riyer8's short clips are filmed in position, push-ups from the first frame to the last
    (head-on ones too, whose plank pushup_labels' upright-torso test takes for standing):
    every frame with a person is a push-up. Seen from above, a plank looks like a person
    standing: a top-down clip's 'standing' frames are unsure, not negatives.
    tools.train_recognizer.TARGETS describes these labels in each run's record and the card.
    """
    if clip.kind == "negative":
        return np.zeros(len(kp), np.int8)
    if clip.kind == "riyer8":
        return np.where(np.isfinite(kp[:, kpmod.LEFT_SHOULDER, 0]), 1, -1).astype(np.int8)
    labels = pushup_labels(lm33, fps)
    if clip.view == "top-down":
        labels[labels == 0] = -1
    return labels


def letterbox_image(img: Image.Image, w: int = CACHE_W, h: int = CACHE_H) -> tuple[np.ndarray, Letterbox]:
    lb = Letterbox(img.width, img.height, w, h)
    cw, ch = lb.content_size
    ox, oy = lb.offset
    canvas = np.zeros((h, w, 3), np.uint8)
    canvas[oy:oy + ch, ox:ox + cw] = np.asarray(img.convert("RGB").resize((cw, ch), Image.BILINEAR))
    return canvas, lb


def decode_frames(path: Path, keep: set[int] | None):
    """Yield (index, PIL image) for kept frames, upright (rotation honoured)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            if keep is not None and i not in keep:
                continue
            img = frame.to_image()
            rot = int(getattr(frame, "rotation", 0) or 0) % 360
            if rot:
                # PyAV's rotation is the display-matrix angle (counter-clockwise)
                img = img.rotate(rot, expand=True)
            yield i, img


EVERY = {  # keep every Nth frame: (train, val)
    "pushup": (3, 3),
    "riyer8": (4, 6),
    "negative": (8, 8),
}


def process_clip(args):
    root, clip_dict, every = args
    clip = Clip(**clip_dict)
    path = root / clip.file
    out_frames, out_kp, out_kpf, out_lab, out_idx = [], [], [], [], []
    if clip.kind == "image":
        img = Image.open(path).convert("RGB")
        arr, _ = letterbox_image(img)
        nan = np.full((9, 3), np.nan, np.float32)
        return clip_dict, [arr], [nan], [nan], [0], [0], (img.width, img.height, 0.0, 1)
    teacher = load_teacher(root, clip)
    kp, lm33 = teacher
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or 25)
    T = kp.shape[0]
    labels = clip_labels(clip, lm33, kp, fps)
    keep = set(range(0, T, every))
    size = None
    n = 0
    for i, img in decode_frames(path, keep):
        n += 1
        if i >= T:
            break
        arr, lb = letterbox_image(img)
        size = (img.width, img.height)
        kf = kp[i].copy()
        ki = kf.copy()
        ki[:, :2] = lb.frame_to_input(kf[:, :2])
        out_frames.append(arr)
        out_kp.append(ki)
        out_kpf.append(kf)
        out_lab.append(int(labels[i]))
        out_idx.append(i)
    return clip_dict, out_frames, out_kp, out_kpf, out_lab, out_idx, (size[0] if size else 0, size[1] if size else 0, fps, T)


def build(root: Path, out: Path, workers: int = 2, limit: int | None = None) -> dict:
    clips = split_manifest(root)
    todo = []
    for c in clips:
        if c.kind != "image" and not (root / c.teacher).exists():
            print(f"skip {c.file}: no teacher labels", file=sys.stderr)
            continue
        if not (root / c.file).exists():
            print(f"skip {c.file}: missing", file=sys.stderr)
            continue
        every = 1 if c.kind == "image" else EVERY[c.kind][0 if c.split == "train" else 1]
        todo.append((root, asdict(c), every))
    if limit:
        todo = todo[:limit]
    t0 = time.time()
    frames, kps, kpfs, labels, clip_ids, frame_idx = [], [], [], [], [], []
    table = []
    if workers > 1:
        from multiprocessing import Pool

        with Pool(workers) as pool:
            results = pool.imap(process_clip, todo, chunksize=4)
            results = list(results)
    else:
        results = [process_clip(t) for t in todo]
    for ci, (cd, fr, kp, kpf, lab, idx, meta) in enumerate(results):
        cd = dict(cd)
        cd.update(width=meta[0], height=meta[1], fps=meta[2], frames=meta[3], kept=len(fr))
        table.append(cd)
        frames += fr
        kps += kp
        kpfs += kpf
        labels += lab
        clip_ids += [ci] * len(fr)
        frame_idx += idx
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        frames=np.stack(frames).astype(np.uint8),
        kp=np.stack(kps).astype(np.float32),
        kp_frame=np.stack(kpfs).astype(np.float32),
        label=np.asarray(labels, np.int8),
        clip=np.asarray(clip_ids, np.int32),
        frame_index=np.asarray(frame_idx, np.int32),
        clips=np.asarray(json.dumps(table)),
    )
    summary = summarise(table, np.asarray(labels), np.asarray(clip_ids), np.stack(kps))
    summary["build_seconds"] = round(time.time() - t0, 1)
    summary["cache"] = str(out)
    summary["input"] = [CACHE_H, CACHE_W]
    (out.with_suffix(".json")).write_text(json.dumps(summary, indent=1))
    return summary


def summarise(table, labels, clip_ids, kps) -> dict:
    s = {}
    for split in ("train", "val"):
        cs = [i for i, c in enumerate(table) if c["split"] == split]
        mask = np.isin(clip_ids, cs)
        kp_ok = mask & np.isfinite(kps[:, :, 0]).all(axis=1) if len(kps) else mask
        s[split] = {
            "clips": {k: sum(1 for i in cs if table[i]["kind"] == k) for k in ("pushup", "riyer8", "negative", "image")},
            "groups": len({table[i]["group"] for i in cs}),
            "frames": int(mask.sum()),
            "frames_with_teacher": int((mask & np.isfinite(kps[:, 2, 0])).sum()),
            "frames_all_kp": int(kp_ok.sum()),
            "positives": int((mask & (labels == 1)).sum()),
            "negatives": int((mask & (labels == 0)).sum()),
            "unsure": int((mask & (labels == -1)).sum()),
            "val_clips": [table[i]["file"] for i in cs] if split == "val" else None,
        }
        if split == "train":
            s[split].pop("val_clips")
    return s


def load_cache(path: Path) -> dict:
    """A frame cache, or a packed one (``pack_cache``) with its frames decoded back to pixels."""
    d = np.load(path)
    out = {k: d[k] for k in d.files if k not in ("clips", "frames_webp", "frames_offsets")}
    out["clips"] = json.loads(str(d["clips"]))
    if "frames_webp" in d.files:
        out["frames"] = _decode_packed(d["frames_webp"], d["frames_offsets"])
    return out


def pack_cache(cache: dict, rows: np.ndarray, out: Path, quality: int = 80) -> int:
    """Write the chosen cache rows with WebP-compressed frames (about 2 KB a frame, 20x smaller).

    Made to carry the training set to a GPU machine whose upload is capped (the device tool's
    64 MiB); the labels are stored as they are in ``cache`` (apply an agreement file first).
    Returns the file's size in bytes.
    """
    import io

    blobs = []
    for frame in cache["frames"][rows]:
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, "WEBP", quality=quality, method=4)
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    arrays = {k: v[rows] for k, v in cache.items() if k not in ("frames", "clips")}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, frames_webp=np.concatenate(blobs), frames_offsets=offsets,
             clips=np.array(json.dumps(cache["clips"])), **arrays)
    return out.stat().st_size


def _decode_packed(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    import io
    from concurrent.futures import ThreadPoolExecutor

    def one(i):
        return np.asarray(Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return np.stack(list(pool.map(one, range(len(offsets) - 1))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="shared data folder (default $PUSHUP_DATA or ../shared/data)")
    ap.add_argument("--out", default=str(REPO / "runs" / "cache" / "frames.npz"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--split-only", action="store_true", help="print the split and exit")
    a = ap.parse_args(argv)
    root = data_root(a.data)
    if a.split_only:
        clips = split_manifest(root)
        for c in sorted(clips, key=lambda c: (c.split, c.group)):
            if c.kind != "riyer8":
                print(c.split, c.kind, c.group, c.file, "AMBIG" if c.ambiguous else "", sep="\t")
        for split in ("train", "val"):
            print(split, {k: sum(1 for c in clips if c.split == split and c.kind == k) for k in ("pushup", "riyer8", "negative", "image")})
        return
    s = build(root, Path(a.out), workers=a.workers, limit=a.limit)
    print(json.dumps({k: v for k, v in s.items()}, indent=1)[:4000])


if __name__ == "__main__":
    main()
