"""How dark may the room get? Count a clip with every frame scaled down, as a dim room gives.

    python -m tools.dark_check CLIP [--gains 1 0.25 0.12 0.06]

Each gain multiplies the pixels (plus a little sensor noise, as a camera at high gain adds)
and runs the shipped pipeline on the result. It prints the mean pixel, the mean keypoint
score and the reps counted, which is where `appliance.app.TOO_DARK` comes from (README,
"What you see at first boot").
"""
from __future__ import annotations

import argparse

import numpy as np

from appliance.app import load_pipeline
from appliance.config import Config
from appliance.frames import Frame
from appliance.sources import VideoFileSource


def count_darkened(clip: str, gain: float, seed: int = 0) -> tuple[float, float, int]:
    """(mean pixel, mean keypoint score, reps) for the clip with every frame scaled by `gain`."""
    rng = np.random.default_rng(seed)
    pipeline = load_pipeline(Config())
    pixels, scores, count = [], [], 0
    with VideoFileSource(clip) as source:
        while (frame := source.read()) is not None:
            image = frame.image.astype(np.float32) * gain + rng.normal(0.0, 2.0, frame.image.shape)
            image = np.clip(image, 0, 255).astype(np.uint8)
            pixels.append(float(image.mean()))
            result = pipeline.process(Frame(image, frame.format, frame.t, frame.index))
            scores.append(float(np.nanmean(result.keypoints[:, 2])))
            count = result.count
    return float(np.mean(pixels)), float(np.mean(scores)), count


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip")
    ap.add_argument("--gains", type=float, nargs="+", default=[1.0, 0.25, 0.12, 0.06])
    a = ap.parse_args(argv)
    for gain in a.gains:
        pixel, score, reps = count_darkened(a.clip, gain)
        print(f"gain {gain:5.2f}: mean pixel {pixel:6.1f}, mean keypoint score {score:.2f}, reps {reps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
