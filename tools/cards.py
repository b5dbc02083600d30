"""Write models/<name>.json model cards per models/CARD.md from the exported .tflite and reports."""
from __future__ import annotations

import json
from pathlib import Path

from appliance.keypoints import NAMES
from appliance.recognition import CLIP, MIN_SCORE, NORMALISATION, STEP_S
from tools.dataset import REPO

# Each card's "command": the chain that made its model, one shell line each ("#" lines say
# what was done by hand), so it can be pasted into a shell from the repository root.
SYNTHETIC = [
    "python -m tools.synthetic_cache --clips 48 --out runs/cache/synthetic.npz",
    "python -m tools.synthetic_cache --merge runs/cache/frames.npz runs/cache/synthetic.npz --out runs/cache/merged.npz",
]
EVALUATE = [
    "# trained on the split of the time; validation is the split of now, which only moved clips to training",
    "# (tools.dataset: riyer8 and the footage it shares), so the models saw none of it",
    "python -m tools.dataset --data ../shared/data --out runs/cache/frames_v2.npz",
    "python -m tools.pose_traces collect --data ../shared/data --out runs/traces_tta",
    "python -m tools.evaluate_models --data ../shared/data --cache runs/cache/frames_v2.npz --traces runs/traces_tta "
    "--update-cards",
]
COMMANDS = {
    "keypoints": "\n".join([
        "# the shipped model trained on the split before session 11 (tools/dataset.py at commit 2e2b828): to rebuild",
        "# it exactly, build this cache with that commit's tools.dataset; today's trains on more (riyer8 and the APKA group)",
        "python -m tools.dataset --data ../shared/data --out runs/cache/frames.npz",
        "OMP_WAIT_POLICY=PASSIVE python -m tools.train_keypoints --out runs/kp_a --minutes 40 --width 0.75 --batch 16 "
        "--lr 2e-3 --threads 1 --eval-every 200 --val-frames 400",
        "# phase A: stopped by hand after 16 min; runs/kp_a/last.pt = EMA at step 600",
        "OMP_WAIT_POLICY=PASSIVE python -m tools.train_keypoints --out runs/kp_b --init runs/kp_a/last.pt --crop 1.5 "
        "--photometric 0.6 --minutes 38 --width 0.75 --batch 24 --lr 2e-3 --threads 1 --eval-every 250 --val-frames 400",
        "# phase B: runs/kp_b/best.pt as of step 750 copied to runs/kp_best_0341.pt",
        *SYNTHETIC,
        "OMP_WAIT_POLICY=PASSIVE python -m tools.train_keypoints --cache runs/cache/merged.npz --out runs/kp_syn "
        "--init runs/kp_best_0341.pt --crop 1.5 --photometric 0.6 --minutes 45 --width 0.75 --batch 24 --lr 2e-3 "
        "--threads 1 --eval-every 250 --val-frames 400",
        "# phase D was started as --init runs/kp/best.pt, with runs/kp a link to kp_syn (the card's training.args)",
        "OMP_WAIT_POLICY=PASSIVE python -m tools.train_keypoints --cache runs/cache/merged.npz --out runs/kp_e "
        "--init runs/kp_syn/best.pt --crop 1.5 --photometric 0.6 --minutes 55 --width 0.75 --batch 24 --lr 1e-3 "
        "--threads 1 --eval-every 250 --val-frames 400",
        "ln -sfn kp_e runs/kp",
        "python -m tools.export_tflite keypoints --ckpt runs/kp/best.pt",
        "# evaluate_models --update-cards writes both cards: it needs the recognizer card's chain up to its export too",
        "# the appliance averages each frame's heatmaps with its mirror's ([models] flip_average = true): evaluate that way",
        *EVALUATE,
    ]),
    "recognizer": "\n".join([
        "# the shipped model was trained with the tools at commit 51ac75a, the commit that shipped it (it changed no "
        "tools): the split before session 11",
        "# and tools.dataset.pushup_labels before session 12's label fixes (the card's training.targets). To rebuild "
        "it exactly, run the chain",
        "# up to its export at that commit, without --config (its pose_traces ran one pass only); today's tools train "
        "on today's split and tools.dataset.clip_labels",
        "# the recogniser trains on one-pass keypoints of the shipped keypoint model (traces_e, collected before flip "
        "averaging was the default; one retrained on flip-averaged traces counted worse: models/README.md)",
        "printf '[models]\\nflip_average = false\\n' > runs/onepass.toml",
        "python -m tools.pose_traces collect --data ../shared/data --out runs/traces_e --config runs/onepass.toml",
        "python -m tools.pose_traces collect-rendered --clips 60 --out runs/traces_rendered_e --config runs/onepass.toml",
        "OMP_WAIT_POLICY=PASSIVE python -m tools.train_recognizer --data ../shared/data --traces runs/traces_e "
        "--rendered runs/traces_rendered_e --out runs/rec_e --steps 1200 --rendered-weight 0.4 --threads 2",
        "ln -sfn rec_e runs/rec",
        "python -m tools.export_tflite recognizer --ckpt runs/rec/last.pt --traces runs/traces_e",
        "# evaluate_models --update-cards writes both cards: it needs the keypoint card's chain up to its export too",
        *EVALUATE,
    ]),
}


SPLIT_RULE = ("by source footage (tools.dataset): union-find over source_repo and repositories named in MANIFEST "
              "notes; whole groups go to train or val (seed 7, ~22% val); riyer8 (no person metadata, its people "
              "recur across clip numbers and folders) and any group sharing footage with it train only")
SPLIT_CHANGE = ("the models were trained when riyer8 was split in blocks of 20 clip numbers; 59 riyer8 clips and one "
                "footage group (APKA-llc + Kazutaka101: its push-up video is also riyer8's correct49) were held out "
                "then. They were found to share people and footage with training clips and are no longer validation: "
                "'train' is what the models were trained on, 'val' what they are measured on, which they never saw")


# A card's training.targets when neither the training run's record (metrics.json "targets", which
# tools.train_recognizer writes since session 12) nor the card being replaced (for the same file) says.
TARGETS_UNRECORDED = ("not recorded: the training run's metrics.json has no 'targets' (runs before session 12); "
                      "they are tools.dataset's labels at the commit the run was trained at")


def recognizer_training_summary(run_dir: Path, previous: dict | None = None) -> dict:
    """``previous``: the training block of the card this one replaces, when that card describes the
    same file; its targets are kept where the run's own record has none."""
    m = run_dir / "metrics.json"
    t = json.loads(m.read_text()) if m.exists() else {}
    out = {
        "data": ("keypoint traces of every clip in ../shared/data (pushup/, pushup_riyer8_cs231n-pushfit/, negative/; "
                 "ambiguous negatives left out): the MediaPipe teacher's, and our int8 keypoint model's as the appliance "
                 "sees them (tools.pose_traces collect)"),
        "split": SPLIT_RULE,
        # what the run trained on, from its own record: tools.dataset's labels today may not be those
        "targets": t.get("targets") or (previous or {}).get("targets") or TARGETS_UNRECORDED,
        "augmentation": ("tempo (window step 0.07/0.1/0.14 s), horizontal flip with left/right swap, rotation +-8 deg, "
                         "scale, keypoint jitter and outliers (stronger on teacher traces), dropped keypoints, history cut short"),
    }
    if t:
        out["run"] = {k: t[k] for k in ("train_windows", "steps", "wall_seconds", "threads", "tools_commit") if k in t}
        out["run"]["machine"] = "2-core x86-64 CPU, no GPU"
        out["run"]["args"] = t.get("args")
    return out


def training_summary(task: str, run_dir: Path, val_cache_json: Path | None = None, previous: dict | None = None) -> dict:
    """``val_cache_json``: the summary of the cache the metrics were measured on, where that is not
    the training cache (runs/cache/frames.json). ``previous``: the replaced card's training block
    (same file), for what the run folder does not record."""
    if task != "keypoints":
        return recognizer_training_summary(run_dir, previous) | ({"split_change": SPLIT_CHANGE} if val_cache_json else {})
    cache_json = REPO / "runs" / "cache" / "frames.json"
    out = {}
    if cache_json.exists():
        c = json.loads(cache_json.read_text())
        if val_cache_json is not None:
            c["val"] = json.loads(val_cache_json.read_text())["val"]
            out["split_change"] = SPLIT_CHANGE
        for split in ("train", "val"):
            s = c[split]
            out[split] = {
                "clips": s["clips"], "footage_groups": s["groups"], "frames": s["frames"],
                "frames_with_teacher": s["frames_with_teacher"],
                "recognition_positive_frames": s["positives"], "recognition_negative_frames": s["negatives"],
            }
    out["data"] = ("../shared/data (MANIFEST.tsv): pushup/, pushup_riyer8_cs231n-pushfit/, negative/, images/; "
                   "labels: teacher_labels_mediapipe (MediaPipe Pose full) mapped with appliance.keypoints.from_mediapipe33")
    out["split"] = SPLIT_RULE
    out["people"] = "about 35 distinct people/scenes in pushup/ plus riyer8 and ~100 negative clips; footage groups counted above"
    out["frame_sampling"] = "every 3rd push-up frame, every 4th (train) / 6th (val) riyer8 frame, every 8th negative frame"
    out["targets"] = "Gaussian heatmaps, sigma 1.5 cells, peak 1 (appliance.geometry.encode_heatmaps); teacher points with visibility < 0.5 unsupervised"
    out["augmentation"] = ("zoom 0.75-1.45 (or person-centred zoom), rotation +-20 deg, shift, horizontal flip with left/right "
                           "swap, brightness, contrast, saturation, colour gain, gamma, grey, blur, noise, low resolution")
    m = run_dir / "metrics.json"
    if m.exists():
        t = json.loads(m.read_text())
        out["run"] = {k: t[k] for k in ("train_frames", "steps", "batch", "wall_seconds", "threads") if k in t}
        out["run"]["machine"] = "2-core x86-64 CPU shared with other jobs, no GPU, torch.set_num_threads(1)"
        out["run"]["args"] = t.get("args")
    ha = REPO / "runs" / "kp_a" / "history.json"
    if ha.exists():
        h = json.loads(ha.read_text())
        out["phase_a"] = {"note": "full-frame training, stopped by hand; phase B warm-starts from its step-600 EMA",
                          "steps_used": 600, "wall_seconds_approx": round(h[-1]["seconds"] + 60, 0), "batch": 16}
        total = out["phase_a"]["wall_seconds_approx"]
        for phase, folder, note in (
            ("phase_b", "kp_b", "1.5x crops at full pixel scale, warm start from phase A; phase C warm-starts from its best"),
            ("phase_c", "kp_syn", "real + rendered frames, warm start from phase B's best; the run (phase D) warm-starts from its best"),
        ):
            mp = REPO / "runs" / folder / "metrics.json"
            if mp.exists() and mp.resolve() != (run_dir / "metrics.json").resolve():
                tp = json.loads(mp.read_text())
                out[phase] = {"note": note, "steps": tp["steps"], "wall_seconds": tp["wall_seconds"], "batch": tp["batch"],
                              "best_val_subset_pck_body_all": tp["best_val_pck_body_all"]}
                total += tp["wall_seconds"]
        if "run" in out:
            out["wall_seconds_total_approx"] = total + out["run"]["wall_seconds"]
    return out


def _old_card(path: Path) -> dict:
    """The card being replaced, or {} when there is none or it cannot be read (cut short by a
    full disk or a kill): a damaged card must not stop a new one from being written."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


def write_card(task: str, export_info: dict, metrics: dict, latency: dict, run_dir: Path, models_dir: Path,
               val_cache_json: Path | None = None) -> Path:
    """The card beside ``models_dir/<name>.tflite``, which must be the file ``export_info`` reports on
    (its parameters, MACs and parity come from there)."""
    from tools.export_tflite import int8_contract, sha256

    name = "keypoints" if task == "keypoints" else "recognizer"
    tflite = models_dir / f"{name}.tflite"
    if sha256(tflite) != export_info["sha256"]:
        raise SystemExit(f"{tflite} is not the file its export report describes (sha256 {export_info['sha256'][:12]}...): "
                         f"pass the report of the export that made it")
    c = int8_contract(tflite)
    path = models_dir / f"{name}.json"
    # the card this one replaces, if it describes the same file: what it says that no run record does stays
    old = _old_card(path)
    previous = old.get("training") if old.get("sha256") == export_info["sha256"] else None
    card = {
        "name": name,
        "task": "keypoints" if task == "keypoints" else "recognition",
        "file": f"{name}.tflite",
        "sha256": export_info["sha256"],  # checked against the file above
        "input": {
            "shape": c["input_shape"], "layout": "NHWC", "dtype": c["input_dtype"],
            "scale": c["input_scale"], "zero_point": c["input_zero_point"],
            "color": "RGB", "value_range": [0.0, 1.0], "resize": "letterbox", "pad_value": 0,
        } if task == "keypoints" else {
            "shape": c["input_shape"], "layout": "NTKC", "dtype": c["input_dtype"],
            "scale": c["input_scale"], "zero_point": c["input_zero_point"],
            "kind": "keypoint_window",
            "window": {"steps": c["input_shape"][1], "step_s": STEP_S, "keypoints": list(NAMES[: c["input_shape"][2]]),
                       "normalisation": NORMALISATION, "min_score": MIN_SCORE, "clip": CLIP,
                       "rule": "appliance.recognition: samples step_s apart ending at the newest frame (sample and hold); "
                               "x times the frame aspect; centred on the median shoulder midpoint; divided by the window's "
                               "body scale; channel 2 = seen (score >= min_score), unseen points 0"},
        },
        "output": {
            "shape": c["output_shape"], "layout": "NHWC" if task == "keypoints" else "NC", "dtype": c["output_dtype"],
            "scale": c["output_scale"], "zero_point": c["output_zero_point"],
            "decoding": "heatmap" if task == "keypoints" else "logit",
        },
    }
    if task == "keypoints":
        k = c["output_shape"][-1]
        card["keypoints"] = list(NAMES[:k])
        card["output"]["stride"] = c["input_shape"][1] // c["output_shape"][1]
        card["output"]["sigma"] = 1.5
    card.update({
        "parameters": export_info.get("parameters"),
        "macs": export_info.get("macs"),
        "size_bytes": tflite.stat().st_size,
        "training": training_summary(task, run_dir, val_cache_json, previous),
        "metrics": metrics,
        "latency_ms": latency,
        "tools": export_info.get("tools", {}),
        "int8_check": {"float_ops": c["float_ops"], "ops": c["ops"], "parity": export_info.get("parity_on_calibration_frames")},
        "command": COMMANDS[task],
    })
    path.write_text(json.dumps(card, indent=1) + "\n")
    return path


def main(argv=None):
    """Write both cards from export reports alone (metrics filled in later by tools.evaluate_models).
    Each run folder holds the checkpoint that was exported and the report tools.export_tflite wrote
    beside it (export_keypoints.json, export_recognizer.json); the cards go beside the .tflite files
    those reports describe, in --models."""
    import argparse

    from tools.export_tflite import report_path

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--kp-run", default=str(REPO / "runs" / "kp"),
                    help="the keypoint run folder: export_keypoints.json, metrics.json (default runs/kp)")
    ap.add_argument("--rec-run", default=str(REPO / "runs" / "rec"),
                    help="the recogniser run folder: export_recognizer.json, metrics.json (default runs/rec)")
    ap.add_argument("--models", default=str(REPO / "models"))
    ap.add_argument("--note", default="early checkpoint; not yet evaluated")
    a = ap.parse_args(argv)
    for task, run in (("keypoints", Path(a.kp_run)), ("recognizer", Path(a.rec_run))):
        exp = json.loads(report_path(run, task).read_text())
        print(write_card(task, exp, {"note": a.note}, {}, run, Path(a.models)))


if __name__ == "__main__":
    main()
