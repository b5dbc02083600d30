"""Appearance: the person's materials and primitives, the procedural room, sensor effects."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import body as B
from .camera import Camera
from .raster import FrameBuffers

SKIN_TONES = np.array([
    (247, 219, 196), (234, 192, 160), (224, 172, 138), (198, 141, 101), (166, 110, 74),
    (130, 85, 56), (98, 62, 40), (236, 200, 170), (210, 160, 120),
], dtype=np.float32) / 255.0
CLOTHES = np.array([
    (30, 30, 34), (200, 30, 40), (40, 70, 160), (235, 235, 235), (90, 90, 95), (20, 110, 80),
    (240, 150, 30), (110, 40, 120), (60, 120, 190), (150, 150, 150), (170, 60, 60), (30, 50, 90),
], dtype=np.float32) / 255.0
HAIR = np.array([(25, 20, 18), (60, 40, 25), (110, 80, 50), (170, 140, 90), (90, 90, 90), (40, 30, 30)],
                dtype=np.float32) / 255.0
SHOES = np.array([(240, 240, 240), (30, 30, 30), (200, 60, 40), (60, 90, 160), (120, 120, 120)],
                 dtype=np.float32) / 255.0


def _srgb_to_lin(c):
    return np.asarray(c, dtype=np.float32) ** 2.2


@dataclass
class Look:
    skin: np.ndarray
    shirt: np.ndarray
    pants: np.ndarray
    shoes: np.ndarray
    hair: np.ndarray
    sleeves: str  # "short", "long", "none"
    pants_len: str  # "long", "shorts"
    hair_len: float

    @classmethod
    def random(cls, rng) -> "Look":
        skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.93, 1.05)
        shirt = CLOTHES[rng.integers(len(CLOTHES))]
        pants = CLOTHES[rng.integers(len(CLOTHES))]
        if np.allclose(shirt, pants):
            pants = pants * 0.6
        return cls(
            skin=_srgb_to_lin(np.clip(skin, 0, 1)),
            shirt=_srgb_to_lin(shirt),
            pants=_srgb_to_lin(pants),
            shoes=_srgb_to_lin(SHOES[rng.integers(len(SHOES))]),
            hair=_srgb_to_lin(HAIR[rng.integers(len(HAIR))]),
            sleeves=("short", "long", "none")[rng.choice(3, p=[0.6, 0.25, 0.15])],
            pants_len=("long", "shorts")[rng.integers(2)],
            hair_len=float(rng.uniform(0.0, 1.0)),
        )


def draw_person(fb: FrameBuffers, cam: Camera, joints: np.ndarray, r_trunk: np.ndarray, r_head: np.ndarray,
                dims: B.Dims, look: Look) -> None:
    """Draw one frame's body into the frame buffers (joints [J,3] world)."""
    pc = cam.to_camera(joints)
    R = B.radii(dims)
    k = dims.k
    g = dims.girth * k
    J = B.J
    rot_t = cam.rotation @ r_trunk
    rot_h = cam.rotation @ r_head
    pelvis = joints[J["pelvis"]]

    def world(local, rot=r_trunk, origin=pelvis):
        return cam.to_camera(origin + rot @ np.asarray(local))

    cap = fb.capsule
    sleeve_frac = {"none": 0.0, "short": 0.45, "long": 1.0}[look.sleeves]
    for s in ("l", "r"):
        sh, el, wr, hd = pc[J[f"shoulder_{s}"]], pc[J[f"elbow_{s}"]], pc[J[f"wrist_{s}"]], pc[J[f"hand_{s}"]]
        hip, kn, an = pc[J[f"hip_{s}"]], pc[J[f"knee_{s}"]], pc[J[f"ankle_{s}"]]
        he, to = pc[J[f"heel_{s}"]], pc[J[f"toe_{s}"]]
        ua, fa, hr = R["upper_arm"], R["forearm"], R["hand"]
        # arms
        if sleeve_frac >= 1.0:
            cap(sh, el, ua[0] * 1.05, ua[1] * 1.05, look.shirt)
            cap(el, wr, fa[0] * 1.06, fa[1] * 1.1, look.shirt)
        elif sleeve_frac > 0:
            mid = sh + (el - sh) * sleeve_frac
            r_mid = ua[0] + (ua[1] - ua[0]) * sleeve_frac
            cap(sh, mid, ua[0] * 1.08, r_mid * 1.1, look.shirt)
            cap(mid, el, r_mid, ua[1], look.skin, 0.2)
            cap(el, wr, fa[0], fa[1], look.skin, 0.2)
        else:
            cap(sh, el, ua[0], ua[1], look.skin, 0.2)
            cap(el, wr, fa[0], fa[1], look.skin, 0.2)
        cap(wr, hd, hr[0], hr[1], look.skin, 0.2)
        # legs
        th, sn = R["thigh"], R["shin"]
        if look.pants_len == "long":
            cap(hip, kn, th[0], th[1], look.pants)
            cap(kn, an, sn[0] * 1.08, sn[1] * 1.25, look.pants)
        else:
            f = 0.55
            mid = hip + (kn - hip) * f
            r_mid = th[0] + (th[1] - th[0]) * f
            cap(hip, mid, th[0] * 1.04, r_mid * 1.08, look.pants)
            cap(mid, kn, r_mid, th[1], look.skin, 0.15)
            cap(kn, an, sn[0], sn[1], look.skin, 0.15)
        cap(an, he, R["heel"], R["heel"], look.shoes, 0.1)
        cap(he, to, R["foot"][0], R["foot"][1], look.shoes, 0.1)
    # torso (ellipsoids in the trunk frame) and shoulders
    cap(pc[J["shoulder_l"]], pc[J["shoulder_r"]], R["shoulders"], R["shoulders"], look.shirt)
    fb.ellipsoid(world([0.015 * k, 0.35 * k, 0.0]), rot_t, np.array([0.115, 0.17, 0.17]) * g, look.shirt)
    fb.ellipsoid(world([0.01 * k, 0.17 * k, 0.0]), rot_t, np.array([0.105, 0.16, 0.155]) * g, look.shirt)
    fb.ellipsoid(world([-0.01 * k, 0.0, 0.0]), rot_t, np.array([0.105, 0.12, 0.165]) * g, look.pants)
    # neck and head
    cap(pc[J["neck"]], pc[J["neck_top"]], R["neck"][0], R["neck"][1], look.skin, 0.2)
    head = joints[J["head"]]
    fb.ellipsoid(cam.to_camera(head), rot_h, np.array([0.098, 0.115, 0.079]) * k, look.skin, 0.25)
    hair_c = head + r_head @ (np.array([-0.018 - 0.01 * look.hair_len, 0.022, 0.0]) * k)
    fb.ellipsoid(cam.to_camera(hair_c), rot_h,
                 np.array([0.1 + 0.012 * look.hair_len, 0.113 + 0.02 * look.hair_len, 0.084]) * k, look.hair, 0.3)
    nose_a = cam.to_camera(head + r_head @ (np.array([0.085, -0.005, 0.0]) * k))
    cap(nose_a, pc[J["nose"]], 0.014 * k, 0.012 * k, look.skin, 0.3)


# ---------------------------------------------------------------------------------------------
# Room


def _value_noise(shape, rng, scale: int) -> np.ndarray:
    h, w = shape
    coarse = rng.random((h // scale + 2, w // scale + 2)).astype(np.float32)
    ys = np.arange(h) / scale
    xs = np.arange(w) / scale
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    a = coarse[y0][:, x0]
    b = coarse[y0][:, x0 + 1]
    c = coarse[y0 + 1][:, x0]
    d = coarse[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


WALL_COLOURS = np.array([(236, 232, 222), (214, 222, 230), (230, 218, 196), (200, 210, 195), (245, 245, 245),
                         (180, 190, 200), (222, 200, 190)], dtype=np.float32) / 255.0
WOODS = np.array([(170, 120, 75), (120, 80, 50), (196, 160, 115), (150, 140, 130), (90, 60, 40)],
                 dtype=np.float32) / 255.0


@dataclass
class Room:
    lo: np.ndarray  # x, z minimum (walls)
    hi: np.ndarray
    ceiling: float
    floor_kind: str
    floor_col: np.ndarray
    wall_col: np.ndarray
    seed: int

    @classmethod
    def random(cls, rng, centre_xz, camera_xz=None) -> "Room":
        cx, cz = centre_xz
        lo = np.array([cx - rng.uniform(1.6, 3.5), cz - rng.uniform(1.6, 3.5)])
        hi = np.array([cx + rng.uniform(1.6, 3.5), cz + rng.uniform(1.6, 3.5)])
        if camera_xz is not None:  # the camera stands inside the room
            lo = np.minimum(lo, np.asarray(camera_xz) - rng.uniform(0.3, 1.5, 2))
            hi = np.maximum(hi, np.asarray(camera_xz) + rng.uniform(0.3, 1.5, 2))
        kind = ("wood", "wood", "tile", "carpet", "mat")[rng.integers(5)]
        if kind == "wood":
            col = WOODS[rng.integers(len(WOODS))]
        elif kind == "tile":
            col = np.array([0.85, 0.84, 0.8]) * rng.uniform(0.7, 1.0)
        elif kind == "mat":
            col = CLOTHES[rng.integers(len(CLOTHES))] * 0.8 + 0.1
        else:
            col = np.array([0.55, 0.5, 0.45]) * rng.uniform(0.5, 1.2)
        return cls(lo, hi, float(rng.uniform(2.4, 2.8)), kind, np.asarray(col, np.float32),
                   WALL_COLOURS[rng.integers(len(WALL_COLOURS))], int(rng.integers(1 << 30)))

    def render(self, cam: Camera, light_world: np.ndarray, supersample: int = 2):
        """Linear-light background image [H,W,3] and the floor hit points [H,W,2] (x, z; NaN off floor)."""
        rng = np.random.default_rng(self.seed)
        s = supersample
        rays_c = cam.pixel_rays(s)
        d = rays_c @ cam.rotation  # camera -> world directions
        o = cam.position
        h, w = d.shape[:2]
        t = np.full((h, w), np.inf)
        surf = np.zeros((h, w), dtype=np.int8)
        planes = [(1, 0.0, 0), (1, self.ceiling, 1), (0, self.lo[0], 2), (0, self.hi[0], 3),
                  (2, self.lo[1], 4), (2, self.hi[1], 5)]
        with np.errstate(divide="ignore", invalid="ignore"):
            for axis, value, sid in planes:
                ti = (value - o[axis]) / d[..., axis]
                ok = (ti > 1e-4) & (ti < t)
                t = np.where(ok, ti, t)
                surf = np.where(ok, sid, surf)
        p = o + d * t[..., None]
        img = np.zeros((h, w, 3), dtype=np.float32)
        # floor
        fm = surf == 0
        fx, fz = p[..., 0], p[..., 2]
        img[fm] = self._floor(fx[fm], fz[fm], rng)
        # walls
        for sid, (u_axis) in ((2, 2), (3, 2), (4, 0), (5, 0)):
            m = surf == sid
            if not m.any():
                continue
            u = p[..., u_axis][m]
            y = p[..., 1][m]
            img[m] = self._wall(u, y, sid, rng)
        img[surf == 1] = np.array([0.92, 0.92, 0.9], np.float32)
        # lighting: a soft falloff from a ceiling lamp above the room centre, plus wall/floor factors
        lamp = np.array([(self.lo[0] + self.hi[0]) / 2, self.ceiling - 0.1, (self.lo[1] + self.hi[1]) / 2])
        dist = np.linalg.norm(p - lamp, axis=-1)
        fall = 0.55 + 0.6 / (1.0 + 0.25 * dist ** 2)
        shade = np.ones((h, w), np.float32)
        shade[surf == 0] = 0.85 + 0.15 * max(light_world[1], 0)
        shade[(surf >= 2)] = 0.72
        shade[surf == 1] = 0.6
        img *= (fall * shade)[..., None]
        # downsample
        img = img.reshape(cam.height, s, cam.width, s, 3).mean((1, 3))
        floor_xz = np.stack([fx, fz], -1)[::s, ::s].copy()
        floor_xz[~fm[::s, ::s]] = np.nan
        return img.astype(np.float32), floor_xz

    def _floor(self, x, z, rng):
        col = _srgb_to_lin(self.floor_col)
        if self.floor_kind == "wood":
            width = rng.uniform(0.12, 0.2)
            along, across = (x, z) if rng.random() < 0.5 else (z, x)
            plank = np.floor(across / width)
            length = 1.2
            offset = (plank * 0.37) % 1.0 * length
            seg = np.floor((along + offset) / length)
            hsh = np.sin(plank * 12.9898 + seg * 78.233) * 43758.5453
            hsh = hsh - np.floor(hsh)
            tone = 0.82 + 0.3 * hsh
            grain = 0.92 + 0.08 * np.sin(along * (40 + 25 * hsh) + 3 * np.sin(across * 30 + hsh * 10))
            fa = (across / width) % 1.0
            gap = np.where((fa < 0.03) | (fa > 0.97), 0.55, 1.0)
            fl = ((along + offset) / length) % 1.0
            gap = gap * np.where(fl < 0.004, 0.6, 1.0)
            return col[None] * (tone * grain * gap)[:, None]
        if self.floor_kind == "tile":
            size = 0.4
            fx, fz = (x / size) % 1.0, (z / size) % 1.0
            grout = np.where((fx < 0.03) | (fz < 0.03), 0.7, 1.0)
            hsh = np.sin(np.floor(x / size) * 12.9898 + np.floor(z / size) * 78.233) * 43758.5453
            hsh = hsh - np.floor(hsh)
            return col[None] * (grout * (0.95 + 0.08 * hsh))[:, None]
        # carpet / mat: fine noise
        n = np.sin(x * 211.0) * np.sin(z * 197.0) * 0.5 + np.sin(x * 53.0 + z * 41.0) * 0.5
        base = col[None] * (0.93 + 0.07 * n)[:, None]
        if self.floor_kind == "mat":
            # an exercise mat on a wooden floor
            wood = _srgb_to_lin(WOODS[0]) * (0.9 + 0.1 * np.sin(x * 60))[:, None]
            on_mat = (np.abs(z) < 0.33) & (x > -0.35) & (x < 1.6)
            return np.where(on_mat[:, None], base, wood)
        return base

    def _wall(self, u, y, sid, rng):
        col = _srgb_to_lin(self.wall_col)
        out = np.broadcast_to(col, (len(u), 3)).copy()
        out *= (0.97 + 0.03 * np.sin(u * 3.1 + sid))[:, None]
        base = y < 0.09
        out[base] = _srgb_to_lin(np.array([0.93, 0.93, 0.9]))
        # a door or a window or a picture on some walls
        r = np.random.default_rng(self.seed + sid)
        kind = r.integers(4)
        c = r.uniform(-1.5, 1.5)
        if kind == 0:  # door
            m = (np.abs(u - c) < 0.42) & (y < 2.0)
            out[m] = _srgb_to_lin(WOODS[r.integers(len(WOODS))]) * 1.1
            frame = (np.abs(np.abs(u - c) - 0.44) < 0.03) & (y < 2.05)
            out[frame] = _srgb_to_lin(np.array([0.9, 0.9, 0.88]))
        elif kind == 1:  # window
            m = (np.abs(u - c) < 0.6) & (y > 0.9) & (y < 2.1)
            out[m] = np.array([1.6, 1.65, 1.8], np.float32) * r.uniform(0.7, 1.0)
            bars = m & ((np.abs(u - c) < 0.02) | (np.abs(y - 1.5) < 0.02))
            out[bars] = 0.8
        elif kind == 2:  # picture
            m = (np.abs(u - c) < 0.35) & (np.abs(y - 1.5) < 0.25)
            out[m] = _srgb_to_lin(CLOTHES[r.integers(len(CLOTHES))]) * (0.8 + 0.2 * np.sin(u[m] * 20))[:, None]
        return out


def to_srgb_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) ** (1 / 2.2) * 255.0 + 0.5).astype(np.uint8)
