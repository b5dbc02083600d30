"""Batch augmentation in torch (affine warp + photometric), keypoint-aware, and heatmap targets.

Geometry: each sample gets a random zoom, rotation, shift and horizontal flip applied with one
``affine_grid``/``grid_sample``; keypoints go through the same transform and, on a flip, swap
the person's left and right (``appliance.keypoints.FLIP_PERMUTATION``). Photometric:
brightness, contrast, saturation, colour gain, gamma, grey, blur, noise, low resolution.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from appliance.keypoints import FLIP_PERMUTATION

VIS_THRESHOLD = 0.5


def to_tensor(frames_u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames_u8)).permute(0, 3, 1, 2).float().div_(255.0)


def warp(images: torch.Tensor, kp: np.ndarray | None, out_hw: tuple[int, int], rng: np.random.Generator,
         train: bool = True, zoom=(0.75, 1.45), rot_deg=20.0, shift=0.12, person_zoom_p=0.35,
         crop: float = 1.0):
    """images NCHW float; kp [B, K, 3] input-normalised (x, y, vis) or None.

    ``crop`` > 1 cuts a window of 1/crop of the source at the source's pixel scale (training on
    crops is cheaper and keeps the scale the network sees at full-frame inference).

    Returns warped images [B, 3, out_h, out_w] and keypoints in the output's normalised frame.
    """
    B, _, H, W = images.shape
    aspect = W / H
    theta = np.zeros((B, 2, 3), np.float32)
    flips = np.zeros(B, bool)
    for b in range(B):
        if train:
            s = math.exp(rng.uniform(math.log(zoom[0]), math.log(zoom[1])))
            a = math.radians(rng.uniform(-rot_deg, rot_deg)) if rng.random() < 0.7 else 0.0
            flip = rng.random() < 0.5
            tx, ty = rng.uniform(-shift, shift) * 2, rng.uniform(-shift, shift) * 2
            if kp is not None and crop > 1.0:
                pts = kp[b, :, :2]
                ok = np.isfinite(pts).all(axis=1)
                if ok.sum() >= 3:
                    centre = pts[ok].mean(0) * 2 - 1
                    tx, ty = float(centre[0]) + rng.uniform(-0.25, 0.25), float(centre[1]) + rng.uniform(-0.25, 0.25)
                s = s * crop
            elif kp is not None and rng.random() < person_zoom_p:
                pts = kp[b, :, :2]
                ok = np.isfinite(pts).all(axis=1)
                if ok.sum() >= 3:
                    lo, hi = pts[ok].min(0), pts[ok].max(0)
                    centre = (lo + hi) / 2 * 2 - 1  # to [-1, 1]
                    extent = max((hi - lo).max(), 0.1)
                    s = float(np.clip(rng.uniform(0.8, 1.1) / extent, 1.0, 3.0))
                    tx, ty = float(centre[0]) + rng.uniform(-0.1, 0.1), float(centre[1]) + rng.uniform(-0.1, 0.1)
        else:
            s, a, flip, tx, ty = 1.0, 0.0, False, 0.0, 0.0
        c, si = math.cos(a), math.sin(a)
        f = -1.0 if flip else 1.0
        # source_iso = (1/s) R F out_iso ; iso = diag(aspect, 1) * normalised
        m = np.array([[c * f, -si], [si * f, c]], np.float32) / s
        d = np.diag([aspect, 1.0]).astype(np.float32)
        dinv = np.diag([1.0 / aspect, 1.0]).astype(np.float32)
        theta[b, :, :2] = dinv @ m @ d
        theta[b, :, 2] = (tx, ty)
        flips[b] = flip
    th = torch.from_numpy(theta).to(images.device)
    grid = F.affine_grid(th, (B, 3, out_hw[0], out_hw[1]), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    new_kp = None
    if kp is not None:
        new_kp = kp.copy()
        src = kp[:, :, :2] * 2 - 1  # [B, K, 2] in [-1, 1]
        for b in range(B):
            A = theta[b, :, :2]
            t = theta[b, :, 2]
            o = (np.linalg.inv(A) @ (src[b] - t).T).T
            new_kp[b, :, :2] = (o + 1) / 2
            if flips[b]:
                new_kp[b] = new_kp[b, list(FLIP_PERMUTATION[: kp.shape[1]])]
    return out, new_kp


def photometric(x: torch.Tensor, rng: np.random.Generator, strength: float = 1.0) -> torch.Tensor:
    B, dev = x.shape[0], x.device
    g = torch.Generator(device=dev).manual_seed(int(rng.integers(1 << 31)))
    u = lambda lo, hi, shape=(B, 1, 1, 1): lo + (hi - lo) * torch.rand(shape, generator=g, device=dev)
    mask = lambda p: (torch.rand((B, 1, 1, 1), generator=g, device=dev) < p).float()
    # low resolution (whole batch at one factor, on a random subset)
    if rng.random() < 0.3 * strength:
        factor = float(rng.uniform(2.0, 4.0))
        h, w = x.shape[-2:]
        small = F.interpolate(x, size=(max(8, int(h / factor)), max(8, int(w / factor))), mode="bilinear", align_corners=False, antialias=True)
        low = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        m = mask(0.6)
        x = m * low + (1 - m) * x
    # blur
    if rng.random() < 0.3 * strength:
        k = torch.tensor([1.0, 2.0, 1.0], device=dev)
        k = (k[:, None] * k[None, :]) / 16
        blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k.expand(3, 1, 3, 3).contiguous(), groups=3)
        m = mask(0.6)
        x = m * blurred + (1 - m) * x
    grey = x.mean(dim=1, keepdim=True)
    sat = u(1 - 0.5 * strength, 1 + 0.5 * strength)
    x = grey + (x - grey) * sat
    x = x * u(1 - 0.15 * strength, 1 + 0.15 * strength, (B, 3, 1, 1))  # colour gain
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(1 - 0.4 * strength, 1 + 0.4 * strength) + mean  # contrast
    x = x + u(-0.25 * strength, 0.25 * strength)  # brightness
    x = x.clamp(0, 1)
    gamma = torch.exp(u(-0.35 * strength, 0.35 * strength))
    x = x.clamp_min(1e-4) ** gamma
    m = mask(0.08 * strength)
    x = m * x.mean(dim=1, keepdim=True).expand_as(x) + (1 - m) * x
    noise_sd = u(0.0, 0.04 * strength) * mask(0.35)
    x = x + noise_sd * torch.randn(x.shape, generator=g, device=dev)
    return x.clamp(0, 1)


def heatmap_targets(kp: np.ndarray, height: int, width: int, sigma: float = 1.5, device="cpu"):
    """Torch version of geometry.encode_heatmaps for a batch, plus per-channel loss weights.

    kp [B, K, 3] input-normalised. Visible (score >= 0.5) points inside the input get a
    Gaussian; visible points outside get an all-zero map (weight 1); low-visibility or missing
    points get weight 0.
    """
    kp_t = torch.from_numpy(kp.astype(np.float32)).to(device)
    B, K, _ = kp_t.shape
    finite = torch.isfinite(kp_t).all(dim=-1)
    vis = finite & (torch.nan_to_num(kp_t[..., 2], nan=0.0) >= VIS_THRESHOLD)
    xy = torch.nan_to_num(kp_t[..., :2], nan=-10.0)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] <= 1) & (xy[..., 1] >= 0) & (xy[..., 1] <= 1)
    cx = (xy[..., 0] * width - 0.5)[..., None, None]
    cy = (xy[..., 1] * height - 0.5)[..., None, None]
    cols = torch.arange(width, dtype=torch.float32, device=device)[None, None, None, :]
    rows = torch.arange(height, dtype=torch.float32, device=device)[None, None, :, None]
    maps = torch.exp(-((cols - cx) ** 2 + (rows - cy) ** 2) / (2 * sigma * sigma))
    maps = maps * (vis & inside).float()[..., None, None]
    weight = vis.float()  # visible: supervised (peak or all-zero when outside)
    return maps, weight


def decode_batch(heatmaps: np.ndarray) -> np.ndarray:
    """[B, K, h, w] (NCHW) or [B, h, w, K] -> [B, K, 3] via appliance.geometry.decode_heatmaps."""
    from appliance.geometry import decode_heatmaps

    hm = np.asarray(heatmaps)
    if hm.shape[1] < hm.shape[-1]:  # NCHW -> NHWC
        hm = hm.transpose(0, 2, 3, 1)
    return np.stack([decode_heatmaps(h) for h in hm])
