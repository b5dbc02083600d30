"""python -m tools.render OUT.mp4 --scenario pushups --reps 8 --view side --tempo 1.0 --seed 0"""
from __future__ import annotations

import argparse
import time

from .clip import VIEWS, render_clip
from .motion import SCENARIOS


def _depth(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__)
    p.add_argument("out", help="output .mp4 (labels go next to it as .npz)")
    p.add_argument("--scenario", default="pushups", choices=SCENARIOS)
    p.add_argument("--reps", type=int, default=8)
    p.add_argument("--view", default="side", help=f"one of {sorted(VIEWS)} or an azimuth in degrees")
    p.add_argument("--tempo", type=float, default=1.0, help="reps per second while moving (0.33 slow .. 3 fast)")
    p.add_argument("--depth", type=_depth, default="full", help="full, shallow, mixed or a fraction")
    p.add_argument("--pause-top", type=float, default=0.0, help="seconds held at the top of each rep")
    p.add_argument("--pause-bottom", type=float, default=0.0, help="seconds held at the bottom of each rep")
    p.add_argument("--no-get-up", action="store_true", help="start and end in the plank (no getting down/up)")
    p.add_argument("--duration", type=float, default=None, help="seconds, for non push-up scenarios (default 10)")
    p.add_argument("--knees", action="store_true", help="knee push-ups")
    p.add_argument("--rest-after", type=int, default=0, metavar="N",
                   help="after N reps drop to the knees for --rest seconds, then carry on")
    p.add_argument("--rest", type=float, default=3.0, help="seconds of the mid-set rest")
    p.add_argument("--sag", type=float, default=0.0, help="extra hip sag in radians")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--camera-height", type=float, default=0.1, help="metres above the floor")
    p.add_argument("--zoom", type=float, default=None, help=">1 puts the camera further away")
    p.add_argument("--noise", type=float, default=None, help="sensor noise sigma (8-bit units)")
    p.add_argument("--motion-blur", type=int, default=0, metavar="N",
                   help="average N sub-frame renders over half the frame interval (N times slower)")
    p.add_argument("--crf", type=int, default=20)
    return p


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    labels = render_clip(a.out, scenario=a.scenario, reps=a.reps, view=a.view, tempo=a.tempo, seed=a.seed,
                         width=a.width, height=a.height, fps=a.fps, camera_height=a.camera_height, depth=a.depth,
                         pause_top=a.pause_top, pause_bottom=a.pause_bottom, get_up=not a.no_get_up,
                         duration=a.duration, sag=a.sag, zoom=a.zoom, noise=a.noise, crf=a.crf,
                         motion_blur=a.motion_blur, knees=a.knees, rest_after=a.rest_after, rest_s=a.rest)
    dt = time.perf_counter() - t0
    frames = len(labels["keypoints"])
    print(f"{a.out}: {frames} frames ({frames / a.fps:.1f} s), reps={int(labels['reps'])}, "
          f"tops={[round(float(x), 2) for x in labels['rep_top_times_s']]}, rendered in {dt:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
