"""Desktop preview: the camera frames with the skeleton, gate and count drawn on, as an mp4.

What a person watching `make run` sees of the box's eye; never used on the Pi.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from appliance import keypoints as kp
from appliance.display import sized_font
from appliance.errors import OutputError, first_line
from appliance.frames import Frame, to_rgb

# Limbs drawn between keypoints (indices into appliance.keypoints.NAMES).
BONES = (
    (kp.LEFT_WRIST, kp.LEFT_ELBOW),
    (kp.LEFT_ELBOW, kp.LEFT_SHOULDER),
    (kp.LEFT_SHOULDER, kp.RIGHT_SHOULDER),
    (kp.RIGHT_SHOULDER, kp.RIGHT_ELBOW),
    (kp.RIGHT_ELBOW, kp.RIGHT_WRIST),
    (kp.LEFT_SHOULDER, kp.HEAD),
    (kp.RIGHT_SHOULDER, kp.HEAD),
    (kp.LEFT_SHOULDER, kp.LEFT_HIP),
    (kp.RIGHT_SHOULDER, kp.RIGHT_HIP),
    (kp.LEFT_HIP, kp.RIGHT_HIP),
)


def annotate(frame: Frame, keypoints: np.ndarray, count: int, gate_open: bool, min_score: float = 0.3) -> np.ndarray:
    image = Image.fromarray(to_rgb(frame).copy())
    draw = ImageDraw.Draw(image)
    w, h = image.size
    pts = keypoints.copy()
    pts[:, 0] *= w
    pts[:, 1] *= h
    seen = np.isfinite(pts[:, 0]) & (pts[:, 2] >= min_score)
    for a, b in BONES:
        if a < len(pts) and b < len(pts) and seen[a] and seen[b]:
            draw.line((pts[a, 0], pts[a, 1], pts[b, 0], pts[b, 1]), fill=(0, 255, 0), width=2)
    for i in np.flatnonzero(seen):
        draw.ellipse((pts[i, 0] - 3, pts[i, 1] - 3, pts[i, 0] + 3, pts[i, 1] + 3), fill=(255, 64, 64))
    count_size = max(12, h // 8)
    draw.text((8, 4), str(count), font=sized_font(count_size), fill=(255, 255, 0), stroke_width=2, stroke_fill=(0, 0, 0))
    label = "push-ups" if gate_open else "waiting"
    draw.text((8, 8 + count_size), label, font=sized_font(max(10, h // 20)), fill=(255, 255, 255))
    return np.asarray(image)


class PreviewWriter:
    """Each frame is shown at its own time (Frame.t, in milliseconds from the first): with
    --realtime or a slow camera fewer frames come than `fps`, and the video must not play fast.
    `fps` is only the stream's nominal rate, and the frames' spacing when no time is given."""

    def __init__(self, path: str | Path, fps: float = 25.0):
        self.path = Path(path)
        self.fps = fps
        self._container = None
        self._stream = None
        self._t0: float | None = None
        self._last_pts = -1
        self._frames = 0

    def add(self, rgb: np.ndarray, t: float | None = None) -> None:
        import av

        if t is None:
            t = self._frames / self.fps
        if self._t0 is None:
            self._t0 = t
        pts = int(round((t - self._t0) * 1000))
        if pts <= self._last_pts:  # a repeated or earlier time: one millisecond on, pts must increase
            pts = self._last_pts + 1
        h, w = rgb.shape[:2]
        rgb = rgb[: h - h % 2, : w - w % 2]
        try:
            if self._container is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._container = av.open(str(self.path), "w")
                self._stream = self._container.add_stream("libx264", rate=int(round(self.fps)))
                self._stream.width, self._stream.height = rgb.shape[1], rgb.shape[0]
                self._stream.pix_fmt = "yuv420p"
                self._stream.time_base = self._stream.codec_context.time_base = Fraction(1, 1000)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
            self._last_pts = pts
            self._frames += 1
        except (OSError, av.error.FFmpegError) as exc:  # a full disk, a directory gone meanwhile
            raise OutputError(f"cannot write the preview {self.path}: {first_line(exc)}") from None

    def close(self) -> None:
        """Flush the encoder and write the file's trailer. Most of a short preview reaches the
        disk only here (the encoder holds frames back): a full disk is an OutputError naming the
        file, and the container is closed whatever happens."""
        import av

        container, self._container = self._container, None
        if container is None:
            return
        error = None
        try:
            for packet in self._stream.encode():
                container.mux(packet)
        except (OSError, av.error.FFmpegError) as exc:
            error = exc
        finally:
            try:
                container.close()
            except (OSError, av.error.FFmpegError) as exc:
                error = error or exc
        if error is not None:
            raise OutputError(f"cannot write the preview {self.path}: {first_line(error)}")
