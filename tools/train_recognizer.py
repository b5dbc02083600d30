"""Train the push-up recogniser ("is this person doing push-ups right now?") on the frame cache.

Positives: push-up clip frames inside the active interval (tools.dataset.pushup_labels).
Negatives: every negative clip (ambiguous burpee/upward-dog clips left out of training),
set-up/standing frames of push-up clips, background/people images.

    python -m tools.train_recognizer --out runs/rec --minutes 30
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tools import augment, metrics
from tools.dataset import REPO, load_cache
from tools.nets import PoseRecognizerNet, RecognizerNet, count_macs, count_params
from tools.trainlib import EMA, Schedule, save_curves, seed_all

INPUT_W, INPUT_H = 128, 96
HARD_WORDS = ("hard", "plank", "prone", "crawl", "cobra", "dog", "bridge", "lying")


def prepare(x_u8):
    """Cache frames (192x144 letterboxed) -> recogniser input (128x96), same letterbox geometry."""
    x = augment.to_tensor(x_u8)
    return F.interpolate(x, size=(INPUT_H, INPUT_W), mode="bilinear", align_corners=False, antialias=True)


def predict(model, frames, batch=128):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), batch):
            out.append(model(prepare(frames[i:i + batch])).squeeze(1).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def clip_fp_runs(prob, clip_ids, clips, idx, every_fps):
    """Per negative clip: longest run (s) of 1 s-smoothed probability > 0.5."""
    runs = {}
    for c in np.unique(clip_ids):
        info = clips[c]
        if info["kind"] != "negative":
            continue
        m = clip_ids == c
        order = np.argsort(idx[m])
        fps = max(1e-3, info["fps"] / every_fps(info))
        p = prob[m][order]
        runs[info["file"]] = metrics.longest_run_seconds(metrics.smoothed(p, fps) > 0.5, fps)
    return runs


def evaluate(model, cache, idx):
    clips = cache["clips"]
    logits = predict(model, cache["frames"][idx])
    prob = 1 / (1 + np.exp(-logits))
    lab = cache["label"][idx]
    cid = cache["clip"][idx]
    amb = np.array([clips[c]["ambiguous"] for c in cid])
    ok = (lab >= 0) & ~amb
    auc = metrics.roc_auc(logits[ok], lab[ok] == 1)
    acc = float(((prob[ok] > 0.5) == (lab[ok] == 1)).mean())
    neg = ok & (lab == 0)
    fpr = float((prob[neg] > 0.5).mean())
    pos = ok & (lab == 1)
    tpr = float((prob[pos] > 0.5).mean())
    from tools.dataset import EVERY

    runs = clip_fp_runs(prob, cid, clips, cache["frame_index"][idx], lambda info: EVERY["negative"][1])
    return {"auc": auc, "accuracy": acc, "fpr": fpr, "tpr": tpr,
            "neg_clips_over_1p5s": sorted([k for k, v in runs.items() if v > 1.5]),
            "neg_clip_longest_run_s": runs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=str(REPO / "runs" / "cache" / "frames.npz"))
    ap.add_argument("--out", default=str(REPO / "runs" / "rec"))
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=300)
    ap.add_argument("--init", default=None, help="warm start from a checkpoint")
    ap.add_argument("--arch", choices=["mobilenet", "pose"], default="mobilenet",
                    help="pose: trunk = keypoint net encoder (start it from --kp-init)")
    ap.add_argument("--kp-init", default=None, help="keypoint checkpoint whose encoder starts the pose trunk")
    ap.add_argument("--freeze", default="", help="comma list of trunk parts to freeze, e.g. stem,s4")
    ap.add_argument("--photometric", type=float, default=1.0, help="photometric augmentation strength")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rng = seed_all(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = load_cache(Path(a.cache))
    clips = cache["clips"]
    cid = cache["clip"]
    split = np.array([clips[c]["split"] for c in cid])
    kind = np.array([clips[c]["kind"] for c in cid])
    amb = np.array([clips[c]["ambiguous"] for c in cid])
    hard = np.array([any(w in (clips[c]["notes"] + " " + clips[c]["file"]).lower() for w in HARD_WORDS) for c in cid])
    lab = cache["label"]
    train = (split == "train") & (lab >= 0) & ~amb
    w = np.zeros(len(lab))
    pos = train & (lab == 1)
    neg = train & (lab == 0)
    w[pos] = np.where(kind[pos] == "riyer8", 0.5, 1.0)
    w[pos] *= 0.5 / w[pos].sum()
    wn = np.where(hard[neg], 3.0, 1.0) * np.where(kind[neg] == "image", 30.0, 1.0)
    w[neg] = 0.5 * wn / wn.sum()
    train_idx = np.flatnonzero(w > 0)
    p = w[train_idx] / w[train_idx].sum()
    val_idx = np.flatnonzero(split == "val")
    print(f"train frames {len(train_idx)} (pos {pos.sum()}, neg {neg.sum()}, hard neg {(neg & hard).sum()}), val {len(val_idx)}", flush=True)

    model = RecognizerNet(width=a.width) if a.arch == "mobilenet" else PoseRecognizerNet(width=a.width)
    if a.kp_init:
        sd = torch.load(a.kp_init, map_location="cpu")["model"]
        trunk = {k: v for k, v in sd.items() if k.split(".")[0] in ("stem", "s4", "s8", "s16")}
        missing, unexpected = model.load_state_dict(trunk, strict=False)
        print(f"trunk from {a.kp_init}: {len(trunk)} tensors, {len(missing)} left at init", flush=True)
    frozen = [p for p in a.freeze.split(",") if p]
    for part in frozen:
        for prm in getattr(model, part).parameters():
            prm.requires_grad_(False)
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location="cpu")["model"])
    params, macs = count_params(model), count_macs(model, (1, 3, INPUT_H, INPUT_W))
    print(f"params {params}, MACs {macs / 1e6:.1f}M", flush=True)
    model = model.to(memory_format=torch.channels_last)
    ema = EMA(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr, weight_decay=5e-4)
    sched = Schedule(a.lr, a.steps, a.minutes)
    history, best, step, t0, losses = [], -1.0, 0, time.time(), []
    while True:
        model.train()
        for part in frozen:  # frozen parts keep their BatchNorm statistics
            getattr(model, part).eval()
        bi = rng.choice(train_idx, a.batch, p=p)
        x = augment.to_tensor(cache["frames"][bi])
        x, _ = augment.warp(x, cache["kp"][bi], (INPUT_H, INPUT_W), rng, train=True, zoom=(0.7, 1.5), rot_deg=25, person_zoom_p=0.3)
        x = augment.photometric(x, rng, a.photometric).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy((lab[bi] == 1).astype(np.float32))
        y = y * 0.95 + 0.025  # light label smoothing: the interval labels are machine-made
        for g in opt.param_groups:
            g["lr"] = sched.lr(step)
        loss = F.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model, step)
        losses.append(loss.item())
        step += 1
        finished = sched.done(step)
        if step % 50 == 0:
            print(f"step {step} loss {np.mean(losses[-50:]):.4f} lr {sched.lr(step):.2e} {time.time() - t0:.0f}s", flush=True)
        if step % a.eval_every == 0 or finished:
            r = evaluate(ema.model, cache, val_idx)
            rec = {"step": step, "seconds": round(time.time() - t0, 1), "loss": float(np.mean(losses[-a.eval_every:])),
                   "auc": r["auc"], "accuracy": r["accuracy"], "fpr": r["fpr"], "tpr": r["tpr"],
                   "neg_clips_over_1p5s": len(r["neg_clips_over_1p5s"])}
            history.append(rec)
            print("eval", json.dumps(rec), r["neg_clips_over_1p5s"], flush=True)
            ckpt = {"model": ema.model.state_dict(), "width": a.width, "arch": a.arch, "step": step, "input": [INPUT_H, INPUT_W]}
            torch.save(ckpt, out / "last.pt")
            score = r["auc"] - 0.01 * len(r["neg_clips_over_1p5s"])
            if score > best:
                best = score
                torch.save(ckpt, out / "best.pt")
            save_curves(history, out, ["loss", "auc", "fpr", "tpr"], "recognizer")
        if finished:
            break
    summary = {"train_frames": int(len(train_idx)), "positives": int(pos.sum()), "negatives": int(neg.sum()),
               "steps": step, "batch": a.batch, "wall_seconds": round(time.time() - t0, 1), "threads": a.threads,
               "best_score": best, "params": params, "macs": macs, "args": vars(a)}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
