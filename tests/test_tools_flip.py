"""Horizontal flip swaps the person's left and right, in keypoints and in the augmenter."""
import numpy as np
import pytest

from appliance import keypoints as kpmod


def test_flip_swaps_left_right_and_mirrors_x():
    kp = np.zeros((1, 9, 3), np.float32)
    kp[0, :, 0] = np.linspace(0.1, 0.9, 9)
    kp[0, :, 1] = np.linspace(0.2, 0.8, 9)
    kp[0, :, 2] = 1
    f = kpmod.flip_horizontal(kp)
    assert np.isclose(f[0, kpmod.RIGHT_WRIST, 0], 1 - kp[0, kpmod.LEFT_WRIST, 0])
    assert np.isclose(f[0, kpmod.RIGHT_WRIST, 1], kp[0, kpmod.LEFT_WRIST, 1])
    assert np.isclose(f[0, kpmod.HEAD, 0], 1 - kp[0, kpmod.HEAD, 0])
    assert np.isclose(f[0, kpmod.LEFT_HIP, 0], 1 - kp[0, kpmod.RIGHT_HIP, 0])
    assert np.allclose(kpmod.flip_horizontal(f), kp)


def test_augment_flip_matches_keypoint_flip():
    pytest.importorskip("torch")
    import torch

    from tools import augment

    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0.2, 0.8, (1, 9, 2)), np.ones((1, 9, 1))], axis=-1).astype(np.float32)
    img = torch.zeros(1, 3, 36, 48)
    # force a pure flip: zoom 1, no rotation, no shift, flip certain
    class FlipRng:
        def __init__(self):
            self.r = np.random.default_rng(5)

        def uniform(self, lo, hi):
            return (lo + hi) / 2 if lo != hi else lo

        def random(self):
            return 0.99  # rotation branch off, person zoom off ...

    fr = FlipRng()
    calls = {"n": 0}

    def random():
        calls["n"] += 1
        return 0.99 if calls["n"] != 2 else 0.0  # 2nd draw is the flip decision

    fr.random = random
    _, out = augment.warp(img, kp, (36, 48), fr, train=True, zoom=(1.0, 1.0), shift=0.0)
    assert np.allclose(out, kpmod.flip_horizontal(kp), atol=1e-5)


def test_augment_identity_keeps_keypoints():
    pytest.importorskip("torch")
    import torch

    from tools import augment

    kp = np.array([[[0.3, 0.4, 1.0]] * 9], np.float32)
    img = torch.rand(1, 3, 36, 48)
    out_img, out = augment.warp(img, kp, (36, 48), np.random.default_rng(0), train=False)
    assert np.allclose(out, kp, atol=1e-6)
    assert torch.allclose(out_img, img, atol=1e-5)


def test_unmirror_heatmaps_puts_peaks_back_on_the_right_side():
    h, w = 6, 8
    maps = np.zeros((h, w, 9), np.float32)
    maps[2, 1, kpmod.LEFT_WRIST] = 1.0       # left wrist near the left edge of the frame
    maps[4, 5, kpmod.HEAD] = 1.0
    # what the model would see in the mirrored frame: the same wrist, now the image's right side,
    # and (the person mirrored) reported as the right wrist
    mirrored = np.zeros_like(maps)
    mirrored[2, w - 1 - 1, kpmod.RIGHT_WRIST] = 1.0
    mirrored[4, w - 1 - 5, kpmod.HEAD] = 1.0
    np.testing.assert_array_equal(kpmod.unmirror_heatmaps(mirrored), maps)
    batch = np.stack([mirrored, mirrored])
    np.testing.assert_array_equal(kpmod.unmirror_heatmaps(batch), np.stack([maps, maps]))


def test_flip_averaged_keypoints_mirror_with_the_frame():
    """With flip averaging the model answers a mirrored frame with exactly the mirrored keypoints."""
    from pathlib import Path

    from appliance.config import ModelsConfig
    from appliance.frames import Frame
    from appliance.models import KeypointModel

    rng = np.random.default_rng(0)
    for flip_average in (True, False):
        model = KeypointModel(Path(ModelsConfig().dir) / "keypoints.tflite", flip_average=flip_average)
        image = (rng.random((model.input_h * 2, model.input_w * 2, 3)) * 255).astype(np.uint8)  # no letterbox bars
        image[60:200, 100:140] = (200, 160, 140)
        a = model.predict(Frame(image, "RGB", 0.0))
        b = model.predict(Frame(np.ascontiguousarray(image[:, ::-1]), "RGB", 0.0))
        gap = np.abs(kpmod.flip_horizontal(b) - a)[:, :2].max()
        # averaged: the same up to a tie between two heatmap cells; one pass: whole body widths apart
        assert (gap < 0.03) if flip_average else (gap > 0.2), (flip_average, gap)


def test_recogniser_augmentation_mirrors_which_points_are_seen_with_them():
    """A window where only the left wrist is seen: mirrored, the right wrist is seen and the
    left one is not. Reading the seen mask before the mirror left a phantom point at the
    origin in half the windows and erased the real one."""
    pytest.importorskip("torch")
    from appliance.keypoints import LEFT_WRIST
    from tools.train_recognizer import augment

    n, t = 400, 30
    x = np.zeros((n, t, 9, 3), np.float32)
    x[:, :, LEFT_WRIST] = (2.0, 2.0, 1.0)
    out = augment(x, np.zeros(n, bool), np.random.default_rng(0))
    shown = np.linalg.norm(out[..., :2], axis=-1)
    shown = shown[shown > 0]
    assert len(shown) > n * t * 0.5
    assert np.mean(shown < 0.5) < 0.02  # every point shown is the wrist, none a phantom at the origin
