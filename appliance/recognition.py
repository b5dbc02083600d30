"""The recognition stage's input: the last few seconds of keypoints as one normalised window.

"Is this person doing push-ups right now?" is a question about movement over seconds (a plank
looks like the top of a push-up in any one frame), so the recogniser reads a short keypoint
history rather than a picture. It also means it sees exactly what the counter sees, and runs
in well under a millisecond. The same code builds the windows for training (tools/) and at
run time, so the two cannot drift apart.

Window: ``steps`` samples ``step_s`` apart, ending at the newest frame; each sample is the
newest frame at or before its time (sample and hold), so the frame rate does not matter.
Samples from before the history began are empty. Normalisation, per window: coordinates in
frame-height units (x times the frame's aspect ratio), centred on the median shoulder midpoint,
divided by the window's body scale (appliance.keypoints.body_scale), clipped to +-CLIP.
Channel 2 is 1 for a keypoint seen with score >= ``min_score`` and 0 otherwise (its x, y are
then 0), so teacher visibilities and our heatmap scores mean the same to the model.
"""
from __future__ import annotations

import warnings
from collections import deque

import numpy as np

from appliance import keypoints as kp

WINDOW_STEPS = 30
STEP_S = 0.1
MIN_SCORE = 0.3
CLIP = 4.0
NORMALISATION = "shoulder-centred body-scale v1"  # bump when normalise_window changes
MIN_SCALE = 0.02  # frame heights: a person smaller than this is noise
MAX_GAP_S = 1.0  # no frame for longer (camera restarted): the old history is stale


def normalise_window(points: np.ndarray, aspect: float, min_score: float = MIN_SCORE) -> np.ndarray:
    """[T, K, 3] frame-normalised keypoints (NaN allowed) -> [T, K, 3] float32 model input."""
    pts = np.array(points, dtype=np.float32, copy=True)
    seen = np.isfinite(pts).all(axis=-1) & (np.nan_to_num(pts[..., 2]) >= min_score)
    xy = pts[..., :2] * np.array([aspect, 1.0], np.float32)
    xy[~seen] = np.nan
    out = np.zeros(pts.shape, np.float32)
    if not seen.any():
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames and columns
        shoulders = np.nanmean(xy[:, [kp.LEFT_SHOULDER, kp.RIGHT_SHOULDER]], axis=1)
        centre = np.nanmedian(shoulders, axis=0)
        if not np.isfinite(centre).all():
            centre = np.nanmedian(xy.reshape(-1, 2), axis=0)
        scale = kp.body_scale(np.concatenate([xy, seen[..., None].astype(np.float32)], axis=-1))
    if not np.isfinite(scale) or scale < MIN_SCALE:
        scale = max(MIN_SCALE, float(np.nanmax(xy[..., 1]) - np.nanmin(xy[..., 1])) / 3.0)
    out[..., :2] = np.clip((xy - centre) / scale, -CLIP, CLIP)
    out[..., :2][~seen] = 0.0
    out[..., 2] = seen
    return out


def mirror_window(windows: np.ndarray) -> np.ndarray:
    """Normalised windows [..., T, K, 3] as a mirror image would give them: x negated (about the
    shoulder centre) and left and right swapped. A push-up is a push-up in the mirror, so the
    recogniser is trained on both and the appliance averages its answer on both."""
    count = windows.shape[-2]
    mirrored = windows[..., list(kp.FLIP_PERMUTATION[:count]), :].copy()
    mirrored[..., 0] *= -1.0
    return mirrored


def sample_times(t_end: float, steps: int = WINDOW_STEPS, step_s: float = STEP_S) -> np.ndarray:
    return t_end - step_s * np.arange(steps - 1, -1, -1, dtype=np.float64)


def hold_indices(frame_times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the newest frame at or before each target time; -1 before the first frame."""
    return np.searchsorted(frame_times, targets + 1e-6, side="right") - 1


def window_at(frame_times: np.ndarray, points: np.ndarray, t_end: float, aspect: float,
              steps: int = WINDOW_STEPS, step_s: float = STEP_S) -> np.ndarray:
    """The model input for the moment ``t_end`` of a whole trace (training, evaluation)."""
    idx = hold_indices(frame_times, sample_times(t_end, steps, step_s))
    sampled = np.full((steps,) + points.shape[1:], np.nan, np.float32)
    sampled[idx >= 0] = points[idx[idx >= 0]]
    return normalise_window(sampled, aspect)


class PoseHistory:
    """The streaming side: remembers enough frames to build the window for the newest one."""

    def __init__(self, steps: int = WINDOW_STEPS, step_s: float = STEP_S):
        self.steps = steps
        self.step_s = step_s
        self._frames: deque[tuple[float, np.ndarray]] = deque()

    def reset(self) -> None:
        self._frames.clear()

    def add(self, t: float, points: np.ndarray) -> bool:
        """Remember a frame; True if the history started over with it (a stall or a new source)."""
        restarted = bool(self._frames) and not 0.0 <= t - self._frames[-1][0] <= MAX_GAP_S
        if restarted:
            self.reset()  # the clock went backwards (a new source) or the camera stalled
        self._frames.append((float(t), np.asarray(points, np.float32)))
        horizon = t - self.steps * self.step_s - 1.0
        while len(self._frames) > 1 and self._frames[1][0] <= horizon:
            self._frames.popleft()
        return restarted

    def window(self, aspect: float) -> np.ndarray:
        if not self._frames:
            raise ValueError("no frames yet")
        times = np.array([f[0] for f in self._frames])
        points = np.stack([f[1] for f in self._frames])
        return window_at(times, points, times[-1], aspect, self.steps, self.step_s)
