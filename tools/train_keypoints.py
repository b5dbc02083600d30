"""Train the keypoint heatmap model on the frame cache (teacher: MediaPipe Pose full).

    python -m tools.dataset --data ../shared/data            # once: builds runs/cache/frames.npz
    python -m tools.train_keypoints --out runs/kp --minutes 35

Writes runs/kp/{best.pt,last.pt,history.json,curves.png,metrics.json}.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from tools import augment, metrics
from tools.dataset import REPO, data_root, keypoint_frames, load_cache, pack_cache, smooth_cached_labels
from tools.relabel import apply_agreement
from tools.nets import KeypointNet, count_macs, count_params
from tools.trainlib import EMA, Schedule, save_curves, seed_all

INPUT_W, INPUT_H, STRIDE = 192, 144, 4
KIND_WEIGHT = {"pushup": 3.0, "riyer8": 1.0, "negative": 1.0, "image": 0.0}


def batch_pixels(frames, idx: np.ndarray) -> torch.Tensor:
    """NCHW 0..1 float pixels of cache rows; ``frames`` is the uint8 NHWC array or tensor."""
    if isinstance(frames, torch.Tensor):
        return frames[torch.from_numpy(idx).to(frames.device)].permute(0, 3, 1, 2).float().div_(255.0)
    return augment.to_tensor(frames[idx])


def evaluate(model, cache, idx, batch=64, frames=None):
    model.eval()
    preds = []
    frames = cache["frames"] if frames is None else frames
    with torch.no_grad():
        for i in range(0, len(idx), batch):
            x = batch_pixels(frames, idx[i:i + batch]).contiguous(memory_format=torch.channels_last)
            preds.append(augment.decode_batch(model(x).cpu().numpy()))
    pred = np.concatenate(preds)
    clips = cache["clips"]
    cid = cache["clip"][idx]
    sizes = np.array([[clips[c]["width"], clips[c]["height"]] for c in cid], np.float32)
    pred_px = metrics.to_frame_pixels(pred, sizes, (INPUT_W, INPUT_H))
    teacher = cache["kp_frame"][idx].copy()
    teacher[..., 0] *= sizes[:, None, 0]
    teacher[..., 1] *= sizes[:, None, 1]
    return metrics.pck(pred_px, teacher, cid)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=str(REPO / "runs" / "cache" / "frames.npz"))
    ap.add_argument("--out", default=str(REPO / "runs" / "kp"))
    ap.add_argument("--minutes", type=float, default=35.0, help="wall-time budget (cosine schedule over it)")
    ap.add_argument("--steps", type=int, default=None, help="fixed step budget instead of wall time")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--val-frames", type=int, default=700)
    ap.add_argument("--init", default=None, help="warm start from a checkpoint")
    ap.add_argument("--crop", type=float, default=1.0, help="train on 1/crop windows at full pixel scale (cheaper)")
    ap.add_argument("--photometric", type=float, default=1.0, help="photometric augmentation strength")
    ap.add_argument("--negative-weight", type=float, default=KIND_WEIGHT["negative"],
                    help="sampling weight of a frame of a negative clip (push-up clips: 3)")
    ap.add_argument("--smooth", action="store_true",
                    help="train on teacher tracks median-smoothed over 0.2 s, one-frame glitches unsupervised "
                         "(tools.dataset.smooth_teacher_track; needs --data)")
    ap.add_argument("--data", default=None, help="../shared/data (for --smooth)")
    ap.add_argument("--agreement", default=None,
                    help="tools.relabel's agreement.npz: points the two teachers disagree on are not supervised")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="cuda trains with the whole frame cache and the augmentation on the GPU")
    ap.add_argument("--pack-to", default=None,
                    help="write the train and val keypoint rows (labels after --smooth/--agreement) as a "
                         "WebP-packed cache to this path and exit: small enough to carry to a GPU machine")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rng = seed_all(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    cache = load_cache(Path(a.cache))
    if a.smooth:
        dropped = smooth_cached_labels(cache, data_root(a.data))
        print(f"--smooth: training labels smoothed over time, {dropped} glitch points left unsupervised", flush=True)
    if a.agreement:
        dropped = apply_agreement(cache, np.load(a.agreement))
        print(f"--agreement: {dropped} teacher points left unsupervised", flush=True)
    clips = cache["clips"]
    kind = np.array([clips[c]["kind"] for c in cache["clip"]])
    train_idx = keypoint_frames(cache, "train")
    val_all = keypoint_frames(cache, "val")
    if a.pack_to:
        size = pack_cache(cache, np.concatenate([train_idx, val_all]), Path(a.pack_to))
        print(f"packed {len(train_idx)} train and {len(val_all)} val frames into {a.pack_to}: {size / 2**20:.1f} MiB")
        return
    val_idx = np.sort(np.random.default_rng(1).choice(val_all, min(a.val_frames, len(val_all)), replace=False))
    kind_weight = dict(KIND_WEIGHT, negative=a.negative_weight)
    w = np.array([kind_weight[k] for k in kind[train_idx]])
    w = w / w.sum()
    print(f"train frames {len(train_idx)}, val frames {len(val_idx)} of {len(val_all)}", flush=True)

    model = KeypointNet(width=a.width)
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location="cpu")["model"])
    params = count_params(model)
    macs = count_macs(model, (1, 3, INPUT_H, INPUT_W))
    print(f"params {params}, MACs {macs / 1e6:.1f}M", flush=True)
    model = model.to(a.device, memory_format=torch.channels_last)  # faster CPU convolutions
    frames = torch.from_numpy(cache["frames"]).to(a.device) if a.device != "cpu" else cache["frames"]
    ema = EMA(model)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = Schedule(a.lr, a.steps, a.minutes)
    hm_h, hm_w = INPUT_H // STRIDE, INPUT_W // STRIDE
    history, best, step, t0 = [], -1.0, 0, time.time()
    loss_acc = []
    while True:
        model.train()
        bi = rng.choice(train_idx, a.batch, p=w)
        x = batch_pixels(frames, bi)
        th, tw = int(round(INPUT_H / a.crop / 16)) * 16, int(round(INPUT_W / a.crop / 16)) * 16
        x, kp = augment.warp(x, cache["kp"][bi], (th, tw), rng, train=True, crop=INPUT_W / tw)
        x = augment.photometric(x, rng, a.photometric).contiguous(memory_format=torch.channels_last)
        target, weight = augment.heatmap_targets(kp, th // STRIDE, tw // STRIDE, device=a.device)
        for g in opt.param_groups:
            g["lr"] = sched.lr(step)
        pred = model(x)
        err = (pred - target) ** 2 * (1.0 + 10.0 * target)
        loss = (err.mean(dim=(2, 3)) * weight).sum() / weight.sum().clamp_min(1.0) * 100.0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model, step)
        loss_acc.append(loss.item())
        step += 1
        finished = sched.done(step)
        if step % 25 == 0:
            print(f"step {step} loss {np.mean(loss_acc[-25:]):.4f} lr {sched.lr(step):.2e} {time.time() - t0:.0f}s", flush=True)
        if step % a.eval_every == 0 or finished:
            r = evaluate(ema.model, cache, val_idx, frames=frames)
            rec = {"step": step, "seconds": round(time.time() - t0, 1), "loss": float(np.mean(loss_acc[-a.eval_every:])),
                   "pck_body_all": r["pck_body_all"], "pck_body_seven": r["pck_body_seven"], "pck_body_hips": r["pck_body_hips"]}
            history.append(rec)
            print("eval", json.dumps(rec), flush=True)
            ckpt = {"model": {k: v.cpu() for k, v in ema.model.state_dict().items()}, "width": a.width, "step": step, "input": [INPUT_H, INPUT_W], "stride": STRIDE}
            torch.save(ckpt, out / "last.pt")
            if r["pck_body_all"] > best:
                best = r["pck_body_all"]
                torch.save(ckpt, out / "best.pt")
            save_curves(history, out, ["loss", "pck_body_all", "pck_body_seven", "pck_body_hips"], "keypoints")
        if finished:
            break
    summary = {
        "train_frames": int(len(train_idx)), "val_frames_used": int(len(val_idx)), "steps": step,
        "batch": a.batch, "wall_seconds": round(time.time() - t0, 1), "threads": a.threads, "device": a.device,
        "device_name": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu",
        "best_val_pck_body_all": best, "params": params, "macs": macs, "args": vars(a),
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
