"""python -m tools.render.sheet OUT.png [--keypoints]: a contact sheet of rendered frames.

Rows are camera set-ups (side, oblique and front at floor level, then raised cameras);
columns are moments of a push-up clip (getting down, top, bottom, standing up) and the
other scenarios (plank, standing, walking, squats, empty room).
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from .clip import render_clip

ROWS = (("side", 0.1), ("oblique", 0.1), ("front", 0.1), ("oblique", 0.9), ("side", 1.2))
COLUMNS = ("getting down", "top", "bottom", "standing up", "plank", "standing", "walking", "squats", "empty")
_EDGES = ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (2, 7), (4, 8), (7, 8))


def _pick(frames, labels, t):
    i = int(np.clip(round(t * float(labels["fps"])), 0, len(frames) - 1))
    return frames[i], labels["keypoints"][i]


def _tile(frame, kp, draw_kp: bool, size):
    im = Image.fromarray(frame)
    if draw_kp and np.isfinite(kp[:, 0]).any():
        d = ImageDraw.Draw(im)
        w, h = im.size
        for a, b in _EDGES:
            if kp[a, 2] > 0 and kp[b, 2] > 0:
                d.line([(kp[a, 0] * w, kp[a, 1] * h), (kp[b, 0] * w, kp[b, 1] * h)], fill=(0, 255, 0), width=1)
        for x, y, v in kp:
            if np.isfinite(x):
                c = (0, 255, 0) if v > 0 else (255, 0, 0)
                d.ellipse([x * w - 2, y * h - 2, x * w + 2, y * h + 2], outline=c)
    return im.resize(size, Image.BILINEAR)


def build_sheet(draw_kp: bool = False, width: int = 320, height: int = 240, tile=(176, 132), seed: int = 0):
    tiles = []
    for r, (view, cam_h) in enumerate(ROWS):
        row = []
        frames: list = []
        s = seed + 10 * r
        lab = render_clip(None, scenario="pushups", reps=2, view=view, camera_height=cam_h, seed=s, tempo=0.7,
                          width=width, height=height, write_video=False, frames_out=frames)
        tops = lab["rep_top_times_s"]
        bottoms = lab["rep_bottom_times_s"]
        t_end = len(frames) / float(lab["fps"])
        for t in (1.6, tops[0] + 0.04, bottoms[1] + 0.02, t_end - 1.5):
            row.append(_tile(*_pick(frames, lab, t), draw_kp, tile))
        for c, scen in enumerate(("plank", "standing", "walking", "squats", "empty")):
            frames = []
            lab = render_clip(None, scenario=scen, view=view, camera_height=cam_h, seed=s + c + 1, duration=3.0,
                              width=width, height=height, write_video=False, frames_out=frames)
            row.append(_tile(*_pick(frames, lab, 1.3 + 0.3 * c), draw_kp, tile))
        tiles.append(row)
    tw, th = tile
    head = 16
    sheet = Image.new("RGB", (tw * len(COLUMNS), head + th * len(ROWS)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for c, name in enumerate(COLUMNS):
        d.text((c * tw + 4, 2), name, fill=(0, 0, 0))
    for r, row in enumerate(tiles):
        for c, im in enumerate(row):
            sheet.paste(im, (c * tw, head + r * th))
        view, cam_h = ROWS[r]
        label = f"{view}, camera {cam_h:.1f} m"
        d.rectangle([2, head + r * th + 2, 8 + 6 * len(label), head + r * th + 16], fill=(0, 0, 0))
        d.text((4, head + r * th + 4), label, fill=(255, 255, 0))
    return sheet


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.render.sheet", description=__doc__)
    p.add_argument("out")
    p.add_argument("--keypoints", action="store_true", help="draw the label keypoints")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    sheet = build_sheet(a.keypoints, seed=a.seed)
    sheet.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(a.out, optimize=True)
    print(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
