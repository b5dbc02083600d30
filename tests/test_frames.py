import numpy as np
import pytest

from appliance.frames import Frame, brightness, check_frame, rgb_to_yuv420, to_rgb
from appliance.geometry import Letterbox


def test_yuv420_round_trip_keeps_colours():
    rng = np.random.default_rng(0)
    rgb = np.kron(rng.integers(30, 220, (12, 16, 3)), np.ones((2, 2, 1))).astype(np.uint8)
    yuv = rgb_to_yuv420(rgb)
    assert yuv.shape == (36, 32)
    back = to_rgb(Frame(yuv, "YUV420", 0.0))
    assert back.shape == rgb.shape
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 3


@pytest.mark.parametrize(
    "image, fmt",
    [
        (np.zeros((240, 320), np.uint8), "RGB"),
        (np.zeros((240, 320, 3), np.float32), "RGB"),
        (np.zeros((241, 320), np.uint8), "YUV420"),
        (np.zeros((240, 320, 3), np.uint8), "BGR"),
    ],
)
def test_wrong_frames_are_refused(image, fmt):
    with pytest.raises(ValueError, match="frame"):
        check_frame(Frame(image, fmt, 0.0))


def test_letterbox_maps_back_and_forth():
    box = Letterbox(640, 360, 192, 192)
    assert box.content_size == (192, 108) and box.offset == (0, 42)
    points = np.array([[0.0, 0.0], [1.0, 1.0], [0.25, 0.8]], np.float32)
    assert np.allclose(box.input_to_frame(box.frame_to_input(points)), points, atol=1e-6)


def test_brightness_reads_the_same_from_rgb_and_the_pis_yuv420():
    rng = np.random.default_rng(3)
    rgb = (rng.random((48, 64, 3)) * 60).astype(np.uint8)  # a dim room
    grey = np.repeat(rgb.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    from_rgb = brightness(Frame(grey, "RGB", 0.0))
    from_yuv = brightness(Frame(rgb_to_yuv420(grey), "YUV420", 0.0))
    assert from_rgb == pytest.approx(from_yuv, abs=1.0) and 20 < from_rgb < 40
    assert brightness(Frame(np.zeros((48, 64, 3), np.uint8), "RGB", 0.0)) == 0.0
