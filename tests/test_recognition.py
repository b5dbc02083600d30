"""The recogniser's keypoint window: streaming equals offline, and the normalisation's invariances."""
import numpy as np
import pytest

from appliance import keypoints as kp
from appliance.recognition import CLIP, STEP_S, WINDOW_STEPS, PoseHistory, mirror_window, normalise_window, window_at
from tests.conftest import MODELS, needs_models


def pushup_trace(fps: float, seconds: float = 6.0, x0: float = 0.3, size: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """A side-view push-up stick figure, shoulders going up and down at 0.5 Hz."""
    t = np.arange(0, seconds, 1 / fps)
    depth = 0.5 * (1 + np.cos(2 * np.pi * 0.5 * t))  # 1 at the top
    pts = np.zeros((len(t), kp.FULL_COUNT, 3), np.float32)
    floor = 0.8
    sh_y = floor - size * (0.4 + 0.6 * depth)
    for i, (name, x, y) in enumerate([
        ("left_wrist", 0.0, floor), ("left_elbow", 0.1, None), ("left_shoulder", 0.02, "sh"), ("head", -0.1, "head"),
        ("right_shoulder", 0.03, "sh"), ("right_elbow", 0.1, None), ("right_wrist", 0.01, floor),
        ("left_hip", 0.6, "hip"), ("right_hip", 0.6, "hip"),
    ]):
        assert kp.NAMES[i] == name
        pts[:, i, 0] = x0 + x * size * 2
        if y == "sh":
            pts[:, i, 1] = sh_y
        elif y == "head":
            pts[:, i, 1] = sh_y - 0.05 * size
        elif y == "hip":
            pts[:, i, 1] = sh_y + 0.1 * size
        elif y is None:
            pts[:, i, 1] = (sh_y + floor) / 2
        else:
            pts[:, i, 1] = y
    pts[..., 2] = 0.9
    return t, pts


def test_streaming_history_gives_the_offline_window():
    t, pts = pushup_trace(30.0)
    history = PoseHistory()
    for i in range(len(t)):
        history.add(t[i], pts[i])
        if i % 17 == 0:
            np.testing.assert_allclose(history.window(16 / 9), window_at(t[:i + 1], pts[:i + 1], t[i], 16 / 9), atol=1e-6)


def test_history_before_the_first_frame_is_empty():
    t, pts = pushup_trace(30.0, seconds=1.0)
    w = window_at(t, pts, t[-1], 4 / 3)
    assert w.shape == (WINDOW_STEPS, kp.FULL_COUNT, 3)
    covered = int(np.floor(t[-1] / STEP_S + 1e-6)) + 1  # samples at or after t = 0
    assert (w[: WINDOW_STEPS - covered] == 0).all()
    assert (w[WINDOW_STEPS - covered:, :, 2] == 1).all()


def test_window_ignores_where_and_how_big_the_person_is():
    t, small = pushup_trace(30.0, x0=0.2, size=0.2)
    _, big = pushup_trace(30.0, x0=0.5, size=0.35)
    np.testing.assert_allclose(window_at(t, small, 5.0, 16 / 9), window_at(t, big, 5.0, 16 / 9), atol=1e-4)


def test_window_does_not_depend_on_the_frame_rate():
    t30, p30 = pushup_trace(30.0)
    t15, p15 = pushup_trace(15.0)
    w30, w15 = window_at(t30, p30, 5.0, 16 / 9), window_at(t15, p15, 5.0, 16 / 9)
    # sample and hold: at most one 15 fps frame (67 ms) older than the 30 fps sample
    assert np.abs(w30 - w15).max() < 0.35
    assert np.abs(w30 - w15).mean() < 0.05


def test_unseen_keypoints_are_zero_and_marked_unseen():
    t, pts = pushup_trace(30.0)
    pts[:, kp.LEFT_HIP, 2] = 0.1  # below the score threshold
    pts[40:50, kp.HEAD] = np.nan  # the keypoint model never gives NaN, the teacher does
    w = window_at(t, pts, t[-1], 16 / 9)
    assert (w[:, kp.LEFT_HIP] == 0).all()
    assert (w[:, kp.RIGHT_HIP, 2] == 1).all()
    assert np.isfinite(w).all() and np.abs(w[..., :2]).max() <= CLIP


def test_nobody_in_view_is_an_all_zero_window():
    assert (normalise_window(np.zeros((WINDOW_STEPS, 9, 3), np.float32), 4 / 3) == 0).all()


@pytest.mark.parametrize("next_t", [0.0, 4.5], ids=["clock went back", "camera stalled"])
def test_a_new_source_or_a_stall_starts_a_new_history(next_t):
    history = PoseHistory()
    t, pts = pushup_trace(30.0, seconds=2.0)
    assert not any(history.add(t[i], pts[i]) for i in range(len(t)))
    assert history.add(next_t, pts[0])  # says so: the gate starts over with it (Pipeline)
    w = history.window(16 / 9)
    assert (w[:-1] == 0).all() and (w[-1, :, 2] == 1).all()


def test_history_keeps_only_what_the_window_needs():
    history = PoseHistory()
    t, pts = pushup_trace(30.0, seconds=20.0)
    for i in range(len(t)):
        history.add(t[i], pts[i])
    assert len(history._frames) <= (WINDOW_STEPS * STEP_S + 1.2) * 30


@pytest.mark.parametrize("aspect", [4 / 3, 16 / 9, 9 / 16])
def test_aspect_makes_distances_isotropic(aspect):
    """A shoulder width of 0.1 frame heights reads the same whatever the frame's shape."""
    pts = np.zeros((WINDOW_STEPS, 9, 3), np.float32)
    pts[..., 2] = 1.0
    pts[:, kp.LEFT_SHOULDER, 0] = 0.5 - 0.05 / aspect
    pts[:, kp.RIGHT_SHOULDER, 0] = 0.5 + 0.05 / aspect
    pts[:, :, 1] = 0.5
    pts[:, kp.LEFT_ELBOW, 1] = pts[:, kp.RIGHT_ELBOW, 1] = 0.55
    pts[:, kp.LEFT_ELBOW, 0] = pts[:, kp.LEFT_SHOULDER, 0]
    pts[:, kp.RIGHT_ELBOW, 0] = pts[:, kp.RIGHT_SHOULDER, 0]
    w = normalise_window(pts, aspect)
    np.testing.assert_allclose(w[:, kp.RIGHT_SHOULDER, 0] - w[:, kp.LEFT_SHOULDER, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("aspect", [4 / 3, 9 / 16])
def test_mirror_window_is_the_window_of_the_mirrored_scene(aspect):
    t, pts = pushup_trace(30.0)
    pts[:, kp.LEFT_HIP, 2] = 0.1  # one side unseen: the mirror must move it to the other side
    assert (mirror_window(window_at(t, pts, 5.0, aspect))[:, kp.RIGHT_HIP] == 0).all()
    np.testing.assert_allclose(mirror_window(window_at(t, pts, 5.0, aspect)),
                               window_at(t, kp.flip_horizontal(pts), 5.0, aspect), atol=1e-5)
    np.testing.assert_array_equal(mirror_window(mirror_window(window_at(t, pts, 5.0, aspect))),
                                  window_at(t, pts, 5.0, aspect))


@needs_models
def test_shipped_recogniser_answers_the_same_for_a_scene_and_its_mirror():
    from appliance.models import RecognitionModel

    t, pts = pushup_trace(30.0)
    answers = []
    for points in (pts, kp.flip_horizontal(pts)):
        model = RecognitionModel(MODELS / "recognizer.tflite")
        for i in range(len(t)):
            model.observe(t[i], points[i])
        answers.append(model.predict(16 / 9))
    assert 0.0 <= answers[0] <= 1.0
    assert answers[0] == pytest.approx(answers[1], abs=1e-3)  # one pass each: 0.95 and 0.87
