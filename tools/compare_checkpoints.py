"""Float PCK of keypoint checkpoints on every validation frame, side by side.

For A/B runs before anything is exported: the same frames, the same teacher (the cache's
MediaPipe labels) and the same metric as tools.evaluate_models.

    python -m tools.compare_checkpoints runs/kp_e/best.pt runs/kp_f_agree/best.pt
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from tools.dataset import REPO, keypoint_frames, load_cache
from tools.nets import KeypointNet
from tools.train_keypoints import evaluate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--cache", default=str(REPO / "runs" / "cache" / "frames.npz"))
    ap.add_argument("--width", type=float, default=0.75)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cache = load_cache(Path(a.cache))
    idx = keypoint_frames(cache, "val")
    for ckpt in a.checkpoints:
        model = KeypointNet(width=a.width)
        model.load_state_dict(torch.load(ckpt, map_location="cpu")["model"])
        res = evaluate(model.to(memory_format=torch.channels_last), cache, idx)
        print(json.dumps({"checkpoint": ckpt, "val_frames": len(idx)}
                         | {k: round(v, 4) for k, v in res.items() if k.startswith("pck_body")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
