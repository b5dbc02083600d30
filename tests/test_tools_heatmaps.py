"""Heatmap encode/decode round trip and the training-side torch targets (tools.augment)."""
import numpy as np
import pytest

from appliance.geometry import decode_heatmaps, encode_heatmaps


def test_encode_decode_round_trip_subcell():
    rng = np.random.default_rng(0)
    h, w = 36, 48
    xy = rng.uniform(0.1, 0.9, (9, 2)).astype(np.float32)
    maps = encode_heatmaps(xy, np.ones(9, bool), h, w)
    dec = decode_heatmaps(maps)
    err_cells = np.abs(dec[:, :2] - xy) * [w, h]
    assert err_cells.max() < 0.15  # parabola refinement recovers sub-cell positions
    assert (dec[:, 2] > 0.89).all()  # peak cell value: the point may sit half a cell off


def test_invisible_point_gives_empty_map():
    xy = np.array([[0.5, 0.5], [np.nan, np.nan]], np.float32)
    maps = encode_heatmaps(xy, np.array([True, True]), 10, 10)
    assert maps[:, :, 1].max() == 0
    maps = encode_heatmaps(xy, np.array([False, True]), 10, 10)
    assert maps[:, :, 0].max() == 0


def test_torch_targets_match_geometry():
    pytest.importorskip("torch")
    from tools.augment import heatmap_targets

    rng = np.random.default_rng(1)
    kp = np.concatenate([rng.uniform(0.05, 0.95, (2, 9, 2)), np.ones((2, 9, 1))], axis=-1).astype(np.float32)
    kp[1, 3, 2] = 0.1  # low visibility: no supervision
    kp[1, 4, 0] = 1.4  # visible but outside: all-zero target, still supervised
    maps, weight = heatmap_targets(kp, 36, 48)
    ref = encode_heatmaps(kp[0, :, :2], np.ones(9, bool), 36, 48)
    assert np.allclose(maps[0].numpy().transpose(1, 2, 0), ref, atol=1e-5)
    assert weight[1, 3] == 0 and weight[1, 4] == 1
    assert maps[1, 4].max() == 0
