"""Validation clips whose footage may also be in training, found by comparing frames.

The split (tools.dataset) groups clips by the repositories named in MANIFEST.tsv, but one piece
of stock footage can sit in two datasets under different names. For every validation clip this
prints the most similar training clip: small grey thumbnails of the frames at 10, 50 and 90 % of
each clip, compared by Pearson correlation (the best of the 3 x 3 pairs). A pair over about 0.95
has been the same footage every time it was looked at; different footage in a similar room
stays under 0.9. Look at the frames of each pair before adding it to SAME_FOOTAGE_AS_RIYER8.

    python -m tools.footage_twins --data ../shared/data [--top 15]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np

from tools.dataset import data_root, split_manifest

THUMB_SIZE = (48, 27)
POSITIONS = (0.1, 0.5, 0.9)


def thumbnails(frames: list) -> np.ndarray:
    """[len(frames), 48 * 27] grey thumbnails, each scaled to zero mean and unit deviation."""
    out = []
    for image in frames:
        a = np.asarray(image.convert("L").resize(THUMB_SIZE), np.float32).ravel()
        out.append((a - a.mean()) / (a.std() + 1e-6))
    return np.stack(out)


def clip_frames(path: Path) -> list:
    """The frames at POSITIONS of the clip (PIL images): one pass to count, one to pick."""
    with av.open(str(path)) as container:
        count = sum(1 for _ in container.decode(video=0))
    wanted = [min(count - 1, int(p * count)) for p in POSITIONS]
    picked = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                picked[i] = frame.to_image()
            if i >= wanted[-1]:
                break
    return [picked[i] for i in wanted]


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The best correlation between any thumbnail of ``a`` and any of ``b``."""
    return float((a @ b.T).max() / a.shape[1])


def closest_pairs(val: dict[str, np.ndarray], train: dict[str, np.ndarray]) -> list[tuple[float, str, str]]:
    """(r, validation clip, most similar training clip), most similar first."""
    pairs = []
    for name, thumbs in val.items():
        best = max(train, key=lambda other: similarity(thumbs, train[other]))
        pairs.append((similarity(thumbs, train[best]), name, best))
    return sorted(pairs, reverse=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="shared data folder (default $PUSHUP_DATA or ../shared/data)")
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args(argv)
    root = data_root(a.data)
    clips = [c for c in split_manifest(root) if c.kind != "image" and (root / c.file).exists()]
    thumbs = {c.file: thumbnails(clip_frames(root / c.file)) for c in clips}
    val = {c.file: thumbs[c.file] for c in clips if c.split == "val"}
    train = {c.file: thumbs[c.file] for c in clips if c.split == "train"}
    for r, name, other in closest_pairs(val, train)[: a.top]:
        print(f"{r:.3f}\tval {name}\ttrain {other}")


if __name__ == "__main__":
    main()
