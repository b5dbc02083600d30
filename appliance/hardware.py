"""Buzzer and button through gpiozero: the only module that touches GPIO pins.

Pins come from gpiozero's default pin factory (lgpio on the Pi); tests install gpiozero's
MockFactory. Button presses become events the main loop takes, so every count change
happens in one thread.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

log = logging.getLogger(__name__)

RESET = "reset"
SHUTDOWN = "shutdown"
STUCK_S = 10.0  # a press held this much longer than long_press_s is a stuck button: its release does nothing


class Beeper:
    """Non-blocking beeps: one short beep per rep, three for a reset, one long for shutdown.

    An active buzzer (`tone_hz` 0) sounds by itself while its pin is on: gpiozero's Buzzer.
    A passive one only clicks on a plain level change and needs a square wave: PWM at
    `tone_hz`, half duty. PWM runs only while a tone sounds: lgpio's software PWM wakes every
    period, even at 0 duty, beside the models. Either is switched on and off by a small
    thread of ours, not gpiozero's beep(): its blink() drives PWM devices to full duty (silence
    for a passive buzzer), and a pin that fails in its thread is a traceback per rep that
    nobody catches; ours drops a failing buzzer.

    close() first lets a beep that still sounds finish (it waits at most that beep's length):
    closing the pin cuts it, and the long shutdown beep is the owner's sign the press worked.
    """

    def __init__(self, config, clock=time.monotonic, sleep=time.sleep):
        self.config = config
        self._clock = clock
        self._sleep = sleep
        self._sounding_until = float("-inf")
        self._buzzer = None
        self._tone_thread: threading.Thread | None = None
        self._tone_stop = threading.Event()
        if not config.enabled:
            return
        try:
            if config.tone_hz > 0:
                from gpiozero import PWMOutputDevice

                self._buzzer = PWMOutputDevice(config.pin, active_high=config.active_high, frequency=config.tone_hz)
                self._tone(False)
            else:
                from gpiozero import Buzzer

                self._buzzer = Buzzer(config.pin, active_high=config.active_high)
        except Exception as exc:
            log.warning("no buzzer on GPIO%d (%s); counting on silently", config.pin, exc)

    def _beep(self, on: float, off: float, n: int) -> None:
        self._stop_tones()  # a new pattern replaces one still sounding, as gpiozero's beep() does
        if self._buzzer is None:  # none, or the tone thread dropped a failing one
            return
        try:
            self._start_tones(on, off, n)
            self._sounding_until = self._clock() + n * on + (n - 1) * off
        except Exception as exc:
            self._disable(exc)

    def _disable(self, exc: Exception) -> None:
        """A failing buzzer is silenced if it can be, given back, and not used again."""
        log.warning("buzzer failed (%s); disabled", exc)
        buzzer, self._buzzer = self._buzzer, None
        if buzzer is None:
            return
        for step in (buzzer.off, buzzer.close):  # closed even when the pin cannot be written
            try:
                step()
            except Exception as close_exc:
                log.debug("closing the failed buzzer: %s", close_exc)

    def _tone(self, on: bool) -> None:
        """Active buzzer: the pin on or off. Passive buzzer: PWM at tone_hz, half duty; off:
        level 0 and no PWM at all (the frequency goes before the level on the way in, after it
        on the way out, so the pin never sees a steady 0.5 written as a plain level)."""
        if self.config.tone_hz <= 0:
            self._buzzer.value = on
        elif on:
            self._buzzer.frequency = self.config.tone_hz
            self._buzzer.value = 0.5
        else:
            self._buzzer.value = 0
            self._buzzer.frequency = None
            self._buzzer.value = 0

    def _start_tones(self, on: float, off: float, n: int) -> None:
        stop = self._tone_stop
        self._tone(True)  # here, not in the thread: a pin that fails at once is _beep's to catch

        def play() -> None:
            try:
                for i in range(n):
                    if i:
                        self._tone(True)
                    stopped = stop.wait(on)
                    self._tone(False)
                    if stopped or (i < n - 1 and stop.wait(off)):
                        return
            except Exception as exc:  # the pin went away mid-pattern
                self._disable(exc)

        self._tone_thread = threading.Thread(target=play, name="buzzer tone", daemon=True)
        self._tone_thread.start()

    def _stop_tones(self) -> None:
        if self._tone_thread is not None:
            self._tone_stop.set()
            self._tone_thread.join()
            self._tone_stop.clear()
            self._tone_thread = None

    def rep(self) -> None:
        self._beep(self.config.beep_s, 0.02, 1)

    def reset(self) -> None:
        self._beep(0.05, 0.05, 3)

    def shutdown(self) -> None:
        self._beep(0.6, 0.1, 1)

    def close(self) -> None:
        if self._buzzer is not None:
            left = self._sounding_until - self._clock()
            if left > 0:
                self._sleep(left)
        self._stop_tones()
        buzzer, self._buzzer = self._buzzer, None  # the tone thread may have dropped a failed one
        if buzzer is not None:
            try:
                buzzer.off()  # gpiozero's close() stops a beep without writing the pin low
            finally:
                buzzer.close()  # the pin is given back even if that write fails


class ResetButton:
    """Short press: reset. Hold for long_press_s, then release: safe shutdown.

    The shutdown waits for the release so that a stuck button never powers the box off, and a
    press held more than long_press_s + STUCK_S is a stuck button (knocked onto it, something
    leaning on it): its release is logged and ignored, not a power-off the moment it is freed.
    Contacts bounce: a press is a reset only once the button has stayed up for debounce_s
    after it (a bounce that comes down again is the same press going on, so a long press that
    bounced at its start is still one shutdown), and after a shutdown nothing more counts.
    The reset is queued at the next poll() or at the next press, whichever comes first: the
    loop does not poll while the models load or a camera read hangs, and a second tap then is
    a second press, not the first one going on.
    """

    def __init__(self, config, clock=time.monotonic):
        self.config = config
        self.events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._clock = clock
        self._lock = threading.Lock()  # gpiozero calls back from its own thread
        self._button = None
        self._pressed_at: float | None = None  # while down
        self._pressed_since: float | None = None  # the start of the press, bounces included
        self._reset_due: float | None = None  # a short press released: a reset once it stays up
        self._held = False
        self._shut_down = False
        if not config.enabled:
            return
        try:
            from gpiozero import Button

            self._button = Button(config.pin, pull_up=True, hold_time=config.long_press_s)
        except Exception as exc:
            log.warning("no button on GPIO%d (%s); reset from the command line instead", config.pin, exc)
            return
        self._button.when_pressed = self._on_press
        self._button.when_held = self._on_held
        self._button.when_released = self._on_release

    def _on_press(self) -> None:
        with self._lock:
            now = self._clock()
            if self._reset_due is not None and self._pressed_since is not None:
                if now < self._reset_due:
                    self._pressed_at = self._pressed_since  # down again within debounce_s: a bounce,
                    self._reset_due = None  # the press that started then goes on (and may be long)
                    return
                # up for debounce_s already, but the loop has not polled since (models loading, a
                # slow camera read): that press was a reset, and this one is a new press
                self._reset_due = None
                self.events.put(RESET)
            self._pressed_at = self._pressed_since = now
            self._held = False

    def _on_held(self) -> None:
        self._held = True  # gpiozero's hold timer, which starts again at a bounce: the release
        # measures the whole press as well

    def _on_release(self) -> None:
        with self._lock:
            pressed_at, self._pressed_at = self._pressed_at, None
            now = self._clock()
            if pressed_at is None or self._shut_down:
                return
            held_s = now - pressed_at
            if held_s > self.config.long_press_s + STUCK_S:
                self._reset_due = None
                log.warning("button: released after %.0f s held down, a stuck button rather than a long press "
                            "(%g to %g s): ignored", held_s, self.config.long_press_s, self.config.long_press_s + STUCK_S)
                return
            if self._held or held_s >= self.config.long_press_s:
                self._shut_down, self._reset_due = True, None
                self.events.put(SHUTDOWN)
            else:
                self._reset_due = now + self.config.debounce_s

    @property
    def is_down(self) -> bool:
        """Held down right now (a reset or a shutdown comes only at the release)."""
        return self._pressed_at is not None

    @property
    def press_pending(self) -> bool:
        """A press is under way: down, or released and waiting out debounce_s for its reset. A
        press that ends in nothing (a stuck button freed at last) is then no longer pending."""
        return self._pressed_at is not None or self._reset_due is not None

    def poll(self, final: bool = False) -> list[str]:
        """The events since the last poll. `final`: the last poll before close(): a short press
        still waiting out debounce_s is a reset now, as no poll will come for it later."""
        with self._lock:
            if self._reset_due is not None and self._pressed_at is None and (final or self._clock() >= self._reset_due):
                self._reset_due = None
                self.events.put(RESET)
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        if self._button is not None:
            self._button.close()
            self._button = None
