"""Buzzer and button through gpiozero's MockFactory (real gpiozero devices, mock pins)."""
import time

import pytest
from gpiozero.pins.mock import MockPWMPin

from appliance.config import ButtonConfig, BuzzerConfig
from appliance.hardware import RESET, SHUTDOWN, Beeper, ResetButton


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def press(pin, clock, hold_s=0.05):
    pin.drive_low()
    clock.t += hold_s
    pin.drive_high()


def test_short_press_resets_once(mock_pins):
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27), clock=clock)
    pin = mock_pins.pin(27)
    press(pin, clock)
    assert button.poll() == [RESET]
    assert button.poll() == []
    button.close()


def test_bouncing_contact_resets_only_once(mock_pins):
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, debounce_s=0.3), clock=clock)
    pin = mock_pins.pin(27)
    for _ in range(5):  # mock pins do not debounce: five fast toggles are five presses
        press(pin, clock, hold_s=0.005)
        clock.t += 0.005
    assert button.poll() == [RESET]
    clock.t += 1.0
    press(pin, clock)
    assert button.poll() == [RESET]
    button.close()


def test_long_press_then_release_shuts_down(mock_pins):
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, long_press_s=3.0), clock=clock)
    press(mock_pins.pin(27), clock, hold_s=3.5)
    assert button.poll() == [SHUTDOWN]
    button.close()


def test_stuck_button_does_nothing(mock_pins):
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, long_press_s=0.5), clock=clock)
    pin = mock_pins.pin(27)
    pin.drive_low()
    clock.t += 600
    time.sleep(0.7)  # gpiozero's hold timer runs in real time
    assert button.poll() == []  # no reset, and no power-off while it is stuck down
    button.close()


def test_disabled_button_and_missing_gpio_do_not_raise(mock_pins, monkeypatch):
    assert ResetButton(ButtonConfig(enabled=False)).poll() == []
    button = ResetButton(ButtonConfig(pin=27))
    again = ResetButton(ButtonConfig(pin=27))  # pin in use: logged, counting goes on
    assert again.poll() == []
    button.close()


def wait_for_states(pin, count, timeout=2.0):
    deadline = time.monotonic() + timeout
    while len(pin.states) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    return [state.state for state in pin.states]


def test_rep_is_one_short_beep(mock_pins):
    beeper = Beeper(BuzzerConfig(pin=17, beep_s=0.02))
    pin = mock_pins.pin(17)
    beeper.rep()
    assert wait_for_states(pin, 3) == [False, True, False]
    beeper.close()


def test_reset_is_three_beeps(mock_pins):
    beeper = Beeper(BuzzerConfig(pin=17))
    pin = mock_pins.pin(17)
    beeper.reset()
    assert wait_for_states(pin, 7) == [False, True, False, True, False, True, False]
    beeper.close()


def test_beep_does_not_block(mock_pins):
    beeper = Beeper(BuzzerConfig(pin=17), sleep=lambda s: None)
    start = time.monotonic()
    beeper.shutdown()  # a 0.6 s tone
    assert time.monotonic() - start < 0.5  # returned while the tone still sounds
    beeper.close()


def test_close_lets_the_shutdown_beep_finish(mock_pins):
    """The daemon closes the buzzer right after a long press, and closing the pin cuts the
    beep: close() waits out the rest of the 0.6 s shutdown beep, and no longer."""
    clock = FakeClock()
    waits = []
    beeper = Beeper(BuzzerConfig(pin=17), clock=clock, sleep=waits.append)
    beeper.shutdown()
    clock.t += 0.2
    beeper.close()
    assert waits == [pytest.approx(0.4)]


def test_close_after_the_beep_does_not_wait(mock_pins):
    clock = FakeClock()
    waits = []
    beeper = Beeper(BuzzerConfig(pin=17), clock=clock, sleep=waits.append)
    beeper.reset()  # three beeps, 0.25 s in all
    clock.t += 0.3
    beeper.close()
    assert waits == []


@pytest.fixture
def mock_pwm_pins(mock_pins):
    """MockFactory whose pins can do PWM, as lgpio's can on the Pi."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    Device.pin_factory = MockFactory(pin_class=MockPWMPin)
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = mock_pins


def test_passive_buzzer_beeps_with_a_half_duty_tone(mock_pwm_pins):
    """A passive buzzer is silent at full duty (a steady level): each beep is PWM at tone_hz,
    half on, half off, and back to 0 between beeps."""
    beeper = Beeper(BuzzerConfig(pin=17, tone_hz=2700, beep_s=0.02))
    pin = mock_pwm_pins.pin(17)
    assert pin.frequency == 2700
    beeper.reset()
    assert wait_for_states(pin, 7) == [0, 0.5, 0, 0.5, 0, 0.5, 0]
    beeper.rep()
    assert wait_for_states(pin, 9)[7:] == [0.5, 0]
    beeper.close()


def test_passive_buzzer_new_beep_cuts_the_one_sounding(mock_pwm_pins):
    beeper = Beeper(BuzzerConfig(pin=17, tone_hz=2700, beep_s=0.02), sleep=lambda s: None)
    pin = mock_pwm_pins.pin(17)
    beeper.shutdown()  # a 0.6 s tone
    time.sleep(0.05)
    start = time.monotonic()
    beeper.rep()
    assert time.monotonic() - start < 0.3  # did not wait for the long tone to end
    assert wait_for_states(pin, 5) == [0, 0.5, 0, 0.5, 0]
    beeper.close()
