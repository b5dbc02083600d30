"""A tiny net through the real converter: full-int8 contract and parity with float PyTorch."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_quantizer")
pytest.importorskip("ai_edge_litert")


def test_tiny_keypoint_net_int8_contract(tmp_path):
    import torch.nn as nn
    import torch.nn.functional as F

    from tools import export_tflite as ex
    from tools.nets import InvertedResidual, conv_bn

    torch.manual_seed(0)
    torch.set_num_threads(1)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = conv_bn(3, 8, 3, 2)
            self.b = InvertedResidual(8, 8, 1, 2)
            self.c = InvertedResidual(8, 16, 2, 2)
            self.lat = conv_bn(16, 8, 1)
            self.head = nn.Conv2d(8, 3, 1)

        def forward(self, x):
            f2 = self.b(self.a(x))
            y = F.interpolate(self.lat(self.c(f2)), scale_factor=2.0, mode="bilinear", align_corners=False) + f2
            return self.head(y)

    net = Tiny().eval()
    module = ex.NHWCKeypoints(net).eval()
    rng = np.random.default_rng(0)
    calib = rng.random((24, 32, 48, 3)).astype(np.float32)
    calib[0, 0, 0] = 0.0
    calib[0, 0, 1] = 1.0
    fpath = ex.to_float_tflite(module, torch.from_numpy(calib[:1]), tmp_path / "f.tflite")
    qpath = ex.quantize_int8(fpath, calib, tmp_path / "q.tflite")
    c = ex.int8_contract(qpath)
    assert c["input_dtype"] == "int8" and c["output_dtype"] == "int8"
    assert c["float_ops"] == []
    assert "QUANTIZE" not in c["ops"] and "DEQUANTIZE" not in c["ops"]
    assert c["input_shape"] == [1, 32, 48, 3] and c["output_shape"] == [1, 16, 24, 3]
    assert abs(c["input_scale"] - 1 / 255) < 1e-4 and c["input_zero_point"] == -128
    f = ex.float_nhwc(module, calib[:8])
    q = ex.Int8Runner(qpath)(calib[:8])
    rel = np.abs(f - q).mean() / (np.abs(f).mean() + 1e-6)
    assert rel < 0.1  # untrained random net on noise: loose, but catches a broken scale or layout
    assert np.corrcoef(f.ravel(), q.ravel())[0, 1] > 0.98


def test_tiny_motion_recogniser_int8_contract(tmp_path):
    """The recogniser's keypoint window goes through the same converter with its +-CLIP range."""
    from appliance.recognition import CLIP
    from tools import export_tflite as ex
    from tools.nets import MotionRecognizerNet

    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = MotionRecognizerNet(keypoints=9, steps=12, width=8).eval()
    module = ex.NHWCRecognizer(net).eval()
    rng = np.random.default_rng(0)
    calib = np.clip(rng.normal(0, 1.5, (24, 12, 9, 3)), -CLIP, CLIP).astype(np.float32)
    calib[..., 2] = rng.random((24, 12, 9)) < 0.8
    fpath = ex.to_float_tflite(module, torch.from_numpy(calib[:1]), tmp_path / "f.tflite")
    qpath = ex.quantize_int8(fpath, calib, tmp_path / "q.tflite", input_range=(-CLIP, CLIP))
    c = ex.int8_contract(qpath)
    assert c["input_dtype"] == "int8" and c["output_dtype"] == "int8"
    assert c["float_ops"] == []
    assert c["input_shape"] == [1, 12, 9, 3] and c["output_shape"] == [1, 1]
    assert abs(c["input_scale"] - 2 * CLIP / 255) < 1e-4 and c["input_zero_point"] in (-1, 0)
    f = ex.float_nhwc(module, calib)[:, 0]
    q = ex.Int8Runner(qpath)(calib)[:, 0]
    assert np.corrcoef(f, q)[0, 1] > 0.98


def test_averaged_recogniser_is_one_int8_model_with_the_mean_logit(tmp_path):
    """`train_recognizer --average` saves members in one checkpoint; build_net rebuilds their
    logit mean, which converts like a single recogniser."""
    from appliance.recognition import CLIP, WINDOW_STEPS
    from tools import export_tflite as ex
    from tools.nets import MotionRecognizerNet

    torch.set_num_threads(1)
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        members.append({"model": MotionRecognizerNet(9, WINDOW_STEPS, 8).state_dict(), "width": 8})
    averaged = ex.build_net("recognizer", {"members": members})
    singles = [ex.build_net("recognizer", m) for m in members]
    rng = np.random.default_rng(0)
    calib = np.clip(rng.normal(0, 1.5, (24, WINDOW_STEPS, 9, 3)), -CLIP, CLIP).astype(np.float32)
    calib[..., 2] = rng.random((24, WINDOW_STEPS, 9)) < 0.8
    mean = np.mean([ex.float_nhwc(ex.NHWCRecognizer(n).eval(), calib) for n in singles], axis=0)
    module = ex.NHWCRecognizer(averaged).eval()
    f = ex.float_nhwc(module, calib)
    np.testing.assert_allclose(f, mean, rtol=1e-5, atol=1e-5)
    assert not np.allclose(f, ex.float_nhwc(ex.NHWCRecognizer(singles[0]).eval(), calib))
    fpath = ex.to_float_tflite(module, torch.from_numpy(calib[:1]), tmp_path / "f.tflite")
    qpath = ex.quantize_int8(fpath, calib, tmp_path / "q.tflite", input_range=(-CLIP, CLIP))
    c = ex.int8_contract(qpath)
    assert c["input_dtype"] == "int8" and c["output_dtype"] == "int8" and c["float_ops"] == []
    assert np.corrcoef(f[:, 0], ex.Int8Runner(qpath)(calib)[:, 0])[0, 1] > 0.98


def test_a_card_describes_the_file_beside_it_or_is_not_written(tmp_path):
    """The card's hash, size and int8 contract come from the .tflite in the models folder; an
    export report about another file (another run's) is refused instead of mislabelling it."""
    import json
    import shutil
    from pathlib import Path

    from tools import cards, export_tflite

    shipped = Path(__file__).resolve().parents[1] / "models" / "recognizer.tflite"
    shutil.copy(shipped, tmp_path / "recognizer.tflite")
    report = {"sha256": export_tflite.sha256(shipped), "size_bytes": 1, "parameters": 7, "contract": {"float_ops": ["stale"]}}
    card = json.loads(cards.write_card("recognizer", report, {}, {}, tmp_path / "no_run", tmp_path).read_text())
    assert card["size_bytes"] == shipped.stat().st_size and card["int8_check"]["float_ops"] == []
    assert card["input"]["dtype"] == card["output"]["dtype"] == "int8"
    with pytest.raises(SystemExit, match="not the file its export report describes"):
        cards.write_card("recognizer", report | {"sha256": "0" * 64}, {}, {}, tmp_path / "no_run", tmp_path)


def test_a_damaged_old_card_does_not_stop_a_new_one(tmp_path):
    """The tool reads the card it replaces (to keep what no run record says): one cut short by
    a full disk or a kill stopped the new card with a traceback (found by review)."""
    import json
    import shutil
    from pathlib import Path

    from tools import cards, export_tflite

    shipped = Path(__file__).resolve().parents[1] / "models" / "keypoints.tflite"
    shutil.copy(shipped, tmp_path / "keypoints.tflite")
    (tmp_path / "keypoints.json").write_text('{"name": "keypoints", "sha')
    report = {"sha256": export_tflite.sha256(shipped)}
    card = json.loads(cards.write_card("keypoints", report, {}, {}, tmp_path / "no_run", tmp_path).read_text())
    assert card["sha256"] == report["sha256"] and card["task"] == "keypoints"


def test_a_failed_int8_check_leaves_the_model_in_place(tmp_path, monkeypatch):
    """The export replaces models/<name>.tflite only once its int8 contract holds: a model that
    fails it goes beside its checkpoint, the file in place (and the card's hash of it) stay."""
    import json

    from appliance.recognition import CLIP, WINDOW_STEPS
    from tools import export_tflite as ex
    from tools.nets import MotionRecognizerNet

    torch.manual_seed(0)
    torch.set_num_threads(1)
    run, models = tmp_path / "rec", tmp_path / "models"
    run.mkdir()
    models.mkdir()
    torch.save({"model": MotionRecognizerNet(9, WINDOW_STEPS, 8).state_dict(), "width": 8, "step": 3}, run / "last.pt")
    rng = np.random.default_rng(0)
    calib = np.clip(rng.normal(0, 1.5, (24, WINDOW_STEPS, 9, 3)), -CLIP, CLIP).astype(np.float32)
    calib[..., 2] = rng.random((24, WINDOW_STEPS, 9)) < 0.8
    monkeypatch.setattr(ex, "calibration_windows", lambda n, traces_dir: calib[:n])
    shipped = models / "recognizer.tflite"
    shipped.write_bytes(b"the shipped model")
    (run / "export_recognizer.json").write_text("the shipped model's report")
    real_contract = ex.int8_contract
    monkeypatch.setattr(ex, "int8_contract", lambda p: real_contract(p) | {"float_ops": ["DEQUANTIZE"]})
    argv = ["recognizer", "--ckpt", str(run / "last.pt"), "--out-dir", str(models), "--calib", "24"]

    assert ex.main(argv) == 1
    assert shipped.read_bytes() == b"the shipped model"
    assert (run / "export_recognizer.json").read_text() == "the shipped model's report"
    rejected = json.loads((run / "export_recognizer.rejected.json").read_text())
    assert rejected["tflite"] == str(run / "recognizer.rejected.tflite") and not rejected["contract_ok"]
    assert ex.sha256(run / "recognizer.rejected.tflite") == rejected["sha256"]
    assert sorted(p.name for p in models.iterdir()) == ["recognizer.tflite"]  # no temporary file left

    monkeypatch.setattr(ex, "int8_contract", real_contract)
    assert ex.main(argv) == 0
    report = json.loads(ex.report_path(run, "recognizer").read_text())
    assert report["tflite"] == str(shipped) and report["contract_ok"]
    assert ex.sha256(shipped) == report["sha256"] and ex.int8_contract(shipped)["input_dtype"] == "int8"
    assert sorted(p.name for p in models.iterdir()) == ["recognizer.tflite"]


def test_the_recogniser_card_says_what_its_run_trained_on(tmp_path):
    """training.targets comes from the run's own record (metrics.json), else from the card being
    replaced when that card is the same file's, else it says it is not recorded: it is never
    today's tools.dataset labels put on a model trained with older ones."""
    import json
    import shutil
    from pathlib import Path

    from tools import cards, export_tflite

    shipped = Path(__file__).resolve().parents[1] / "models"
    shutil.copy(shipped / "recognizer.tflite", tmp_path / "recognizer.tflite")
    shutil.copy(shipped / "recognizer.json", tmp_path / "recognizer.json")
    shipped_targets = json.loads((shipped / "recognizer.json").read_text())["training"]["targets"]
    report = {"sha256": export_tflite.sha256(shipped / "recognizer.tflite")}

    def targets(run):
        return json.loads(cards.write_card("recognizer", report, {}, {}, run, tmp_path).read_text())["training"]

    assert targets(tmp_path / "old_run")["targets"] == shipped_targets  # no record: the shipped card's text stays
    run = tmp_path / "new_run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"steps": 5, "targets": "what this run used", "tools_commit": "abc1234"}))
    t = targets(run)
    assert t["targets"] == "what this run used" and t["run"]["tools_commit"] == "abc1234"
    card = json.loads((tmp_path / "recognizer.json").read_text())
    (tmp_path / "recognizer.json").write_text(json.dumps(card | {"sha256": "0" * 64}))  # another file's card
    assert targets(tmp_path / "old_run")["targets"] == cards.TARGETS_UNRECORDED


def test_cards_read_the_export_reports_where_the_export_writes_them(tmp_path):
    """python -m tools.cards takes run folders and reads export_tflite.report_path in each."""
    import json
    import shutil
    from pathlib import Path

    from tools import cards, export_tflite

    shipped = Path(__file__).resolve().parents[1] / "models"
    models = tmp_path / "models"
    models.mkdir()
    argv = ["--models", str(models)]
    for task, name, run in (("keypoints", "keypoints", "kp"), ("recognizer", "recognizer", "rec")):
        shutil.copy(shipped / f"{name}.tflite", models)
        (tmp_path / run).mkdir()
        export_tflite.report_path(tmp_path / run, task).write_text(
            json.dumps({"sha256": export_tflite.sha256(shipped / f"{name}.tflite")}))
        argv += [f"--{run}-run", str(tmp_path / run)]
    cards.main(argv)
    assert json.loads((models / "recognizer.json").read_text())["training"]["targets"] == cards.TARGETS_UNRECORDED
    assert json.loads((models / "keypoints.json").read_text())["sha256"] == export_tflite.sha256(shipped / "keypoints.tflite")
