"""Evaluate the shipped int8 models (and their float checkpoints) on validation footage.

Keypoints: PCK@0.25 with the clip body scale (appliance.keypoints.body_scale, the project
metric) and with the per-frame shoulder distance, overall / seed seven / hips, per clip, for
the float PyTorch checkpoint and the int8 TFLite (decoded with appliance.geometry).
Recogniser: ROC AUC, accuracy, FPR on negatives, per negative clip the longest stretch of
1 s-smoothed probability > 0.5. Latency: median ms, 1 thread, ai-edge-litert, our two int8
models and BlazePose lite (pose_landmark_lite.tflite from npm @mediapipe/pose@0.5.1675469404,
fetched with ``npm pack`` into a temp dir, never committed) in the same run.
Contact sheet PNG of int8 predictions vs teacher.

    python -m tools.evaluate_models --data ../shared/data --update-cards
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from appliance import keypoints as kpmod
from tools import metrics
from tools.dataset import EVERY, REPO, load_cache
from tools.export_tflite import Int8Runner, NHWCKeypoints, NHWCRecognizer, build_net, float_nhwc

BLAZEPOSE_PKG = "@mediapipe/pose@0.5.1675469404"
BLAZEPOSE_LITE_SHA256 = "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61"  # measured 2026-11-24


def recognizer_input(frames_u8: np.ndarray) -> np.ndarray:
    import torch.nn.functional as F

    from tools.export_tflite import RECOGNIZER_INPUT

    out = []
    for i in range(0, len(frames_u8), 256):
        t = torch.from_numpy(frames_u8[i:i + 256]).permute(0, 3, 1, 2).float() / 255
        t = F.interpolate(t, size=RECOGNIZER_INPUT, mode="bilinear", align_corners=False, antialias=True)
        out.append(t.permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def eval_keypoints(cache, val_idx, tflite: Path, ckpt: Path | None) -> tuple[dict, np.ndarray]:
    from appliance.geometry import decode_heatmaps

    clips = cache["clips"]
    x = cache["frames"][val_idx].astype(np.float32) / 255
    cid = cache["clip"][val_idx]
    sizes = np.array([[clips[c]["width"], clips[c]["height"]] for c in cid], np.float32)
    teacher = cache["kp_frame"][val_idx].copy()
    teacher[..., 0] *= sizes[:, None, 0]
    teacher[..., 1] *= sizes[:, None, 1]
    H, W = x.shape[1:3]
    kinds = np.array([clips[c]["kind"] for c in cid])
    res = {}
    runner = Int8Runner(tflite)
    outputs = {"int8": runner(x)}
    if ckpt and ckpt.exists():
        net = build_net("keypoints", torch.load(ckpt, map_location="cpu"))
        outputs["float"] = float_nhwc(NHWCKeypoints(net), x)
    preds = {}
    for name, hm in outputs.items():
        dec = np.stack([decode_heatmaps(h) for h in hm])
        px = metrics.to_frame_pixels(dec, sizes, (W, H))
        preds[name] = px
        r = metrics.pck(px, teacher, cid)
        pu = np.isin(kinds, ["pushup", "riyer8"])
        r_push = metrics.pck(px[pu], teacher[pu], cid[pu])
        r["pushup_clips_only"] = {k: v for k, v in r_push.items() if k.startswith("pck_")}
        r["per_clip_body_all"] = {clips[int(k)]["file"]: v for k, v in r["per_clip_body_all"].items()}
        res[name] = r
    if "float" in res:
        res["int8_drop_body_all"] = res["float"]["pck_body_all"] - res["int8"]["pck_body_all"]
        res["int8_drop_body_seven"] = res["float"]["pck_body_seven"] - res["int8"]["pck_body_seven"]
    return res, preds["int8"]


def eval_recognizer(cache, val_idx, tflite: Path, ckpt: Path | None) -> tuple[dict, np.ndarray]:
    clips = cache["clips"]
    x = recognizer_input(cache["frames"][val_idx])
    cid = cache["clip"][val_idx]
    lab = cache["label"][val_idx]
    amb = np.array([clips[c]["ambiguous"] for c in cid])
    kinds = np.array([clips[c]["kind"] for c in cid])
    runner = Int8Runner(tflite)
    outputs = {"int8": runner(x)[:, 0]}
    if ckpt and ckpt.exists():
        net = build_net("recognizer", torch.load(ckpt, map_location="cpu"))
        outputs["float"] = float_nhwc(NHWCRecognizer(net), x)[:, 0]
    res = {}
    for name, logit in outputs.items():
        prob = 1 / (1 + np.exp(-logit))
        ok = (lab >= 0) & ~amb
        neg = ok & (lab == 0)
        pos = ok & (lab == 1)
        runs = {}
        for c in np.unique(cid):
            info = clips[c]
            if info["kind"] != "negative":
                continue
            m = cid == c
            order = np.argsort(cache["frame_index"][val_idx][m])
            fps = info["fps"] / EVERY["negative"][1]
            p = prob[m][order]
            runs[info["file"]] = round(metrics.longest_run_seconds(metrics.smoothed(p, fps) > 0.5, fps), 2)
        r = {
            "roc_auc": metrics.roc_auc(logit[ok], lab[ok] == 1),
            "accuracy": float(((prob[ok] > 0.5) == (lab[ok] == 1)).mean()),
            "fpr_negative_frames": float((prob[neg] > 0.5).mean()),
            "fpr_negative_clip_frames": float((prob[neg & (kinds == "negative")] > 0.5).mean()),
            "fpr_images": float((prob[neg & (kinds == "image")] > 0.5).mean()) if (neg & (kinds == "image")).any() else None,
            "tpr": float((prob[pos] > 0.5).mean()),
            "frames": {"positive": int(pos.sum()), "negative": int(neg.sum()), "ambiguous_left_out": int(amb.sum())},
            "negative_clips": len(runs),
            "negative_clips_smoothed_over_0p5_longer_than_1p5s": sorted(k for k, v in runs.items() if v > 1.5),
            "negative_clip_longest_smoothed_run_s": runs,
            "ambiguous_clip_mean_prob": {clips[c]["file"]: float(prob[cid == c].mean()) for c in np.unique(cid[amb])},
        }
        res[name] = r
    if "float" in res:
        res["int8_auc_drop"] = res["float"]["roc_auc"] - res["int8"]["roc_auc"]
        res["int8_vs_float_decision_agreement"] = float(((outputs["float"] > 0) == (outputs["int8"] > 0)).mean())
    return res, 1 / (1 + np.exp(-outputs["int8"]))


def fetch_blazepose(tmp: Path) -> tuple[Path | None, dict]:
    info = {"package": BLAZEPOSE_PKG}
    try:
        subprocess.run(["npm", "pack", BLAZEPOSE_PKG], cwd=tmp, check=True, capture_output=True, timeout=300)
        tgz = next(tmp.glob("*.tgz"))
        info["tgz_sha512_integrity"] = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        try:
            reg = subprocess.run(["npm", "view", BLAZEPOSE_PKG, "dist.integrity"], capture_output=True, text=True, timeout=60).stdout.strip()
            info["registry_integrity_match"] = reg == info["tgz_sha512_integrity"]
        except Exception:
            pass
        subprocess.run(["tar", "xzf", tgz.name, "package/pose_landmark_lite.tflite"], cwd=tmp, check=True)
        path = tmp / "package" / "pose_landmark_lite.tflite"
        info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        info["sha256_expected"] = BLAZEPOSE_LITE_SHA256
        info["sha256_ok"] = info["sha256"] == BLAZEPOSE_LITE_SHA256
        return path, info
    except Exception as e:  # no npm / offline: latency comparison skipped
        info["error"] = repr(e)
        return None, info


def latency(paths: dict[str, Path], runs: int = 60, rounds: int = 3) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    its = {}
    for name, p in paths.items():
        it = Interpreter(model_path=str(p), num_threads=1)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        dt = np.dtype(d["dtype"])
        x = (np.random.default_rng(0).integers(-128, 127, d["shape"]).astype(dt) if dt.kind == "i"
             else np.random.default_rng(0).random(d["shape"]).astype(dt))
        it.set_tensor(d["index"], x)
        for _ in range(5):
            it.invoke()
        its[name] = it
    times = {n: [] for n in its}
    for _ in range(rounds):  # interleave so background load hits all models alike
        for n, it in its.items():
            for _ in range(runs // rounds):
                t = time.perf_counter()
                it.invoke()
                times[n].append((time.perf_counter() - t) * 1000)
    return {n: {"median_ms": round(float(np.median(v)), 3), "p90_ms": round(float(np.percentile(v, 90)), 3), "runs": len(v)}
            for n, v in times.items()}


def contact_sheet(cache, idx, kp_int8_px, prob, out_paths: list[Path], n: int = 12):
    from PIL import Image, ImageDraw

    from appliance.geometry import Letterbox

    clips = cache["clips"]
    rng = np.random.default_rng(3)
    cid = cache["clip"][idx]
    kinds = np.array([clips[c]["kind"] for c in cid])
    choice = []
    for kind, k in (("pushup", 6), ("riyer8", 2), ("negative", 4)):
        pool = np.flatnonzero(kinds == kind)
        # spread over clips
        by_clip = {}
        for i in pool:
            by_clip.setdefault(cid[i], []).append(i)
        keys = list(by_clip)
        rng.shuffle(keys)
        for key in keys[:k]:
            choice.append(int(rng.choice(by_clip[key])))
    tiles = []
    bones = [(0, 1), (1, 2), (2, 4), (4, 5), (5, 6), (2, 7), (4, 8), (7, 8)]
    for i in choice:
        frame = cache["frames"][idx[i]]
        info = clips[cid[i]]
        lb = Letterbox(int(info["width"]), int(info["height"]), frame.shape[1], frame.shape[0])
        img = Image.fromarray(frame).resize((frame.shape[1] * 2, frame.shape[0] * 2))
        d = ImageDraw.Draw(img)

        def to_px(pts_frame_px):
            norm = pts_frame_px[:, :2] / np.array([info["width"], info["height"]], np.float32)
            return lb.frame_to_input(norm) * np.array([img.width, img.height])

        t = cache["kp_frame"][idx[i]].copy()
        t[:, 0] *= info["width"]
        t[:, 1] *= info["height"]
        tp, pp = to_px(t), to_px(kp_int8_px[i])
        for a, b in bones:
            if np.isfinite(tp[[a, b]]).all():
                d.line([tuple(tp[a]), tuple(tp[b])], fill=(0, 255, 0), width=1)
            d.line([tuple(pp[a]), tuple(pp[b])], fill=(255, 60, 60), width=2)
        for k in range(len(pp)):
            r = 3
            d.ellipse([pp[k, 0] - r, pp[k, 1] - r, pp[k, 0] + r, pp[k, 1] + r], outline=(255, 255, 0))
        d.rectangle([0, 0, img.width, 14], fill=(0, 0, 0))
        d.text((2, 1), f"{info['kind']} P(push-up)={prob[i]:.2f}  {Path(info['file']).name[:38]}", fill=(255, 255, 255))
        tiles.append(img)
    cols = 4
    rows = (len(tiles) + cols - 1) // cols
    tw, th = tiles[0].size
    sheet = Image.new("RGB", (cols * tw, rows * th + 18), (30, 30, 30))
    for j, t in enumerate(tiles):
        sheet.paste(t, ((j % cols) * tw, (j // cols) * th + 18))
    ImageDraw.Draw(sheet).text((4, 3), "validation footage: red = int8 keypoint model, green = MediaPipe teacher; header = int8 recogniser probability", fill=(255, 255, 255))
    for p in out_paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(p)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="only recorded; the frame cache is built by tools.dataset from it")
    ap.add_argument("--cache", default=str(REPO / "runs" / "cache" / "frames.npz"))
    ap.add_argument("--models", default=str(REPO / "models"))
    ap.add_argument("--kp-ckpt", default=str(REPO / "runs" / "kp" / "best.pt"))
    ap.add_argument("--rec-ckpt", default=str(REPO / "runs" / "rec" / "best.pt"))
    ap.add_argument("--out", default=str(REPO / "runs" / "eval"))
    ap.add_argument("--blazepose", default=None, help="path to pose_landmark_lite.tflite (else npm pack into a temp dir)")
    ap.add_argument("--update-cards", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="debug: evaluate only about this many frames")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    models = Path(a.models)
    cache = load_cache(Path(a.cache))
    clips = cache["clips"]
    split = np.array([clips[c]["split"] for c in cache["clip"]])
    kind = np.array([clips[c]["kind"] for c in cache["clip"]])
    has = np.isfinite(cache["kp"][:, 2, 0]) & np.isfinite(cache["kp"][:, 4, 0])
    kp_idx = np.flatnonzero((split == "val") & has & (kind != "image"))
    rec_idx = np.flatnonzero(split == "val")
    if a.limit:
        kp_idx = kp_idx[:: max(1, len(kp_idx) // a.limit)]
        rec_idx = rec_idx[:: max(1, len(rec_idx) // a.limit)]
    report = {"val_clips": sorted({clips[c]["file"] for c in cache["clip"][rec_idx]})}
    t0 = time.time()
    kp_res, kp_px = eval_keypoints(cache, kp_idx, models / "keypoints.tflite", Path(a.kp_ckpt))
    report["keypoints"] = kp_res
    print("keypoints", json.dumps({k: (v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk.startswith("pck")}) for k, v in kp_res.items()}, indent=1), flush=True)
    rec_res, rec_prob = eval_recognizer(cache, rec_idx, models / "recognizer.tflite", Path(a.rec_ckpt))
    report["recognizer"] = rec_res
    print("recognizer", json.dumps({k: (v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk not in ("negative_clip_longest_smoothed_run_s",)}) for k, v in rec_res.items()}, indent=1), flush=True)
    # contact sheet on keypoint-val frames, with the recogniser prob of the same frames
    prob_by_frame = dict(zip(rec_idx.tolist(), rec_prob.tolist()))
    contact_sheet(cache, kp_idx, kp_px, np.array([prob_by_frame.get(int(i), np.nan) for i in kp_idx]),
                  [out / "contact_sheet.png", REPO / "docs" / "models" / "contact_sheet.png"])
    with tempfile.TemporaryDirectory() as tmp:
        bp_path, bp_info = (Path(a.blazepose), {"path": a.blazepose}) if a.blazepose else fetch_blazepose(Path(tmp))
        paths = {"keypoints_int8": models / "keypoints.tflite", "recognizer_int8": models / "recognizer.tflite"}
        if bp_path and bp_path.exists():
            paths["blazepose_lite"] = bp_path
        lat = latency(paths)
    report["blazepose"] = bp_info
    report["latency_ms_1thread"] = lat
    if "blazepose_lite" in lat:
        bl = lat["blazepose_lite"]["median_ms"]
        report["latency_ratio_vs_blazepose_lite"] = {k: round(v["median_ms"] / bl, 3) for k, v in lat.items() if k != "blazepose_lite"}
    report["eval_seconds"] = round(time.time() - t0, 1)
    print("latency", json.dumps(lat), report.get("latency_ratio_vs_blazepose_lite"), flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if a.update_cards:
        from tools.cards import write_card

        for task, run, res in (("keypoints", "kp", kp_res), ("recognizer", "rec", rec_res)):
            exp = json.loads((REPO / "runs" / run / f"export_{task}.json").read_text())
            key = "keypoints_int8" if task == "keypoints" else "recognizer_int8"
            lat_card = {"ai_edge_litert_1_thread_median": lat[key]["median_ms"], "p90": lat[key]["p90_ms"],
                        "machine": "x86-64, 2 cores shared with other jobs"}
            if "blazepose_lite" in lat:
                lat_card["blazepose_lite_same_run_median"] = lat["blazepose_lite"]["median_ms"]
                lat_card["ratio_vs_blazepose_lite"] = report["latency_ratio_vs_blazepose_lite"][key]
            if task == "keypoints":
                m = {"validation": "val split footage (frames with teacher), teacher = MediaPipe Pose full, PCK threshold 0.25",
                     "float": {k: v for k, v in res["float"].items() if k.startswith("pck") or k == "per_keypoint_body"} if "float" in res else None,
                     "int8": {k: v for k, v in res["int8"].items() if k.startswith("pck") or k in ("per_keypoint_body", "frames", "visible_points")},
                     "int8_drop_body_all": res.get("int8_drop_body_all"), "int8_drop_body_seven": res.get("int8_drop_body_seven"),
                     "int8_pushup_clips_only": res["int8"]["pushup_clips_only"]}
            else:
                keep = ("roc_auc", "accuracy", "fpr_negative_frames", "fpr_negative_clip_frames", "fpr_images", "tpr", "frames",
                        "negative_clips", "negative_clips_smoothed_over_0p5_longer_than_1p5s")
                m = {"validation": "val split frames; smoothing = 1 s causal mean of probability",
                     "float": {k: res["float"][k] for k in keep} if "float" in res else None,
                     "int8": {k: res["int8"][k] for k in keep},
                     "int8_auc_drop": res.get("int8_auc_drop"),
                     "int8_vs_float_decision_agreement": res.get("int8_vs_float_decision_agreement")}
            p = write_card(task, exp, m, lat_card, REPO / "runs" / run, models)
            print("wrote", p)


if __name__ == "__main__":
    main()
