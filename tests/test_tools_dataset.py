"""The train/validation split keeps every piece of source footage on one side; the packed cache."""
import dataclasses
from pathlib import Path

import numpy as np

import pytest

from tools import dataset

ROOT = dataset.data_root(None)
needs_data = pytest.mark.skipif(not (ROOT / "MANIFEST.tsv").exists(), reason="shared data not present")


def _clips():
    clips = dataset.read_manifest(ROOT)
    dataset.assign_groups(clips)
    dataset.assign_split(clips)
    return clips


@needs_data
def test_no_group_on_both_sides():
    clips = _clips()
    sides = {}
    for c in clips:
        sides.setdefault(c.group, set()).add(c.split)
    assert all(len(s) == 1 for s in sides.values())


@needs_data
def test_shared_footage_noted_in_manifest_is_grouped():
    clips = {Path(c.file).name: c for c in _clips()}
    a = clips["Djeyrane-Sophie__acv_project__pushups.mp4"]
    for other in ("posemvp__posemvp__samples_videos_pushup.mp4", "Tayyab-Abdullah__PushUp-Counter__pushup2.mp4"):
        assert clips[other].group == a.group
    assert clips["APKA-llc__exercise-tracking__videos_pushup_good.mp4"].group == clips[
        "Kazutaka101__cv2_pose__data_videos_training_videos_squat.mp4"].group


@needs_data
def test_riyer8_and_footage_it_shares_train_only():
    """riyer8's people recur across its clip numbers and folders, and it holds a cut of a
    validation clip's stock video: none of that may be validation footage."""
    clips = _clips()
    assert {c.split for c in clips if c.kind == "riyer8"} == {"train"}
    shared = {c.group for c in clips if c.file in dataset.SAME_FOOTAGE_AS_RIYER8}
    assert shared and {c.split for c in clips if c.group in shared} == {"train"}


def test_footage_twins_tell_the_same_footage_from_a_similar_scene():
    from PIL import Image

    from tools import footage_twins

    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (90, 160, 3), np.uint8)
    recut = np.clip(scene.astype(int) + rng.integers(-8, 8, scene.shape), 0, 255).astype(np.uint8)  # re-encoded
    other = rng.integers(0, 255, (90, 160, 3), np.uint8)
    as_thumbs = lambda *arrays: footage_twins.thumbnails([Image.fromarray(a) for a in arrays])
    pairs = footage_twins.closest_pairs({"val": as_thumbs(scene)}, {"twin": as_thumbs(other, recut), "other": as_thumbs(other)})
    assert pairs[0][1:] == ("val", "twin") and pairs[0][0] > 0.95
    assert footage_twins.similarity(as_thumbs(scene), as_thumbs(other)) < 0.5


@needs_data
def test_both_sides_have_pushups_and_negatives():
    clips = _clips()
    for split in ("train", "val"):
        kinds = {c.kind for c in clips if c.split == split}
        assert {"pushup", "negative"} <= kinds


def test_pushup_labels_standing_vs_down():
    import numpy as np

    T = 40
    lm = np.full((T, 33, 4), np.nan, np.float32)
    lm[..., 3] = 1
    # frames 0-9 standing (torso vertical, feet below hips), 10-39 horizontal
    for t in range(T):
        if t < 10:
            pts = {11: (0.5, 0.3), 12: (0.5, 0.3), 23: (0.5, 0.55), 24: (0.5, 0.55), 27: (0.5, 0.9), 28: (0.5, 0.9)}
        else:
            pts = {11: (0.3, 0.5), 12: (0.3, 0.5), 23: (0.6, 0.55), 24: (0.6, 0.55), 27: (0.9, 0.6), 28: (0.9, 0.6)}
        for k, (x, y) in pts.items():
            lm[t, k, :2] = (x, y)
    lab = dataset.pushup_labels(lm, fps=10)
    assert (lab[:5] == 0).all() and (lab[20:] == 1).all()


def test_teacher_smoothing_removes_jitter_and_unsupervises_a_glitch():
    import numpy as np

    rng = np.random.default_rng(0)
    T, fps = 60, 30.0
    t = np.arange(T) / fps
    clean = np.zeros((T, 9, 3), np.float32)
    clean[:, :, 0] = 0.3 + 0.05 * np.arange(9)[None, :]         # a person a few body scales wide
    clean[:, :, 1] = 0.5 + 0.05 * np.sin(2 * np.pi * 0.5 * t)[:, None]
    clean[:, :, 2] = 0.9
    noisy = clean.copy()
    noisy[:, :, :2] += rng.normal(0, 0.004, (T, 9, 2))
    noisy[30, 1, :2] += 0.3                                      # one frame: the elbow jumps away
    noisy[40:, 8, 2] = 0.1                                       # a hip the teacher stops seeing
    out = dataset.smooth_teacher_track(noisy, fps)
    assert out[30, 1, 2] == 0.0                                  # the glitch is left unsupervised
    assert np.abs(out[30, 1, :2] - clean[30, 1, :2]).max() < 0.02
    keep = np.ones((T, 9), bool)
    keep[30, 1] = False
    keep[40:, 8] = False
    err_before = np.abs(noisy[..., :2] - clean[..., :2])[keep].mean()
    err_after = np.abs(out[..., :2] - clean[..., :2])[keep].mean()
    assert err_after < 0.8 * err_before
    np.testing.assert_array_equal(out[40:, 8], noisy[40:, 8])    # unseen points are left alone


def _tiny_cache(n=6, h=144, w=192):
    """A cache-shaped dict with smooth frames (WebP keeps them close) and distinct labels."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.stack([np.stack([(xx + 7 * i) % 256, (yy * 2 + i) % 256, np.full_like(xx, 40 * i % 256)], -1)
                       for i in range(n)]).astype(np.uint8)
    kp = np.arange(n * 9 * 3, dtype=np.float32).reshape(n, 9, 3)
    return {"frames": frames, "kp": kp, "kp_frame": kp * 2, "label": np.arange(n, dtype=np.int8) % 2,
            "clip": np.arange(n, dtype=np.int32) // 3, "frame_index": np.arange(n, dtype=np.int32),
            "clips": [{"file": "a.mp4", "split": "train"}, {"file": "b.mp4", "split": "val"}]}


def test_packed_cache_keeps_the_chosen_rows_and_labels_and_near_identical_frames(tmp_path):
    cache = _tiny_cache()
    rows = np.array([1, 2, 4])
    size = dataset.pack_cache(cache, rows, tmp_path / "packed.npz")
    back = dataset.load_cache(tmp_path / "packed.npz")
    assert size == (tmp_path / "packed.npz").stat().st_size
    assert size < cache["frames"][rows].nbytes / 4  # worth carrying
    for key in ("kp", "kp_frame", "label", "clip", "frame_index"):
        np.testing.assert_array_equal(back[key], cache[key][rows])
    assert back["clips"] == cache["clips"]
    assert back["frames"].shape == cache["frames"][rows].shape and back["frames"].dtype == np.uint8
    error = np.abs(back["frames"].astype(int) - cache["frames"][rows].astype(int))
    assert error.mean() < 4.0


def test_training_batches_are_the_same_from_a_gpu_style_tensor_and_from_numpy():
    torch = pytest.importorskip("torch")
    from tools.train_keypoints import batch_pixels

    frames = _tiny_cache()["frames"]
    idx = np.array([3, 0, 5])
    from_numpy = batch_pixels(frames, idx)
    from_tensor = batch_pixels(torch.from_numpy(frames), idx)
    assert from_numpy.shape == (3, 3, 144, 192)
    assert torch.equal(from_numpy, from_tensor)


def _body(lm, t, upright):
    pts = ({11: (0.5, 0.3), 12: (0.5, 0.3), 23: (0.5, 0.55), 24: (0.5, 0.55), 27: (0.5, 0.9), 28: (0.5, 0.9)} if upright
           else {11: (0.3, 0.5), 12: (0.3, 0.5), 23: (0.6, 0.55), 24: (0.6, 0.55), 27: (0.9, 0.6), 28: (0.9, 0.6)})
    for k, (x, y) in pts.items():
        lm[t, k, :2] = (x, y)


def test_the_top_of_a_rep_seen_head_on_stays_inside_the_set():
    """Head-on, the plank at the top of each rep reads as an upright torso for about a second:
    a set's labels must not flicker to 'not a push-up' there (it taught the recogniser that
    head-on push-ups are negatives)."""
    fps, T = 10, 120
    lm = np.full((T, 33, 4), np.nan, np.float32)
    for t in range(T):
        _body(lm, t, upright=(t // 15) % 2 == 1 if 15 <= t < 105 else t < 15)  # 1.5 s tops between 1.5 s bottoms
    lab = dataset.pushup_labels(lm, fps=fps)
    assert (lab[:5] == 0).all()                      # standing before the set: still a negative
    assert not (lab[25:95] == 0).any() and (lab[35:45] == 1).all()


def test_riyer8_clips_are_push_ups_wherever_a_person_is_seen_and_top_down_standing_is_unsure():
    T = 30
    lm = np.full((T, 33, 4), np.nan, np.float32)
    for t in range(T):
        _body(lm, t, upright=True)  # a head-on plank the whole clip: looks upright
    kp = np.zeros((T, 9, 3), np.float32)
    kp[25:] = np.nan  # the person leaves
    clip = dataset.Clip(file="riyer8/wrong/wrong59.mp4", category="", source_repo="", notes="", reps="",
                        confidence="", view="", kind="riyer8")
    assert (dataset.clip_labels(clip, lm, kp, 10)[:25] == 1).all() and (dataset.clip_labels(clip, lm, kp, 10)[25:] == -1).all()
    top_down = dataclasses.replace(clip, file="pushup/x.mp4", kind="pushup", view="top-down")
    assert not (dataset.clip_labels(top_down, lm, kp, 10) == 0).any()
    front = dataclasses.replace(top_down, view="front")
    assert (dataset.clip_labels(front, lm, kp, 10) == 0).all()  # elsewhere an upright torso is a negative
