import os
import sys
import types

import numpy as np
import pytest

from appliance.errors import SourceError
from appliance.frames import to_rgb
from appliance.sources import PiCameraSource, VideoFileSource, WebcamSource
from tests.conftest import make_clip


def read_all(source):
    frames = []
    with source:
        while (frame := source.read()) is not None:
            frames.append(frame)
    return frames


def test_file_frames_carry_timestamps(tmp_path):
    frames = read_all(VideoFileSource(make_clip(tmp_path / "a.mp4")))
    assert len(frames) == 20
    assert frames[0].image.shape == (48, 64, 3) and frames[0].format == "RGB"
    assert np.allclose([f.t for f in frames], np.arange(20) / 10, atol=1e-3)


def test_file_can_give_the_pis_yuv420_layout(tmp_path):
    clip = make_clip(tmp_path / "a.mp4")
    rgb = read_all(VideoFileSource(clip))
    yuv = read_all(VideoFileSource(clip, pixel_format="YUV420"))
    assert yuv[5].image.shape == (72, 64) and yuv[5].format == "YUV420"
    assert yuv[5].size == rgb[5].size == (64, 48)
    # the same picture, full range as on the Pi (swscale's yuv420p was limited: black at 16)
    assert np.abs(to_rgb(yuv[5]).astype(int) - rgb[5].image.astype(int)).mean() < 2


def test_a_file_whose_clock_starts_again_goes_on_forward(tmp_path):
    """Two MPEG-TS recordings joined byte for byte: the second one's timestamps restart. The
    source keeps time going forward, as a camera would, so no stage sees it go back."""
    one = make_clip(tmp_path / "a.ts", frames=20, fps=10).read_bytes()
    (tmp_path / "joined.ts").write_bytes(one + one)
    times = [f.t for f in read_all(VideoFileSource(tmp_path / "joined.ts"))]
    assert len(times) == 40 and all(b > a for a, b in zip(times, times[1:]))
    assert np.allclose(np.diff(times), 0.1, atol=1e-3)


def clip_with_display_matrix(path, picture, degrees, hflip):
    """A clip whose stored pixels a player turns by `degrees` (counter-clockwise) and then mirrors."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = picture.shape[1], picture.shape[0], "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip)
        for _ in range(2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("degrees, hflip", [(0, False), (90, False), (-90, False), (180, False),
                                            (0, True), (90, True), (-90, True), (180, True)])
def test_file_frames_come_as_a_player_shows_them(tmp_path, degrees, hflip):
    """Phone clips are stored sideways or mirrored, with a display matrix that says how to show
    them. A mirror is not a half turn (PyAV's angle reads -180 for both): turned, the person
    would be upside down, and upside-down people are never counted."""
    import av

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    stored = np.zeros((48, 64, 3), np.uint8)
    stored[:16, :16] = 255  # a white block top left
    stored[:, 40:] = (0, 0, 200)  # a blue band on the right
    shown = np.rot90(stored, k=(degrees // 90) % 4)
    shown = shown[:, ::-1] if hflip else shown
    frame = read_all(VideoFileSource(clip_with_display_matrix(tmp_path / "c.mp4", stored, degrees, hflip)))[0]
    assert frame.image.shape == shown.shape
    assert np.abs(frame.image.astype(int) - shown.astype(int)).mean() < 10


class FakeTime:
    """A clock the source sleeps on, plus a slow consumer that advances it."""

    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_realtime_paces_and_late_frames_are_dropped(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", frames=30, fps=10)
    fake = FakeTime()
    source = VideoFileSource(clip, realtime=True, clock=fake.clock, sleep=fake.sleep)
    seen = []
    with source:
        while (frame := source.read()) is not None:
            seen.append(frame.t)
            fake.now += 0.25  # the consumer takes 250 ms per frame: it can do 4 fps of 10
    assert seen[-1] == pytest.approx(2.9, abs=0.15)  # no lag built up
    assert 10 <= len(seen) <= 14 and source.skipped >= 15
    assert all(b > a for a, b in zip(seen, seen[1:]))


def test_missing_and_foreign_files_name_the_file(tmp_path):
    with pytest.raises(SourceError, match="absent.mp4"):
        VideoFileSource(tmp_path / "absent.mp4").open()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match="junk.mp4"):
        VideoFileSource(junk).open()


def test_an_audio_only_file_says_it_has_no_video(tmp_path):
    """It said "cannot be opened: tuple index out of range"."""
    import av

    path = tmp_path / "memo.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(SourceError, match=r"video file .*memo.m4a has no video stream$"):
        VideoFileSource(path).open()


def test_pi_camera_without_picamera2_is_a_clear_error():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match="Pi camera 0.*picamera2"):
            PiCameraSource().open()
    else:
        pytest.skip("picamera2 present: this is a Pi")


FAKE_LIBCAMERA = types.SimpleNamespace(Transform=types.SimpleNamespace,
                                       ColorSpace=types.SimpleNamespace(Sycc=lambda: "sYCC"))


@pytest.fixture(autouse=True)
def fake_libcamera(monkeypatch):
    """libcamera's Python module, only on a Pi: the Pi camera source imports it beside picamera2."""
    if "libcamera" not in sys.modules:
        monkeypatch.setitem(sys.modules, "libcamera", FAKE_LIBCAMERA)


def fake_picamera2(fail_in=None, flips=True):
    """A stand-in `picamera2` module (picamera2 is only on a Pi): `fail_in` names the method
    of the camera that raises, like libcamera does when the camera is busy or goes away;
    `flips` False: a sensor that cannot flip, whose transform libcamera quietly drops."""
    calls = []

    class Picamera2:
        @staticmethod
        def global_camera_info():
            return [{"Model": "fake"}]

        def __init__(self, index):
            calls.append("acquire")

        def _step(self, name):
            calls.append(name)
            if name == fail_in:
                raise RuntimeError(f"{name} failed: Device or resource busy")

        def create_video_configuration(self, **kwargs):
            return kwargs

        def configure(self, config):
            calls.append(config)
            self.config = dict(config)
            if not flips:
                self.config["transform"] = types.SimpleNamespace(hflip=False, vflip=False)
            self._step("configure")

        def camera_configuration(self):
            return self.config

        def start(self):
            self._step("start")

        def stop(self):
            self._step("stop")

        def close(self):
            self._step("close")

    return types.SimpleNamespace(Picamera2=Picamera2), calls


@pytest.mark.parametrize("fail_in", ["configure", "start"])
def test_pi_camera_that_fails_to_start_is_released(monkeypatch, fail_in):
    module, calls = fake_picamera2(fail_in)
    monkeypatch.setitem(sys.modules, "picamera2", module)
    source = PiCameraSource(lores_format="RGB")
    with pytest.raises(SourceError, match=f"Pi camera 0 cannot be opened: {fail_in} failed"):
        source.open()
    assert calls[0] == "acquire" and calls[-1] == "close"  # given back to libcamera
    source.close()  # nothing left to close
    assert calls.count("close") == 1


def test_pi_camera_is_closed_even_when_stop_fails(monkeypatch, caplog):
    module, calls = fake_picamera2(fail_in="stop")
    monkeypatch.setitem(sys.modules, "picamera2", module)
    source = PiCameraSource(lores_format="RGB")
    source.open()
    source.close()
    assert [c for c in calls if isinstance(c, str)] == ["acquire", "configure", "start", "stop", "close"]
    assert "closing Pi camera 0: stop failed" in caplog.text


@pytest.mark.parametrize("rotation", [0, 180])
def test_pi_camera_mounted_upside_down_is_turned_by_libcamera(monkeypatch, rotation):
    """A 180-degree turn is libcamera's hflip + vflip, done by the ISP for every stream."""
    module, calls = fake_picamera2()
    monkeypatch.setitem(sys.modules, "picamera2", module)
    source = PiCameraSource(lores_format="YUV420", rotation=rotation)
    source.open()
    [config] = [c for c in calls if isinstance(c, dict)]
    assert config.get("transform") == (types.SimpleNamespace(hflip=1, vflip=1) if rotation == 180 else None)
    assert config["lores"] == {"size": (320, 240), "format": "YUV420"}
    assert config["colour_space"] == "sYCC"  # full range, as frames.to_rgb decodes it
    source.close()


def test_webcam_mounted_upside_down_is_turned_in_software(tmp_path, monkeypatch):
    """PyAV's v4l2 input replaced by a clip: the webcam's frames come out turned 180 degrees."""
    import av

    clip = make_clip(tmp_path / "a.mp4")
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda device, format=None, options=None: real_open(str(clip)))
    upright = VideoFileSource(clip)
    turned = WebcamSource(rotation=180)
    with upright, turned:
        a, b = upright.read(), turned.read()
    assert np.array_equal(b.image, a.image[::-1, ::-1]) and b.image.flags.c_contiguous


def test_pi_camera_that_cannot_flip_says_so(monkeypatch, caplog):
    module, calls = fake_picamera2(flips=False)
    monkeypatch.setitem(sys.modules, "picamera2", module)
    source = PiCameraSource(lores_format="RGB", rotation=180)
    source.open()
    assert "cannot turn its picture 180 degrees" in caplog.text
    source.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_a_file_played_again_and_again_leaves_no_threads_behind(tmp_path):
    """tools.soak replays a clip for hours: reading the display matrix must not keep each
    play's decoder and its threads alive (PyAV ties a frame whose side data was read in a
    reference cycle), nor may reading it on every frame pile them up."""
    def threads():
        return len(os.listdir("/proc/self/task"))

    source = VideoFileSource(make_clip(tmp_path / "a.mp4", frames=30))
    counts = []
    for _ in range(6):
        peak = 0
        with source:
            while source.read() is not None:
                peak = max(peak, threads())
        counts.append((threads(), peak))
    assert counts[-1][0] <= counts[0][0] and counts[-1][1] <= counts[0][1] + 2, counts
