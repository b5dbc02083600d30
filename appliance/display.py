"""The OLED: one render function, one device wrapper that survives a missing or failing display.

`render(screen, device)` draws a big count and a small status line through luma's canvas.
Production passes luma.oled's ssd1306 on I2C, tests pass luma.core's `dummy` device and
compare `device.image` with golden PNGs, the desktop passes a luma.emulator window.
"""
from __future__ import annotations

import atexit
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFont
from PIL import __version__ as PILLOW_VERSION

from appliance.errors import OutputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Screen:
    count: int
    status: str  # starting | ready | no person | counting | camera error | ...
    fps: float | None = None
    total: int | None = None


_FONTS: dict[int, ImageFont.ImageFont] = {}


def sized_font(size: int):
    """Pillow's own font at `size` pixels; Pillow older than 10.1 (apt's 9.4 on Bookworm, seen
    through the venv's system site packages) has no `size=` and gets its one small fixed font:
    a small count on the OLED beats a display that fails at every write."""
    if size not in _FONTS:
        try:
            _FONTS[size] = ImageFont.load_default(size=size)
        except TypeError:
            if not _FONTS:
                log.warning("Pillow %s has no sized font (10.1 has one): the OLED count is drawn small", PILLOW_VERSION)
            _FONTS[size] = ImageFont.load_default()
    return _FONTS[size]


FPS_GAP = 4  # px between the status and the fps figure; with less room the figure is left out


def _lines(draw, text: str, font, width: int) -> list[str]:
    """`text` broken at spaces into lines that fit `width` (one line on a landscape panel; on
    one on its side, 64 px wide, "shutdown failed" is two). Measured as drawn: a mode "1"
    picture's hinted glyphs are wider than font.getlength says."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


_INK_ROWS: dict[tuple[object, str], tuple[int, int]] = {}  # keyed by the font object itself


def _ink_rows(font, mode: str) -> tuple[int, int]:
    """First and last row a line of text inks, relative to where it is drawn, found by drawing
    every letter and digit: in a mode "1" picture the hinted glyphs do not keep to
    font.getbbox (at 9 px, a "t" reaches two rows above it, a "y" one row below)."""
    from PIL import ImageDraw

    key = (font, mode)
    if key not in _INK_ROWS:
        size = getattr(font, "size", 11)  # Pillow < 10.1's fixed bitmap font has no size
        inked = np.zeros(4 * size, bool)
        for char in "abcdefghijklmnopqrstuvwxyzA0123456789":  # one at a time: in a word they shift
            scratch = Image.new(mode, (4 * size, 4 * size))
            ImageDraw.Draw(scratch).text((0, size), char, font=font, fill="white")
            inked |= np.asarray(scratch.convert("1")).any(axis=1)
        rows = np.flatnonzero(inked)
        _INK_ROWS[key] = (int(rows[0]) - size, int(rows[-1]) - size)
    return _INK_ROWS[key]


def draw_screen(screen: Screen, size: tuple[int, int], mode: str = "1") -> Image.Image:
    """The picture for one screen state; pure, so golden images pin it down.

    The status font is sized from the shorter side, so a panel on its side (drawn 64x128) gets
    the same one as upright; a status too wide for the line goes on two, and the fps figure is
    left out where it would run into the status. [display] refuses pictures under 64x32, which
    leave no room for a count that can be read."""
    from PIL import ImageDraw

    width, height = size
    image = Image.new(mode, size)
    draw = ImageDraw.Draw(image)
    status_h = max(10, min(width, height) // 5)
    small = sized_font(status_h - 1)
    lines = _lines(draw, screen.status, small, width - 2)
    top = height - status_h * len(lines)  # where the status lines start
    count_text = str(screen.count)
    count_size = top - 4
    font = sized_font(count_size)
    while font.getlength(count_text) > width - 4 and count_size > 10:
        count_size -= 4
        font = sized_font(count_size)
    box = draw.textbbox((0, 0), count_text, font=font)
    x = (width - (box[2] - box[0])) // 2 - box[0]
    y = (top - (box[3] - box[1])) // 2 - box[1]
    draw.text((x, y), count_text, font=font, fill="white")
    draw.line((0, top - 1, width, top - 1), fill="white")
    # Lines placed by their ink, centred in their rows: placed by their origin, the "g" of
    # "counting" lost its tail under a 128x64 panel's last row.
    ink_top, ink_bottom = _ink_rows(small, mode)
    line_y = (status_h - (ink_bottom - ink_top + 1)) // 2 - ink_top
    for i, line in enumerate(lines):
        draw.text((1, top + i * status_h + line_y), line, font=small, fill="white")
    if screen.fps is not None:
        fps_text = f"{screen.fps:.0f}fps"
        # Placed by its box as drawn (hinted glyphs reach past font.getlength: on a 128x32
        # panel the "s" lost its last column), a pixel in from the edge like the status.
        fps_x = width - 1 - draw.textbbox((0, 0), fps_text, font=small)[2]
        if 1 + draw.textlength(lines[-1], font=small) + FPS_GAP <= fps_x:
            draw.text((fps_x, height - status_h + line_y), fps_text, font=small, fill="white")
    return image


def render(screen: Screen, device) -> None:
    """Show a screen on any luma device."""
    image = draw_screen(screen, device.size, device.mode)
    device.display(image)


OLED_NOP = 0xE3  # "no operation" in the SSD1306, SH1106, SSD1309 and SSD1327 command sets


def open_oled(config):
    """luma.oled device on I2C from [display]; raises when no display answers.

    The I2C bus (/dev/i2c-N, opened by the serial object) is closed again when the driver
    cannot talk to the display: the daemon retries every [display].retry_s for as long as
    the OLED is missing, and each try would otherwise leave one file descriptor open.
    A no-op command probes the address first, because a luma device registers an exit hook
    that holds it before its first write: built for every failed try, those add up to
    megabytes a day on a box whose OLED is unplugged.
    """
    from luma.core.interface.serial import i2c
    import luma.oled.device as oled_devices

    driver = getattr(oled_devices, config.driver, None)
    if driver is None:
        raise ValueError(f"unknown OLED driver {config.driver!r} in [display].driver")
    from luma.core.error import DeviceDisplayModeError

    serial = i2c(port=config.i2c_port, address=config.i2c_address)
    try:
        serial.command(OLED_NOP)
        return driver(serial, width=config.width, height=config.height, rotate=config.rotate)
    except DeviceDisplayModeError as exc:
        _close_quietly(serial)
        raise ValueError(f"[display] {config.width}x{config.height} is not a size the {config.driver} driver knows ({exc})") from None
    except Exception:
        _close_quietly(serial)
        raise


def _close_quietly(serial) -> None:
    try:
        serial.cleanup()
    except Exception as exc:
        log.debug("closing the I2C bus after a failed open: %s", exc)


def open_emulator(config):
    """A luma.emulator window when a desktop is there, else an invisible dummy device."""
    from luma.core.device import dummy

    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        try:
            os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
            from luma.emulator.device import pygame

            return pygame(width=config.width, height=config.height, rotate=config.rotate, mode="1", scale=3, transform="none")
        except Exception as exc:  # no pygame, or no usable display
            log.info("no emulator window (%s); recording the OLED only", exc)
    return dummy(width=config.width, height=config.height, rotate=config.rotate, mode="1")


def _opened_with_exit_hooks(opener):
    """(device, its exit hooks): luma registers an exit hook for every device it builds, and the
    hook keeps the device alive until the process ends. Display gives the hooks back when it
    drops a device, or an OLED on a loose wire would leak one device (about 330 KB for an
    SSD1306's tables) every time it came back."""
    hooks, register = [], atexit.register

    def register_and_note(func, *args, **kwargs):
        hooks.append(func)
        return register(func, *args, **kwargs)

    atexit.register = register_and_note
    try:
        return opener(), hooks
    except BaseException:  # a driver that failed halfway through its setup
        for hook in hooks:
            atexit.unregister(hook)
        raise
    finally:
        atexit.register = register


_DARK = "dark"  # Display.show's state for a panel switched off
_NOTHING = object()


class Display:
    """Keeps the appliance counting when the OLED is missing or its I2C bus fails.

    A failure is logged once, the display is dropped, and it is looked for again every
    `retry_s` (but not after a ValueError from the opener: a driver or size the config got
    wrong stays wrong); identical screens are not resent (a full frame is 1 KB over I2C). A display
    that keeps coming and going (a loose wire) repeats the same two log lines at most once
    every LOG_REPEAT_S, not at every retry. An opener that gives None ([display] kind "none")
    is not asked again.
    """

    LOG_REPEAT_S = 600.0

    def __init__(self, opener, retry_s: float = 30.0, clock=time.monotonic, recorder=None):
        self._opener = opener
        self._retry_s = retry_s
        self._clock = clock
        self._recorder = recorder
        self.device = None
        self._exit_hooks: list = []  # luma's, for self.device
        self.error: str | None = None
        self._next_try = float("-inf")
        self._shown = _NOTHING  # on the device: a Screen, _DARK, or _NOTHING (unknown: resend)
        self._blank = False  # the panel was sent dark and no lit screen has reached it since
        self._recorded = _NOTHING
        self._logged: dict[str, float] = {}  # message -> when it was last logged

    def show(self, screen: Screen, lit: bool = True, t: float | None = None) -> None:
        """Show `screen`, or with `lit` False turn the panel off (luma's hide(): an OLED's
        pixels wear with hours lit, and an unattended box would burn its count in). `t`: the
        newest frame's time, for the recording (None: no frame yet, or none since)."""
        wanted = screen if lit else _DARK
        if self._recorder is not None:
            self._recorder.reached(t)
            if wanted != self._recorded:
                self._recorder.add(screen if lit else None, t)
                self._recorded = wanted
        if self.device is None and self._clock() >= self._next_try:
            self._open()
        if self.device is None or wanted == self._shown:
            return
        try:
            if wanted is _DARK:
                self._blank = True  # from the first write on: a failure halfway may leave it black
                self.device.display(Image.new(self.device.mode, self.device.size))
                self.device.hide()
            else:
                if self._shown is _DARK:
                    self.device.show()  # luma's DISPLAYON (a newly opened device is already on)
                render(screen, self.device)
                self._blank = False
            self._shown = wanted
        except Exception as exc:  # not only OSError: luma turns an I2C EIO into its own DeviceNotFoundError
            self._fail(f"display write failed: {exc}")

    @property
    def dark(self) -> bool:
        """The panel may be showing nothing since it was sent dark: a press then only has to
        wake it. Only a lit screen that reached the panel clears this; a write that fails on the
        way back (an I2C glitch, a loose wire) leaves it set while the device is dropped for
        retry_s, for the panel is still black and the owner cannot see the count a press would
        wipe. A panel never sent dark (none there, or [display] kind "none") is not dark."""
        return self._blank

    def _open(self) -> None:
        try:
            self.device, self._exit_hooks = _opened_with_exit_hooks(self._opener)
            if self.device is None:  # [display] kind "none": nothing to look for, not at every frame
                self._next_try = float("inf")
                return
            self._shown = _NOTHING
            if self.error:
                self._log(logging.INFO, "display is back")
            self.error = None
        except ValueError as exc:
            self._fail(f"no display: {exc}", retry=False)
        except Exception as exc:
            self._fail(f"no display: {exc}")

    def _log(self, level: int, message: str) -> None:
        now = self._clock()
        if now - self._logged.get(message, float("-inf")) >= self.LOG_REPEAT_S:
            self._logged[message] = now
            log.log(level, message)

    def _fail(self, message: str, retry: bool = True) -> None:
        if message != self.error:
            then = f"retrying every {self._retry_s:.0f} s" if retry else "fix [display] in the config"
            self._log(logging.WARNING, f"{message}; counting on without it, {then}")
        self.error = message
        self._release(self.device)
        self._forget_device()
        self._shown = _NOTHING
        self._next_try = self._clock() + self._retry_s if retry else float("inf")

    def _forget_device(self) -> None:
        for hook in self._exit_hooks:
            atexit.unregister(hook)
        self.device, self._exit_hooks = None, []

    @staticmethod
    def _release(device) -> None:
        """Close a failed device's bus (its file descriptor) without drawing on it: luma's
        cleanup() would first try to blank the panel that just failed, and stop there."""
        if device is None:
            return
        try:
            device.persist = True
            device.cleanup()
        except Exception as exc:
            log.debug("releasing the failed display: %s", exc)

    def close(self, keep_screen: bool = False) -> None:
        """Release the display. A normal stop blanks the panel (luma's cleanup); with
        `keep_screen` the last picture stays lit (luma's `persist`), so an error such as
        "model error" can still be read after the daemon has exited. A recording (--record)
        that cannot be written raises its OutputError, once the panel is released."""
        error = None
        if self._recorder is not None:
            try:
                self._recorder.close()
            except OutputError as exc:  # the panel is still released below
                error = exc
        if self.device is not None:
            try:
                if keep_screen:
                    self.device.persist = True
                self.device.cleanup()
            except Exception:
                pass
            self._forget_device()
        if error is not None:
            raise error


class GifRecorder:
    """Every distinct OLED picture with its time on the video's timeline, as an animated GIF.

    It keeps the screens, not pictures (a few bytes each: an hour of a wobbling fps figure
    is thousands of them), and draws them one by one as the GIF is written. A screen shown
    before the first frame, or between frames, takes the time of the frame before it (the
    first frame's for the very first ones), so the animation runs in step with the clip. The
    last screen lasts until the last frame's time (at least a second, to be read before the loop).
    """

    def __init__(self, path: str | Path, size: tuple[int, int], scale: int = 2):
        self.path = Path(path)
        self.size = size
        self.scale = scale
        self._screens: list[tuple[Screen | None, float | None]] = []  # None: the panel dark
        self._last_t: float | None = None  # the newest frame's time: where the animation ends

    def add(self, screen: Screen | None, t: float | None) -> None:
        self._screens.append((screen, t))

    def reached(self, t: float | None) -> None:
        """A frame at `t` was shown, whether or not the screen changed."""
        if t is not None:
            self._last_t = t

    def _picture(self, screen: Screen | None) -> Image.Image:
        image = draw_screen(screen, self.size) if screen is not None else Image.new("1", self.size)
        return image.convert("L").resize((self.size[0] * self.scale, self.size[1] * self.scale), Image.NEAREST)

    def close(self) -> None:
        if not self._screens:
            return
        times, last = [], next((t for _, t in self._screens if t is not None), 0.0)
        for _, t in self._screens:
            last = last if t is None else t
            times.append(last)
        end = times[-1] + 1.0  # a screen that changed at the last frame is still held a second
        times.append(end if self._last_t is None else max(end, self._last_t))
        durations = [max(20, int(round((b - a) * 1000))) for a, b in zip(times, times[1:])]
        pictures = (self._picture(screen) for screen, _ in self._screens)
        self._screens = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            next(pictures).save(self.path, save_all=True, append_images=pictures, duration=durations, loop=0)
        except OSError as exc:
            raise OutputError(f"cannot write the OLED animation {self.path}: {exc.strerror or exc}") from None
