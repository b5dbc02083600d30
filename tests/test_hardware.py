"""Buzzer and button through gpiozero's MockFactory (real gpiozero devices, mock pins)."""
import time
import types

import pytest
from gpiozero.pins.mock import MockPWMPin

from appliance.config import ButtonConfig, BuzzerConfig
from appliance.hardware import RESET, SHUTDOWN, STUCK_S, Beeper, ResetButton


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def press(pin, clock, hold_s=0.05):
    pin.drive_low()
    clock.t += hold_s
    pin.drive_high()


def test_short_press_resets_once_the_button_has_stayed_up(mock_pins):
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, debounce_s=0.3), clock=clock)
    pin = mock_pins.pin(27)
    press(pin, clock)
    assert button.poll() == []  # up for less than debounce_s: it may still be bouncing
    clock.t += 0.3
    assert button.poll() == [RESET]
    assert button.poll() == []
    button.close()


def test_bouncing_contact_resets_only_once(mock_pins):
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, debounce_s=0.3), clock=clock)
    pin = mock_pins.pin(27)
    for _ in range(5):  # mock pins do not debounce: five fast toggles
        press(pin, clock, hold_s=0.005)
        clock.t += 0.005
    clock.t += 0.3
    assert button.poll() == [RESET]
    clock.t += 1.0
    press(pin, clock)
    clock.t += 0.3
    assert button.poll() == [RESET]
    button.close()


def test_two_taps_the_loop_did_not_poll_between_are_two_resets(mock_pins):
    """The loop does not poll while the models load or a camera read hangs: a second tap after
    debounce_s is a new press, not a bounce of the first (the two spread over long_press_s
    were taken for one long press, and the box powered off)."""
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, long_press_s=3.0, debounce_s=0.3), clock=clock)
    pin = mock_pins.pin(27)
    press(pin, clock, hold_s=0.1)
    clock.t += 0.5  # up past debounce_s, no poll
    press(pin, clock, hold_s=2.5)  # together with the first: 3.1 s from the first press
    clock.t += 0.5
    assert button.poll() == [RESET, RESET]
    button.close()


def test_long_press_then_release_shuts_down(mock_pins):
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, long_press_s=3.0), clock=clock)
    press(mock_pins.pin(27), clock, hold_s=3.5)
    assert button.poll() == [SHUTDOWN]
    button.close()


def test_a_long_press_that_bounces_is_one_shutdown_and_no_reset(mock_pins):
    """Bounce as the button goes down (a 1 ms release inside the hold) and as it comes up: a
    reset taken before or after the shutdown would power off with the count wiped."""
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, long_press_s=3.0, debounce_s=0.3), clock=clock)
    pin = mock_pins.pin(27)
    press(pin, clock, hold_s=0.001)  # down, bounce up
    clock.t += 0.001
    press(pin, clock, hold_s=3.5)  # down again and held
    for _ in range(3):  # up, with bounce
        clock.t += 0.002
        press(pin, clock, hold_s=0.002)
    clock.t += 1.0
    assert button.poll() == [SHUTDOWN]
    clock.t += 1.0
    press(pin, clock)  # nothing counts once the box is shutting down
    clock.t += 1.0
    assert button.poll() == []
    button.close()


def test_a_long_press_whose_contact_opens_for_a_moment_is_still_a_shutdown(mock_pins):
    """A 4 s hold with a 2 ms opening at 2 s: one press of 4 s, not a 2 s reset and more."""
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, long_press_s=3.0, debounce_s=0.3), clock=clock)
    pin = mock_pins.pin(27)
    press(pin, clock, hold_s=2.0)
    clock.t += 0.002
    press(pin, clock, hold_s=1.998)
    clock.t += 0.5
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


def test_a_stuck_button_freed_at_last_does_not_power_off(mock_pins, caplog):
    """Stuck down for an hour (the box knocked onto its button), then freed: the release is not a
    long press (found by review: the box powered off the moment it was lifted). It is logged,
    and the button works as before afterwards; a long press just inside the window still counts."""
    clock = FakeClock()
    button = ResetButton(ButtonConfig(pin=27, long_press_s=3.0, debounce_s=0.3), clock=clock)
    pin = mock_pins.pin(27)
    press(pin, clock, hold_s=3600.0)
    clock.t += 1.0
    assert button.poll() == []
    assert any("stuck button" in r.getMessage() for r in caplog.records)
    press(pin, clock)
    clock.t += 0.3
    assert button.poll() == [RESET]
    press(pin, clock, hold_s=3.0 + STUCK_S - 0.5)
    assert button.poll() == [SHUTDOWN]
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


def _fail_the_second_beep_and_check_the_buzzer_is_dropped(pin, beeper, on_value, caplog):
    """The pin fails on the second beep's 'on' write, in the thread that switches it."""
    real = type(pin)._set_state
    writes = []

    def failing_second_beep(self, value):
        writes.append(value)
        if value == on_value and writes.count(on_value) == 2:
            raise OSError(5, "GPIO write failed")
        real(self, value)

    pin._set_state = types.MethodType(failing_second_beep, pin)
    beeper.reset()
    time.sleep(0.5)
    assert "buzzer failed" in caplog.text and beeper._buzzer is None
    assert pin.state == 0
    beeper.rep()  # dropped: nothing more is written
    assert writes.count(on_value) == 2
    beeper.close()


def test_active_buzzer_pin_failing_mid_pattern_is_silenced_and_dropped(mock_pins, caplog):
    """A pin that fails after start-up fails while a beep sounds, in the thread that switches
    it: the buzzer is dropped with one log line, not a thread traceback at every rep."""
    pin = mock_pins.pin(17)
    beeper = Beeper(BuzzerConfig(pin=17, beep_s=0.02))
    _fail_the_second_beep_and_check_the_buzzer_is_dropped(pin, beeper, True, caplog)


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


def test_active_buzzer_closed_in_the_middle_of_a_beep_is_silenced(mock_pins):
    """gpiozero's close() stops the blink thread without writing the pin low: a close that
    lands inside a beep (the wait for it ends a hair early) must still leave the buzzer off."""
    clock = FakeClock()
    beeper = Beeper(BuzzerConfig(pin=17), clock=clock, sleep=lambda s: None)
    pin = mock_pins.pin(17)
    beeper.shutdown()
    wait_for_states(pin, 2)
    beeper.close()
    assert pin.states[-1].state is False


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


def tone_log(pin):
    """Every (frequency, state) the pin goes through, read as they are written."""
    log = []
    real = type(pin)._set_state

    def record(self, value):
        real(self, value)
        log.append((self.frequency, self.state))

    pin._set_state = types.MethodType(record, pin)
    return log


def test_passive_buzzer_beeps_with_a_half_duty_tone(mock_pwm_pins):
    """A passive buzzer is silent at full duty (a steady level): each beep is PWM at tone_hz,
    half on, and between beeps the level is 0 with no PWM running at all."""
    pin = mock_pwm_pins.pin(17)
    beeper = Beeper(BuzzerConfig(pin=17, tone_hz=2700, beep_s=0.02))
    assert pin.frequency is None and pin.state == 0  # no PWM while silent
    writes = tone_log(pin)
    beeper.reset()
    time.sleep(0.5)
    sounding = [w for w in writes if w[1] > 0]
    assert sounding == [(2700, 0.5)] * 3
    assert writes[-1] == (None, 0)
    beeper.close()


def test_passive_buzzer_with_an_active_low_pin(mock_pwm_pins):
    pin = mock_pwm_pins.pin(17)
    beeper = Beeper(BuzzerConfig(pin=17, tone_hz=2700, active_high=False, beep_s=0.02))
    assert pin.frequency is None and pin.state == 1  # silent is a steady high level
    writes = tone_log(pin)
    beeper.rep()
    time.sleep(0.2)
    assert (2700, 0.5) in writes and writes[-1] == (None, 1)
    beeper.close()


def test_passive_buzzer_new_beep_cuts_the_one_sounding(mock_pwm_pins):
    beeper = Beeper(BuzzerConfig(pin=17, tone_hz=2700, beep_s=0.02), sleep=lambda s: None)
    pin = mock_pwm_pins.pin(17)
    writes = tone_log(pin)
    beeper.shutdown()  # a 0.6 s tone
    time.sleep(0.05)
    start = time.monotonic()
    beeper.rep()
    assert time.monotonic() - start < 0.45  # did not wait out the long tone
    time.sleep(0.2)
    assert [w for w in writes if w[1] > 0] == [(2700, 0.5)] * 2 and writes[-1] == (None, 0)
    beeper.close()


def test_passive_buzzer_closed_in_the_middle_of_a_tone_is_silenced(mock_pwm_pins):
    clock = FakeClock()
    beeper = Beeper(BuzzerConfig(pin=17, tone_hz=2700), clock=clock, sleep=lambda s: None)
    pin = mock_pwm_pins.pin(17)
    beeper.shutdown()
    beeper.close()  # the daemon's sleep is skipped here: the tone is cut at once
    assert pin.state == 0 and pin.frequency is None


def test_passive_buzzer_pin_failing_mid_pattern_is_silenced_and_dropped(mock_pwm_pins, caplog):
    pin = mock_pwm_pins.pin(17)
    beeper = Beeper(BuzzerConfig(pin=17, tone_hz=2700, beep_s=0.02))
    _fail_the_second_beep_and_check_the_buzzer_is_dropped(pin, beeper, 0.5, caplog)
