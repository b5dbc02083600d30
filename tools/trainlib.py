"""Shared training helpers: seeding, time-based cosine schedule, EMA, curves."""
from __future__ import annotations

import copy
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch


def seed_all(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


class Schedule:
    """Cosine LR over a step budget (``steps``) or, if none is given, over a wall-time budget."""

    def __init__(self, base_lr: float, steps: int | None, minutes: float, warmup: int = 100):
        self.base, self.steps, self.seconds, self.warmup = base_lr, steps, minutes * 60, warmup
        self.t0 = time.time()

    def progress(self, step: int) -> float:
        if self.steps:
            return step / self.steps
        return (time.time() - self.t0) / self.seconds

    def lr(self, step: int) -> float:
        p = min(1.0, self.progress(step))
        warm = min(1.0, (step + 1) / self.warmup)
        return self.base * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))

    def done(self, step: int) -> bool:
        return self.progress(step) >= 1.0


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float = 0.997):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int):
        d = min(self.decay, (1 + step) / (10 + step))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def save_curves(history: list[dict], out: Path, keys: list[str], title: str):
    (out / "history.json").write_text(json.dumps(history, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # matplotlib is optional
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3))
    axes = np.atleast_1d(axes)
    for ax, k in zip(axes, keys):
        pts = [(h["step"], h[k]) for h in history if k in h and h[k] is not None]
        if pts:
            ax.plot(*zip(*pts), marker=".")
        ax.set_title(k)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=80)
    plt.close(fig)
