"""The one place that knows the keypoint order and the geometry built on it.

Order, everywhere in the project (models, traces, labels, counters):
0 left wrist, 1 left elbow, 2 left shoulder, 3 head, 4 right shoulder, 5 right elbow,
6 right wrist (the seed's seven), then 7 left hip, 8 right hip.
Left and right are the person's own. A keypoint array is float32 [..., K, 3] holding
x, y normalised to the frame (0..1, y down) and a score in 0..1; K is 7 or 9.
"""
from __future__ import annotations

import warnings

import numpy as np

NAMES: tuple[str, ...] = (
    "left_wrist",
    "left_elbow",
    "left_shoulder",
    "head",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_hip",
    "right_hip",
)
SEED_COUNT = 7
FULL_COUNT = 9

LEFT_WRIST, LEFT_ELBOW, LEFT_SHOULDER, HEAD, RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST, LEFT_HIP, RIGHT_HIP = range(9)

# Index of each keypoint's mirror image, for horizontal-flip augmentation.
FLIP_PERMUTATION: tuple[int, ...] = (6, 5, 4, 3, 2, 1, 0, 8, 7)

# MediaPipe Pose's 33-landmark indices for each of our keypoints; the head uses the nose
# (0) and falls back to the mean of visible eyes and ears (2, 5, 7, 8).
MEDIAPIPE33: tuple[int, ...] = (15, 13, 11, 0, 12, 14, 16, 23, 24)
MEDIAPIPE_HEAD_FALLBACK: tuple[int, ...] = (2, 5, 7, 8)


def names(count: int) -> tuple[str, ...]:
    """Names for a K-keypoint array, refusing any K but 7 or 9."""
    if count not in (SEED_COUNT, FULL_COUNT):
        raise ValueError(f"keypoint count must be {SEED_COUNT} or {FULL_COUNT}, got {count}")
    return NAMES[:count]


def flip_horizontal(keypoints: np.ndarray) -> np.ndarray:
    """Mirror keypoints left/right: x -> 1 - x and swap the person's left and right."""
    count = keypoints.shape[-2]
    names(count)
    flipped = keypoints[..., list(FLIP_PERMUTATION[:count]), :].copy()
    flipped[..., 0] = 1.0 - flipped[..., 0]
    return flipped


def unmirror_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """Heatmaps [..., h, w, K] computed on a mirrored image, brought back to the original: flip
    the columns and swap the person's left and right channels."""
    count = heatmaps.shape[-1]
    names(count)
    return heatmaps[..., ::-1, :][..., list(FLIP_PERMUTATION[:count])]


def average_with_mirror(heatmaps: np.ndarray, mirrored_heatmaps: np.ndarray) -> np.ndarray:
    """Test-time flip: the heatmaps of a frame averaged with those of its mirror image."""
    return 0.5 * (heatmaps + unmirror_heatmaps(mirrored_heatmaps))


def from_mediapipe33(landmarks33: np.ndarray, count: int = FULL_COUNT) -> np.ndarray:
    """Map MediaPipe [T, 33, 4] (x, y, z, visibility) landmarks to our [T, K, 3] order.

    NaN rows (nobody found) stay NaN. The head is the nose unless the nose is missing,
    then the mean of the eyes and ears that are present.
    """
    lm = np.asarray(landmarks33, dtype=np.float32)
    names(count)
    out = lm[:, list(MEDIAPIPE33[:count])][:, :, [0, 1, 3]].copy()
    fallback = lm[:, list(MEDIAPIPE_HEAD_FALLBACK)][:, :, [0, 1, 3]]
    nose_missing = ~np.isfinite(out[:, HEAD, 0])
    if nose_missing.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
            out[nose_missing, HEAD] = np.nanmean(fallback[nose_missing], axis=1)
    return out


def body_scale(keypoints: np.ndarray) -> float:
    """Median over frames of max(shoulder width, mean shoulder-to-elbow length).

    The clip-level scale used for PCK and for normalising the counter's signals; unlike the
    per-frame shoulder width it does not collapse in side views.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    shoulders = np.linalg.norm(kp[:, LEFT_SHOULDER, :2] - kp[:, RIGHT_SHOULDER, :2], axis=-1)
    upper_left = np.linalg.norm(kp[:, LEFT_SHOULDER, :2] - kp[:, LEFT_ELBOW, :2], axis=-1)
    upper_right = np.linalg.norm(kp[:, RIGHT_SHOULDER, :2] - kp[:, RIGHT_ELBOW, :2], axis=-1)
    with np.errstate(invalid="ignore"):
        upper = np.nanmean(np.stack([upper_left, upper_right]), axis=0) if len(kp) else upper_left
        per_frame = np.fmax(shoulders, upper)
    per_frame = per_frame[np.isfinite(per_frame)]
    return float(np.median(per_frame)) if per_frame.size else float("nan")
