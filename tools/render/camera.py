"""Pinhole camera: world (y up) to pixels (x right, y down); camera space is x right, y down, z forward."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Camera:
    position: np.ndarray  # world [3]
    rotation: np.ndarray  # [3,3] world -> camera (rows: right, down, forward)
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def look_at(cls, position, target, width: int, height: int, hfov_deg: float = 62.2, roll_deg: float = 0.0):
        position = np.asarray(position, dtype=np.float64)
        forward = np.asarray(target, dtype=np.float64) - position
        forward /= np.linalg.norm(forward)
        up = np.array([0.0, 1.0, 0.0])
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rot = np.stack([right, down, forward])
        if roll_deg:
            a = np.radians(roll_deg)
            c, s = np.cos(a), np.sin(a)
            rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ rot
        fx = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
        return cls(position, rot, fx, fx, width / 2, height / 2, width, height)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points) - self.position) @ self.rotation.T

    def dir_to_camera(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors) @ self.rotation.T

    def project_camera(self, pc: np.ndarray) -> np.ndarray:
        """Camera-space points [...,3] to pixel coordinates [...,2] (pixel centres at +0.5)."""
        z = np.maximum(pc[..., 2], 1e-6)
        return np.stack([self.fx * pc[..., 0] / z + self.cx, self.fy * pc[..., 1] / z + self.cy], -1)

    def project(self, points: np.ndarray) -> np.ndarray:
        return self.project_camera(self.to_camera(points))

    def pixel_rays(self, scale: int = 1) -> np.ndarray:
        """Camera-space ray directions with z = 1 for every pixel centre, [H*scale, W*scale, 3]."""
        xs = (np.arange(self.width * scale) + 0.5) / scale
        ys = (np.arange(self.height * scale) + 0.5) / scale
        dx = (xs - self.cx) / self.fx
        dy = (ys - self.cy) / self.fy
        gx, gy = np.meshgrid(dx, dy)
        return np.stack([gx, gy, np.ones_like(gx)], -1)


def fit_camera(points: np.ndarray, azimuth_deg: float, height: float, width: int, image_height: int,
               hfov_deg: float = 62.2, margin: float = 0.08, zoom: float = 1.0, roll_deg: float = 0.0,
               heading_deg: float = 0.0) -> Camera:
    """Place a camera at `height` looking at the points from `azimuth_deg`, as close as fits.

    Azimuth 0 = in front of the person (the way `heading_deg` points, 0 = +x), 90 = on the
    person's right (+z), -90 = on their left. `zoom` > 1 moves the camera further away.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    lo, hi = pts.min(0), pts.max(0)
    centre = (lo + hi) / 2
    a = np.radians(azimuth_deg + heading_deg)
    direction = np.array([np.cos(a), 0.0, np.sin(a)])  # from the target towards the camera
    fwd = -direction
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    half_h = np.arctan(np.tan(np.radians(hfov_deg) / 2)) * (1 - margin)
    half_v = np.arctan(np.tan(np.radians(hfov_deg) / 2) * image_height / width) * (1 - margin)

    def angles(dist):
        pos = centre + direction * dist
        pos[1] = height
        rel = pts - pos
        f = rel @ fwd
        if np.any(f < 0.3):
            return pos, None, None
        return pos, np.arctan2(rel @ right, f), np.arctan2(rel[:, 1], f)

    def fits(dist):
        _, az, el = angles(dist)
        if az is None:
            return False
        return (az.max() - az.min()) / 2 <= half_h and (el.max() - el.min()) / 2 <= half_v

    lo_d, hi_d = 0.3, 40.0
    for _ in range(30):
        mid = 0.5 * (lo_d + hi_d)
        if fits(mid):
            hi_d = mid
        else:
            lo_d = mid
    dist = hi_d * zoom
    pos, az, el = angles(dist)
    yaw = 0.5 * (az.max() + az.min())
    pitch = 0.5 * (el.max() + el.min())
    look = fwd * np.cos(yaw) + right * np.sin(yaw)
    look = look * np.cos(pitch) + np.array([0.0, np.sin(pitch), 0.0])
    return Camera.look_at(pos, pos + look, width, image_height, hfov_deg, roll_deg)
