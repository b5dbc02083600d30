"""Letterboxing, person crops and heatmap decoding: how model coordinates map back onto the camera frame.

Shared by the runtime (appliance.models) and the training tools, so that the labels a model
is trained on and the keypoints the appliance reads back use one convention: heatmap cell
(row i, column j) is centred on input pixel ((j + 0.5) * stride, (i + 0.5) * stride), and
all coordinates are normalised to 0..1 of the image they refer to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """Where a frame of (frame_w, frame_h) lands inside a model input of (input_w, input_h)."""

    frame_w: int
    frame_h: int
    input_w: int
    input_h: int

    @property
    def scale(self) -> float:
        return min(self.input_w / self.frame_w, self.input_h / self.frame_h)

    @property
    def content_size(self) -> tuple[int, int]:
        return (max(1, round(self.frame_w * self.scale)), max(1, round(self.frame_h * self.scale)))

    @property
    def offset(self) -> tuple[int, int]:
        cw, ch = self.content_size
        return ((self.input_w - cw) // 2, (self.input_h - ch) // 2)

    def input_to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Input-normalised (0..1 of the model input) -> frame-normalised coordinates."""
        xy = np.asarray(xy, dtype=np.float32)
        cw, ch = self.content_size
        ox, oy = self.offset
        out = np.empty_like(xy)
        out[..., 0] = (xy[..., 0] * self.input_w - ox) / cw
        out[..., 1] = (xy[..., 1] * self.input_h - oy) / ch
        return out

    def frame_to_input(self, xy: np.ndarray) -> np.ndarray:
        """Frame-normalised -> input-normalised coordinates (for making training labels)."""
        xy = np.asarray(xy, dtype=np.float32)
        cw, ch = self.content_size
        ox, oy = self.offset
        out = np.empty_like(xy)
        out[..., 0] = (xy[..., 0] * cw + ox) / self.input_w
        out[..., 1] = (xy[..., 1] * ch + oy) / self.input_h
        return out


@dataclass(frozen=True)
class Crop:
    """A window of the frame (frame pixels, may reach past its edges) scaled onto the model input."""

    frame_w: int
    frame_h: int
    x0: int
    y0: int
    width: int
    height: int

    def input_to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Input-normalised (0..1 of the model input) -> frame-normalised coordinates."""
        xy = np.asarray(xy, dtype=np.float32)
        out = np.empty_like(xy)
        out[..., 0] = (self.x0 + xy[..., 0] * self.width) / self.frame_w
        out[..., 1] = (self.y0 + xy[..., 1] * self.height) / self.frame_h
        return out


# Person crop: the model sees the frame around the body it found in the previous frame, up to
# 1.5x closer than the whole letterboxed frame. 1.5 is about the largest zoom it was trained on
# (tools.augment.warp); twice the body's extent keeps a moving or half-found body in view.
CROP_MARGIN = 2.0
CROP_MAX_ZOOM = 1.5
CROP_MIN_SCORE = 0.3


def person_crop(keypoints: np.ndarray, frame_w: int, frame_h: int, input_w: int, input_h: int,
                margin: float = CROP_MARGIN, max_zoom: float = CROP_MAX_ZOOM) -> Crop | None:
    """Where to look for the person in the next frame, or None for the whole (letterboxed) frame.

    ``keypoints`` [K, 3] are frame-normalised; at least 3 must score ``CROP_MIN_SCORE``.
    """
    seen = keypoints[:, 2] >= CROP_MIN_SCORE
    if seen.sum() < 3:
        return None
    points = keypoints[seen, :2] * np.array([frame_w, frame_h], np.float32)
    low, high = points.min(axis=0), points.max(axis=0)
    aspect = input_w / input_h
    whole_w = max(frame_w, frame_h * aspect)  # the letterboxed frame's width in frame pixels
    width = max((high[0] - low[0]) * margin, (high[1] - low[1]) * margin * aspect, whole_w / max_zoom)
    if width >= whole_w:
        return None
    height = width / aspect
    centre = (low + high) / 2
    return Crop(frame_w, frame_h, int(round(centre[0] - width / 2)), int(round(centre[1] - height / 2)),
                int(round(width)), int(round(height)))


def encode_heatmaps(xy: np.ndarray, visible: np.ndarray, height: int, width: int, sigma: float = 1.5) -> np.ndarray:
    """Gaussian target heatmaps [height, width, K] (peak 1) for input-normalised points.

    A point that is not visible (or NaN) gets an all-zero map.
    """
    xy = np.asarray(xy, dtype=np.float32)
    count = xy.shape[0]
    cols = np.arange(width, dtype=np.float32)[None, :]
    rows = np.arange(height, dtype=np.float32)[:, None]
    maps = np.zeros((height, width, count), dtype=np.float32)
    for k in range(count):
        if not visible[k] or not np.all(np.isfinite(xy[k])):
            continue
        cx = xy[k, 0] * width - 0.5
        cy = xy[k, 1] * height - 0.5
        maps[:, :, k] = np.exp(-((cols - cx) ** 2 + (rows - cy) ** 2) / (2 * sigma * sigma))
    return maps


def decode_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """Peak of each heatmap [h, w, K] with sub-pixel refinement -> [K, 3] (x, y, score).

    x and y are input-normalised; the score is the peak value clipped to 0..1. The sub-pixel
    step fits a parabola through the peak and its neighbours along each axis.
    """
    maps = np.asarray(heatmaps, dtype=np.float32)
    h, w, count = maps.shape
    flat = maps.reshape(h * w, count)
    peak = np.argmax(flat, axis=0)
    rows, cols = np.divmod(peak, w)
    ks = np.arange(count)
    score = flat[peak, ks]

    def refine(centre_idx, size, get):
        offset = np.zeros(count, dtype=np.float32)
        inside = (centre_idx > 0) & (centre_idx < size - 1)
        if inside.any():
            left, mid, right = get(-1), score, get(1)
            denom = left - 2 * mid + right
            with np.errstate(divide="ignore", invalid="ignore"):
                step = np.where(denom < 0, 0.5 * (left - right) / denom, 0.0)
            offset = np.where(inside, np.clip(step, -0.5, 0.5), 0.0)
        return offset

    dx = refine(cols, w, lambda d: maps[rows, np.clip(cols + d, 0, w - 1), ks])
    dy = refine(rows, h, lambda d: maps[np.clip(rows + d, 0, h - 1), cols, ks])
    out = np.empty((count, 3), dtype=np.float32)
    out[:, 0] = (cols + 0.5 + dx) / w
    out[:, 1] = (rows + 0.5 + dy) / h
    out[:, 2] = np.clip(score, 0.0, 1.0)
    return out
