"""OLED screens, read back from luma.core's dummy device and compared with golden PNGs.

Set UPDATE_GOLDEN=1 to rewrite the goldens after an intended change (then look at them).
"""
import errno
import os
from pathlib import Path

import numpy as np
import pytest
from luma.core.device import dummy
from PIL import Image

from appliance.display import Display, GifRecorder, Screen, draw_screen, render

GOLDEN = Path(__file__).parent / "golden"

SCREENS = {
    "ready_0": Screen(0, "ready", fps=15),
    "counting_12": Screen(12, "counting", fps=14),
    "no_person_7": Screen(7, "no person"),
    "camera_error_3": Screen(3, "camera error"),
    "config_error_12": Screen(12, "config error"),
    "counting_1234": Screen(1234, "counting", fps=9),
}
PORTRAIT = {  # the 128x64 panel on its side ([display] rotate 1): drawn 64x128
    "portrait_no_person_7": Screen(7, "no person", fps=15),
    "portrait_shutdown_failed_12": Screen(12, "shutdown failed", fps=15),
    "portrait_counting_1234": Screen(1234, "counting", fps=9),
}
STATUSES = ["starting", "ready", "no person", "counting", "too dark", "camera error", "storage error", "video error",
            "model error", "error", "shutting down", "shutdown failed", "config error"]


@pytest.mark.parametrize("name", sorted(SCREENS) + sorted(PORTRAIT))
def test_screen_matches_golden(name):
    """The golden is what luma's device holds: a portrait picture turned back to the panel's rows."""
    device = dummy(width=128, height=64, rotate=1 if name in PORTRAIT else 0, mode="1")
    render({**SCREENS, **PORTRAIT}[name], device)
    golden = GOLDEN / f"oled_{name}.png"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        device.image.save(golden)
    # A golden written here would only be compared with itself: a missing one is a failure.
    assert golden.exists(), f"no golden {golden.name}: make it with UPDATE_GOLDEN=1, then look at it"
    expected = np.asarray(Image.open(golden).convert("1"))
    assert np.array_equal(np.asarray(device.image.convert("1")), expected)


@pytest.mark.parametrize("size", [(128, 64), (64, 128), (128, 32), (64, 48), (64, 32)])
def test_every_status_fits_the_panel_and_the_fps_never_covers_it(size):
    """A panel on its side is 64 wide: the status font was sized from its 128 px height, and
    every status but "ready" and "error" ran off the panel under the fps figure. A status that
    does not fit goes on two lines; the fps figure is left out where it would touch it."""
    width, height = size
    for status in STATUSES:
        plain = np.asarray(draw_screen(Screen(12, status), size))
        below = plain[np.flatnonzero(plain.all(axis=1)).max() + 1:]  # under the line across
        assert not below[:, -2:].any(), f"{status!r} runs off a {width}x{height} picture"
        with_fps = np.asarray(draw_screen(Screen(12, status, fps=15), size))
        added = np.argwhere(with_fps & ~plain)
        if added.size:  # the figure's rows: the status in them ends well before the figure starts
            rows = plain[added[:, 0].min():added[:, 0].max() + 1]
            assert added[:, 1].min() > np.argwhere(rows)[:, 1].max() + 2, f"fps over {status!r} on {width}x{height}"


@pytest.mark.parametrize("size", [(128, 64), (64, 128), (128, 32), (96, 64), (256, 64)])
def test_fps_figure_is_whole_and_a_pixel_inside_the_right_edge(size):
    """Placed by font.getlength, the figure's hinted "s" ran one column off a 128x32 panel and
    touched the edge of a 128x64 one. Whole: as wide as the same text drawn on a free canvas."""
    from PIL import ImageDraw

    from appliance.display import sized_font

    width, height = size
    small = sized_font(max(10, min(width, height) // 5) - 1)
    plain = np.asarray(draw_screen(Screen(12, "ok"), size))
    for fps in (5, 12, 30, 88):
        figure = np.argwhere(np.asarray(draw_screen(Screen(12, "ok", fps=fps), size)) & ~plain)
        free = Image.new("1", (200, 40))
        ImageDraw.Draw(free).text((10, 5), f"{fps}fps", font=small, fill="white")
        ink = np.argwhere(np.asarray(free))
        assert np.ptp(figure[:, 1]) == np.ptp(ink[:, 1]), f"{fps}fps cut on {width}x{height}"
        assert figure[:, 1].max() <= width - 2, f"{fps}fps touches the edge of {width}x{height}"


@pytest.mark.parametrize("size", [(128, 64), (64, 128), (128, 32), (64, 48), (64, 32)])
def test_status_is_drawn_whole_top_to_bottom(size):
    """Drawn from its origin, the "g" of "counting" lost its tail under a 128x64 panel's last
    row. Whole: a one-line status inks as many rows as the same text on a free canvas."""
    from PIL import ImageDraw

    from appliance.display import sized_font

    width, height = size
    small = sized_font(max(10, min(width, height) // 5) - 1)
    for status in STATUSES:
        free = Image.new("1", (300, 60))
        ImageDraw.Draw(free).text((10, 20), status, font=small, fill="white")
        if np.flatnonzero(np.asarray(free).any(axis=0)).max() - 10 > width - 3:
            continue  # two lines here
        picture = np.asarray(draw_screen(Screen(12, status), size))
        below = picture[np.flatnonzero(picture.all(axis=1)).max() + 1:]
        assert np.sum(below.any(axis=1)) == np.sum(np.asarray(free).any(axis=1)), f"{status!r} cut on {width}x{height}"


def test_big_count_uses_most_of_the_screen():
    device = dummy(width=128, height=64, mode="1")
    render(Screen(8, "counting"), device)
    lit = np.argwhere(np.asarray(device.image)[:50])
    height = lit[:, 0].max() - lit[:, 0].min()
    assert height >= 25  # readable from the floor


def test_pillow_without_sized_fonts_still_draws(monkeypatch, caplog):
    """Pillow before 10.1 (apt's 9.4 on Bookworm, which the venv can see) has no
    load_default(size=): the OLED gets the small fixed font instead of failing every write."""
    from PIL import ImageFont

    import appliance.display as display_module

    def old_load_default(**kwargs):
        if kwargs:
            raise TypeError("load_default() got an unexpected keyword argument 'size'")
        return ImageFont.load_default_imagefont()  # the bitmap font old Pillow returns

    monkeypatch.setattr(ImageFont, "load_default", old_load_default)
    monkeypatch.setattr(display_module, "_FONTS", {})
    device = FlakyDevice()
    display = Display(lambda: device)
    display.show(Screen(12, "counting", fps=14))
    assert display.error is None and device.writes == 1
    lit = np.asarray(device.inner.image)
    assert lit[:50].any() and lit[53:].any()  # the count above the line, the status under it
    assert "has no sized font" in caplog.text


class FlakyDevice:
    """A display whose I2C writes fail while `broken` is set."""

    def __init__(self):
        self.inner = dummy(width=128, height=64, mode="1")
        self.size, self.mode = self.inner.size, self.inner.mode
        self.broken = False
        self.writes = 0

    def display(self, image):
        if self.broken:
            raise OSError(121, "Remote I/O error")
        self.writes += 1
        self.inner.display(image)

    def cleanup(self):
        pass


def test_missing_display_is_retried_and_counting_goes_on():
    now = [0.0]
    device = FlakyDevice()
    attempts = []

    def opener():
        attempts.append(now[0])
        if now[0] < 10:
            raise OSError("no I2C device at 0x3c")
        return device

    display = Display(opener, retry_s=5.0, clock=lambda: now[0])
    for t in range(0, 12):
        now[0] = float(t)
        display.show(Screen(t, "counting"))
    assert attempts == [0.0, 5.0, 10.0]
    assert display.device is device and display.error is None
    assert device.writes == 2  # t=10 and t=11


def test_failing_writes_drop_the_display_until_retry():
    now = [0.0]
    device = FlakyDevice()
    display = Display(lambda: device, retry_s=30.0, clock=lambda: now[0])
    display.show(Screen(1, "counting"))
    device.broken = True
    display.show(Screen(2, "counting"))
    assert display.device is None and "Remote I/O" in display.error
    device.broken = False
    now[0] = 31.0
    display.show(Screen(3, "counting"))
    assert device.writes == 2


def test_no_display_by_design_is_not_looked_for_at_every_frame():
    """[display] kind "none": the opener gives None, and was called again at every frame (each
    time swapping atexit.register around it)."""
    calls = []
    display = Display(lambda: calls.append(1), clock=lambda: 1e9)
    for count in range(5):
        display.show(Screen(count, "counting"))
    assert calls == [1] and display.device is None and display.error is None


def test_same_screen_is_not_resent():
    device = FlakyDevice()
    display = Display(lambda: device)
    for _ in range(5):
        display.show(Screen(4, "counting"))
    assert device.writes == 1


def test_gif_recorder_writes_each_distinct_screen_on_the_clips_timeline(tmp_path):
    """Timed by the frames' times, not the wall clock: a clip processed faster than real time
    gives an animation as long as the clip. Screens before the first frame take its time."""
    recorder = GifRecorder(tmp_path / "oled.gif", (128, 64))
    display = Display(lambda: None, clock=lambda: 1000.0, recorder=recorder)
    display.show(Screen(0, "starting"))
    for t, count in zip([5.0, 6.0, 7.0, 8.0, 9.0], [0, 0, 1, 1, 2]):
        display.show(Screen(count, "counting"), t=t)
    display.show(Screen(2, "no person"), lit=False, t=10.5)
    display.show(Screen(2, "no person", fps=30), lit=False, t=11.0)
    display.close()
    gif = Image.open(tmp_path / "oled.gif")
    assert gif.n_frames == 5
    durations = []
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info["duration"])
    assert durations == [20, 2000, 2000, 1500, 1000]  # "starting" at the first frame's time
    assert not np.asarray(gif.convert("L")).any()  # the dark panel, recorded once, last


def test_gif_recorder_keeps_screens_not_pictures(tmp_path):
    """An hour of recording whose fps figure wobbles is tens of thousands of screens: each is
    kept as its few fields and drawn only while the GIF is written."""
    import tracemalloc

    recorder = GifRecorder(tmp_path / "oled.gif", (128, 64))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(5000):
        recorder.add(Screen(i // 100, "counting", fps=29 + i % 2), i / 30)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 2_000_000  # pictures would be 5000 x 34 KB = 170 MB


class FakeI2CBus:
    """Stands in for smbus2.SMBus under luma's real i2c serial and ssd1306 driver: holds a
    real file descriptor (/dev/null) as /dev/i2c-1 would, and fails every transfer with
    EREMOTEIO (no display answering) while `FakeI2CBus.answering` is False."""

    answering = False
    open_fds: set = set()

    def __init__(self, port):
        self.fd = os.open(os.devnull, os.O_RDWR)
        FakeI2CBus.open_fds.add(self.fd)

    commands: list = []  # command bytes the display was sent (luma's control byte 0x00)

    def _transfer(self, *args):
        if not FakeI2CBus.answering:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")

    def write_i2c_block_data(self, address, control, data):
        self._transfer()
        if control == 0x00:
            FakeI2CBus.commands.extend(data)

    i2c_rdwr = _transfer

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            FakeI2CBus.open_fds.discard(self.fd)
            self.fd = None


@pytest.fixture
def fake_i2c(monkeypatch):
    import smbus2

    monkeypatch.setattr(smbus2, "SMBus", FakeI2CBus)
    monkeypatch.setattr(FakeI2CBus, "answering", False)
    monkeypatch.setattr(FakeI2CBus, "open_fds", set())
    monkeypatch.setattr(FakeI2CBus, "commands", [])
    return FakeI2CBus


def test_missing_oled_leaks_no_file_descriptor(fake_i2c):
    """The daemon looks for a missing OLED every retry_s for hours: each failed look must
    close the I2C bus it opened."""
    from appliance.config import DisplayConfig
    from appliance.display import open_oled

    now = [0.0]
    display = Display(lambda: open_oled(DisplayConfig()), retry_s=5.0, clock=lambda: now[0])
    for t in range(0, 50, 5):
        now[0] = float(t)
        display.show(Screen(t, "counting"))
    assert display.device is None and "no display" in display.error
    assert fake_i2c.open_fds == set()
    fake_i2c.answering = True
    now[0] = 50.0
    display.show(Screen(50, "counting"))
    assert display.device is not None and len(fake_i2c.open_fds) == 1  # the one in use


def test_display_failing_mid_run_releases_its_bus(fake_i2c):
    from appliance.config import DisplayConfig
    from appliance.display import open_oled

    fake_i2c.answering = True
    display = Display(lambda: open_oled(DisplayConfig()), retry_s=30.0, clock=lambda: 0.0)
    display.show(Screen(1, "counting"))
    assert len(fake_i2c.open_fds) == 1
    fake_i2c.answering = False  # the wire came loose
    display.show(Screen(2, "counting"))
    assert display.device is None and "display write failed" in display.error
    assert fake_i2c.open_fds == set()


def test_missing_oled_builds_no_luma_device(fake_i2c):
    """Each luma device registers an exit hook that keeps it alive: a missing OLED must be
    found out by the probe, before a device exists, or every retry leaks one."""
    import atexit

    from appliance.config import DisplayConfig
    from appliance.display import open_oled

    now = [0.0]
    display = Display(lambda: open_oled(DisplayConfig()), retry_s=5.0, clock=lambda: now[0])
    hooks_before = atexit._ncallbacks()
    for t in range(0, 50, 5):
        now[0] = float(t)
        display.show(Screen(t, "counting"))
    assert display.device is None and "no display" in display.error
    assert atexit._ncallbacks() == hooks_before


def test_an_oled_on_a_loose_wire_does_not_pile_up_devices(fake_i2c):
    """A display that fails and comes back every retry_s for days: each luma device it drops
    must be freed (its exit hook given back), not kept until the process ends."""
    import gc
    import weakref

    from appliance.config import DisplayConfig
    from appliance.display import open_oled

    now, opened = [0.0], []

    def opener():
        device = open_oled(DisplayConfig())
        opened.append(weakref.ref(device))
        return device

    display = Display(opener, retry_s=30.0, clock=lambda: now[0])
    for i in range(20):
        fake_i2c.answering = True
        display.show(Screen(i, "counting"))  # back
        fake_i2c.answering = False
        display.show(Screen(i, "ready"))  # the write fails: dropped
        now[0] += 30.0
    fake_i2c.answering = True
    display.show(Screen(20, "counting"))
    gc.collect()
    assert len(opened) == 21 and [ref() is not None for ref in opened] == [False] * 20 + [True]
    display.close()
    gc.collect()
    assert opened[-1]() is None


def test_sleep_switches_the_real_driver_off_and_on(fake_i2c):
    """Through luma's ssd1306 driver: a dark screen is DISPLAYOFF (0xAE) on the wire, waking
    is DISPLAYON (0xAF), and a dark screen is not resent while it stays dark."""
    from appliance.config import DisplayConfig
    from appliance.display import open_oled

    fake_i2c.answering = True
    display = Display(lambda: open_oled(DisplayConfig()), clock=lambda: 0.0)
    display.show(Screen(3, "ready"))
    fake_i2c.commands.clear()
    display.show(Screen(3, "no person"), lit=False)
    assert fake_i2c.commands[-1] == 0xAE
    sent = len(fake_i2c.commands)
    display.show(Screen(3, "no person", fps=29), lit=False)
    assert len(fake_i2c.commands) == sent
    display.show(Screen(4, "counting"))
    assert 0xAF in fake_i2c.commands[sent:]


def test_a_size_the_driver_does_not_know_is_not_retried(fake_i2c, caplog):
    """128x48 passes the config's own checks, but ssd1306 has no such mode: that stays wrong,
    so it is said once and not tried again every retry_s (each try would leak a luma device)."""
    from appliance.config import DisplayConfig
    from appliance.display import open_oled

    fake_i2c.answering = True
    now = [0.0]
    tries = []

    def opener():
        tries.append(now[0])
        return open_oled(DisplayConfig(height=48))

    display = Display(opener, retry_s=5.0, clock=lambda: now[0])
    for t in range(0, 60, 5):
        now[0] = float(t)
        display.show(Screen(t, "counting"))
    assert tries == [0.0] and display.device is None
    assert "128x48 is not a size the ssd1306 driver knows" in display.error
    assert fake_i2c.open_fds == set()
    assert [r.getMessage() for r in caplog.records if "fix [display]" in r.getMessage()]
