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
