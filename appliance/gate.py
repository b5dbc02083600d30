"""The recognition gate: reps only count while the person is really doing push-ups.

The recogniser's per-frame probability is smoothed with an exponential filter whose time
constant is in seconds (so it behaves the same at 30 or 10 fps, and when the recogniser runs
only every Nth frame), then thresholded with hysteresis so it does not flicker.
"""
from __future__ import annotations

import math


class Gate:
    """No defaults here: [gate] in appliance/config.py (GateConfig) is the one place they live."""

    def __init__(self, open_threshold: float, close_threshold: float, time_constant_s: float):
        if not 0.0 <= close_threshold <= open_threshold <= 1.0:
            raise ValueError("need 0 <= close_threshold <= open_threshold <= 1")
        self.open_threshold = open_threshold
        self.close_threshold = close_threshold
        self.time_constant_s = time_constant_s
        self.reset()

    def reset(self) -> None:
        self.smoothed: float | None = None
        self.is_open = False
        self._last_t: float | None = None

    def update(self, t: float, probability: float | None) -> bool:
        """Feed a probability at time t (None: the recogniser did not run) -> gate state."""
        if probability is not None and math.isfinite(probability):
            if self.time_constant_s <= 0:
                self.smoothed = probability
            else:
                # The filter starts at 0 (nobody doing push-ups yet): one early output, from a
                # window with almost no history, must not open the gate by itself.
                previous = self.smoothed if self.smoothed is not None else 0.0
                dt = max(0.0, t - self._last_t) if self._last_t is not None else 0.0
                alpha = 1.0 - math.exp(-dt / self.time_constant_s)
                self.smoothed = previous + alpha * (probability - previous)
            self._last_t = t
            if self.is_open and self.smoothed < self.close_threshold:
                self.is_open = False
            elif not self.is_open and self.smoothed > self.open_threshold:
                self.is_open = True
        return self.is_open
