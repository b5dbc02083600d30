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
    hair_style: str = "short"  # short, long, ponytail, buzz
    feet: str = "shoes"  # shoes, socks, bare

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
            hair_style=("short", "short", "long", "ponytail", "buzz")[rng.integers(5)],
            feet=("shoes", "shoes", "socks", "bare")[rng.integers(4)],
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
        # hand: a flattened ellipsoid, palm down when planted near the floor, else facing the thigh
        wr_w, hd_w = joints[J[f"wrist_{s}"]], joints[J[f"hand_{s}"]]
        ax = hd_w - wr_w
        ax = ax / max(np.linalg.norm(ax), 1e-9)
        w_floor = float(np.clip((0.2 - wr_w[1]) / 0.1, 0.0, 1.0))
        ref = w_floor * np.array([0.0, 1.0, 0.0]) + (1 - w_floor) * r_trunk[:, 2]
        ref = ref - (ref @ ax) * ax
        ref = ref / max(np.linalg.norm(ref), 1e-9)
        hand_rot = np.stack([ax, ref, np.cross(ax, ref)], 1)
        hl = float(np.linalg.norm(hd_w - wr_w))
        cap(wr, wr + (hd - wr) * 0.3, hr[0] * 0.9, hr[0] * 0.9, look.skin, 0.2)
        fb.ellipsoid(cam.to_camera(wr_w + (hd_w - wr_w) * 0.62), cam.rotation @ hand_rot,
                     np.array([hl * 0.62, 0.016 * k, 0.043 * k]), look.skin, 0.2)
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
        if look.feet == "shoes":
            foot_col, fr = look.shoes, 1.0
        elif look.feet == "socks":
            foot_col, fr = _srgb_to_lin(np.array([0.9, 0.9, 0.88])) * (0.3 if look.hair_len > 0.7 else 1.0), 0.9
        else:
            foot_col, fr = look.skin, 0.82
        cap(an, he, R["heel"] * fr, R["heel"] * fr, foot_col, 0.1)
        cap(he, to, R["foot"][0] * fr, R["foot"][1] * fr * 0.9, foot_col, 0.1)
    # torso (ellipsoids in the trunk frame) and shoulders
    cap(pc[J["shoulder_l"]], pc[J["shoulder_r"]], R["shoulders"], R["shoulders"], look.shirt)
    fb.ellipsoid(world([0.015 * k, 0.35 * k, 0.0]), rot_t, np.array([0.115, 0.17, 0.17]) * g, look.shirt)
    L_torso = B.lengths(dims)["torso"]
    cap(world([0.0, L_torso - 0.085 * k, -0.115 * k]), world([0.0, L_torso - 0.085 * k, 0.115 * k]),
        0.088 * g, 0.088 * g, look.shirt)
    fb.ellipsoid(world([0.01 * k, 0.17 * k, 0.0]), rot_t, np.array([0.1, 0.16, 0.145]) * g, look.shirt)
    fb.ellipsoid(world([-0.01 * k, 0.0, 0.0]), rot_t, np.array([0.105, 0.12, 0.165]) * g, look.pants)
    # neck and head
    cap(pc[J["neck"]], pc[J["neck_top"]], R["neck"][0], R["neck"][1], look.skin, 0.2)
    head = joints[J["head"]]
    hk = 0.93 * k

    def on_head(local):
        return cam.to_camera(head + r_head @ (np.asarray(local) * hk))

    fb.ellipsoid(cam.to_camera(head), rot_h, np.array([0.098, 0.115, 0.079]) * hk, look.skin, 0.25)
    hair_col = look.hair if look.hair_style != "buzz" else 0.5 * look.hair + 0.5 * look.skin * 0.6
    hl = look.hair_len if look.hair_style != "buzz" else 0.0
    hair_c = head + r_head @ (np.array([-0.018 - 0.01 * hl, 0.022, 0.0]) * hk)
    fb.ellipsoid(cam.to_camera(hair_c), rot_h, np.array([0.1 + 0.012 * hl, 0.113 + 0.02 * hl, 0.084]) * hk,
                 hair_col, 0.3)
    if look.hair_style == "long":  # hair down to the shoulders, following the head
        fb.ellipsoid(on_head([-0.055, -0.06, 0.0]), rot_h, np.array([0.07, 0.13, 0.088]) * hk, look.hair, 0.3)
    elif look.hair_style == "ponytail":
        cap(on_head([-0.1, 0.03, 0.0]), on_head([-0.15, -0.12, 0.0]), 0.03 * hk, 0.018 * hk, look.hair, 0.3)
    hc = cam.to_camera(head)
    view = hc / np.linalg.norm(hc)
    facing = -float(rot_h[:, 0] @ view)  # > 0: the face turns towards the camera
    side_view = float(rot_h[:, 2] @ view)  # > 0: the camera sees the person's left side
    head_px = cam.fx * 0.115 * hk / max(float(hc[2]), 0.1)  # head half-height in pixels
    if head_px < 6.0:
        return  # face details would be sub-pixel
    if facing > -0.35:
        cap(on_head([0.085, -0.005, 0.0]), on_head([0.113, -0.022, 0.0]), 0.013 * hk, 0.011 * hk, look.skin, 0.3)
        dark = look.hair * 0.6
        eye = _srgb_to_lin(np.array([0.12, 0.1, 0.09]))
        for z in (-0.031, 0.031):
            if facing < 0.2 and np.sign(z) * side_view > 0.3:
                continue  # the far eye is hidden behind the nose and face
            fb.ellipsoid(on_head([0.084, 0.012, z]), rot_h, np.array([0.012, 0.008, 0.013]) * hk, eye, 0.6)
            cap(on_head([0.088, 0.03, z - 0.016]), on_head([0.09, 0.032, z + 0.016]), 0.005 * hk, 0.005 * hk, dark)
        lips = look.skin * np.array([0.85, 0.6, 0.6], np.float32)
        cap(on_head([0.087, -0.05, -0.017]), on_head([0.087, -0.05, 0.017]), 0.007 * hk, 0.007 * hk, lips, 0.2)
    for z in (-1.0, 1.0):
        if z * side_view < 0.35:  # the ear on the person's side z faces the camera
            fb.ellipsoid(on_head([-0.005, -0.005, z * 0.077]), rot_h, np.array([0.022, 0.032, 0.012]) * hk,
                         look.skin * 0.92, 0.1)

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
    boxes: list = None  # furniture: (lo xyz, hi xyz, colour, kind)

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

    def furnish(self, rng, person_lo, person_hi, camera_pos) -> None:
        """Put a few boxes of furniture along the walls behind the person (never in front of them)."""
        self.boxes = []
        centre = 0.5 * (np.asarray(person_lo) + np.asarray(person_hi))
        v = centre[[0, 2]] - np.asarray(camera_pos)[[0, 2]]
        v = v / max(np.linalg.norm(v), 1e-9)
        corners = np.array([[x, z] for x in (person_lo[0], person_hi[0]) for z in (person_lo[2], person_hi[2])])
        far = float((corners @ v).max()) + 0.3
        walls = [(0, self.lo[0], np.array([-1.0, 0.0])), (0, self.hi[0], np.array([1.0, 0.0])),
                 (2, self.lo[1], np.array([0.0, -1.0])), (2, self.hi[1], np.array([0.0, 1.0]))]
        for axis, value, normal in walls:
            if normal @ v < 0.3:
                continue
            for _ in range(int(rng.integers(0, 3))):
                kind = ("sofa", "cabinet", "shelf", "table")[rng.integers(4)]
                width = {"sofa": rng.uniform(1.6, 2.2), "cabinet": rng.uniform(0.6, 1.2),
                         "shelf": rng.uniform(0.6, 1.0), "table": rng.uniform(0.8, 1.4)}[kind]
                depth = {"sofa": 0.85, "cabinet": 0.45, "shelf": 0.35, "table": 0.7}[kind]
                high = {"sofa": 0.85, "cabinet": rng.uniform(0.5, 0.9), "shelf": rng.uniform(1.4, 2.0),
                        "table": 0.75}[kind]
                other = 2 if axis == 0 else 0
                span = (self.lo[1], self.hi[1]) if axis == 0 else (self.lo[0], self.hi[0])
                u = rng.uniform(span[0] + width / 2, span[1] - width / 2) if span[1] - span[0] > width else None
                if u is None:
                    continue
                lo = np.zeros(3)
                hi = np.zeros(3)
                inner = value - normal[0 if axis == 0 else 1] * depth
                lo[axis], hi[axis] = min(value, inner), max(value, inner)
                lo[other], hi[other] = u - width / 2, u + width / 2
                lo[1], hi[1] = 0.0, high
                box_xz = np.array([[x, z] for x in (lo[0], hi[0]) for z in (lo[2], hi[2])])
                if (box_xz @ v).min() < far:
                    continue
                if any(np.all(lo < b[1]) and np.all(hi > b[0]) for b in self.boxes):
                    continue
                if kind in ("sofa",):
                    col = _srgb_to_lin(CLOTHES[rng.integers(len(CLOTHES))] * 0.7 + 0.15)
                else:
                    col = _srgb_to_lin(WOODS[rng.integers(len(WOODS))])
                if kind == "sofa":
                    self.boxes.append((lo.copy(), np.where(np.arange(3) == 1, 0.45, hi), col, kind))
                    back_lo, back_hi = lo.copy(), hi.copy()
                    if normal[0 if axis == 0 else 1] > 0:
                        back_lo[axis] = hi[axis] - 0.22
                    else:
                        back_hi[axis] = lo[axis] + 0.22
                    self.boxes.append((back_lo, back_hi, col * 0.9, kind))
                elif kind == "table":
                    top_lo = lo.copy()
                    top_lo[1] = high - 0.05
                    self.boxes.append((top_lo, hi.copy(), col, kind))
                    for cx in (lo[0] + 0.03, hi[0] - 0.08):
                        for cz in (lo[2] + 0.03, hi[2] - 0.08):
                            self.boxes.append((np.array([cx, 0.0, cz]), np.array([cx + 0.05, high - 0.05, cz + 0.05]),
                                               col * 0.8, kind))
                else:
                    self.boxes.append((lo, hi, col, kind))

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
        face = np.zeros((h, w), dtype=np.int8)
        with np.errstate(divide="ignore", invalid="ignore"):
            for i, (blo, bhi, _, _) in enumerate(self.boxes or []):
                t1 = (blo - o) / d
                t2 = (bhi - o) / d
                tn = np.minimum(t1, t2)
                tf = np.maximum(t1, t2)
                tmin = tn.max(-1)
                hit = (tf.min(-1) > np.maximum(tmin, 0)) & (tmin > 0) & (tmin < t)
                t = np.where(hit, tmin, t)
                surf = np.where(hit, 6 + i, surf)
                face = np.where(hit, tn.argmax(-1), face)
        p = o + d * t[..., None]
        img = np.zeros((h, w, 3), dtype=np.float32)
        for i, (blo, bhi, col, kind) in enumerate(self.boxes or []):
            m = surf == 6 + i
            if not m.any():
                continue
            fshade = np.array([0.78, 1.0, 0.68], np.float32)[face[m]]
            tex = 0.94 + 0.06 * np.sin(p[..., 0][m] * 37 + p[..., 2][m] * 29 + p[..., 1][m] * 13)
            if kind == "shelf":
                tex = tex * np.where((p[..., 1][m] % 0.35) < 0.025, 0.6, 1.0)
            elif kind == "cabinet":
                tex = tex * np.where(np.abs(p[..., 1][m] - bhi[1] * 0.5) < 0.008, 0.6, 1.0)
            img[m] = col[None] * (fshade * tex)[:, None]
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
        shade[surf >= 6] = 0.85
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
