"""tools.relabel: the crop placed for BlazePose heavy, the way its landmarks come back, and the
agreement mask that training applies. No model is needed (a stand-in interpreter)."""
import numpy as np
import pytest
from PIL import Image

from appliance import keypoints as kpmod
from tools.relabel import CROP, apply_agreement, crop_affine, roi_from_keypoints, run_heavy


def side_view_pose() -> np.ndarray:
    """A side-view plank in frame pixels: head left, hips right, shoulders 100 px from the hips."""
    kp = np.full((9, 3), np.nan, np.float32)
    kp[kpmod.HEAD] = (100, 200, 1)
    kp[kpmod.LEFT_SHOULDER] = kp[kpmod.RIGHT_SHOULDER] = (150, 210, 1)
    kp[kpmod.LEFT_ELBOW] = kp[kpmod.RIGHT_ELBOW] = (160, 260, 1)
    kp[kpmod.LEFT_WRIST] = kp[kpmod.RIGHT_WRIST] = (150, 300, 1)
    kp[kpmod.LEFT_HIP] = kp[kpmod.RIGHT_HIP] = (250, 220, 1)
    return kp


def test_crop_is_centred_on_the_hips_with_the_body_pointing_up():
    centre, up, side = roi_from_keypoints(side_view_pose())
    np.testing.assert_allclose(centre, (250, 220))
    np.testing.assert_allclose(up, np.array([-100, -10]) / np.hypot(100, 10), atol=1e-6)
    m = crop_affine(centre, up, side)
    np.testing.assert_allclose(m @ [CROP / 2, CROP / 2, 1], centre, atol=1e-6)
    # the crop's top centre lies half a side from the hips along the body, towards the head
    np.testing.assert_allclose(m @ [CROP / 2, 0, 1], centre + up * side / 2, atol=1e-6)
    # a rotation and a scale, no mirror: upright (up = 0, -1) the crop's right is the frame's right
    assert np.linalg.det(m[:, :2]) > 0
    right = m @ [CROP, CROP / 2, 1] - centre
    np.testing.assert_allclose(right / np.linalg.norm(right), (-up[1], up[0]), atol=1e-9)


def test_head_on_crop_covers_the_keypoints():
    kp = side_view_pose()
    kp[kpmod.LEFT_HIP] = kp[kpmod.RIGHT_HIP] = (152, 215, 1)   # hips hidden right behind the shoulders
    kp[kpmod.LEFT_WRIST] = (60, 300, 1)
    kp[kpmod.RIGHT_WRIST] = (240, 300, 1)
    centre, up, side = roi_from_keypoints(kp)
    assert side >= 1.7 * 180 - 1e-3
    m = crop_affine(centre, up, side)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
    uv = (inv @ np.c_[kp[:, :2], np.ones(9)].T).T[:, :2]
    assert (uv >= 0).all() and (uv <= CROP).all()


def test_no_crop_without_shoulders_or_hips():
    kp = side_view_pose()
    kp[kpmod.LEFT_HIP] = kp[kpmod.RIGHT_HIP] = np.nan
    assert roi_from_keypoints(kp) is None


class FakeLandmarkModel:
    """Stands in for the ai-edge-litert interpreter of pose_landmark_heavy: fixed crop landmarks."""

    def __init__(self, uv: np.ndarray, visibility_logit: float, flag: float):
        self.raw = np.zeros((39, 5), np.float32)
        self.raw[:33, :2] = uv
        self.raw[:, 3] = visibility_logit
        self.flag = flag
        self.seen_input = None

    def get_input_details(self):
        return [{"index": 0, "shape": np.array([1, CROP, CROP, 3])}]

    def get_output_details(self):
        return [{"index": 1, "shape": np.array([1, 195])}, {"index": 2, "shape": np.array([1, 1])}]

    def set_tensor(self, index, value):
        self.seen_input = value

    def invoke(self):
        pass

    def get_tensor(self, index):
        return self.raw.reshape(1, 195) if index == 1 else np.array([[self.flag]], np.float32)


def test_landmarks_come_back_in_frame_pixels():
    rng = np.random.default_rng(0)
    uv = rng.uniform(0, CROP, (33, 2)).astype(np.float32)
    fake = FakeLandmarkModel(uv, visibility_logit=2.0, flag=0.9)
    centre, up, side = roi_from_keypoints(side_view_pose())
    m = crop_affine(centre, up, side)
    img = Image.new("RGB", (640, 480), (90, 90, 90))
    lm, flag = run_heavy(fake, img, m)
    assert fake.seen_input.shape == (1, CROP, CROP, 3) and fake.seen_input.max() <= 1.0
    np.testing.assert_allclose(lm[:, :2], (np.c_[uv, np.ones(33)] @ m.T), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(lm[:, 3], 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    assert flag == pytest.approx(0.9)


def agreement_for(cache, agree, done):
    return {"agree": agree, "done": done, "clip": cache["clip"][: len(agree)], "frame_index": cache["frame_index"][: len(agree)]}


def test_disagreeing_points_are_left_unsupervised():
    kp = np.ones((5, 9, 3), np.float32)
    cache = {"kp": kp, "clip": np.array([0, 0, 1, 1, 9]), "frame_index": np.array([0, 3, 0, 3, 0])}
    agree = np.ones((4, 9), bool)
    agree[0, 2] = agree[3, 5] = False
    done = np.array([True, True, True, False])
    dropped = apply_agreement(cache, agreement_for(cache, agree, done))
    assert dropped == 1                                   # row 3 was not relabelled: kept
    assert kp[0, 2, 2] == 0 and kp[3, 5, 2] == 1
    assert (kp[4, :, 2] == 1).all()                       # a rendered row after the real ones


def test_agreement_for_another_cache_is_refused():
    cache = {"kp": np.ones((3, 9, 3), np.float32), "clip": np.array([0, 0, 1]), "frame_index": np.array([0, 3, 0])}
    other = {"agree": np.ones((3, 9), bool), "done": np.ones(3, bool), "clip": np.array([0, 1, 1]), "frame_index": np.array([0, 3, 0])}
    with pytest.raises(ValueError, match="not made for this cache"):
        apply_agreement(cache, other)
