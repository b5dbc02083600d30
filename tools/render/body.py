"""Articulated human body: anthropometric dimensions and vectorised forward kinematics.

World frame: metres, y up, the floor is y = 0. A body's own frame has x forward (the way
the chest faces), y up (pelvis to neck) and z to the person's RIGHT, so the person's left
is -z. Every pose parameter is an array over frames [T]; `forward_kinematics` returns the
joint positions [T, J, 3] plus the trunk and head rotations used to orient the ellipsoids.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Joint table (render skeleton; the label keypoints are a subset, see KEYPOINT_JOINTS).
JOINTS = (
    "pelvis", "hip_l", "hip_r", "knee_l", "knee_r", "ankle_l", "ankle_r", "heel_l", "heel_r",
    "toe_l", "toe_r", "neck", "shoulder_l", "shoulder_r", "elbow_l", "elbow_r", "wrist_l",
    "wrist_r", "hand_l", "hand_r", "head", "nose", "neck_top",
)
J = {name: i for i, name in enumerate(JOINTS)}

# appliance.keypoints order: L wrist, L elbow, L shoulder, head, R shoulder, R elbow, R wrist, L hip, R hip.
# The "head" keypoint is the nose, as the teacher's is (appliance.keypoints.from_mediapipe33 takes
# MediaPipe's landmark 0); the centre of the skull sits a third of a body scale away from it.
KEYPOINT_JOINTS = (
    J["wrist_l"], J["elbow_l"], J["shoulder_l"], J["nose"], J["shoulder_r"], J["elbow_r"],
    J["wrist_r"], J["hip_l"], J["hip_r"],
)

# Pose parameters: angles in radians; every one is an array [T] (missing ones default to 0).
PARAMS = (
    "x", "z", "yaw", "pitch", "neck",
    "hip_flex_l", "hip_flex_r", "hip_abd_l", "hip_abd_r", "knee_l", "knee_r", "ankle_l", "ankle_r",
    "sh_flex_l", "sh_flex_r", "sh_abd_l", "sh_abd_r", "elbow_l", "elbow_r",
    "ik_l", "ik_r",  # weight 0..1 of planting the wrist on the target below
    "flare_l", "flare_r",  # planted arms: elbows out (> 0) or tucked along the body (< 0)
    "wx_l", "wz_l", "wx_r", "wz_r",  # wrist targets on the floor (world x, z)
)


@dataclass(frozen=True)
class Dims:
    """Segment lengths and radii (metres) for a person of the given height."""

    height: float = 1.75
    girth: float = 1.0  # radius multiplier (build)

    @property
    def k(self) -> float:
        return self.height / 1.75


BASE = dict(
    torso=0.50,  # pelvis centre to neck base
    shoulder_drop=0.045,
    shoulder_half=0.175,
    hip_half=0.09,
    thigh=0.43,
    shin=0.43,
    upper_arm=0.30,
    forearm=0.26,
    hand=0.085,
    neck_len=0.09,
    head_up=0.10,
)

RADII = dict(
    thigh=(0.085, 0.057),
    shin=(0.056, 0.037),
    upper_arm=(0.052, 0.04),
    forearm=(0.04, 0.029),
    hand=(0.030, 0.022),
    neck=(0.054, 0.050),
    shoulders=0.06,
    heel=0.042,
    foot=(0.040, 0.030),
)


def lengths(dims: Dims) -> dict[str, float]:
    return {key: value * dims.k for key, value in BASE.items()}


def radii(dims: Dims) -> dict:
    out = {}
    for key, value in RADII.items():
        s = dims.k * dims.girth
        out[key] = tuple(v * s for v in value) if isinstance(value, tuple) else value * s
    return out


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, i = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def _mv(r: np.ndarray, v) -> np.ndarray:
    """Rotate vector(s) v by rotations r [T,3,3]; v is [3] or [T,3]."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 1:
        return r @ v
    return np.einsum("tij,tj->ti", r, v)


def full_params(params: dict, count: int) -> dict[str, np.ndarray]:
    out = {}
    for name in PARAMS:
        value = params.get(name, 0.0)
        out[name] = np.broadcast_to(np.asarray(value, dtype=np.float64), (count,)).copy()
    return out


def ik_elbow(shoulder: np.ndarray, wrist: np.ndarray, l1: float, l2: float, pole: np.ndarray):
    """Two-link IK: elbow position [T,3] and the wrist actually reached [T,3]."""
    d_vec = wrist - shoulder
    d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    d_clip = np.clip(d, abs(l1 - l2) + 1e-3, l1 + l2 - 1e-4)
    u = d_vec / np.maximum(d, 1e-9)
    reached = shoulder + u * d_clip
    a = (l1 * l1 - l2 * l2 + d_clip * d_clip) / (2 * d_clip)
    h = np.sqrt(np.maximum(l1 * l1 - a * a, 0.0))
    v = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
    return shoulder + a * u + h * v, reached


def forward_kinematics(params: dict, dims: Dims, root_y: np.ndarray | float = 0.0):
    """Joint positions [T,J,3] with the pelvis at (x, root_y, z), and trunk/head rotations."""
    count = len(np.atleast_1d(params.get("pitch", np.zeros(1))))
    count = max(count, max(len(np.atleast_1d(v)) for v in params.values()))
    p = full_params(params, count)
    L = lengths(dims)
    T = count
    joints = np.zeros((T, len(JOINTS), 3))
    r_trunk = _ry(p["yaw"]) @ _rz(-p["pitch"])
    pelvis = np.stack([p["x"], np.broadcast_to(root_y, (T,)), p["z"]], -1).astype(np.float64)
    joints[:, J["pelvis"]] = pelvis
    joints[:, J["neck"]] = pelvis + _mv(r_trunk, [0.0, L["torso"], 0.0])
    r_head = r_trunk @ _rz(-p["neck"])
    joints[:, J["neck_top"]] = joints[:, J["neck"]] + _mv(r_head, [0.012, L["neck_len"], 0.0])
    joints[:, J["head"]] = joints[:, J["neck_top"]] + _mv(r_head, [0.025, L["head_up"], 0.0])
    joints[:, J["nose"]] = joints[:, J["head"]] + _mv(r_head, [0.105 * dims.k, -0.01, 0.0])

    heading = _mv(_ry(p["yaw"]), [1.0, 0.0, 0.0])
    for side_name, side in (("l", -1.0), ("r", 1.0)):
        # legs
        hip = pelvis + _mv(r_trunk, [0.0, -0.02, side * L["hip_half"]])
        r_thigh = r_trunk @ _rx(-side * p[f"hip_abd_{side_name}"]) @ _rz(p[f"hip_flex_{side_name}"])
        knee = hip + _mv(r_thigh, [0.0, -L["thigh"], 0.0])
        r_shin = r_thigh @ _rz(-p[f"knee_{side_name}"])
        ankle = knee + _mv(r_shin, [0.0, -L["shin"], 0.0])
        r_foot = r_shin @ _rz(-p[f"ankle_{side_name}"])
        k = dims.k
        heel = ankle + _mv(r_foot, [-0.045 * k, -0.040 * k, 0.0])
        toe = ankle + _mv(r_foot, [0.165 * k, -0.048 * k, 0.0])
        joints[:, J[f"hip_{side_name}"]] = hip
        joints[:, J[f"knee_{side_name}"]] = knee
        joints[:, J[f"ankle_{side_name}"]] = ankle
        joints[:, J[f"heel_{side_name}"]] = heel
        joints[:, J[f"toe_{side_name}"]] = toe
        # arms (forward kinematics, optionally blended with a planted wrist)
        shoulder = pelvis + _mv(r_trunk, [0.0, L["torso"] - L["shoulder_drop"], side * L["shoulder_half"]])
        r_up = r_trunk @ _rx(-side * p[f"sh_abd_{side_name}"]) @ _rz(p[f"sh_flex_{side_name}"])
        elbow = shoulder + _mv(r_up, [0.0, -L["upper_arm"], 0.0])
        r_fore = r_up @ _rz(p[f"elbow_{side_name}"])
        wrist = elbow + _mv(r_fore, [0.0, -L["forearm"], 0.0])
        hand = wrist + _mv(r_fore, [0.0, -L["hand"], 0.0])
        w = p[f"ik_{side_name}"][:, None]
        if np.any(w > 0):
            target = np.stack([p[f"wx_{side_name}"], np.full(T, 0.042 * k), p[f"wz_{side_name}"]], -1)
            lateral = _mv(_ry(p["yaw"]), [0.0, 0.0, side])
            flare = p[f"flare_{side_name}"][:, None]
            pole = -0.75 * heading + 0.55 * np.array([0.0, 1.0, 0.0]) + (0.55 + flare) * lateral
            ik_el, reached = ik_elbow(shoulder, target, L["upper_arm"], L["forearm"], pole)
            ik_hand = reached + heading * L["hand"] + np.array([0.0, -0.018 * k, 0.0])
            elbow = (1 - w) * elbow + w * ik_el
            wrist = (1 - w) * wrist + w * reached
            hand = (1 - w) * hand + w * ik_hand
        joints[:, J[f"shoulder_{side_name}"]] = shoulder
        joints[:, J[f"elbow_{side_name}"]] = elbow
        joints[:, J[f"wrist_{side_name}"]] = wrist
        joints[:, J[f"hand_{side_name}"]] = hand
    return joints, r_trunk, r_head


# Points that may touch the floor and their radii (to keep the body above y = 0).
CONTACTS = (
    ("toe_l", 0.030), ("toe_r", 0.030), ("heel_l", 0.042), ("heel_r", 0.042),
    ("knee_l", 0.055), ("knee_r", 0.055), ("wrist_l", 0.042), ("wrist_r", 0.042),
    ("hand_l", 0.022), ("hand_r", 0.022),
)


def floor_offset(joints: np.ndarray, dims: Dims, ik: dict | None = None) -> np.ndarray:
    """Per-frame y shift that puts the lowest contact point on the floor.

    Wrists and hands of arms that are (partly) planted by IK are left out: IK puts them on
    the floor itself.
    """
    heights = []
    for name, r in CONTACTS:
        h = joints[:, J[name], 1] - r * dims.k * dims.girth
        side = name[-1]
        if ik is not None and name.split("_")[0] in ("wrist", "hand"):
            h = np.where(ik[side] > 0, np.inf, h)
        heights.append(h)
    return -np.stack(heights, -1).min(axis=-1)


def pose(params: dict, dims: Dims, anchor: str | None = None, anchor_x=None, plant: bool = True):
    """FK, then drop the body onto the floor; optionally slide it so joint `anchor` sits at x.

    With `plant`, a body whose IK-planted hands could not reach their targets is lowered.

    Returns joints [T,J,3], trunk rotations [T,3,3], head rotations [T,3,3].
    """
    count = max(len(np.atleast_1d(v)) for v in params.values())
    p = full_params(params, count)
    free = dict(p, ik_l=np.zeros(count), ik_r=np.zeros(count))
    joints0, _, _ = forward_kinematics(free, dims)
    root_y = floor_offset(joints0, dims, ik={"l": p["ik_l"], "r": p["ik_r"]})
    shift = np.zeros(count)
    if anchor is not None:
        shift = np.broadcast_to(np.asarray(anchor_x, dtype=np.float64), (count,)) - joints0[:, J[anchor], 0]
    # fully planted hands must reach the floor: lower the body (a little) where straight arms would not
    L = lengths(dims)
    reach = 0.995 * (L["upper_arm"] + L["forearm"])
    drop = np.zeros(count)
    for side in ("l", "r"):
        w = p[f"ik_{side}"]
        if not plant or not np.any(w > 0):
            continue
        sh = joints0[:, J[f"shoulder_{side}"]].copy()
        sh[:, 1] += root_y
        sh[:, 0] += shift
        dxz = np.hypot(sh[:, 0] - p[f"wx_{side}"], sh[:, 2] - p[f"wz_{side}"])
        top = 0.042 * dims.k + np.sqrt(np.maximum(reach ** 2 - dxz ** 2, 0.0))
        need = np.clip(sh[:, 1] - top, 0.0, 0.05 * dims.k)  # never sink more than 5 cm into the floor
        drop = np.maximum(drop, np.where(w >= 0.99, need, 0.0))
    root_y = root_y - drop
    p["x"] = p["x"] + shift
    return forward_kinematics(p, dims, root_y=root_y)
