"""Tests for the synthetic push-up renderer (tools/render): labels, reps, determinism, files."""
from __future__ import annotations

import numpy as np
import pytest

av = pytest.importorskip("av")

from tools.render import body as B  # noqa: E402
from tools.render import motion as M  # noqa: E402
from tools.render import render_clip  # noqa: E402
from tools.render.__main__ import main as cli_main  # noqa: E402

SMALL = dict(width=160, height=120, fps=20.0, write_video=False)


def _clip(**kw):
    frames, masks = [], []
    args = dict(SMALL, scenario="pushups", reps=2, tempo=1.5, get_up=False, seed=3)
    args.update(kw)
    labels = render_clip(None, frames_out=frames, masks_out=masks, **args)
    return labels, frames, masks


@pytest.fixture(scope="module")
def side_clip():
    return _clip(view="side-left")


def test_label_shapes_and_types(side_clip):
    labels, frames, _ = side_clip
    kp = labels["keypoints"]
    assert kp.dtype == np.float32 and kp.shape == (len(frames), 9, 3)
    assert labels["visibility"].shape == (len(frames), 9)
    np.testing.assert_array_equal(kp[..., 2], labels["visibility"])
    assert set(np.unique(labels["visibility"])) <= {0.0, 1.0}
    assert float(labels["fps"]) == 20.0
    assert str(labels["scenario"]) == "pushups" and str(labels["view"]) == "side-left"
    assert frames[0].shape == (120, 160, 3) and frames[0].dtype == np.uint8


def test_rep_count_and_top_times(side_clip):
    labels, frames, _ = side_clip
    tops = labels["rep_top_times_s"]
    assert int(labels["reps"]) == 2 and tops.shape == (2,)
    assert np.all(np.diff(tops) > 0)
    assert 0 < tops[0] and tops[-1] < len(frames) / float(labels["fps"])


@pytest.mark.parametrize("reps,tempo,depth,knees", [(3, 0.5, "full", False), (5, 3.0, "shallow", False),
                                                    (4, 1.0, "mixed", False), (3, 0.8, "full", True)])
def test_tops_are_arm_extensions(reps, tempo, depth, knees):
    fps = 200.0
    m = M.build("pushups", M.Options(reps=reps, tempo=tempo, depth=depth, get_up=False, knees=knees), fps, seed=1)
    assert len(m.rep_top_times) == reps
    sh, wr = m.joints[:, B.J["shoulder_l"]], m.joints[:, B.J["wrist_l"]]
    reach = np.linalg.norm(sh - wr, axis=-1)
    L = B.lengths(m.dims)
    arm = L["upper_arm"] + L["forearm"]
    bottoms = np.asarray(m.info["rep_bottom_times"])
    previous = 0
    for top, bottom in zip(m.rep_top_times, bottoms):
        i_top, i_bot = int(round(top * fps)), int(round(bottom * fps))
        assert reach[i_top] > 0.97 * arm  # arms straight again at the labelled top
        assert reach[i_top] > reach[previous:i_top + 1].max() - 0.01
        previous = i_top
        assert reach[i_bot] < reach[i_top] - 0.05  # and clearly bent at the bottom
        # the arms were bending between the bottom and the top, i.e. the top ends the push
        assert reach[(i_bot + i_top) // 2] < reach[i_top] - 0.01


def test_keypoints_land_on_the_drawn_body(side_clip):
    labels, frames, masks = side_clip
    kp = labels["keypoints"]
    hits = total = 0
    for f in range(0, len(frames), 3):
        for k in range(9):
            x, y, v = kp[f, k]
            if v < 1:
                continue
            u, w = int(x * 160), int(y * 120)
            total += 1
            hits += bool(masks[f][max(w - 1, 0):w + 2, max(u - 1, 0):u + 2].any())
    assert total > 50 and hits == total


def test_side_view_near_side_visible(side_clip):
    labels, _, _ = side_clip
    vis = labels["visibility"]
    # camera on the person's left: the left shoulder/elbow/hip are seen more than the right ones
    assert vis[:, 2].mean() > 0.9 and vis[:, 2].mean() > vis[:, 4].mean() + 0.3
    assert vis[:, 7].mean() > vis[:, 8].mean()


def test_the_head_label_is_the_nose_like_the_teachers():
    """Rendered frames train beside real ones: their head must be the point the teacher calls head
    (MediaPipe's nose), not the centre of the skull, a third of a body scale away."""
    from appliance import keypoints as kp

    lm33 = np.full((1, 33, 4), np.nan, np.float32)
    lm33[0, 0] = (0.4, 0.3, 0.0, 0.9)  # the nose, alone
    assert tuple(kp.from_mediapipe33(lm33)[0, kp.HEAD]) == pytest.approx((0.4, 0.3, 0.9))
    assert B.KEYPOINT_JOINTS[kp.HEAD] == B.J["nose"]


def test_front_view_left_is_image_right():
    labels, _, _ = _clip(view="front", reps=1)
    kp = labels["keypoints"]
    # facing the camera, the person's left wrist appears on the image's right
    assert np.nanmean(kp[:, 0, 0]) > np.nanmean(kp[:, 6, 0])
    assert np.nanmean(kp[:, 2, 0]) > np.nanmean(kp[:, 4, 0])


def test_deterministic_per_seed():
    a, fa, _ = _clip(view="oblique", seed=11, reps=1)
    b, fb, _ = _clip(view="oblique", seed=11, reps=1)
    c, fc, _ = _clip(view="oblique", seed=12, reps=1)
    np.testing.assert_array_equal(a["keypoints"], b["keypoints"])
    np.testing.assert_array_equal(a["rep_top_times_s"], b["rep_top_times_s"])
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb))
    assert not np.array_equal(fa[5], fc[5])


def test_video_file_does_not_depend_on_what_was_encoded_before(tmp_path):
    """The e2e tests, the sample and tools.eval_rendered render many clips in one process; the
    same clip must come out as the same file whatever was rendered before it."""
    clip = dict(view="oblique", seed=11, reps=2, tempo=2.0, get_up=False, width=160, height=120, fps=20.0)
    render_clip(tmp_path / "first.mp4", **clip)
    render_clip(tmp_path / "other.mp4", **{**clip, "seed": 12, "view": "front"})
    render_clip(tmp_path / "again.mp4", **clip)
    assert (tmp_path / "first.mp4").read_bytes() == (tmp_path / "again.mp4").read_bytes()


@pytest.mark.parametrize("scenario", ["plank", "standing", "walking", "squats", "floor", "empty"])
def test_other_scenarios_have_no_reps(scenario):
    frames: list = []
    labels = render_clip(None, scenario=scenario, duration=1.0, seed=2, frames_out=frames, **SMALL)
    assert int(labels["reps"]) == 0 and labels["rep_top_times_s"].size == 0
    assert len(frames) == 20
    if scenario == "empty":
        assert np.isnan(labels["keypoints"][..., :2]).all() and not labels["visibility"].any()
    else:
        assert np.isfinite(labels["keypoints"][..., :2]).all() and labels["visibility"].mean() > 0.3


def test_cli_writes_mp4_and_npz(tmp_path):
    out = tmp_path / "clip.mp4"
    assert cli_main([str(out), "--reps", "2", "--tempo", "2", "--no-get-up", "--view", "oblique",
                     "--width", "160", "--height", "120", "--fps", "20", "--seed", "4"]) == 0
    data = np.load(out.with_suffix(".npz"))
    for key in ("keypoints", "visibility", "fps", "rep_top_times_s", "reps", "scenario", "view"):
        assert key in data.files
    assert int(data["reps"]) == 2 and str(data["scenario"]) == "pushups"
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f for f in container.decode(stream)]
    assert len(frames) == len(data["keypoints"])
    assert frames[0].format.name == "yuv420p" and (frames[0].width, frames[0].height) == (160, 120)


def test_motion_blur_keeps_labels():
    sharp, fs, _ = _clip(view="side", reps=1, tempo=3.0, seed=8)
    blurred, fb, _ = _clip(view="side", reps=1, tempo=3.0, seed=8, motion_blur=3)
    np.testing.assert_array_equal(sharp["keypoints"], blurred["keypoints"])
    np.testing.assert_array_equal(sharp["rep_top_times_s"], blurred["rep_top_times_s"])
    assert len(fs) == len(fb) and not np.array_equal(fs[len(fs) // 2], fb[len(fb) // 2])


def test_rest_on_knees_mid_set():
    fps = 25.0
    m = M.build("pushups", M.Options(reps=4, tempo=1.0, get_up=False, rest_after=2, rest_s=2.0), fps, seed=2)
    tops = m.rep_top_times
    assert len(tops) == 4 and tops[2] - tops[1] > 2.0 + 1.6
    r0, r1 = m.info["rest_span"]
    mid = int(round(0.5 * (r0 + r1) * fps))
    assert m.joints[mid, B.J["knee_l"], 1] < 0.1  # kneeling while resting
    assert m.joints[int(round(tops[1] * fps)), B.J["knee_l"], 1] > 0.15  # in the plank before


@pytest.mark.parametrize("scenario", ["pushups", "plank"])
def test_body_stays_on_the_floor_with_hands_planted(scenario):
    for seed in list(range(12)) + [141]:
        opts = M.Options(reps=2, tempo=2.0, get_up=False, duration=1.0, knees=seed % 4 == 0)
        m = M.build(scenario, opts, 25.0, seed)
        assert m.joints[:, :, 1].min() > -0.03, seed  # nothing sinks into the floor
        wrists = m.joints[:, [B.J["wrist_l"], B.J["wrist_r"]], 1]
        assert wrists.max() < 0.06 and wrists.min() > 0.03, seed  # hands stay on the floor


@pytest.mark.parametrize("flow", sorted(M.FLOOR_FLOWS))
def test_floor_flows_lie_on_the_mat(flow):
    """Hard negatives on the mat: something touches the floor, nothing sinks into it, and the
    body stays low (no standing up): the shoulders stay below a standing person's hips."""
    m = M.build("floor", M.Options(duration=6.0, flow=flow), 10.0, seed=3)
    assert m.info["flow"] == flow and m.rep_top_times.size == 0
    ys = m.joints[:, :, 1]
    assert ys.min() > -0.05 and np.all(ys.min(axis=1) < 0.08)
    shoulders = m.joints[:, [B.J["shoulder_l"], B.J["shoulder_r"]], 1]
    assert shoulders.max() < 0.95


def test_floor_flows_move_through_their_poses():
    m = M.build("floor", M.Options(duration=8.0, flow="sphinx"), 10.0, seed=5)
    chest = m.joints[:, [B.J["shoulder_l"], B.J["shoulder_r"]], 1].mean(axis=1)
    assert chest.max() - chest.min() > 0.15  # lying flat, then up on the forearms
