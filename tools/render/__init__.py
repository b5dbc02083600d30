"""Synthetic push-up footage with exact labels (numpy + Pillow + PyAV only).

    from tools.render import render_clip
    labels = render_clip("run/clip.mp4", scenario="pushups", reps=8, view="side", seed=0)

writes run/clip.mp4 (H.264, yuv420p) and run/clip.npz (keypoints [T,9,3] in the
appliance.keypoints order, visibility, fps, rep_top_times_s, reps, scenario, view).
"""
from .clip import VIEWS, render_clip
from .motion import SCENARIOS

__all__ = ["render_clip", "SCENARIOS", "VIEWS"]
