"""Scenario timelines: pose parameters per frame and the exact rep labels.

Every scenario returns a `Motion`: joint positions [T,J,3] (world, metres), trunk and head
rotations, whether a person is present per frame, and the exact times of each push-up's
top (the moment the arms re-extend at the end of the push).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import body as B

SCENARIOS = ("pushups", "plank", "standing", "walking", "squats", "floor", "empty")


@dataclass
class Motion:
    joints: np.ndarray  # [T,J,3]
    r_trunk: np.ndarray  # [T,3,3]
    r_head: np.ndarray  # [T,3,3]
    present: np.ndarray  # [T] bool
    rep_top_times: np.ndarray  # [R] seconds
    fps: float
    dims: B.Dims
    info: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return len(self.joints)


def ease(u):
    u = np.clip(u, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * u)


# ---------------------------------------------------------------------------------------------
# Key poses (sagittal joint angles, radians)

def _flat_ankle(p: dict) -> float:
    """Ankle angle that keeps the foot flat on the floor for the given trunk/hip/knee."""
    return p.get("hip_flex", 0.0) - p.get("knee", 0.0) - p.get("pitch", 0.0)


def _sym(**kw) -> dict:
    """Expand side-less names (knee=...) into _l/_r pairs."""
    out = {}
    for key, value in kw.items():
        if key in ("hip_flex", "hip_abd", "knee", "ankle", "sh_flex", "sh_abd", "elbow", "ik"):
            out[f"{key}_l"] = value
            out[f"{key}_r"] = value
        else:
            out[key] = value
    return out


def stand_pose(rng=None) -> dict:
    j = (lambda s: rng.normal(0, s)) if rng is not None else (lambda s: 0.0)
    p = _sym(pitch=0.03 + j(0.02), hip_flex=0.02, hip_abd=0.06, knee=0.06, sh_flex=0.08 + j(0.05),
             sh_abd=0.14, elbow=0.25 + j(0.1), neck=0.05 + j(0.05))
    a = 0.02 - 0.06 - p["pitch"]
    p["ankle_l"] = p["ankle_r"] = a
    return p


def crouch_pose() -> dict:
    p = _sym(pitch=0.75, hip_flex=1.75, hip_abd=0.12, knee=2.05, sh_flex=1.1, sh_abd=0.12, elbow=0.2, neck=-0.2)
    p["ankle_l"] = p["ankle_r"] = 1.75 - 2.05 - 0.75
    return p


def quadruped_pose() -> dict:
    return _sym(pitch=np.radians(84), hip_flex=np.radians(88), hip_abd=0.05, knee=np.radians(92),
                ankle=1.25, sh_flex=np.radians(88), sh_abd=0.1, elbow=0.0, neck=-0.25, ik=1.0)


def plank_pose(theta: float, sag: float = 0.0, neck: float = 0.0, knees: bool = False) -> dict:
    """Straight body at angle theta above the floor, on the toes (or knees), hands planted."""
    return _sym(pitch=np.pi / 2 - theta, hip_flex=-sag, hip_abd=0.04, knee=1.75 if knees else 0.0,
                ankle=0.6 if knees else 0.28, sh_flex=np.radians(80), sh_abd=0.15, elbow=0.0, neck=neck, ik=1.0)


class Keyframes:
    """Piecewise eased interpolation of parameter dicts on a time line."""

    def __init__(self):
        self.times: list[float] = []
        self.poses: list[dict] = []

    def add(self, t: float, pose: dict):
        self.times.append(float(t))
        self.poses.append(dict(pose))
        return self

    def sample(self, t: np.ndarray) -> dict:
        names = set()
        for p in self.poses:
            names |= set(p)
        times = np.asarray(self.times)
        seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1)
        nxt = np.minimum(seg + 1, len(times) - 1)
        span = np.maximum(times[nxt] - times[seg], 1e-9)
        u = ease((t - times[seg]) / span)
        u = np.where(nxt == seg, 0.0, u)
        out = {}
        for name in names:
            vals = np.array([np.asarray(p.get(name, 0.0), dtype=np.float64) for p in self.poses])
            out[name] = vals[seg] * (1 - u) + vals[nxt] * u
        return out


# ---------------------------------------------------------------------------------------------
# Push-up geometry: solve the plank angle for arms straight (top) and chest near the floor


class PushupGeometry:
    def __init__(self, dims: B.Dims, sag: float = 0.0, hand_out: float = 0.07, hand_fwd: float = 0.03,
                 knees: bool = False):
        self.dims = dims
        self.flare = 0.0
        L = B.lengths(dims)
        self.arm = L["upper_arm"] + L["forearm"]
        self.knees = knees
        self.anchor = "knee_l" if knees else "toe_l"
        thetas = np.radians(np.linspace(0.0, 60.0, 241))
        params = plank_pose(thetas, sag, knees=knees)
        params = {k: np.broadcast_to(v, thetas.shape) for k, v in params.items()}
        joints, r_trunk, _ = B.pose(params, dims, anchor=self.anchor, anchor_x=0.0, plant=False)
        self.thetas = thetas
        sh = joints[:, B.J["shoulder_l"]]
        k = dims.k
        wrist_y = 0.042 * k
        # hands a little outside and in front of the shoulders; arms straight at the top
        self.wz = L["shoulder_half"] + hand_out * k
        dz = hand_out * k
        dist = np.sqrt((sh[:, 1] - wrist_y) ** 2 + dz ** 2 + (hand_fwd * k) ** 2)
        i = int(np.argmin(np.abs(dist - 0.98 * self.arm)))
        self.theta_top = float(thetas[i])
        self.wx = float(sh[i, 0] + hand_fwd * k)
        # bottom: lowest point of the chest 4 cm above the floor
        chest = joints[:, B.J["pelvis"]] + np.einsum("tij,j->ti", r_trunk, [0.02, 0.36 * k, 0.0])
        lowest = chest[:, 1] - np.sqrt(np.sum((r_trunk[:, 1, :] * np.array([0.115, 0.17, 0.17]) * k) ** 2, -1))
        j = int(np.argmin(np.abs(lowest - 0.045)))
        self.theta_bottom = float(thetas[j])
        wrist = np.array([self.wx, wrist_y, -self.wz])
        self.reach_top = 0.98 * self.arm
        self.reach_bottom = float(np.linalg.norm(sh[j] - wrist))

    def reach(self, progress):
        """Shoulder-to-wrist distance for a progress (0 = top, arms straight; 1 = full depth)."""
        return self.reach_top + np.asarray(progress) * (self.reach_bottom - self.reach_top)

    def theta(self, progress):
        return self.theta_top + np.asarray(progress) * (self.theta_bottom - self.theta_top)


# ---------------------------------------------------------------------------------------------
# Scenario builders. Each fills per-frame parameter arrays.


@dataclass
class Options:
    reps: int = 8
    tempo: float = 1.0  # reps per second while moving (excluding pauses)
    depth: str | float = "full"  # full, shallow, mixed or a fraction of full depth
    pause_top: float = 0.0
    pause_bottom: float = 0.0
    get_up: bool = True  # get into position at the start and stand up at the end
    knees: bool = False  # knee push-ups
    rest_after: int = 0  # after this many reps, drop to the knees for rest_s seconds, then go on
    rest_s: float = 3.0
    duration: float | None = None  # non push-up scenarios (seconds)
    sag: float = 0.0  # extra hip sag (radians)
    height: float | None = None  # person's height (m); seeded if None
    variation: float = 0.15  # per-rep tempo/depth variation
    flow: str | None = None  # floor scenario: one of FLOOR_FLOWS (seeded if None)


def _depth_value(depth, rng) -> float:
    if isinstance(depth, (int, float)):
        return float(depth)
    if depth == "full":
        return float(np.clip(rng.normal(1.0, 0.04), 0.88, 1.05))
    if depth == "shallow":
        return float(np.clip(rng.normal(0.45, 0.06), 0.3, 0.6))
    if depth == "mixed":
        return _depth_value("full" if rng.random() < 0.6 else "shallow", rng)
    raise ValueError(f"unknown depth {depth!r}")


def _rep_schedule(opts: Options, rng, start: float):
    """List of (t0, t_bottom_start, t_bottom_end, t_top, depth) per rep and the end time."""
    reps = []
    t = start
    period = 1.0 / max(opts.tempo, 0.05)
    for i in range(opts.reps):
        fatigue = 1.0 + 0.25 * (i / max(opts.reps - 1, 1)) * rng.random()
        p = period * fatigue * float(np.clip(rng.normal(1.0, opts.variation), 0.6, 1.5))
        down = p * float(np.clip(rng.normal(0.5, 0.05), 0.38, 0.62))
        up = p - down
        hold_b = opts.pause_bottom * float(np.clip(rng.normal(1.0, 0.2), 0.5, 1.5)) if opts.pause_bottom else 0.0
        depth = _depth_value(opts.depth, rng)
        t0 = t
        tb0 = t0 + down
        tb1 = tb0 + hold_b
        ttop = tb1 + up
        reps.append((t0, tb0, tb1, ttop, depth))
        hold_t = opts.pause_top * float(np.clip(rng.normal(1.0, 0.2), 0.5, 1.5)) if opts.pause_top else 0.0
        t = ttop + hold_t + float(abs(rng.normal(0.0, 0.04 * period)))
        if i + 1 == _rest_window(opts):
            t = ttop + 0.3 + 1.6 + opts.rest_s + 0.3  # down to the knees, rest, back up (see pushups)
    return reps, t


def _rest_window(opts: Options):
    return opts.rest_after if 0 < opts.rest_after < opts.reps else 0


def _progress(t: np.ndarray, reps) -> np.ndarray:
    s = np.zeros_like(t)
    for t0, tb0, tb1, ttop, depth in reps:
        m = (t >= t0) & (t < tb0)
        s[m] = depth * ease((t[m] - t0) / (tb0 - t0))
        m = (t >= tb0) & (t < tb1)
        s[m] = depth
        m = (t >= tb1) & (t < ttop)
        s[m] = depth * (1 - ease((t[m] - tb1) / (ttop - tb1)))
    return s


def _pushup_params(geo: PushupGeometry, t: np.ndarray, progress: np.ndarray, sag: np.ndarray, rng) -> dict:
    theta = geo.theta(progress)
    neck = -0.42 * progress + 0.05 + 0.05 * np.sin(2 * np.pi * 0.23 * t + rng.uniform(0, 6))
    p = plank_pose(theta, sag, neck, knees=geo.knees)
    p.update(wx_l=geo.wx, wx_r=geo.wx, wz_l=-geo.wz, wz_r=geo.wz, flare_l=geo.flare, flare_r=geo.flare)
    return p


def _blend(a: dict, b: dict, w: np.ndarray) -> dict:
    out = {}
    for name in set(a) | set(b):
        va = np.asarray(a.get(name, 0.0), dtype=np.float64)
        vb = np.asarray(b.get(name, 0.0), dtype=np.float64)
        out[name] = va * (1 - w) + vb * w
    return out


def pushups(t: np.ndarray, opts: Options, dims: B.Dims, rng, plank_only: bool = False):
    sag_base = opts.sag + float(np.clip(rng.normal(0.03, 0.04), -0.04, 0.12))
    # personal style: hand width and placement, elbow flare
    hand_out = float(rng.uniform(0.02, 0.2))
    hand_fwd = float(rng.uniform(-0.03, 0.08))
    flare = float(rng.uniform(-0.45, 0.6))
    geo = PushupGeometry(dims, sag=sag_base, hand_out=hand_out, hand_fwd=hand_fwd, knees=opts.knees)
    geo.flare = flare
    # pelvis x of the plank (toes anchored at 0) at the top pose
    top = plank_pose(np.array([geo.theta_top]), sag_base, knees=opts.knees)
    top.update(wx_l=geo.wx, wx_r=geo.wx, wz_l=-geo.wz, wz_r=geo.wz)
    jt, _, _ = B.pose({k: np.atleast_1d(v) for k, v in top.items()}, dims, anchor=geo.anchor, anchor_x=0.0)
    plank_x = float(jt[0, B.J["pelvis"], 0])

    get_in = 3.2 if opts.get_up else 0.0
    start = get_in + (0.6 if opts.get_up else 0.3)
    if plank_only:
        reps, end = [], start + (opts.duration or 10.0)
    else:
        reps, end = _rep_schedule(opts, rng, start)
    progress = _progress(t, reps)
    sag = sag_base + 0.06 * progress * rng.uniform(0.0, 1.0) + 0.008 * np.sin(2 * np.pi * 0.31 * t)
    if plank_only:
        progress = progress + 0.01 * np.sin(2 * np.pi * 0.4 * t)
    params = _pushup_params(geo, t, progress, sag, rng)
    params["x"] = np.zeros_like(t)  # replaced by the toe anchor
    # solve the body angle per frame so that the arm extension follows the progress exactly
    target = geo.reach(np.clip(progress, 0.0, None))
    wrist = np.array([geo.wx, 0.042 * dims.k, -geo.wz])
    theta = geo.theta(progress)

    def reach(th):
        pp = dict(params, pitch=np.pi / 2 - th)
        jj, _, _ = B.pose(pp, dims, anchor=geo.anchor, anchor_x=0.0, plant=False)
        return np.linalg.norm(jj[:, B.J["shoulder_l"]] - wrist, axis=-1)

    # Newton on the body angle, with bounded steps (reach grows with theta)
    for _ in range(4):
        r0 = reach(theta)
        r1 = reach(theta + 1e-3)
        slope = np.maximum(r1 - r0, 1e-5)
        theta = theta + np.clip((target - r0) * 1e-3 / slope, -0.15, 0.15)
        theta = np.clip(theta, 0.0, geo.thetas[-1])
    params["pitch"] = np.pi / 2 - theta
    joints, r_trunk, r_head = B.pose(params, dims, anchor=geo.anchor, anchor_x=0.0)

    quad_x = geo.wx - 0.47 * dims.k
    wr = dict(wx_l=geo.wx, wx_r=geo.wx, wz_l=-geo.wz, wz_r=geo.wz, flare_l=flare, flare_r=flare)
    quad = dict(quadruped_pose(), x=quad_x, **wr)
    plank = dict(plank_pose(geo.theta_top, sag_base, knees=opts.knees), x=plank_x, **wr)
    rest = None
    if _rest_window(opts) and not plank_only:
        # a rest on the knees between two reps, hands planted
        r0 = reps[_rest_window(opts) - 1][3] + 0.3
        rest = (r0, r0 + 1.6 + opts.rest_s)
        kr = Keyframes()
        kr.add(r0, plank).add(r0 + 0.8, quad).add(rest[1] - 0.8, quad).add(rest[1], plank)
        rp = kr.sample(t)
        rj, rt, rh = B.pose(rp, dims)
        use = (t > rest[0]) & (t < rest[1])
        joints = np.where(use[:, None, None], rj, joints)
        r_trunk = np.where(use[:, None, None], rt, r_trunk)
        r_head = np.where(use[:, None, None], rh, r_head)
    if opts.get_up:
        # keyframed transitions in and out, blended onto the plank motion
        stand = dict(stand_pose(rng), x=quad_x + 0.08)
        crouch = dict(crouch_pose(), x=quad_x - 0.02)
        half = dict(quad, **{k: v for k, v in plank_pose(geo.theta_top, sag_base, knees=opts.knees).items()
                             if k.endswith("_l")})
        half.update(pitch=np.radians(80), x=0.5 * (quad_x + plank_x), hip_flex_l=0.33)
        kf = Keyframes()
        kf.add(0.0, stand).add(0.5, stand).add(1.3, crouch).add(2.1, quad).add(2.7, half).add(get_in, plank)
        t_up = end + 0.5
        kf.add(t_up, plank).add(t_up + 0.7, half).add(t_up + 1.3, quad).add(t_up + 2.2, crouch)
        kf.add(t_up + 3.0, stand)
        kp = kf.sample(t)
        kp["ik_l"] = np.clip(kp.get("ik_l", 0.0), 0, 1) ** 2
        kp["ik_r"] = np.clip(kp.get("ik_r", 0.0), 0, 1) ** 2
        kj, kt, kh = B.pose(kp, dims)
        use_kf = (t < get_in) | (t > t_up)
        joints = np.where(use_kf[:, None, None], kj, joints)
        r_trunk = np.where(use_kf[:, None, None], kt, r_trunk)
        r_head = np.where(use_kf[:, None, None], kh, r_head)
    tops = np.array([r[3] for r in reps], dtype=np.float64)
    info = dict(rep_depths=[r[4] for r in reps], rep_bottom_times=[r[1] for r in reps], plank_start=start,
                plank_span=(get_in, end + 0.5), rest_span=rest, end_time=(end + 0.5 + (3.6 if opts.get_up else 0.5)))
    return joints, r_trunk, r_head, tops, info


GESTURES = {
    "rest": {},
    "hips": _sym(sh_abd=0.55, sh_flex=-0.25, elbow=1.7),
    "crossed": _sym(sh_flex=0.35, sh_abd=0.05, elbow=2.0),
    "phone": dict(sh_flex_r=0.25, elbow_r=1.6, sh_flex_l=0.2, elbow_l=1.3, neck=0.45),
    "stretch": _sym(sh_flex=2.6, sh_abd=0.3, elbow=0.3),
    "wave": dict(sh_abd_r=1.3, sh_flex_r=0.4, elbow_r=1.4),
    "scratch": dict(sh_flex_l=1.2, sh_abd_l=0.9, elbow_l=2.3, neck=0.15),
}


def standing(t: np.ndarray, opts: Options, dims: B.Dims, rng):
    base = stand_pose(rng)
    kf = Keyframes()
    names = list(GESTURES)
    time = 0.0
    while time <= t[-1] + 3.0:
        g = GESTURES[names[int(rng.integers(len(names)))]] if rng.random() < 0.7 else {}
        pose = dict(base, **g)
        pose["x"] = 0.5 + rng.normal(0, 0.05)
        pose["z"] = rng.normal(0, 0.05)
        pose["yaw"] = rng.normal(0, 0.35)
        pose["pitch"] = base["pitch"] + rng.normal(0, 0.03)
        hold = rng.uniform(0.8, 2.5)
        kf.add(time, pose).add(time + hold, pose)
        time += hold + rng.uniform(0.5, 1.2)
    p = kf.sample(t)
    ph = rng.uniform(0, 6, size=3)
    p["pitch"] = p["pitch"] + 0.015 * np.sin(2 * np.pi * 0.2 * t + ph[0])
    p["neck"] = p.get("neck", 0.0) + 0.08 * np.sin(2 * np.pi * 0.11 * t + ph[1])
    # weight shift from one leg to the other
    shift = 0.05 * np.sin(2 * np.pi * 0.07 * t + ph[2])
    p["hip_abd_l"] = p["hip_abd_l"] + shift
    p["hip_abd_r"] = p["hip_abd_r"] - shift
    joints, r_trunk, r_head = B.pose(p, dims)
    return joints, r_trunk, r_head


def walking(t: np.ndarray, opts: Options, dims: B.Dims, rng):
    speed = rng.uniform(0.9, 1.3) * dims.k
    cadence = rng.uniform(0.85, 1.0)  # strides per second
    span = rng.uniform(2.4, 3.6)
    # back and forth along x between -span/2 and span/2, slowing down and turning at the ends
    pos = speed * t + rng.uniform(0, 2 * span)
    x = -0.5 * span * np.cos(np.pi * pos / span)
    vel = np.sin(np.pi * pos / span)
    yaw = np.pi * (1.0 - ease(0.5 + 1.5 * vel))
    amp = np.clip(np.abs(vel) * 1.4, 0.35, 1.0)  # shorter steps while turning
    ph = 2 * np.pi * cadence * t
    swing_l = np.sin(ph)
    swing_r = np.sin(ph + np.pi)
    p = {}
    p["x"] = x
    p["z"] = np.full_like(t, rng.uniform(-0.3, 0.3))
    p["yaw"] = yaw
    p["pitch"] = np.full_like(t, 0.06)
    p["neck"] = np.full_like(t, 0.05)
    for side, sw in (("l", swing_l), ("r", swing_r)):
        hip = 0.38 * sw * amp
        knee = 0.08 + 0.55 * amp * np.clip(np.sin(ph + (0.0 if side == "l" else np.pi) - 1.2), 0, 1) ** 1.5
        p[f"hip_flex_{side}"] = hip
        p[f"hip_abd_{side}"] = np.full_like(t, 0.04)
        p[f"knee_{side}"] = knee
        p[f"ankle_{side}"] = hip - knee - 0.06
        p[f"sh_flex_{side}"] = -0.3 * sw * amp + 0.05
        p[f"sh_abd_{side}"] = np.full_like(t, 0.12)
        p[f"elbow_{side}"] = 0.35 + 0.15 * np.clip(-sw, 0, 1)
    joints, r_trunk, r_head = B.pose(p, dims)
    return joints, r_trunk, r_head


def squats(t: np.ndarray, opts: Options, dims: B.Dims, rng):
    period = 1.0 / max(opts.tempo * 0.6, 0.05)
    u = 0.5 - 0.5 * np.cos(2 * np.pi * t / period)
    u = np.clip(u * rng.uniform(0.8, 1.05), 0, 1)
    sp = stand_pose(rng)
    p = {k: np.full_like(t, v) for k, v in sp.items()}
    p["hip_flex_l"] = p["hip_flex_r"] = 0.02 + 1.55 * u
    p["knee_l"] = p["knee_r"] = 0.06 + 1.85 * u
    p["pitch"] = 0.03 + 0.62 * u
    p["hip_abd_l"] = p["hip_abd_r"] = 0.1 + 0.12 * u
    a = p["hip_flex_l"] - p["knee_l"] - p["pitch"]
    p["ankle_l"] = p["ankle_r"] = a
    p["sh_flex_l"] = p["sh_flex_r"] = 0.1 + 1.35 * u
    p["elbow_l"] = p["elbow_r"] = 0.25 - 0.15 * u
    p["neck"] = -0.3 * u
    p["x"] = np.full_like(t, 0.5)
    joints, r_trunk, r_head = B.pose(p, dims)
    return joints, r_trunk, r_head


# Floor and mat moves that are not push-ups: the recogniser's hard negatives (yoga flows, a
# person lying or sitting on the mat). Angles in degrees; world segment angles follow from
# pitch - hip_flex (thigh), + knee (shin), pitch - sh_flex (upper arm), - elbow (forearm), with
# 0 = straight down and positive = towards the feet. Arms are not planted by IK: the lowest
# contact (hand, knee, toe) sets the floor.
def _floor_pose(pitch, hip, knee, sh, elbow=5.0, neck=0.0, ankle=None, **side) -> dict:
    p = _sym(pitch=np.radians(pitch), hip_flex=np.radians(hip), hip_abd=0.06, knee=np.radians(knee),
             sh_flex=np.radians(sh), sh_abd=0.12, elbow=np.radians(elbow), neck=np.radians(neck))
    p["ankle_l"] = p["ankle_r"] = np.radians(ankle) if ankle is not None else _flat_ankle(p)
    p.update({k: np.radians(v) for k, v in side.items()})
    return p


FLOOR_POSES = {
    "quadruped": _floor_pose(75, 78, 90, 75, ankle=70),
    "cat": _floor_pose(68, 71, 90, 68, neck=30, ankle=70),          # back rounded: head down
    "cow": _floor_pose(82, 85, 90, 82, neck=-35, ankle=70),         # back arched: head up
    "child": _floor_pose(100, 165, 155, 190, elbow=-15, neck=-30, ankle=60),
    "down_dog": _floor_pose(135, 120, 0, 178, elbow=0, neck=10),
    "prone": _floor_pose(86, -4, 0, 161, elbow=15, ankle=60),     # lying on the front, forearms down
    "sphinx": _floor_pose(61, -29, 0, 61, elbow=90, neck=-10, ankle=60),
    "cobra": _floor_pose(50, -40, 0, 50, elbow=80, neck=-20, ankle=60),
    "seated": _floor_pose(-5, 85, 5, 25, elbow=30, neck=5),
    "seated_fold": _floor_pose(55, 145, 5, 130, elbow=5, neck=15),
    "bird_dog_l": _floor_pose(75, 78, 90, 75, ankle=70, sh_flex_l=165, elbow_l=0, hip_flex_r=-10, knee_r=0),
    "bird_dog_r": _floor_pose(75, 78, 90, 75, ankle=70, sh_flex_r=165, elbow_r=0, hip_flex_l=-10, knee_l=0),
}

# Flows: the poses a clip cycles through, and the seconds each move takes
FLOOR_FLOWS = {
    "cat_cow": (("quadruped", "cat", "quadruped", "cow"), (1.0, 2.2)),
    "sphinx": (("prone", "sphinx", "sphinx", "prone"), (1.5, 3.5)),
    "cobra": (("prone", "cobra", "cobra", "prone"), (1.2, 3.0)),
    "child_dog": (("quadruped", "child", "quadruped", "down_dog"), (1.5, 3.0)),
    "seated": (("seated", "seated", "seated_fold", "seated"), (1.5, 4.0)),
    "bird_dog": (("quadruped", "bird_dog_l", "quadruped", "bird_dog_r"), (1.0, 2.5)),
}


def floor(t: np.ndarray, opts: Options, dims: B.Dims, rng, flow: str | None = None):
    name = flow or str(rng.choice(sorted(FLOOR_FLOWS)))
    poses, (lo, hi) = FLOOR_FLOWS[name]
    kf = Keyframes()
    time, i = 0.0, int(rng.integers(len(poses)))
    while time <= t[-1] + hi:
        kf.add(time, FLOOR_POSES[poses[i % len(poses)]])
        time += float(rng.uniform(lo, hi))
        i += 1
    p = kf.sample(t)
    ph = rng.uniform(0, 6, size=2)
    p["pitch"] = p["pitch"] + 0.02 * np.sin(2 * np.pi * 0.25 * t + ph[0])   # breathing
    p["neck"] = p["neck"] + 0.12 * np.sin(2 * np.pi * 0.13 * t + ph[1])
    p["x"] = np.full_like(t, 0.5)
    joints, r_trunk, r_head = B.pose(p, dims)
    return joints, r_trunk, r_head, {"flow": name}


def _dims_and_rng(opts: Options, seed: int):
    rng = np.random.default_rng(seed)
    height = opts.height if opts.height else float(np.clip(rng.normal(1.74, 0.08), 1.55, 1.95))
    dims = B.Dims(height=height, girth=float(np.clip(rng.normal(1.0, 0.08), 0.85, 1.25)))
    return dims, rng


def _evaluate(scenario: str, opts: Options, seed: int, t: np.ndarray, duration: float):
    """Joints, rotations, rep tops and info at the times t (any array of seconds)."""
    dims, rng = _dims_and_rng(opts, seed)
    info: dict = {}
    tops = np.zeros(0)
    if scenario == "pushups":
        joints, r_trunk, r_head, tops, info = pushups(t, opts, dims, np.random.default_rng(seed))
    elif scenario == "plank":
        o = Options(**{**opts.__dict__, "get_up": False, "duration": duration})
        joints, r_trunk, r_head, _, info = pushups(t, o, dims, rng, plank_only=True)
    elif scenario == "floor":
        joints, r_trunk, r_head, info = floor(t, opts, dims, rng, opts.flow)
    elif scenario == "empty":
        joints = np.zeros((len(t), len(B.JOINTS), 3))
        r_trunk = r_head = np.broadcast_to(np.eye(3), (len(t), 3, 3)).copy()
    else:
        fn = {"standing": standing, "walking": walking, "squats": squats}[scenario]
        joints, r_trunk, r_head = fn(t, opts, dims, rng)
    return dims, joints, r_trunk, r_head, tops, info


def build(scenario: str, opts: Options, fps: float, seed: int, sub_offsets=None) -> Motion:
    """The scenario sampled at the frame times i / fps.

    `sub_offsets` (seconds, e.g. a shutter interval) also samples every frame at those
    offsets, for motion blur: Motion.info["sub"] = (joints [S,T,J,3], r_trunk, r_head).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {SCENARIOS}")
    if scenario == "pushups":
        # first pass to learn the clip length
        duration = _evaluate(scenario, opts, seed, np.zeros(1), 0.0)[5]["end_time"]
    else:
        duration = opts.duration or 10.0
    t = np.arange(int(np.ceil(duration * fps))) / fps
    dims, joints, r_trunk, r_head, tops, info = _evaluate(scenario, opts, seed, t, duration)
    if sub_offsets is not None and len(sub_offsets):
        off = np.asarray(sub_offsets, dtype=np.float64)
        ts = (off[:, None] + t[None, :]).reshape(-1)
        _, sj, st, sh, _, _ = _evaluate(scenario, opts, seed, ts, duration)
        n = len(off)
        info["sub"] = (sj.reshape(n, len(t), *sj.shape[1:]), st.reshape(n, len(t), 3, 3), sh.reshape(n, len(t), 3, 3))
    present = np.full(len(t), scenario != "empty")
    return Motion(joints, r_trunk, r_head, present, tops, fps, dims, info)
