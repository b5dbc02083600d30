"""The project's own sample media: a rendered person doing push-ups, with exact labels.

numpy + Pillow + PyAV only (no torch, no OpenGL). An articulated body (head, neck, torso,
arms, hands, pelvis, legs, feet; tapered capsules and ellipsoids) is posed by forward
kinematics (planted hands by two-link IK) through a scenario, ray cast / impostor-rasterised
per pixel in numpy with a z-buffer, Lambert + sky shading, screen-space AO, a contact
shadow, a procedural furnished room, vignetting, sensor blur and noise, and written as
H.264 (yuv420p) with PyAV.

    from tools.render import render_clip
    labels = render_clip("run/clip.mp4", scenario="pushups", reps=8, view="side", seed=0)

writes run/clip.mp4 and run/clip.npz:

- keypoints float32 [T, 9, 3]: x, y normalised to the frame (0..1, y down; may leave 0..1
  when a joint is out of the picture), then visibility 1/0 (inside the frame and not hidden
  behind the body by a depth test). Order = appliance.keypoints.NAMES; left/right are the
  person's own; head = centre of the head; hips = hip joints. NaN x, y when nobody is there.
- visibility [T, 9], fps, reps, rep_top_times_s (exact time each rep's push ends with the
  arms re-extended; shallow reps count), rep_bottom_times_s, rep_depths (1 = full depth),
  scenario, view, azimuth_deg, camera_height, seed, width, height.

The npz is also a trace for `pushup-counter count-trace` (keypoints + fps).

Scenarios (motion.SCENARIOS): pushups (getting down and standing up unless get_up=False;
tempo = reps per second while moving, 0.33..3, with per-rep variation and fatigue; depth
full / shallow / mixed / a fraction; pause_top / pause_bottom seconds; sag; knees), plank,
standing, walking, squats, empty. Views: side, oblique, front (+ -left / -right, otherwise
the side is drawn from the seed) or an azimuth in degrees; camera_height in metres (the
appliance sits at 0.05-0.15 m). Everything is deterministic per seed.

CLI: python -m tools.render OUT.mp4 --scenario pushups --reps 8 --view side --seed 0
Sample for `make run`: python -m tools.render.sample OUTDIR  (OUTDIR/sample.mp4 + .npz)
Contact sheet: python -m tools.render.sheet OUT.png [--keypoints]
"""
from .clip import VIEWS, render_clip
from .motion import SCENARIOS

__all__ = ["render_clip", "SCENARIOS", "VIEWS"]
