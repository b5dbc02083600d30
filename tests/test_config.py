import pytest

from appliance.config import Config, config_from_dict, load_config
from appliance.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_empty_file_gives_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config == Config()
    assert config.display.driver == "ssd1306" and config.display.i2c_address == 0x3C


def test_values_are_read(tmp_path):
    config = load_config(write(tmp_path, "[display]\nkind = 'none'\nwidth = 128\nheight = 32\n[gate]\ntime_constant_s = 1\n"))
    assert config.display.kind == "none" and config.display.height == 32
    assert config.gate.time_constant_s == 1.0 and isinstance(config.gate.time_constant_s, float)


def test_a_byte_order_mark_is_read_past(tmp_path):
    """Windows Notepad's "UTF-8 with BOM", on the FAT boot partition's copy of the file."""
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf[display]\r\nkind = 'none'\r\n")
    assert load_config(path).display.kind == "none"


def test_flip_average_reaches_the_keypoint_model(tmp_path):
    from appliance.app import load_pipeline

    config = load_config(write(tmp_path, "[models]\nflip_average = false\n"))
    assert config.models.flip_average is False
    assert load_pipeline(config).keypoint_model.flip_average is False
    assert load_pipeline(Config()).keypoint_model.flip_average is True


@pytest.mark.parametrize(
    "text, named",
    [
        ("[display]\ncolour = 'blue'\n", "[display].colour"),
        ("[screen]\nkind = 'none'\n", "[screen]"),
        ("[display]\nwidth = 'wide'\n", "[display].width"),
        ("[buzzer]\nenabled = 1\n", "[buzzer].enabled"),
        ("[display]\nkind = 'lcd'\n", "[display].kind"),
        ("[models]\nnum_threads = 0\n", "[models].num_threads"),
        ("[models]\nnum_threads = 4294967296\n", "[models].num_threads"),
        ("[models]\nflip_average = 'yes'\n", "[models].flip_average"),
        ("[gate]\nopen_threshold = 0.2\nclose_threshold = 0.5\n", "[gate]"),
        ("[button]\nshutdown_command = 'poweroff'\n", "[button].shutdown_command"),
        ("[button]\nshutdown_command = []\n", "[button].shutdown_command"),
        ("[button]\nshutdown_command = ['', 'now']\n", "[button].shutdown_command"),
        ("[counter]\nfilter_order = 0\n", "[counter].filter_order"),
        ("[counter]\ncutoff_hz = 0\n", "[counter].cutoff_hz"),
        ("[counter]\nnominal_fps = -30\n", "[counter].nominal_fps"),
        ("[counter]\ncutoff_hz = nan\n", "[counter].cutoff_hz"),
        ("[counter]\nmax_rep_s = inf\n", "[counter].max_rep_s"),
        ("[counter]\nrefractory_s = -0.1\n", "[counter].refractory_s"),
        ("[counter]\nmin_score = 1.5\n", "[counter].min_score"),
        ("[counter]\ncount_fraction = -0.5\n", "[counter].count_fraction"),
        ("[counter]\nseed_numtaps = 0\n", "[counter].seed_numtaps"),
        ("[counter]\nelbow_up_deg = 200\n", "[counter].elbow_up_deg"),
        ("[counter]\nmin_rep_s = 5\nmax_rep_s = 2\n", "min_rep_s <= max_rep_s"),
        ("[camera]\nlores_width = 300\n", "[camera].lores_width"),
        ("[camera]\nlores_width = 320\nlores_format = 'YUV420'\nlores_height = 241\n", "[camera].lores_height"),
        ("[camera]\nfps = nan\n", "[camera].fps"),
        ("[camera]\nfps = 1.5\n", "[camera].fps"),  # frames 0.67 s apart: the counter never counts
        ("[camera]\nrotation = 90\n", "[camera].rotation"),
        ("[display]\nsleep_after_s = -1\n", "[display].sleep_after_s"),
        ("[buzzer]\ntone_hz = 20000\n", "[buzzer].tone_hz"),
        ("[buzzer]\ntone_hz = 10\n", "[buzzer].tone_hz"),
        ("[gate]\nopen_threshold = 1.0\n", "[gate].open_threshold"),  # the gate opens only above it
        ("[models]\nrecognition_every = 100000\n", "[models].recognition_every"),
        ("[models]\nrecognition_every = 31\n", "[models].recognition_every"),
        ("[display]\nretry_s = -5\n", "[display].retry_s"),
        ("[display]\nretry_s = 0.5\n", "[display].retry_s"),
        ("[display]\ni2c_address = 99999\n", "[display].i2c_address"),
        ("[display]\ni2c_address = 0x78\n", "[display].i2c_address"),
        ("[display]\ni2c_address = 0x02\n", "[display].i2c_address"),
        ("[display]\ni2c_port = -1\n", "[display].i2c_port"),
        ("[display]\nwidth = 96\nheight = 16\n", "[display].height must be at least 32"),  # the count a dot
        ("[display]\nwidth = 128\nheight = 32\nrotate = 1\n", "[display].height must be at least 64 with rotate"),
        ("[camera]\nindex = -2\n", "[camera].index"),
        ("[buzzer]\npin = -3\n", "[buzzer].pin"),
        ("[buzzer]\npin = 28\n", "[buzzer].pin"),
        ("[button]\npin = 999\n", "[button].pin"),
        ("[buzzer]\npin = 17\n[button]\npin = 17\n", "[buzzer].pin and [button].pin"),
        ("[buzzer]\nbeep_s = 1e308\n", "[buzzer].beep_s"),
        ("[buzzer]\nbeep_s = 3600\n", "[buzzer].beep_s"),
        ("[buzzer]\nbeep_s = 2.5\n", "[buzzer].beep_s"),
        # Found by review: each of these was a traceback, or a counter that never counts
        ("[camera]\nfps = 1" + "0" * 400 + "\n", "[camera].fps"),  # too big for a float: OverflowError
        ("[camera]\nindex = 1" + "0" * 5000 + "\n", "not valid TOML"),  # past Python's digit limit: ValueError
        ('[state]\ndir = "/tmp/a\\u0000b"\n', "[state].dir must not hold a NUL"),  # "embedded null byte" at start
        ('[button]\nshutdown_command = ["systemctl", "power\\u0000off"]\n', "[button].shutdown_command"),
        ("[counter]\nfilter_order = 9\n", "[counter].filter_order"),  # unstable from about 15: 0 reps at 60
        ("[counter]\nseed_numtaps = 100000000000\n", "[counter].seed_numtaps"),  # allocated at the first frame
        ("[counter]\nseed_lag = 100000000000\n", "[counter].seed_lag"),
        ("[counter]\nmax_gap_s = 0\n", "[counter].max_gap_s"),  # every frame a gap: never counts
        ("[camera]\nframe_timeout_s = 8\n", "[camera].frame_timeout_s must be at most 5"),  # a camera wait past the watchdog
    ],
)
def test_bad_config_names_the_key(tmp_path, text, named):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert named in message and str(path) in message
    assert "\n" not in message


def test_range_edges_are_accepted(tmp_path):
    """The last good values of the ranges above, and one pin for a buzzer and a disabled button."""
    config = load_config(write(tmp_path, "[gate]\nopen_threshold = 0.99\n[models]\nrecognition_every = 30\n"
                                         "[display]\nretry_s = 1\ni2c_address = 0x77\ni2c_port = 0\n[camera]\nframe_timeout_s = 5\n"
                                         "[buzzer]\npin = 27\nbeep_s = 2\n[button]\npin = 27\nenabled = false\n"))
    assert config.gate.open_threshold == 0.99 and config.display.i2c_address == 0x77
    assert config.buzzer.pin == config.button.pin == 27
    assert load_config(write(tmp_path, "[buzzer]\npin = 0\n[button]\npin = 26\n[display]\ni2c_address = 0x03\n"))


def test_counter_section_maps_onto_counter_settings():
    from appliance.counter import CounterSettings
    import dataclasses

    field = dataclasses.fields(CounterSettings)[0]
    value = getattr(CounterSettings(), field.name)
    config = config_from_dict({"counter": {field.name: value}})
    assert getattr(config.counter, field.name) == value
    with pytest.raises(ConfigError, match=r"\[counter\].no_such_setting"):
        config_from_dict({"counter": {"no_such_setting": 1}})


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[display\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_every_counter_value_the_config_accepts_builds_a_counter(tmp_path):
    """The edges the loader lets through still make a working filter (butter_lowpass raised
    ValueError at the first frame for filter_order = 0 or cutoff_hz = 0)."""
    import numpy as np

    from appliance.counter import RepCounter

    config = load_config(write(tmp_path, "[counter]\nfilter_order = 1\ncutoff_hz = 100\nnominal_fps = 0.5\nmin_score = 0\n"))
    counter = RepCounter(config.counter)
    keypoints = np.full((9, 3), 0.5, np.float32)
    for i in range(5):
        counter.update(i / 30, keypoints)
    assert counter.count == 0
    top = load_config(write(tmp_path, "[counter]\nfilter_order = 8\nseed_numtaps = 1001\nseed_lag = 10000\nmax_gap_s = 0.01\n"))
    assert (top.counter.filter_order, top.counter.seed_numtaps) == (8, 1001)


def test_rgb_lores_may_have_any_width(tmp_path):
    """RGB rows are cropped exactly whatever their padding; only YUV420 needs whole 64-byte rows."""
    config = load_config(write(tmp_path, "[camera]\nlores_format = 'RGB'\nlores_width = 300\nlores_height = 225\n"))
    assert (config.camera.lores_width, config.camera.lores_height) == (300, 225)


def test_every_counter_setting_has_a_range():
    """A setting added to CounterSettings must be given its range in config.py (or be listed
    as any number), and a renamed one must not leave a stale name there."""
    import dataclasses

    from appliance import config as config_module
    from appliance.counter import CounterSettings

    tables = ("_COUNTER_COUNTS", "_COUNTER_POSITIVE", "_COUNTER_NOT_NEGATIVE", "_COUNTER_FRACTIONS", "_COUNTER_ANGLES", "_COUNTER_ANY")
    listed = [name for table in tables for name in getattr(config_module, table)]
    assert sorted(listed) == sorted(f.name for f in dataclasses.fields(CounterSettings))
