"""How much closer should the keypoint model look? PCK with a second pass on a person crop.

    python -m tools.crop_sweep --data ../shared/data --every 3

For validation frames of the frame cache (every Nth), decodes the original frame, runs the
shipped keypoint model on the whole letterboxed frame (as the appliance does), then again on a
crop around what it found (``appliance.geometry.person_crop``, with each margin and maximum
zoom tried here), and reports PCK@0.25 (clip body scale) against the teacher for each. A second
pass on the same frame stands in for the appliance's ``[models] track_person``, which takes the
crop from the previous frame at no extra model time.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from appliance.frames import Frame
from appliance.geometry import person_crop
from appliance.models import KeypointModel
from tools import metrics
from tools.dataset import REPO, data_root, decode_frames, keypoint_frames, load_cache


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--cache", default=str(REPO / "runs" / "cache" / "frames.npz"))
    ap.add_argument("--model", default=str(REPO / "models" / "keypoints.tflite"))
    ap.add_argument("--every", type=int, default=3, help="use every Nth validation frame")
    ap.add_argument("--margins", type=float, nargs="+", default=[1.3, 1.6, 2.0])
    ap.add_argument("--max-zooms", type=float, nargs="+", default=[1.5, 2.5])
    a = ap.parse_args(argv)
    root = data_root(a.data)
    cache = load_cache(Path(a.cache))
    clips = cache["clips"]
    rows = keypoint_frames(cache, "val")[:: a.every]
    model = KeypointModel(a.model, num_threads=1, flip_average=True)
    settings = list(itertools.product(a.margins, a.max_zooms))
    preds = {name: {} for name in ["whole frame"] + settings}
    by_clip: dict[int, list[int]] = {}
    for r in rows:
        by_clip.setdefault(int(cache["clip"][r]), []).append(int(r))
    for n, (c, clip_rows) in enumerate(by_clip.items()):
        wanted = {int(cache["frame_index"][r]): r for r in clip_rows}
        for index, image in decode_frames(root / clips[c]["file"], set(wanted)):
            frame = Frame(np.asarray(image.convert("RGB")), "RGB", 0.0, index)
            whole = model.predict(frame)
            preds["whole frame"][wanted[index]] = whole
            for margin, zoom in settings:
                region = person_crop(whole, image.width, image.height, model.input_w, model.input_h, margin, zoom)
                preds[(margin, zoom)][wanted[index]] = whole if region is None else model.predict(frame, region)
        print(f"{n + 1}/{len(by_clip)} {clips[c]['file']}", file=sys.stderr, flush=True)
    done = np.array(sorted(preds["whole frame"]))
    cid = cache["clip"][done]
    sizes = np.array([[clips[c]["width"], clips[c]["height"]] for c in cid], np.float32)
    teacher = cache["kp_frame"][done].copy()
    teacher[..., :2] *= sizes[:, None]
    pushups = np.isin([clips[c]["kind"] for c in cid], ["pushup", "riyer8"])
    print(f"{len(done)} validation frames, PCK@0.25 clip body scale: seven / hips (push-up clips only: seven / hips)")
    for name, p in preds.items():
        px = np.stack([p[r] for r in done])
        px[..., :2] *= sizes[:, None]
        every, push = metrics.pck(px, teacher, cid), metrics.pck(px[pushups], teacher[pushups], cid[pushups])
        label = name if isinstance(name, str) else f"crop margin {name[0]}, max zoom {name[1]}"
        print(f"{label:32s} {every['pck_body_seven']:.3f} / {every['pck_body_hips']:.3f}   "
              f"({push['pck_body_seven']:.3f} / {push['pck_body_hips']:.3f})")


if __name__ == "__main__":
    main()
