"""Export a trained checkpoint to a full-integer int8 TFLite model, and report on it.

PyTorch -> float TFLite (litert-torch, NHWC input via ``to_channel_last_io``) -> static int8
(ai-edge-quantizer ``recipe.static_wi8_ai8()``, calibrated on real data: letterboxed frames
covering the full 0..255 pixel range for the keypoint model, keypoint windows from real traces
for the recogniser) -> checks: int8 input and output, no float tensor anywhere
in the graph (the int8 contract), parity against the float PyTorch model (reported).

The int8 model is written beside ``--out-dir/<name>.tflite`` (default models/) under a
temporary name and moved into place only when the int8 contract holds; an export that fails
it leaves the old file as it was and goes to ``<checkpoint dir>/<name>.rejected.tflite``.
The export report (hash, size, contract, parity, parameters, MACs, tool versions) goes to
``<checkpoint dir>/export_<task>.json``, or ``export_<task>.rejected.json`` for a rejected one.

This writes no model card: the cards (models/<name>.json) are written from these reports by
``python -m tools.evaluate_models ... --update-cards`` (with metrics and latency) or by
``python -m tools.cards`` (without), both reading the reports from the checkpoints' folders
(by default ``runs/kp/export_keypoints.json`` and ``runs/rec/export_recognizer.json``, as the
commands below write them).

    python -m tools.export_tflite keypoints --ckpt runs/kp/best.pt
    python -m tools.export_tflite recognizer --ckpt runs/rec/last.pt --traces runs/traces_e
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tools.dataset import REPO

KEYPOINTS_INPUT = (144, 192)  # H, W


class NHWCRecognizer(torch.nn.Module):
    """Takes a channels-last keypoint window [1, T, K, 3] (appliance.recognition), returns [1, 1] logits."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.permute(0, 3, 1, 2))


class NHWCKeypoints(torch.nn.Module):
    """Takes NHWC float input (0..1), returns NHWC heatmaps [1, h, w, K]."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def build_net(task: str, ckpt: dict | None, width: float = 1.0):
    from appliance.keypoints import FULL_COUNT
    from appliance.recognition import WINDOW_STEPS
    from tools.nets import AveragedRecognizer, KeypointNet, MotionRecognizerNet

    if task != "keypoints" and ckpt and "members" in ckpt:
        return AveragedRecognizer([build_net(task, m) for m in ckpt["members"]]).eval()
    width = ckpt.get("width", width) if ckpt else width
    if task == "keypoints":
        net = KeypointNet(width=width)
    else:
        net = MotionRecognizerNet(FULL_COUNT, WINDOW_STEPS, int(width))
    if ckpt:
        net.load_state_dict(ckpt["model"])
    return net.eval()


def to_float_tflite(nhwc_module: torch.nn.Module, sample_nhwc: torch.Tensor, path: Path) -> Path:
    import litert_torch

    edge = litert_torch.convert(nhwc_module.eval(), (sample_nhwc,))
    edge.export(str(path))
    return path


def quantize_int8(float_path: Path, calib_nhwc: np.ndarray, out_path: Path, input_range=(0.0, 1.0)) -> Path:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    interp = Interpreter(model_path=str(float_path))
    sigs = interp.get_signature_list()
    sig_key = next(iter(sigs))
    in_name = sigs[sig_key]["inputs"][0]
    qt = quantizer.Quantizer(str(float_path), recipe.static_wi8_ai8())
    data = {sig_key: [{in_name: calib_nhwc[i:i + 1].astype(np.float32)} for i in range(len(calib_nhwc))]}
    # Global min/max over the calibration set (the default moving average of per-frame extremes
    # collapses a [1, 1] logit's range to its mean and clips it).
    from ai_edge_quantizer import calibrator
    from ai_edge_quantizer.utils import qsv_utils

    cal = calibrator.Calibrator(qt._float_model_buffer, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
    cal.calibrate(data, qt._recipe_manager)
    calib = cal.get_model_qsvs()
    # Pin the input tensor to its full declared range: for pixels 0..1, so a uint8 pixel p maps
    # to int8 as p - 128 (scale 1/255, zp -128); for keypoint windows, +-recognition.CLIP.
    in_tensor = interp.get_input_details()[0]["name"]
    if in_tensor in calib:
        q = dict(calib[in_tensor])
        q["min"] = np.full_like(np.asarray(q["min"], np.float32), input_range[0])
        q["max"] = np.full_like(np.asarray(q["max"], np.float32), input_range[1])
        calib[in_tensor] = q
    res = qt.quantize(calib)
    if out_path.exists():
        out_path.unlink()
    res.export_model(str(out_path))
    return out_path


def int8_contract(tflite_path: Path) -> dict:
    """Input/output dtype and quantisation, and any tensor of a float type used by an op."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tflite_path))
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    float_ops = []
    op_names = []
    for op in it._get_ops_details():
        op_names.append(op["op_name"])
        for idx in list(op["inputs"]) + list(op["outputs"]):
            if idx < 0:
                continue
            t = tensors.get(idx)
            if t is not None and np.dtype(t["dtype"]).kind == "f":
                float_ops.append(op["op_name"])
                break
    return {
        "input_dtype": np.dtype(inp["dtype"]).name, "output_dtype": np.dtype(outp["dtype"]).name,
        "input_shape": [int(v) for v in inp["shape"]], "output_shape": [int(v) for v in outp["shape"]],
        "input_scale": float(inp["quantization"][0]), "input_zero_point": int(inp["quantization"][1]),
        "output_scale": float(outp["quantization"][0]), "output_zero_point": int(outp["quantization"][1]),
        "float_ops": sorted(set(float_ops)), "ops": sorted(set(op_names)), "op_count": len(op_names),
    }


def contract_ok(contract: dict) -> bool:
    """The int8 contract: int8 input and output, no op reading or writing a float tensor."""
    return contract["input_dtype"] == "int8" and contract["output_dtype"] == "int8" and not contract["float_ops"]


def report_path(run_dir: Path, task: str, rejected: bool = False) -> Path:
    """Where an export's report goes, and where tools.cards and tools.evaluate_models read it:
    beside the checkpoint it was exported from (runs/kp, runs/rec)."""
    return Path(run_dir) / f"export_{task}{'.rejected' if rejected else ''}.json"


class Int8Runner:
    """Run an int8 TFLite model on float 0..1 NHWC input (quantised the way the appliance does)."""

    def __init__(self, path: Path, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(path), num_threads=threads)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]

    def quantize_input(self, x01: np.ndarray) -> np.ndarray:
        scale, zp = self.inp["quantization"]
        q = np.round(x01 / scale) + zp
        return np.clip(q, -128, 127).astype(np.int8)

    def __call__(self, x01: np.ndarray) -> np.ndarray:
        outs = []
        for i in range(len(x01)):
            self.it.set_tensor(self.inp["index"], self.quantize_input(x01[i:i + 1]))
            self.it.invoke()
            q = self.it.get_tensor(self.out["index"]).astype(np.float32)
            scale, zp = self.out["quantization"]
            outs.append((q - zp) * scale)
        return np.concatenate(outs)


def float_nhwc(module, x01: np.ndarray, batch: int = 64) -> np.ndarray:
    outs = []
    with torch.no_grad():
        for i in range(0, len(x01), batch):
            outs.append(module(torch.from_numpy(x01[i:i + batch].astype(np.float32))).numpy())
    return np.concatenate(outs)


def parity(task: str, module, runner: Int8Runner, x01: np.ndarray) -> dict:
    f = float_nhwc(module, x01)
    q = runner(x01)
    res = {"frames": int(len(x01)), "max_abs_diff": float(np.abs(f - q).max()),
           "mean_abs_diff": float(np.abs(f - q).mean())}
    if task == "keypoints":
        from appliance.geometry import decode_heatmaps

        h, w = f.shape[1:3]
        fa = f.reshape(len(f), -1, f.shape[-1]).argmax(1)
        qa = q.reshape(len(q), -1, q.shape[-1]).argmax(1)
        fr, fc = np.divmod(fa, w)
        qr, qc = np.divmod(qa, w)
        cheb = np.maximum(np.abs(fr - qr), np.abs(fc - qc))
        res["argmax_same_cell"] = float((cheb == 0).mean())
        res["argmax_within_one_cell"] = float((cheb <= 1).mean())
        df = np.stack([decode_heatmaps(v) for v in f])
        dq = np.stack([decode_heatmaps(v) for v in q])
        res["decoded_median_px"] = float(np.median(np.linalg.norm((df[..., :2] - dq[..., :2]) * [w * 4, h * 4], axis=-1)))
    else:
        pf, pq = 1 / (1 + np.exp(-f)), 1 / (1 + np.exp(-q))
        res["prob_max_abs_diff"] = float(np.abs(pf - pq).max())
        res["decision_agreement"] = float(((pf > 0.5) == (pq > 0.5)).mean())
    return res


def calibration_frames(n: int, seed: int = 0) -> np.ndarray:
    """Real letterboxed training frames (NHWC float 0..1), chosen to cover the pixel range."""
    from tools.dataset import load_cache

    cache = load_cache(REPO / "runs" / "cache" / "frames.npz")
    clips = cache["clips"]
    split = np.array([clips[c]["split"] for c in cache["clip"]])
    idx = np.flatnonzero(split == "train")
    rng = np.random.default_rng(seed)
    pick = rng.choice(idx, n, replace=False)
    frames = cache["frames"][pick]
    # make sure the set holds a pure-white pixel: pick a real frame that does
    hi_all = idx[cache["frames"][idx].reshape(len(idx), -1).max(1) == 255]
    if len(hi_all) and not (frames.reshape(n, -1).max(1) == 255).any():
        frames[-1] = cache["frames"][hi_all[0]]
    return frames.astype(np.float32) / 255.0


def calibration_windows(n: int, traces_dir: Path, seed: int = 0) -> np.ndarray:
    """Keypoint windows from training footage, half from our model's traces, half the teacher's."""
    from tools.dataset import data_root
    from tools.pose_traces import load_traces
    from tools.train_recognizer import trace_windows

    rng = np.random.default_rng(seed)
    traces = [t for t in load_traces(data_root(None), traces_dir) if t.split == "train"]
    wins = []
    for tr in rng.permutation(len(traces))[: n]:
        x, _, _ = trace_windows(traces[tr], stride=7)
        if len(x):
            wins.append(x[rng.integers(len(x))])
    return np.stack(wins[:n]).astype(np.float32)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tool_versions() -> dict:
    from importlib.metadata import version

    out = {}
    for p in ("torch", "litert-torch", "ai-edge-quantizer", "ai-edge-litert", "numpy", "av"):
        try:
            out[p] = version(p)
        except Exception:
            out[p] = None
    return out


def export(task: str, ckpt_path: Path, out_dir: Path, calib_n: int = 200, traces_dir: Path | None = None) -> dict:
    from appliance.recognition import CLIP
    from tools.nets import count_macs, count_params

    torch.set_num_threads(1)  # conversion/calibration on a busy 2-core machine
    t0 = time.time()
    ckpt = torch.load(ckpt_path, map_location="cpu")
    net = build_net(task, ckpt)
    if task == "keypoints":
        module, calib, input_range = NHWCKeypoints(net).eval(), calibration_frames(calib_n), (0.0, 1.0)
    else:
        module, input_range = NHWCRecognizer(net).eval(), (-CLIP, CLIP)
        calib = calibration_windows(calib_n, traces_dir or REPO / "runs" / "traces")
    macs_shape = (1, calib.shape[3], calib.shape[1], calib.shape[2])
    name = "keypoints" if task == "keypoints" else "recognizer"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.tflite"
    # the new model is written beside the target under a temporary name (same folder, so the move
    # is atomic) and replaces it only once its checks pass: a failed export leaves the shipped
    # file, and the card's hash of it, as they were
    candidate = out_dir / f".{name}.tflite.{os.getpid()}.tmp"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fpath = to_float_tflite(module, torch.from_numpy(calib[:1]), Path(tmp) / f"{name}_float.tflite")
            quantize_int8(fpath, calib, candidate, input_range)
        contract = int8_contract(candidate)
        runner = Int8Runner(candidate)
        par = parity(task, module, runner, calib[: min(64, len(calib))])
        ok = contract_ok(contract)
        digest, size = sha256(candidate), candidate.stat().st_size
        if ok:
            os.replace(candidate, target)
            final = target
        else:
            final = ckpt_path.parent / f"{name}.rejected.tflite"
            shutil.move(str(candidate), str(final))
    finally:
        candidate.unlink(missing_ok=True)
    info = {"task": task, "tflite": str(final), "contract_ok": ok, "sha256": digest, "size_bytes": size,
            "contract": contract, "parity_on_calibration_frames": par, "checkpoint": str(ckpt_path),
            "checkpoint_step": ckpt.get("step"), "width": ckpt.get("width"), "export_seconds": round(time.time() - t0, 1),
            "parameters": count_params(net), "macs": count_macs(net, macs_shape), "tools": tool_versions()}
    if not ok:
        info["not_replaced"] = str(target)
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["keypoints", "recognizer"])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out-dir", default=str(REPO / "models"),
                    help="where <name>.tflite is replaced, only by a model that passes the int8 contract (default models/)")
    ap.add_argument("--calib", type=int, default=200)
    ap.add_argument("--traces", default=None, help="recogniser calibration traces (default runs/traces)")
    a = ap.parse_args(argv)
    info = export(a.task, Path(a.ckpt), Path(a.out_dir), a.calib, Path(a.traces) if a.traces else None)
    ok = info["contract_ok"]
    # a rejected export's report goes beside the rejected file: the report of the model in place stays
    report = report_path(Path(a.ckpt).parent, a.task, rejected=not ok)
    report.write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))
    if ok:
        print(f"INT8 CONTRACT OK: wrote {info['tflite']}, report {report}")
    else:
        print(f"INT8 CONTRACT FAILED: {info['not_replaced']} left as it was; the rejected model is {info['tflite']}, "
              f"its report {report}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
