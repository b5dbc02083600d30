"""PCK with the clip-level body scale (appliance.keypoints.body_scale), and ROC AUC."""
from __future__ import annotations

import numpy as np

from appliance import keypoints as kpmod
from appliance.geometry import Letterbox

VIS_THRESHOLD = 0.5
SEVEN = list(range(7))
HIPS = [7, 8]


def to_frame_pixels(pred_input: np.ndarray, sizes: np.ndarray, input_wh: tuple[int, int]) -> np.ndarray:
    """Input-normalised predictions [N, K, 3] -> frame pixels, per-frame (w, h) in ``sizes``."""
    out = pred_input.copy()
    for i, (w, h) in enumerate(sizes):
        lb = Letterbox(int(w), int(h), input_wh[0], input_wh[1])
        out[i, :, :2] = lb.input_to_frame(pred_input[i, :, :2]) * np.array([w, h], np.float32)
    return out


def pck(pred_px: np.ndarray, teacher_px: np.ndarray, clip_ids: np.ndarray, threshold: float = 0.25) -> dict:
    """PCK over teacher-visible keypoints with the clip body scale and with per-frame shoulders.

    pred_px, teacher_px: [N, K, 3] in frame pixels (teacher score = visibility).
    """
    teacher = teacher_px.copy()
    vis = np.isfinite(teacher[..., 0]) & (np.nan_to_num(teacher[..., 2]) >= VIS_THRESHOLD)
    teacher_masked = teacher.copy()
    teacher_masked[~vis] = np.nan
    dist = np.linalg.norm(pred_px[..., :2] - teacher[..., :2], axis=-1)
    correct_clip = np.zeros_like(vis)
    per_clip = {}
    for c in np.unique(clip_ids):
        m = clip_ids == c
        scale = kpmod.body_scale(teacher_masked[m])
        if not np.isfinite(scale) or scale <= 0:
            vis[m] = False
            continue
        correct_clip[m] = dist[m] <= threshold * scale
        v = vis[m]
        per_clip[int(c)] = float(correct_clip[m][v].mean()) if v.any() else float("nan")
    # per-frame shoulder distance
    sw = np.linalg.norm(teacher[:, kpmod.LEFT_SHOULDER, :2] - teacher[:, kpmod.RIGHT_SHOULDER, :2], axis=-1)
    sw_ok = vis[:, kpmod.LEFT_SHOULDER] & vis[:, kpmod.RIGHT_SHOULDER] & (sw > 0)
    correct_sw = dist <= threshold * sw[:, None]
    vis_sw = vis & sw_ok[:, None]

    def rate(correct, v, ks):
        vv = v[:, ks]
        return float(correct[:, ks][vv].mean()) if vv.any() else float("nan")

    res = {
        "pck_body_all": rate(correct_clip, vis, list(range(teacher.shape[1]))),
        "pck_body_seven": rate(correct_clip, vis, SEVEN),
        "pck_body_hips": rate(correct_clip, vis, HIPS) if teacher.shape[1] > 7 else float("nan"),
        "pck_shoulder_all": rate(correct_sw, vis_sw, list(range(teacher.shape[1]))),
        "pck_shoulder_seven": rate(correct_sw, vis_sw, SEVEN),
        "pck_shoulder_hips": rate(correct_sw, vis_sw, HIPS) if teacher.shape[1] > 7 else float("nan"),
        "per_keypoint_body": {kpmod.NAMES[k]: rate(correct_clip, vis, [k]) for k in range(teacher.shape[1])},
        "visible_points": int(vis.sum()),
        "frames": int(len(teacher)),
        "per_clip_body_all": per_clip,
    }
    return res


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels).astype(bool)
    npos, nneg = labels.sum(), (~labels).sum()
    if npos == 0 or nneg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def smoothed(prob: np.ndarray, fps: float, window_s: float = 1.0) -> np.ndarray:
    """Causal moving average over ``window_s`` seconds."""
    n = max(1, int(round(window_s * fps)))
    c = np.cumsum(np.insert(prob.astype(np.float64), 0, 0.0))
    out = np.empty(len(prob))
    for i in range(len(prob)):
        lo = max(0, i + 1 - n)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def longest_run_seconds(mask: np.ndarray, fps: float) -> float:
    best = cur = 0
    for v in mask:
        cur = cur + 1 if v else 0
        best = max(best, cur)
    return best / fps
