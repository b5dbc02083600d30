"""Vectorised numpy rasteriser for tapered capsules and ellipsoids with a z-buffer.

Per primitive only the pixels of its screen bounding box are touched. Capsules are drawn
as perspective impostors (2-D distance to the projected axis, a depth bulge and a normal
reconstructed from it); ellipsoids are ray cast exactly. Shading is deferred: the buffers
hold depth, camera-space normal and albedo, and `shade` lights them once per frame.
"""
from __future__ import annotations

import numpy as np

from .camera import Camera


_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)


class FrameBuffers:
    def __init__(self, camera: Camera):
        self.cam = camera
        h, w = camera.height, camera.width
        self.h, self.w = h, w
        self.z = np.full((h, w), np.inf, dtype=np.float32)
        self.n = np.zeros((h, w, 3), dtype=np.float32)
        self.mat = np.zeros((h, w), dtype=np.uint8)  # index into the material palette
        self._zf = self.z.reshape(-1)
        self._nf = self.n.reshape(-1, 3)
        self._mf = self.mat.reshape(-1)
        self._materials: dict = {}
        self._albedo: list = []
        self._gloss: list = []
        self.x0, self.y0, self.x1, self.y1 = w, h, 0, 0  # touched box
        self._xs = np.arange(w, dtype=np.float32) + 0.5
        self._ys = np.arange(h, dtype=np.float32) + 0.5

    def reset(self) -> None:
        if self.x1 > self.x0:
            sl = (slice(self.y0, self.y1), slice(self.x0, self.x1))
            self.z[sl] = np.inf
        self.x0, self.y0, self.x1, self.y1 = self.w, self.h, 0, 0

    def _material(self, albedo, gloss) -> int:
        key = (np.asarray(albedo, np.float32).tobytes(), float(gloss))
        mid = self._materials.get(key)
        if mid is None:
            mid = len(self._albedo)
            if mid > 255:
                raise RuntimeError("too many materials")
            self._materials[key] = mid
            self._albedo.append(np.asarray(albedo, np.float32))
            self._gloss.append(float(gloss))
        return mid

    def _box(self, umin, vmin, umax, vmax):
        x0 = max(int(np.floor(umin)), 0)
        y0 = max(int(np.floor(vmin)), 0)
        x1 = min(int(np.ceil(umax)) + 1, self.w)
        y1 = min(int(np.ceil(vmax)) + 1, self.h)
        return x0, y0, x1, y1

    def _write(self, x0, y0, x1, y1, idx, z, nx, ny, nz, albedo, gloss):
        fi = (idx[0] + y0) * self.w + (idx[1] + x0)
        closer = z < self._zf[fi]
        fi = fi[closer]
        if fi.size == 0:
            return
        self._zf[fi] = z[closer]
        nn = np.empty((fi.size, 3), np.float32)
        nn[:, 0] = nx[closer]
        nn[:, 1] = ny[closer]
        nn[:, 2] = nz[closer]
        self._nf[fi] = nn
        self._mf[fi] = self._material(albedo, gloss)
        if x0 < self.x0:
            self.x0 = x0
        if y0 < self.y0:
            self.y0 = y0
        if x1 > self.x1:
            self.x1 = x1
        if y1 > self.y1:
            self.y1 = y1

    def capsule(self, a, b, ra: float, rb: float, albedo, gloss: float = 0.0) -> None:
        """Tapered capsule between camera-space points a and b with radii ra, rb (metres)."""
        cam = self.cam
        za, zb = a[2], b[2]
        if za < 0.05 or zb < 0.05:
            return
        pa = (cam.fx * a[0] / za + cam.cx, cam.fy * a[1] / za + cam.cy)
        pb = (cam.fx * b[0] / zb + cam.cx, cam.fy * b[1] / zb + cam.cy)
        Ra, Rb = cam.fx * ra / za, cam.fx * rb / zb
        x0, y0, x1, y1 = self._box(min(pa[0] - Ra, pb[0] - Rb), min(pa[1] - Ra, pb[1] - Rb),
                                   max(pa[0] + Ra, pb[0] + Rb), max(pa[1] + Ra, pb[1] + Rb))
        if x1 <= x0 or y1 <= y0:
            return
        px = self._xs[x0:x1][None, :]
        py = self._ys[y0:y1][:, None]
        dx, dy = pb[0] - pa[0], pb[1] - pa[1]
        l2 = dx * dx + dy * dy
        ex0 = px - pa[0]
        ey0 = py - pa[1]
        if l2 > 1e-9:
            t = np.minimum(np.maximum((ex0 * dx + ey0 * dy) * (1.0 / l2), 0.0), 1.0)
        else:
            t = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        ex = ex0 - t * dx
        ey = ey0 - t * dy
        r = Ra + t * (Rb - Ra)
        d2 = ex * ex + ey * ey
        inside = d2 < r * r
        idx = np.nonzero(inside)
        if idx[0].size == 0:
            return
        ti = t[idx]
        ri = r[idx]
        nx = ex[idx] / ri
        ny = ey[idx] / ri
        q = np.sqrt(np.maximum(1.0 - nx * nx - ny * ny, 0.0))
        z = za + ti * (zb - za) - (ra + ti * (rb - ra)) * q
        self._write(x0, y0, x1, y1, idx, z, nx, ny, -q, albedo, gloss)

    def ellipsoid(self, centre, rot, radii, albedo, gloss: float = 0.0) -> None:
        """Ellipsoid with camera-space centre, rotation rot (local -> camera) and semi-axes radii."""
        cam = self.cam
        c = np.asarray(centre, dtype=np.float64)
        if c[2] < 0.1:
            return
        # screen box of the ellipsoid's oriented bounding box
        corners = c + (_CORNERS * np.asarray(radii, dtype=np.float64)) @ np.asarray(rot, dtype=np.float64).T
        cz = corners[:, 2]
        if cz.min() < 0.05:
            return
        us = cam.fx * corners[:, 0] / cz + cam.cx
        vs = cam.fy * corners[:, 1] / cz + cam.cy
        x0, y0, x1, y1 = self._box(us.min(), vs.min(), us.max(), vs.max())
        if x1 <= x0 or y1 <= y0:
            return
        m = np.asarray(rot, dtype=np.float64).T / np.asarray(radii, dtype=np.float64)[:, None]  # camera -> unit sphere
        o = -(m @ c)
        dxs = ((self._xs[x0:x1] - cam.cx) / cam.fx)[None, :]
        dys = ((self._ys[y0:y1] - cam.cy) / cam.fy)[:, None]
        d0 = m[0, 0] * dxs + m[0, 1] * dys + m[0, 2]
        d1 = m[1, 0] * dxs + m[1, 1] * dys + m[1, 2]
        d2 = m[2, 0] * dxs + m[2, 1] * dys + m[2, 2]
        A = d0 * d0 + d1 * d1 + d2 * d2
        B = o[0] * d0 + o[1] * d1 + o[2] * d2
        C = float(o @ o) - 1.0
        disc = B * B - A * C
        idx = np.nonzero(disc > 0)
        if idx[0].size == 0:
            return
        Ai, Bi = A[idx], B[idx]
        t = (-Bi - np.sqrt(disc[idx])) / Ai
        p0 = o[0] + t * d0[idx]
        p1 = o[1] + t * d1[idx]
        p2 = o[2] + t * d2[idx]
        # gradient of |M x|^2 is M^T M x -> normal = M^T p (in camera space)
        nx = m[0, 0] * p0 + m[1, 0] * p1 + m[2, 0] * p2
        ny = m[0, 1] * p0 + m[1, 1] * p1 + m[2, 1] * p2
        nz = m[0, 2] * p0 + m[1, 2] * p1 + m[2, 2] * p2
        inv = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz)
        self._write(x0, y0, x1, y1, idx, t, nx * inv, ny * inv, nz * inv, albedo, gloss)

    def shade(self, light_cam: np.ndarray, up_cam: np.ndarray, key: float = 0.75, ambient: float = 0.45,
              light_colour=(1.0, 0.97, 0.92)):
        """Light the touched pixels: returns (box slices, mask [h,w] bool, linear colours [N,3]) or None."""
        if self.x1 <= self.x0:
            return None
        sl = (slice(self.y0, self.y1), slice(self.x0, self.x1))
        mask = np.isfinite(self.z[sl])
        n = self.n[sl][mask]
        mids = self.mat[sl][mask]
        alb = np.asarray(self._albedo, np.float32)[mids]
        gl = np.asarray(self._gloss, np.float32)[mids]
        ndl = n @ light_cam.astype(np.float32)
        diffuse = np.clip((ndl + 0.25) * (1 / 1.25), 0.0, 1.0)  # a little wrap for soft skin/cloth
        sky = 0.55 + 0.45 * (n @ up_cam.astype(np.float32))
        hvec = light_cam - np.array([0.0, 0.0, 1.0])
        hvec = (hvec / np.linalg.norm(hvec)).astype(np.float32)
        spec = np.clip(n @ hvec, 0.0, 1.0) ** 16 * gl
        # screen-space ambient occlusion: surfaces just behind a nearer part's edge get darker
        zr = self.z[sl]
        zi = zr[mask]
        radius = int(np.clip(round(self.cam.fx * 0.05 / max(float(zi.mean()), 0.3)), 1, 8))
        zmin = zr.copy()
        for axis in (0, 1):
            src = zmin.copy()
            for d in range(1, radius + 1):
                if axis == 0:
                    np.minimum(zmin[d:], src[:-d], out=zmin[d:])
                    np.minimum(zmin[:-d], src[d:], out=zmin[:-d])
                else:
                    np.minimum(zmin[:, d:], src[:, :-d], out=zmin[:, d:])
                    np.minimum(zmin[:, :-d], src[:, d:], out=zmin[:, :-d])
        occ = np.clip((zi - zmin[mask] - 0.03) * (1 / 0.12), 0.0, 1.0) * 0.45
        light = ambient * (sky * (1 - occ))[:, None] + (key * diffuse * (1 - 0.6 * occ))[:, None] * \
            np.asarray(light_colour, np.float32)
        lit = alb * light + (spec * 0.3)[:, None]
        return sl, mask, lit
