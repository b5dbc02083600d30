"""The one config loader: TOML onto typed dataclasses, strict about every key and value.

A file only needs the keys it changes; everything has a default. An unknown section or key,
or a value of the wrong type or range, is a ConfigError whose one-line message names it.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.counter import CounterSettings
from appliance.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/pushup-counter/config.toml")
DEFAULT_STATE_DIR = Path("/var/lib/pushup-counter")
# The counter takes frames more than [counter] max_gap_s (0.6 s) apart for a gap and starts over,
# so under 1.7 fps it never counts; at 2 fps steady synthetic reps of 2 s or slower all count
# (real clips count less well under about 7 fps: docs/reliability.md). The daemon warns once
# when the frame rate it gets stays under this.
MIN_FPS = 2.0
MAX_BCM_PIN = 27  # GPIO0 to GPIO27 on the 40-pin header
# A Pi camera read waits up to [camera] frame_timeout_s and nothing pings the watchdog meanwhile:
# a third of WatchdogSec=10s since the last ping, plus this, plus a frame stays under 10 s.
MAX_FRAME_TIMEOUT_S = 5.0


def default_models_dir() -> str:
    """The checkout's models/ when running from source, else where the wheel installs them."""
    checkout = Path(__file__).resolve().parent.parent / "models"
    if (checkout / "keypoints.json").exists():
        return str(checkout)
    return str(Path(sys.prefix) / "share" / "pushup-counter" / "models")


@dataclass
class ModelsConfig:
    dir: str = field(default_factory=default_models_dir)
    keypoints: str = "keypoints.tflite"
    recognizer: str = "recognizer.tflite"
    num_threads: int = 2
    recognition_every: int = 3  # run the recognizer on every Nth frame, 1 to 30 (at 30 fps: at least once a second)
    flip_average: bool = True  # keypoints: also run the mirrored frame and average (2x the time)
    track_person: bool = False  # keypoints: look around where the last frame found the person (models/README.md)

    def validate(self) -> None:
        _between("models", "num_threads", self.num_threads, 1, 64)
        # Frames, not seconds: much rarer and the gate, smoothed over 0.3 s, is fed too seldom to
        # stay open (at 10 fps, 30 is a run every 3 s).
        _between("models", "recognition_every", self.recognition_every, 1, 30)


@dataclass
class CameraConfig:
    width: int = 640  # main stream (preview)
    height: int = 480
    lores_width: int = 320  # inference stream; a multiple of 64 unless lores_format is RGB (see validate)
    lores_height: int = 240
    fps: float = 30.0
    lores_format: str = "auto"  # auto (YUV420 on Pi 4 and older, RGB on Pi 5), YUV420, RGB
    index: int = 0  # camera number (Pi) or /dev/videoN (webcam), 0 or more
    rotation: int = 0  # 180: the camera is mounted upside down (libcamera flips it in the sensor)
    frame_timeout_s: float = 3.0  # no frame for this long -> reopen the camera; 0.1 to MAX_FRAME_TIMEOUT_S
    reopen_backoff_max_s: float = 30.0
    restart_after_s: float = 90.0  # no frame from a live camera for this long: exit for a fresh daemon (0: never, else >= 60)

    def validate(self) -> None:
        for key in ("width", "height", "lores_width", "lores_height"):
            _at_least("camera", key, getattr(self, key), 16)
        _at_least("camera", "fps", self.fps, MIN_FPS)
        _one_of("camera", "lores_format", self.lores_format, ("auto", "YUV420", "RGB"))
        _one_of("camera", "rotation", self.rotation, (0, 180))
        _at_least("camera", "index", self.index, 0)
        # The Pi's ISP pads each YUV420 row to 64 bytes; PiCameraSource crops the array to
        # lores_width, which gives the right U and V planes only when there is no padding.
        # "auto" is YUV420 on a Pi 4 and older. RGB rows may be padded: cropping them is exact.
        if self.lores_format != "RGB":
            if self.lores_width % 64:
                raise ConfigError(f"[camera].lores_width must be a multiple of 64 unless lores_format is RGB "
                                  f"(YUV420 rows are padded to 64 bytes), got {self.lores_width}")
            if self.lores_height % 2:
                raise ConfigError(f"[camera].lores_height must be even unless lores_format is RGB, got {self.lores_height}")
        _at_least("camera", "frame_timeout_s", self.frame_timeout_s, 0.1)
        if self.frame_timeout_s > MAX_FRAME_TIMEOUT_S:  # a camera wait pings no watchdog: it must end well inside it
            raise ConfigError(f"[camera].frame_timeout_s must be at most {MAX_FRAME_TIMEOUT_S:g} (the service's watchdog, "
                              f"WatchdogSec=10s, is not pinged during a camera wait), got {self.frame_timeout_s!r}")
        _at_least("camera", "reopen_backoff_max_s", self.reopen_backoff_max_s, 0.1)
        if self.restart_after_s != 0:  # shorter, the restarts would run into the unit's start limit
            _at_least("camera", "restart_after_s", self.restart_after_s, 60.0)


@dataclass
class GateConfig:
    # Low on purpose: the recogniser already reads 3 s of movement, and on real footage our
    # keypoints make it under-confident on real push-ups, while non-push-ups stay near 0; the
    # gate is a veto, the counter's own posture and motion checks do the rest (docs/counting).
    open_threshold: float = 0.35  # smoothed P(push-up) above this opens the gate; less than 1
    close_threshold: float = 0.1  # ... and below this closes it
    time_constant_s: float = 0.3  # exponential smoothing of the probability

    def validate(self) -> None:
        if not self.open_threshold < 1.0:  # the gate opens only above it: at 1 it never would
            raise ConfigError(f"[gate].open_threshold must be less than 1, got {self.open_threshold!r}")
        if not 0.0 <= self.close_threshold <= self.open_threshold:
            raise ConfigError("[gate] need 0 <= close_threshold <= open_threshold < 1")
        _at_least("gate", "time_constant_s", self.time_constant_s, 0.0)


@dataclass
class DisplayConfig:
    kind: str = "oled"  # oled | emulator | none
    driver: str = "ssd1306"  # any luma.oled device class: ssd1306, sh1106, ssd1309, ...
    width: int = 128
    height: int = 64
    i2c_port: int = 1  # /dev/i2c-N, 0 or more
    i2c_address: int = 0x3C  # 0x03 to 0x77, the 7-bit addresses a device may have
    rotate: int = 0  # 0..3, quarter turns
    retry_s: float = 30.0  # how often a missing display is looked for again; at least 1
    sleep_after_s: float = 600.0  # panel off after this long with nothing happening; 0: never

    def validate(self) -> None:
        _one_of("display", "kind", self.kind, ("oled", "emulator", "none"))
        _at_least("display", "sleep_after_s", self.sleep_after_s, 0)
        _one_of("display", "rotate", self.rotate, (0, 1, 2, 3))
        # The picture (portrait on a panel on its side) needs 64x32 for a count that can be read
        # over a status line: on 96x16 the count was a dot. Each key is named as the config has it.
        across, down = ("width", "height") if self.rotate % 2 == 0 else ("height", "width")
        turned = "" if self.rotate % 2 == 0 else " with rotate 1 or 3 (the panel on its side)"
        for key, low in ((across, 64), (down, 32)):
            if getattr(self, key) < low:
                raise ConfigError(f"[display].{key} must be at least {low}{turned}, got {getattr(self, key)!r}")
        _at_least("display", "i2c_port", self.i2c_port, 0)
        if not 0x03 <= self.i2c_address <= 0x77:
            raise ConfigError(f"[display].i2c_address must be between 0x03 and 0x77, got {self.i2c_address:#x}")
        # Less and a missing OLED is looked for again on every frame.
        _at_least("display", "retry_s", self.retry_s, 1.0)


@dataclass
class BuzzerConfig:
    enabled: bool = True
    pin: int = 17  # BCM numbering, 0 to 27
    active_high: bool = True
    beep_s: float = 0.08  # 0.01 to 2
    tone_hz: float = 0.0  # 0: an active buzzer; a passive one needs a tone, e.g. 2700 (its resonance)

    def validate(self) -> None:
        _between("buzzer", "pin", self.pin, 0, MAX_BCM_PIN)
        # close() lets a sounding beep finish: longer would hold up the daemon's stop (the unit's
        # TimeoutStopSec is 15 s), and 1e308 overflows gpiozero.
        _between("buzzer", "beep_s", self.beep_s, 0.01, 2.0)
        _at_least("buzzer", "tone_hz", self.tone_hz, 0.0)
        if self.tone_hz and not 50 <= self.tone_hz <= 10000:
            raise ConfigError(f"[buzzer].tone_hz must be 0 (an active buzzer) or 50 to 10000, got {self.tone_hz!r}")


@dataclass
class ButtonConfig:
    enabled: bool = True
    pin: int = 27  # BCM numbering, 0 to 27; not the buzzer's
    long_press_s: float = 3.0  # hold this long for a safe shutdown
    debounce_s: float = 0.3  # a short press resets once the button has stayed up this long (contact bounce)
    shutdown_command: list[str] = field(default_factory=lambda: ["systemctl", "poweroff"])

    def validate(self) -> None:
        _between("button", "pin", self.pin, 0, MAX_BCM_PIN)
        _at_least("button", "long_press_s", self.long_press_s, 0.5)
        _at_least("button", "debounce_s", self.debounce_s, 0.0)
        if not self.shutdown_command or not self.shutdown_command[0]:
            raise ConfigError(f"[button].shutdown_command must name a program to run, got {self.shutdown_command!r}")


@dataclass
class StateConfig:
    dir: str = str(DEFAULT_STATE_DIR)

    def validate(self) -> None:
        if not self.dir:
            raise ConfigError("[state].dir must not be empty")


# [counter] is CounterSettings (appliance/counter.py); its ranges are checked here, with every
# other key's, so that a bad value is a one-line error naming it when the file is read rather
# than a ValueError from the filter design at the first frame, or a counter that never counts.
# Counts: at least 1, and at most where the filter stays stable (a Butterworth filter in the
# polynomial form goes unstable from about order 15, and counted 0 reps at 60) or a window
# stays a few minutes of frames (1e11 taps would be allocated at the first frame).
_COUNTER_COUNTS = {"filter_order": 8, "seed_lag": 10000, "seed_numtaps": 1001}
_COUNTER_POSITIVE = ("cutoff_hz", "max_speed", "max_gap_s", "nominal_fps", "scale_window_s", "max_arm_outlier", "max_arm_bend",
                     "arm_per_body_scale", "min_amplitude", "amplitude_prior", "max_rep_s", "floor_window_s",
                     "first_top_factor", "seed_cutoff_hz")
_COUNTER_NOT_NEGATIVE = ("top_fraction", "refractory_s", "min_rep_s", "warmup_s", "max_wrist_level",
                         "front_width_ratio", "front_hip_offset", "max_hip_drop", "max_front_hip_drop", "max_hip_rise",
                         "max_front_hip_rise", "max_top_hip_ratio", "top_grace_s", "min_hip_follow", "max_hip_follow",
                         "max_hand_off_floor", "max_hand_motion")
_COUNTER_FRACTIONS = ("min_score", "amplitude_memory", "descent_fraction", "count_fraction",
                      "arrive_velocity_fraction", "min_posture_fraction")  # shares: 0 to 1
_COUNTER_ANGLES = ("max_bottom_elbow_deg", "elbow_down_deg", "elbow_up_deg")  # 0 to 180 degrees
_COUNTER_ANY = ("min_arm_drop", "min_top_arm_drop", "seed_h")  # any number: a negative arm drop is a hand above the shoulder


def validate_counter(settings: CounterSettings) -> None:
    for key, high in _COUNTER_COUNTS.items():
        _between("counter", key, getattr(settings, key), 1, high)
    for key in _COUNTER_POSITIVE:
        if not getattr(settings, key) > 0:
            raise ConfigError(f"[counter].{key} must be more than 0, got {getattr(settings, key)!r}")
    for key in _COUNTER_NOT_NEGATIVE:
        _at_least("counter", key, getattr(settings, key), 0.0)
    for key in _COUNTER_FRACTIONS:
        _between("counter", key, getattr(settings, key), 0.0, 1.0)
    for key in _COUNTER_ANGLES:
        _between("counter", key, getattr(settings, key), 0.0, 180.0)
    for low, high in (("min_rep_s", "max_rep_s"), ("min_hip_follow", "max_hip_follow"), ("elbow_down_deg", "elbow_up_deg")):
        if getattr(settings, low) > getattr(settings, high):
            raise ConfigError(f"[counter] need {low} <= {high}, got {getattr(settings, low)!r} > {getattr(settings, high)!r}")


@dataclass
class Config:
    models: ModelsConfig = field(default_factory=ModelsConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    counter: CounterSettings = field(default_factory=CounterSettings)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    buzzer: BuzzerConfig = field(default_factory=BuzzerConfig)
    button: ButtonConfig = field(default_factory=ButtonConfig)
    state: StateConfig = field(default_factory=StateConfig)


def load_config(path: str | Path | None = None) -> Config:
    """Read the TOML file (the default path may be absent; an explicit one may not)."""
    if path is None:
        path = DEFAULT_CONFIG_PATH
        if not path.exists():
            return Config()
    path = Path(path)
    try:
        # utf-8-sig: Windows Notepad may save the boot partition's copy with a byte-order mark
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except ValueError as exc:  # TOMLDecodeError, and Python's limit on an integer's digits
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    config = Config()
    sections = {f.name: f for f in dataclasses.fields(Config)}
    for section_name, table in raw.items():
        if section_name not in sections:
            raise ConfigError(f"{source}: unknown section [{section_name}] (known: {', '.join(sections)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{section_name}] must be a table")
        section = getattr(config, section_name)
        known = {f.name: f for f in dataclasses.fields(section)}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown key [{section_name}].{key} (known: {', '.join(known)})")
            setattr(section, key, _checked(f"{source}: [{section_name}].{key}", value, getattr(section, key)))
    for f in dataclasses.fields(Config):
        section = getattr(config, f.name)
        try:
            if isinstance(section, CounterSettings):
                validate_counter(section)
            else:
                section.validate()
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"{source}: [{f.name}] {exc}") from None
    # gpiozero refuses a second device on a pin: the button would be logged away and not exist.
    if config.buzzer.enabled and config.button.enabled and config.buzzer.pin == config.button.pin:
        raise ConfigError(f"{source}: [buzzer].pin and [button].pin are both GPIO{config.button.pin}; "
                          f"they need a pin each")
    return config


def _checked(where: str, value: Any, default: Any) -> Any:
    """The value if it has the default's type (an int may stand for a float)."""
    expected = type(default)
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is float:  # TOML also has nan and inf, which no setting means
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
        value = float(value) if ok else value
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(f"{where} must be {_type_name(expected)}, got {value!r:.60}")
    if "\0" in (value if isinstance(value, str) else "".join(value) if expected is list else ""):
        raise ConfigError(f"{where} must not hold a NUL character (no path or program name can)")
    return value


def _finite(number: int | float) -> bool:
    """A float setting's value: an integer too big for a float is no more a setting than inf."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _type_name(t: type) -> str:
    return {bool: "true or false", float: "a finite number", int: "an integer", str: "a string", list: "a list of strings"}.get(t, t.__name__)


def _at_least(section: str, key: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"[{section}].{key} must be at least {low}, got {value!r}")


def _between(section: str, key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"[{section}].{key} must be between {low} and {high}, got {value!r}")


def _one_of(section: str, key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"[{section}].{key} must be one of {', '.join(map(str, allowed))}; got {value!r}")
