"""A camera frame as every stage sees it, whichever source produced it.

Sources hand out RGB (H, W, 3) or the Pi's YUV420 lores layout (H*3/2, W): the first H rows
are the Y plane, then the U and V planes at quarter size. Preprocessing accepts both.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    format: str  # "RGB" or "YUV420"
    t: float  # seconds: the file's timestamp, or monotonic time for a live camera
    index: int = 0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the picture."""
        if self.format == "YUV420":
            return (self.image.shape[1], self.image.shape[0] * 2 // 3)
        return (self.image.shape[1], self.image.shape[0])


class FrameError(ValueError):
    """A frame whose pixels do not match its declared format: skipped, never fatal."""


def check_frame(frame: Frame) -> None:
    """Refuse frames whose shape or dtype does not match their declared format."""
    img = frame.image
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise FrameError(f"frame {frame.index}: expected uint8 pixels, got {getattr(img, 'dtype', type(img))}")
    if frame.format == "RGB":
        if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 8 or img.shape[1] < 8:
            raise FrameError(f"frame {frame.index}: RGB frame must be (H, W, 3), at least 8x8 pixels, got {img.shape}")
    elif frame.format == "YUV420":
        if img.ndim != 2 or img.shape[0] % 3 or img.shape[0] < 12 or img.shape[1] % 2:
            raise FrameError(f"frame {frame.index}: YUV420 frame must be (H*3/2, W) with even W, got {img.shape}")
    else:
        raise FrameError(f"frame {frame.index}: unknown pixel format {frame.format!r}")


def brightness(frame: Frame) -> float:
    """Mean brightness, 0-255, from every 4th pixel of every 4th row (the Y plane of YUV420;
    the mean of R, G and B otherwise): cheap enough for every frame."""
    if frame.format == "YUV420":
        return float(frame.image[: frame.image.shape[0] * 2 // 3 : 4, ::4].mean())
    return float(frame.image[::4, ::4].mean())


def to_rgb(frame: Frame) -> np.ndarray:
    """RGB (H, W, 3) uint8 for either format (BT.601 full-range YUV: the sYCC colour space that
    PiCameraSource asks libcamera for)."""
    if frame.format == "RGB":
        return frame.image
    img = frame.image
    h = img.shape[0] * 2 // 3
    w = img.shape[1]
    y = img[:h].astype(np.float32)
    chroma = img[h:].reshape(2, h // 2, w // 2)  # U plane then V plane, each (h/2, w/2)
    u = chroma[0].repeat(2, axis=0).repeat(2, axis=1).astype(np.float32) - 128.0
    v = chroma[1].repeat(2, axis=0).repeat(2, axis=1).astype(np.float32) - 128.0
    rgb = np.empty((h, w, 3), dtype=np.float32)
    rgb[..., 0] = y + 1.402 * v
    rgb[..., 1] = y - 0.344136 * u - 0.714136 * v
    rgb[..., 2] = y + 1.772 * u
    return np.clip(rgb, 0, 255).astype(np.uint8)


def rgb_to_yuv420(rgb: np.ndarray) -> np.ndarray:
    """The Pi's lores YUV420 layout from an RGB image (even width and height)."""
    f = rgb.astype(np.float32)
    h, w = rgb.shape[:2]
    y = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    u = -0.168736 * f[..., 0] - 0.331264 * f[..., 1] + 0.5 * f[..., 2] + 128.0
    v = 0.5 * f[..., 0] - 0.418688 * f[..., 1] - 0.081312 * f[..., 2] + 128.0
    u4 = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    v4 = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    out = np.concatenate([y.ravel(), u4.ravel(), v4.ravel()])
    return np.clip(np.round(out), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)
