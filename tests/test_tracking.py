"""Person crop: the keypoint model looks around where the last frame found the person."""
import numpy as np
import pytest

from appliance.geometry import CROP_MAX_ZOOM, Crop, person_crop
from tests.conftest import needs_models

INPUT_W, INPUT_H = 192, 144


def body(points_px, frame_w, frame_h, score=0.9):
    kp = np.zeros((9, 3), np.float32)
    kp[: len(points_px), :2] = np.asarray(points_px, np.float32) / [frame_w, frame_h]
    kp[: len(points_px), 2] = score
    return kp


def test_fewer_than_three_points_found_means_the_whole_frame():
    kp = body([(100, 100), (120, 110)], 640, 360)
    assert person_crop(kp, 640, 360, INPUT_W, INPUT_H) is None
    low_scores = body([(100, 100), (120, 110), (130, 120)], 640, 360, score=0.1)
    assert person_crop(low_scores, 640, 360, INPUT_W, INPUT_H) is None


def test_a_body_filling_the_frame_means_the_whole_frame():
    kp = body([(40, 100), (320, 60), (600, 300)], 640, 360)
    assert person_crop(kp, 640, 360, INPUT_W, INPUT_H) is None


def test_a_small_body_is_looked_at_at_most_1p5_times_closer_and_centred():
    kp = body([(500, 250), (520, 240), (540, 270), (560, 260)], 640, 360)
    crop = person_crop(kp, 640, 360, INPUT_W, INPUT_H)
    whole_w = max(640, 360 * INPUT_W / INPUT_H)
    assert crop.width == pytest.approx(whole_w / CROP_MAX_ZOOM, abs=1)
    assert crop.height / crop.width == pytest.approx(INPUT_H / INPUT_W, abs=0.01)
    assert crop.x0 + crop.width / 2 == pytest.approx(530, abs=1)
    assert crop.y0 + crop.height / 2 == pytest.approx(255, abs=1)


def test_a_medium_body_gets_twice_its_extent():
    kp = body([(200, 150), (330, 150), (265, 200)], 640, 360)  # 130 px wide
    crop = person_crop(kp, 640, 360, INPUT_W, INPUT_H)
    assert crop.width == pytest.approx(max(2 * 130, 640 / CROP_MAX_ZOOM), abs=1)


def test_crop_maps_input_coordinates_back_to_the_frame():
    crop = Crop(frame_w=640, frame_h=360, x0=-20, y0=100, width=400, height=300)
    xy = crop.input_to_frame(np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]))
    np.testing.assert_allclose(xy * [640, 360], [[-20, 100], [180, 250], [380, 400]], atol=1e-3)


@needs_models
def test_model_crop_pads_past_the_frame_edge_and_matches_a_plain_crop():
    from PIL import Image

    from appliance.config import ModelsConfig
    from appliance.frames import Frame
    from appliance.models import KeypointModel

    models = ModelsConfig()
    model = KeypointModel(f"{models.dir}/{models.keypoints}")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    frame = Frame(image, "RGB", 0.0)
    inside = Crop(320, 240, 40, 30, 192, 144)
    pixels, _ = model.crop(frame, inside)
    expected = np.asarray(Image.fromarray(image[30:174, 40:232]).resize((model.input_w, model.input_h), Image.BILINEAR))
    np.testing.assert_array_equal(pixels, expected)
    past = Crop(320, 240, 200, -60, 240, 180)  # 120 px past the right edge, 60 above the top
    pixels, _ = model.crop(frame, past)
    assert pixels.shape == (model.input_h, model.input_w, 3)
    assert np.all(pixels[: model.input_h // 3 - 2] == model.pad_value)  # the rows above the frame
    assert np.all(pixels[:, model.input_w // 2 + 2 :] == model.pad_value)  # the columns right of it


@needs_models
def test_tracking_finds_a_small_far_person_better_than_the_whole_frame():
    """A person far from the camera: the crop shows them 1.5x larger, and keypoints get closer to the truth."""
    from tools.render import render_clip

    from appliance.app import load_pipeline
    from appliance.config import Config
    from appliance.frames import Frame

    frames = []
    labels = render_clip(None, scenario="pushups", reps=2, view="side", tempo=1.0, seed=21, width=640, height=360,
                         zoom=2.2, get_up=False, write_video=False, frames_out=frames)
    truth = labels["keypoints"]
    errors = {}
    for track in (False, True):
        config = Config()
        config.models.track_person = track
        pipeline = load_pipeline(config)
        found = []
        for i, image in enumerate(frames):
            found.append(pipeline.process(Frame(image, "RGB", i / labels["fps"], i)).keypoints)
            if track and i > 0:
                assert isinstance(pipeline._region, Crop)
        found = np.stack(found)
        seen = truth[..., 2] > 0
        errors[track] = float(np.median(np.hypot(*(((found[..., :2] - truth[..., :2]) * [640, 360])[seen]).T)))
    assert errors[True] < 0.7 * errors[False], errors  # median 5.7 px -> 2.5 px when written
