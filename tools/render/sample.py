"""python -m tools.render.sample OUTDIR: the demo clip OUTDIR/sample.mp4 (+ .npz) used by `make run`.

10 push-ups seen from an oblique, floor-level camera (10 cm), about 20 s at 320x240, 25 fps,
including getting into position and standing up.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .clip import render_clip

SAMPLE = dict(scenario="pushups", reps=10, view="oblique", tempo=0.85, seed=5, width=320, height=240, fps=25.0, zoom=1.15,
              camera_height=0.1)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m tools.render.sample OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0]) / "sample.mp4"
    t0 = time.perf_counter()
    labels = render_clip(out, **SAMPLE)
    n = len(labels["keypoints"])
    print(f"{out}: {n} frames, {n / SAMPLE['fps']:.1f} s, {int(labels['reps'])} reps, "
          f"rendered in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
