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
    config = load_config(write(tmp_path, "[display]\nkind = 'none'\nwidth = 128\nheight = 32\n[gate]\nopen_threshold = 1\n"))
    assert config.display.kind == "none" and config.display.height == 32
    assert config.gate.open_threshold == 1.0 and isinstance(config.gate.open_threshold, float)


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
        ("[models]\nflip_average = 'yes'\n", "[models].flip_average"),
        ("[gate]\nopen_threshold = 0.2\nclose_threshold = 0.5\n", "[gate]"),
        ("[button]\nshutdown_command = 'poweroff'\n", "[button].shutdown_command"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, named):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert named in message and str(path) in message
    assert "\n" not in message


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
