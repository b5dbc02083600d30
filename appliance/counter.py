"""Streaming push-up rep counters: ours (`RepCounter`) and two baselines.

All counters take one frame at a time -- ``update(t, keypoints, gate_open)`` -- and return True
exactly on the frame where a rep is counted. They are pure (no I/O), cheap per frame (a few
dozen numpy/scipy operations on 9 keypoints) and causal: nothing looks ahead beyond the
low-pass filter's own delay, and history is never re-filtered (the filter runs sample by sample
with its state: ``scipy.signal.lfilter(..., zi=...)`` one sample at a time, written out in numpy
with ``butter``/``firwin`` coefficients identical to scipy's -- tests check them against
scipy.signal -- because importing scipy.signal costs seconds of start-up on a Pi).

What counts as one rep (the rule `RepCounter` implements)
---------------------------------------------------------
One rep is one *push*: the body goes from a bottom position up to the top with the hands
planted, and it is counted once, when the push arrives at the top. The signal is
``s = (floor - shoulder height) / arm length``: how high the shoulders are above the hands, in
arm lengths. The floor is the lower hand's height, each hand a running median over
``floor_window_s`` (hands stay planted; a wrist lost for a few frames behind the chest does not
move the floor). The arm length (upper arm + forearm, a high percentile over
``scale_window_s``; an arm is ignored when it is over ``max_arm_outlier`` times the median or
bent beyond ``max_arm_bend``: an elbow found on a knee) makes it independent of zoom and
distance; being relative to the hands, it ignores where the person is in the frame. ``s`` is
~1 at the top and ~0.2-0.5 at the bottom from side, oblique and front views alike. It may move
at most ``max_speed`` arm lengths a second (a keypoint found on the background for one frame is
not a push), then goes through a Butterworth low-pass (``cutoff_hz``):

* a *descent* is confirmed when ``s`` falls from its running peak by
  ``max(min_amplitude, descent_fraction * A)``; ``A`` is the adaptive rep amplitude (a prior,
  then a running mean of this person's pushes, counted or not -- so shallow reps, slow and
  fast tempo adapt within a rep or two);
* the rep is *armed* when ``s`` has risen from the lowest point since (the valley) by
  ``max(min_amplitude, count_fraction * A)``, and *counted* as it arrives at the top: once the
  rise reaches ``top_fraction * A`` or the push slows below ``arrive_velocity_fraction`` of its
  top speed, whichever comes first. Before any push of this track was measured, ``A`` is only
  the prior: the first push is judged at that level all the same, but a count is announced only
  when the push arrives (risen by ``first_top_factor`` times that, or slowing down), so that a
  push deeper than the prior is not announced well before its top;
* only if the push is plausible: at least ``min_rep_s`` since the cycle began and
  ``refractory_s`` since the last count; push-up posture (below) on at least
  ``min_posture_fraction`` of the cycle's frames and at the counting frame; the recognition gate
  open at the counting frame; and the body moved as a push-up does (below). A top refused for
  its posture is looked at again for ``top_grace_s`` (a keypoint misplaced for a frame or two
  at the top must not cost the rep).

Consequences: a clip that starts at the bottom counts its first push (after ``warmup_s``, which
lets the first, often wrong, frames of a track settle); a clip that ends at the bottom, mid
descent or mid push does not count the unfinished rep; a push from mid-ascent counts only if it
still covers ``count_fraction`` of a rep; plank holds, jitter and dips under ``min_amplitude``
never count; a cycle longer than ``max_rep_s`` is abandoned. Every push that reached the count
level but was refused is logged in ``rejected`` (time, reason) for tuning.

Posture gate (keypoint plausibility)
------------------------------------
A frame is push-up-like when a shoulder and a wrist are seen (score >= ``min_score``) and

* the hands are below the shoulders (``s >= min_arm_drop``): rejects pull-ups, presses,
  sit-ups, bench press, lying on the back;
* when both wrists are seen they are level (``max_wrist_level``): shoulder taps, renegade rows,
  reach-ups lift a hand;
* when the hips are seen, the shoulder-to-hip line is near horizontal: hips at most
  ``max_hip_drop`` arm lengths below the shoulders (``max_front_hip_drop`` shoulder widths in a
  front view, where the torso is foreshortened) and ``max_hip_rise`` above them: rejects
  standing, walking, squats, lunges, dips, downward dog; allows incline, decline and knee
  push-ups. A view is *front* when the shoulders look wide against the arm
  (``front_width_ratio``), *head-on* when the hips sit straight behind the shoulders
  (``front_hip_offset`` shoulder widths); both are running judgements, not per frame. In front
  and head-on views how high the hips look is mostly perspective (a camera above the body shows
  them above the shoulders at every bottom), so they may rise up to ``max_front_hip_rise``;
* at the counting frame (the top): the arms are extended (``s >= min_top_arm_drop``), the lower
  hand is on the floor right now (within ``max_hand_off_floor`` of its planted height: getting
  up is not a rep), and in side views the hips are not hanging low
  (hip drop <= ``max_top_hip_ratio`` x arm drop: rejects standing with hanging arms, cobra).

Movement checks over the push (valley to count):

* the hands stayed planted: they moved at most ``max_hand_motion`` of the shoulders' rise
  (curls, presses, waving, squats with swinging arms move the hands);
* in side views the hips rose with the shoulders by ``min_hip_follow`` to ``max_hip_follow``
  of their rise, as a plank pivoting on the feet or knees does (cobra and upward dog keep the
  hips down, standing up lifts them more). Hip and shoulder levels are taken on the same
  frames, the nearest frames with hips standing in for those without; hips seen over less
  than a quarter of the push (missed on the whole way up, or below most of it) give no verdict;
* in side views the elbows bent below ``max_bottom_elbow_deg`` somewhere in the cycle.

Missing keypoints and people leaving
------------------------------------
A frame without a usable shoulder and wrist is a gap: gaps shorter than ``max_gap_s`` are
bridged (the filter is fed the last values, posture counts as not ok); a longer gap resets the
filter and the rep state, so a person walking out mid-rep and someone walking in starts fresh
(a rep in progress is lost, never double counted). ``count`` survives gaps; ``reset()`` zeroes
it and forgets the person; ``new_set()`` (the button) zeroes it and keeps what was learnt of the
person, and the first rep after it is one whose descent comes after the press: a push already
under way is not counted, nor whatever rise comes next (getting up). Timestamps may be
irregular: the filter is designed from the measured frame interval and redesigned if the frame
rate drifts by more than 20%; a clock that goes back starts everything but the count over.

Baselines
---------
`SeedCounter` is the seed's algorithm: head height, FIR low-pass (``firwin``), adaptive mean
and standard deviation over the last ``seed_lag`` samples, label 1 when ``s > mu + h*sigma``,
one rep per 0 -> 1 transition of the label. `ElbowAngleCounter` is the common recipe: down
when the elbow angle goes below ``elbow_down_deg``, a rep when it then goes above
``elbow_up_deg``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .keypoints import (
    HEAD,
    LEFT_ELBOW,
    LEFT_HIP,
    LEFT_SHOULDER,
    LEFT_WRIST,
    RIGHT_ELBOW,
    RIGHT_HIP,
    RIGHT_SHOULDER,
    RIGHT_WRIST,
    names,
)

__all__ = [
    "CounterSettings",
    "CounterDebug",
    "RepCounter",
    "SeedCounter",
    "ElbowAngleCounter",
    "TraceResult",
    "count_trace",
    "COUNTERS",
]


@dataclass
class CounterSettings:
    """Tunable counter parameters (the ``[counter]`` table of the config file, by field name).

    Lengths are in arm lengths (upper arm + forearm, tracked over the last ``scale_window_s``)
    unless said otherwise; times in seconds; see the module docstring for what each one does.
    """

    # --- ours (RepCounter) ---
    min_score: float = 0.3          # keypoint score below this = not seen
    cutoff_hz: float = 4.0          # Butterworth low-pass cutoff on the signal
    max_speed: float = 8.0          # before it, the signal moves at most this many arm lengths/s
    filter_order: int = 2
    nominal_fps: float = 30.0       # used until the frame interval is known
    scale_window_s: float = 4.0     # arm length = 90th percentile over this window ...
    max_arm_outlier: float = 2.0    # ... of the arm lengths at most this x their median
    max_arm_bend: float = 2.0       # an arm longer than this x shoulder-to-wrist: elbow misplaced
    arm_per_body_scale: float = 2.3  # arm length / body scale, when no forearm is seen
    min_amplitude: float = 0.25     # smallest top-to-bottom movement that can be a rep
    amplitude_prior: float = 0.45   # expected rep amplitude before any rep was seen
    amplitude_memory: float = 0.5   # weight of the old amplitude when a new rep is seen
    descent_fraction: float = 0.35  # fall from the peak (x amplitude) that confirms a descent
    count_fraction: float = 0.5     # rise from the valley (x amplitude) that arms the count ...
    top_fraction: float = 0.9       # ... which happens at this rise, or as soon as the push
    arrive_velocity_fraction: float = 0.35  # slows below this share of its top speed
    refractory_s: float = 0.2       # no two counts closer than this
    min_rep_s: float = 0.15         # a descent+push shorter than this is jitter
    max_rep_s: float = 12.0         # a cycle longer than this is abandoned
    max_gap_s: float = 0.6          # longer gaps reset the filter and the rep state
    warmup_s: float = 0.2           # the first frames of a track only set the starting level
    min_arm_drop: float = -0.1      # s below this: wrists not below shoulders (posture fails)
    floor_window_s: float = 1.0     # each hand's height is a running median over this
    max_wrist_level: float = 0.6    # both wrists seen and this far apart in height: a hand is up
    front_width_ratio: float = 0.7  # shoulder width / arm length above this: a front-ish view
    front_hip_offset: float = 0.5   # hips this close (shoulder widths) to straight behind the
                                    # shoulders: a head-on view (torso pointing at the camera)
    max_hip_drop: float = 0.7       # hips more than this below the shoulders: upright body
    max_front_hip_drop: float = 0.75  # same, front views, in shoulder widths (torso foreshortened)
    max_hip_rise: float = 0.45      # hips more than this above the shoulders: downward dog etc.
    max_front_hip_rise: float = 0.7   # same, front and head-on views (the rise is perspective)
    min_top_arm_drop: float = 0.35  # at the top: shoulders at least this high above the wrists
    max_top_hip_ratio: float = 0.8  # at the top: hip drop / arm drop at most this (not upright)
    top_grace_s: float = 0.1        # a top refused for its posture may still count this long after
    first_top_factor: float = 1.5   # until a push was measured, announce at this x the top level
    min_hip_follow: float = 0.05    # over a push the hips rise at least this share of the
    max_hip_follow: float = 1.2     # shoulders' rise and at most this (side views)
    max_hand_off_floor: float = 0.25  # at the top: the lower hand this close to its planted height
    max_hand_motion: float = 0.4    # over a push the hands move at most this share of the rise
    max_bottom_elbow_deg: float = 150.0  # side views: the elbows must bend below this in a rep
    min_posture_fraction: float = 0.6  # share of posture-ok frames needed over a rep cycle
    # --- seed baseline (SeedCounter) ---
    seed_lag: int = 60
    seed_h: float = 0.1
    seed_numtaps: int = 15
    seed_cutoff_hz: float = 2.0
    # --- elbow-angle baseline (ElbowAngleCounter) ---
    elbow_down_deg: float = 90.0
    elbow_up_deg: float = 160.0


class CounterDebug(NamedTuple):
    """The counter's view of the last frame, for plots and the OLED debug page."""

    t: float
    signal: float       # filtered signal (NaN while nobody is tracked)
    mean: float         # centre line (RepCounter: between the thresholds; Seed: window mean)
    upper: float        # the level that counts a rep
    lower: float        # the level that confirms a descent
    label: int          # 1 = up phase, 0 = down phase (RepCounter: 1 while seeking the descent)
    posture_ok: bool
    gate_open: bool
    counted: bool


_NAN_DEBUG = CounterDebug(math.nan, math.nan, math.nan, math.nan, math.nan, 0, False, False, False)


# Per-frame helpers work on plain Python lists (``keypoints.tolist()``): for 9 keypoints that is
# several times cheaper than numpy scalar indexing, which matters at 30 fps on a Pi.
def _seen(kp, i: int, min_score: float) -> bool:
    if i >= len(kp):
        return False
    x, y, s = kp[i][0], kp[i][1], kp[i][2]
    return math.isfinite(x) and math.isfinite(y) and math.isfinite(s) and s >= min_score


def _dist(kp, a: int, b: int) -> float:
    return math.hypot(kp[a][0] - kp[b][0], kp[a][1] - kp[b][1])


def _percentile(values: list[float], q: float) -> float:
    """numpy.percentile(values, q) (linear interpolation) for a short list, without numpy."""
    v = sorted(values)
    pos = q / 100.0 * (len(v) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    frac = pos - lo
    d = v[hi] - v[lo]
    return v[hi] - d * (1.0 - frac) if frac >= 0.5 else v[lo] + d * frac


def _elbow_angle(kp, min_score: float) -> float:
    """Elbow angle in degrees (180 = straight), score-weighted over the arms fully seen; NaN if none."""
    total, weight = 0.0, 0.0
    for s_i, e_i, w_i in ((LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST), (RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST)):
        if _seen(kp, s_i, min_score) and _seen(kp, e_i, min_score) and _seen(kp, w_i, min_score):
            ux, uy = kp[s_i][0] - kp[e_i][0], kp[s_i][1] - kp[e_i][1]
            vx, vy = kp[w_i][0] - kp[e_i][0], kp[w_i][1] - kp[e_i][1]
            nu, nv = math.hypot(ux, uy), math.hypot(vx, vy)
            if nu > 0 and nv > 0:
                c = min(1.0, max(-1.0, (ux * vx + uy * vy) / (nu * nv)))
                total += math.degrees(math.acos(c)) * kp[e_i][2]
                weight += kp[e_i][2]
    return total / weight if weight > 0 else math.nan


def _check_keypoints(keypoints: np.ndarray) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim != 2 or kp.shape[1] != 3:
        raise ValueError(f"keypoints must be [K, 3], got {kp.shape}")
    names(kp.shape[0])
    return kp


def butter_lowpass(order: int, wn: float) -> tuple[np.ndarray, np.ndarray]:
    """Digital Butterworth low-pass (b, a), ``wn`` the cutoff as a fraction of Nyquist.

    The same coefficients as ``scipy.signal.butter(order, wn)`` (analog prototype, pre-warped,
    bilinear transform), in numpy alone: importing scipy.signal costs seconds of start-up on a Pi.
    """
    n = int(order)
    if n < 1 or not 0 < wn < 1:
        raise ValueError(f"need order >= 1 and 0 < wn < 1, got {order}, {wn}")
    poles = np.exp(1j * np.pi * (2 * np.arange(1, n + 1) + n - 1) / (2 * n))
    warped = 4.0 * math.tan(math.pi * wn / 2.0)
    p = poles * warped
    pz = (4.0 + p) / (4.0 - p)
    k = warped**n * float(np.real(1.0 / np.prod(4.0 - p)))
    b = k * np.real(np.poly(-np.ones(n)))
    a = np.real(np.poly(pz))
    return b, a


def firwin_lowpass(numtaps: int, cutoff: float) -> np.ndarray:
    """Hamming-windowed sinc low-pass FIR with unit DC gain, ``cutoff`` as a fraction of Nyquist:
    the taps of ``scipy.signal.firwin(numtaps, cutoff)``, in numpy alone."""
    m = np.arange(int(numtaps)) - (int(numtaps) - 1) / 2.0
    h = cutoff * np.sinc(cutoff * m) * np.hamming(int(numtaps))
    return h / h.sum()


class _LiveFilter:
    """An IIR/FIR filter (b, a) run one sample at a time with its state, never re-filtering:
    ``scipy.signal.lfilter(b, a, [x], zi=state)`` per sample (transposed direct form II),
    started in steady state at the first value (``lfilter_zi``), so there is no start-up
    transient."""

    def __init__(self, b: np.ndarray, a: np.ndarray):
        b, a = np.asarray(b, float), np.asarray(a, float)
        n = max(len(a), len(b))
        self.b = (np.pad(b, (0, n - len(b))) / a[0]).tolist()
        self.a = (np.pad(a, (0, n - len(a))) / a[0]).tolist()
        # steady-state state for a unit input (what lfilter_zi gives)
        gain = sum(self.b) / sum(self.a)
        zi0 = [0.0] * (n - 1)
        acc = 0.0
        for i in range(n - 2, -1, -1):
            acc = self.b[i + 1] - self.a[i + 1] * gain + acc
            zi0[i] = acc
        self._zi0 = np.asarray(zi0)
        self.zi: list[float] | None = None
        self.y = math.nan

    def reset(self) -> None:
        self.zi = None

    def start_at(self, x: float) -> None:
        """Steady state at the level ``x`` (as if ``x`` had been the input forever)."""
        self.zi = (self._zi0 * x).tolist()

    def carrying_on(self, old: "_LiveFilter | None") -> "_LiveFilter":
        """This filter, redesigned for a new frame rate, starting where ``old`` had got to."""
        if old is not None and old.zi is not None and np.isfinite(old.y):
            self.start_at(old.y)
        return self

    def __call__(self, x: float) -> float:
        if self.zi is None:  # start in steady state at the first value: no start-up transient
            self.start_at(x)
        b, a, z = self.b, self.a, self.zi
        y = b[0] * x + (z[0] if len(z) else 0.0)
        last = len(z) - 1
        for i in range(last):
            z[i] = b[i + 1] * x - a[i + 1] * y + z[i + 1]
        if last >= 0:
            z[last] = b[last + 1] * x - a[last + 1] * y
        self.y = float(y)
        return self.y


class _FrameClock:
    """Tracks the frame interval from the timestamps (for filter design)."""

    def __init__(self, nominal_fps: float, max_gap_s: float):
        self.nominal_fps = nominal_fps
        self.max_gap_s = max_gap_s
        self.last_t: float | None = None
        self.dts: deque[float] = deque(maxlen=15)

    def reset(self) -> None:
        self.last_t = None
        self.dts.clear()

    def tick(self, t: float) -> float:
        """Returns the time since the previous frame (0 for the first)."""
        dt = 0.0 if self.last_t is None else t - self.last_t
        self.last_t = t
        # every interval the counter bridges is a frame interval (a longer one is a gap, where the
        # counter starts over): a stream at 1.7 to 2 fps must not be filtered as if it were 30 fps
        if 0 < dt <= self.max_gap_s:
            self.dts.append(dt)
        return dt

    def drifted_from(self, design_fps: float) -> bool:
        """A filter designed for ``design_fps`` (NaN: none yet) is due a new design: the frame
        rate measured now differs from it by more than 20%."""
        return not abs(self.fps - design_fps) <= 0.2 * design_fps

    @property
    def fps(self) -> float:
        if not self.dts:
            return self.nominal_fps
        # floor 1 fps: the config allows 2 fps, and a 5 fps floor designed a 2 fps stream's
        # filter for 5 (a cutoff under Nyquist then counted 0 of 8; found by review)
        return float(min(max(1.0 / float(np.median(self.dts)), 1.0), 240.0))


class _CounterBase:
    """Shared bookkeeping: count, last debug record, reset."""

    def __init__(self, settings: CounterSettings | None = None):
        self.settings = settings if settings is not None else CounterSettings()
        self._count = 0
        self.last: CounterDebug = _NAN_DEBUG

    @property
    def count(self) -> int:
        return self._count

    def reset(self) -> None:
        self._count = 0
        self.last = _NAN_DEBUG

    def finish(self, t: float) -> bool:
        """The source ended at ``t``: True if a rep judged before the end is counted now."""
        return False

    def new_set(self) -> None:
        """The button: the count starts again at 0."""
        self.reset()


# ----------------------------------------------------------------------------------------------
# Ours
# ----------------------------------------------------------------------------------------------
class _Features(NamedTuple):
    s: float          # shoulders above the lower wrist, in frame heights
    hh: float         # hips above the lower wrist, in frame heights (NaN: hips not seen)
    scale: float      # arm length, in frame heights
    elbow: float      # elbow angle, degrees (NaN: no arm fully seen)
    wy: float         # height of the lower wrist in the frame (y, frame heights)
    front: bool       # front-ish view (shoulder width large against the upper arm)
    posture: bool     # push-up-like frame
    top_ok: bool      # push-up-like top position (arms extended, body held up on them)


class RepCounter(_CounterBase):
    """Our counter: shoulder height above the hands in arm lengths, posture-gated,
    amplitude-adaptive hysteresis; see the module docstring for the rule."""

    def __init__(self, settings: CounterSettings | None = None):
        super().__init__(settings)
        self._clock = _FrameClock(self.settings.nominal_fps, self.settings.max_gap_s)
        self._ba: tuple[np.ndarray, np.ndarray] | None = None
        self._ba_fps = 0.0
        self._fs: _LiveFilter | None = None     # filter state of the signal
        self._fh: _LiveFilter | None = None     # filter state of the hip height
        self._fw: _LiveFilter | None = None     # filter state of the hand height
        self._scales: deque[tuple[float, float]] = deque()
        self._arms: deque[tuple[float, float]] = deque()
        self._widths: deque[tuple[float, float]] = deque()
        self._hip_offsets: deque[tuple[float, float]] = deque()
        self._wrist_l: deque[tuple[float, float]] = deque()
        self._wrist_r: deque[tuple[float, float]] = deque()
        self.rejected: deque[tuple[float, str]] = deque(maxlen=50)  # (t, why) pushes not counted
        self._reset_tracking()

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self._clock.reset()
        self._ba, self._fs, self._fh, self._fw = None, None, None, None
        self._scales.clear()
        self._arms.clear()
        self._widths.clear()
        self._hip_offsets.clear()
        self._wrist_l.clear()
        self._wrist_r.clear()
        self.rejected.clear()
        self._reset_tracking()

    def new_set(self) -> None:
        """The button: the count starts again at 0 (see the module docstring). A push under
        way is dropped by waiting for a descent from here, as after a counted rep; a descent
        under way goes on to its push, which counts. The filters, scale and amplitude learnt
        from this person stay."""
        self._count = 0
        self.last = self.last._replace(counted=False)
        pushing = self._count_pending or (not self._seeking_descent and self._velocity > 0)
        if self._tracking and pushing and np.isfinite(self._prev_x):
            self._count_pending = False
            self._seeking_descent = True
            self._peak = self._prev_x
            self._push_valley = math.nan  # no amplitude to learn from the push cut in two

    def _reset_tracking(self) -> None:
        """Forget the rep in progress (after a long gap or at start); the count stays."""
        self._tracking = False
        self._track_start_t = -math.inf
        self._last_seen_t = -math.inf
        self._prev_x, self._prev_t, self._vmax = math.nan, -math.inf, 0.0
        self._velocity = 0.0  # of the filtered signal at the last frame
        self._raw_s, self._raw_t = math.nan, -math.inf
        self._last_feats: _Features | None = None
        self._last_hh = math.nan
        self._seeking_descent = False   # False: at/near the bottom, waiting for the push
        self._peak = -math.inf
        self._valley = math.inf
        self._valley_hh, self._valley_hh_x = math.nan, math.nan
        self._hips_seen = (math.nan, math.nan)
        self._valley_wy = math.nan
        self._bounce = -math.inf
        self._push_valley = math.nan
        self._cycle_start_t = math.nan
        self._cycle_frames = 0
        self._cycle_ok = 0
        self._cycle_elbow = math.inf
        self._top_wait_t = math.nan
        self._count_pending = False
        self._last_count_t = -math.inf
        self._amp = self.settings.amplitude_prior
        self._amp_learned = False
        if self._fs is not None:
            for flt in (self._fs, self._fh, self._fw):
                flt.reset()

    def _new_cycle(self, t: float, s: float, hh: float, wy: float, posture: bool) -> None:
        self._valley = self._bounce = s
        # the hips' level and the signal on one frame: this one, else the newest frame with hips
        self._valley_hh, self._valley_hh_x = (hh, s) if np.isfinite(hh) else self._hips_seen
        self._valley_wy = wy
        self._vmax = 0.0
        self._cycle_start_t = t
        self._cycle_frames, self._cycle_ok = 1, int(posture)
        self._cycle_elbow = math.inf
        self._top_wait_t = math.nan

    def _learn_amplitude(self, amp: float) -> None:
        st = self.settings
        if np.isfinite(amp) and amp >= st.min_amplitude:
            self._amp = st.amplitude_memory * self._amp + (1 - st.amplitude_memory) * amp
            self._amp_learned = True

    # -- features --------------------------------------------------------------------------
    def _features(self, t: float, kp: list) -> _Features | None:
        """Features of one frame (``kp`` as nested lists), or None when not measurable."""
        st = self.settings
        ms = st.min_score
        sh = [i for i in (LEFT_SHOULDER, RIGHT_SHOULDER) if _seen(kp, i, ms)]
        wr = [i for i in (LEFT_WRIST, RIGHT_WRIST) if _seen(kp, i, ms)]
        if not sh or not wr:
            return None
        # scale: arm length (upper arm + forearm, the longer side), a high percentile over the
        # last scale_window_s (the arm is foreshortened at the bottom of a front-view rep);
        # falls back on the body scale (shoulder width / upper arm) when no forearm is seen
        arm, upper, width = 0.0, 0.0, 0.0
        for s_i, e_i, w_i in ((LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST), (RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST)):
            if s_i in sh and _seen(kp, e_i, ms):
                upper = max(upper, _dist(kp, s_i, e_i))
                if w_i in wr:
                    bones = _dist(kp, s_i, e_i) + _dist(kp, e_i, w_i)
                    if bones <= st.max_arm_bend * _dist(kp, s_i, w_i):
                        arm = max(arm, bones)
        if len(sh) == 2:
            width = _dist(kp, LEFT_SHOULDER, RIGHT_SHOULDER)
        if arm > 0:
            self._arms.append((t, arm))
        if max(upper, width) > 0:
            self._scales.append((t, max(upper, width)))
        hp = [i for i in (LEFT_HIP, RIGHT_HIP) if _seen(kp, i, ms)]
        if width > 0:
            self._widths.append((t, width))
            if hp:
                hip_x = sum(kp[i][0] for i in hp) / len(hp)
                self._hip_offsets.append((t, abs(hip_x - 0.5 * (kp[LEFT_SHOULDER][0] + kp[RIGHT_SHOULDER][0])) / width))
        for q in (self._arms, self._scales, self._widths, self._hip_offsets):
            while q and q[0][0] < t - st.scale_window_s:
                q.popleft()
        if self._arms:
            # an elbow found on the wrong limb for a few frames (a knee, the other arm) makes
            # an absurd arm; left in, it would set the 90th percentile and flatten the signal
            arms = [c for _, c in self._arms]
            limit = st.max_arm_outlier * _percentile(arms, 50)
            scale = _percentile([c for c in arms if c <= limit], 90)
        elif self._scales:
            scale = st.arm_per_body_scale * _percentile([c for _, c in self._scales], 50)
        else:
            return None
        if not scale > 1e-4:
            return None
        # front-ish view: the shoulders look wide against the arm (a clip-level, not a
        # per-frame, judgement: the upper arm foreshortens at the bottom of every front rep)
        width = _percentile([c for _, c in self._widths], 50) if self._widths else 0.0
        front = width >= st.front_width_ratio * scale
        # head-on: the hips straight behind the shoulders; how high they then look is perspective
        # (a camera above the body shows them above the shoulders at every bottom)
        head_on = bool(self._hip_offsets) and _percentile([c for _, c in self._hip_offsets], 50) <= st.front_hip_offset
        max_rise = (st.max_front_hip_rise if front or head_on else st.max_hip_rise) * scale
        sh_y = sum(kp[i][1] for i in sh) / len(sh)
        # the floor: the lower hand, each hand's height a running median over floor_window_s
        # (hands stay planted; a wrist mis-detected for a few frames at the bottom of a rep,
        # hidden behind the chest, must not move the floor)
        for i, q in ((LEFT_WRIST, self._wrist_l), (RIGHT_WRIST, self._wrist_r)):
            if i in wr:
                q.append((t, kp[i][1]))
            while q and q[0][0] < t - st.floor_window_s:
                q.popleft()
        wr_y = max(_percentile([y for _, y in q], 50) for q in (self._wrist_l, self._wrist_r) if q)
        wr_now = max(kp[i][1] for i in wr)
        s = (wr_y - sh_y) / scale
        posture = s >= st.min_arm_drop
        if len(wr) == 2 and abs(kp[LEFT_WRIST][1] - kp[RIGHT_WRIST][1]) > st.max_wrist_level * scale:
            posture = False          # one hand off the floor: shoulder taps, rows, reach-ups
        # at the top the hands are on the floor right now (not lifting off to stand up)
        top_ok = s >= st.min_top_arm_drop and abs(wr_now - wr_y) <= st.max_hand_off_floor * scale
        hh = math.nan
        if hp:
            hip_y = sum(kp[i][1] for i in hp) / len(hp)
            hh = (wr_y - hip_y) / scale
            drop = hip_y - sh_y
            if front:   # torso foreshortened: measure it against the shoulder width
                posture = posture and -max_rise <= drop <= st.max_front_hip_drop * width
                top_ok = top_ok and drop <= st.max_front_hip_drop * width
            else:
                posture = posture and -max_rise <= drop <= st.max_hip_drop * scale
                top_ok = top_ok and drop <= st.max_top_hip_ratio * (wr_y - sh_y)
        return _Features(s * scale, hh * scale, scale, _elbow_angle(kp, ms), wr_y, bool(front), bool(posture),
                         bool(top_ok and posture))

    def _slew_limit(self, t: float, s: float, scale: float) -> float:
        """Limit how fast the raw signal may move (``max_speed``): a shoulder or wrist found on the
        background for a frame would otherwise pass the low-pass as a push-sized bump, while no
        real push moves the shoulders faster. A frame with the same timestamp as the one before
        may not move it at all (a repeated timestamp must not lift the cap)."""
        if np.isfinite(self._raw_s) and t >= self._raw_t:
            step = self.settings.max_speed * scale * (t - self._raw_t)
            s = min(max(s, self._raw_s - step), self._raw_s + step)
        self._raw_s, self._raw_t = s, t
        return s

    def _filter3(self, s: float, hh: float, wy: float) -> tuple[float, float, float]:
        """Low-pass the signal, the hip height and the hand height, one sample each."""
        if self._ba is None or self._clock.drifted_from(self._ba_fps):
            fps = self._clock.fps
            wn = min(self.settings.cutoff_hz / (fps / 2.0), 0.95)
            self._ba, self._ba_fps = butter_lowpass(self.settings.filter_order, wn), fps
            self._fs, self._fh, self._fw = (_LiveFilter(*self._ba).carrying_on(old) for old in (self._fs, self._fh, self._fw))
        if np.isfinite(hh):
            self._last_hh = hh
        h = self._fh(self._last_hh) if np.isfinite(self._last_hh) else math.nan
        # The filter runs on through frames without hips (held), but such a frame has no hip
        # level of its own (_plank_motion_ok pairs hip and shoulder levels of the same frames).
        return self._fs(s), (h if np.isfinite(hh) else math.nan), self._fw(wy)

    # -- per frame ---------------------------------------------------------------------------
    def update(self, t: float, keypoints: np.ndarray, gate_open: bool = True) -> bool:
        kp = _check_keypoints(keypoints)
        st = self.settings
        t = float(t)
        if self._clock.last_t is not None and t < self._clock.last_t:
            # the clock went back (a source whose timestamps restart): everything kept by time
            # (filters, windows, the refractory time) starts over, as for a new source; the count stays
            judged = self.finish(self._clock.last_t)
            count = self._count
            self.reset()
            self._count = count
            if judged:
                return self._counted_on_the_way_out(t, gate_open)
        self._clock.tick(t)
        f = self._features(t, kp.tolist())
        if self._tracking and t - self._last_seen_t > st.max_gap_s:
            gone_mid_push = self.finish(t)    # a counted push still rising when the person went
            self._reset_tracking()            # nobody (usable) for too long: start over
            if gone_mid_push:
                return self._counted_on_the_way_out(t, gate_open)
        if f is None:
            if not self._tracking or self._last_feats is None:
                self.last = CounterDebug(t, math.nan, math.nan, math.nan, math.nan, 0, False, bool(gate_open), False)
                return False
            lf = self._last_feats              # bridge a short gap with the last values
            f = _Features(lf.s, lf.hh, lf.scale, math.nan, lf.wy, lf.front, False, False)
        else:
            self._last_seen_t = t
            self._last_feats = f
        # The filter and the levels (peak, valley) work in frame units; thresholds are in arm
        # lengths, converted with the current scale. So a scale still settling (a clip that
        # starts at the bottom, where the arm looks short) does not distort the levels.
        f = f._replace(s=self._slew_limit(t, f.s, f.scale))
        if not self._tracking:
            self._tracking = True
            self._track_start_t = t
            self._seeking_descent = False
            if self._fs is not None:
                for flt in (self._fs, self._fh, self._fw):
                    flt.reset()
            x, hh, wy = self._filter3(f.s, f.hh, f.wy)
            self._hips_seen = (math.nan, math.nan)
            self._new_cycle(t, x, hh, wy, f.posture)
        else:
            x, hh, wy = self._filter3(f.s, f.hh, f.wy)
        if np.isfinite(hh):
            self._hips_seen = (hh, x)  # the newest frame with hips: its hip level and signal, one frame
        scale = f.scale

        self._cycle_frames += 1
        self._cycle_ok += int(f.posture)
        if np.isfinite(f.elbow):
            self._cycle_elbow = min(self._cycle_elbow, f.elbow)
        amp = max(self._amp, st.min_amplitude)
        fall_needed = max(st.min_amplitude, st.descent_fraction * amp) * scale
        rise_needed = max(st.min_amplitude, st.count_fraction * amp) * scale
        top_needed = max(st.min_amplitude, st.top_fraction * amp) * scale
        # a push is judged when it reaches the top level; the count is announced there too, except
        # while the amplitude is only the prior: a deeper first push is announced on arrival
        announce_needed = top_needed * (1.0 if self._amp_learned else st.first_top_factor)
        if t > self._prev_t and np.isfinite(self._prev_x):
            v = (x - self._prev_x) / (t - self._prev_t)
            self._prev_x, self._prev_t, self._velocity = x, t, v
        elif np.isfinite(self._prev_x):
            # A repeated timestamp is no stop (with v = 0 a push was announced at half its rise),
            # and the next frame's speed is measured from the last frame with a time of its own.
            v = self._velocity
        else:
            v = 0.0
            self._prev_x, self._prev_t, self._velocity = x, t, v
        slowed = v <= st.arrive_velocity_fraction * self._vmax
        counted = False
        if self._count_pending:
            self._vmax = max(self._vmax, v)
            if x >= self._valley + announce_needed or slowed:
                counted = self._end_push(t, x, "")
        elif self._seeking_descent:
            self._peak = max(self._peak, x)
            if x < self._peak - fall_needed:
                # descent confirmed: learn the amplitude of the push just finished; a new
                # cycle starts here
                self._learn_amplitude((self._peak - self._push_valley) / scale)
                self._seeking_descent = False
                self._new_cycle(t, x, hh, wy, f.posture)
        else:
            if x < self._valley or t - self._track_start_t < st.warmup_s:
                # (the first frames of a track are often off while the pose settles)
                self._valley = self._bounce = x
                if np.isfinite(hh):  # else the nearest frame with hips before it stands in
                    self._valley_hh, self._valley_hh_x = hh, x
                self._valley_wy = wy
                self._vmax = 0.0
            self._bounce = max(self._bounce, x)
            self._vmax = max(self._vmax, v)
            if self._bounce - self._valley >= st.min_amplitude * scale and x < self._bounce - fall_needed:
                # a push that fell short of the count level and went down again: not a rep,
                # but it tells the amplitude of this person's reps
                self._learn_amplitude((self._bounce - self._valley) / scale)
                self._new_cycle(t, x, hh, wy, f.posture)
            elif t - self._cycle_start_t > st.max_rep_s:
                self._new_cycle(t, x, hh, wy, f.posture)      # too long down there: start over
            elif x >= self._valley + rise_needed and (x >= self._valley + top_needed or slowed):
                # armed (risen by count_fraction of a rep) and arriving at the top (risen by
                # top_fraction, or the push has slowed down to a fraction of its top speed)
                why = (
                    "top posture" if not f.top_ok
                    else "gate closed" if not gate_open
                    else "too short" if t - self._cycle_start_t < st.min_rep_s
                    else "refractory" if t - self._last_count_t < st.refractory_s
                    else "posture" if self._cycle_ok < st.min_posture_fraction * self._cycle_frames
                    else "hip motion" if not self._plank_motion_ok(x, hh, f.front)
                    else "hands moved" if abs(wy - self._valley_wy) > st.max_hand_motion * (x - self._valley)
                    else "elbows straight" if (not f.front and np.isfinite(self._cycle_elbow)
                                               and self._cycle_elbow > st.max_bottom_elbow_deg)
                    else ""
                )
                if why == "top posture" and math.isnan(self._top_wait_t):
                    self._top_wait_t = t
                if why == "top posture" and t - self._top_wait_t < st.top_grace_s:
                    pass  # a wrist or hip misplaced for a frame or two at the top: look again
                elif why or x >= self._valley + announce_needed or slowed:
                    counted = self._end_push(t, x, why)
                else:
                    self._count_pending = True  # counted; announced when the push arrives

        if self._seeking_descent:
            lower = self._peak - fall_needed
            upper = lower + rise_needed
            label = 1
        else:
            upper = self._valley + rise_needed
            lower = min(upper, self._bounce - fall_needed) if self._bounce > self._valley else self._valley
            label = 0
        self.last = CounterDebug(t, x / scale, 0.5 * (upper + lower) / scale, upper / scale, lower / scale, label,
                                 f.posture, bool(gate_open), counted)
        return counted

    def finish(self, t: float) -> bool:
        if not self._count_pending:
            return False
        return self._end_push(t, self._prev_x, "")  # judged and counted, not yet announced

    def _counted_on_the_way_out(self, t: float, gate_open: bool) -> bool:
        """A push judged before the track was dropped (a gap, the clock going back) is counted
        on this frame, which has no signal of its own."""
        self.last = CounterDebug(t, math.nan, math.nan, math.nan, math.nan, 0, False, bool(gate_open), True)
        return True

    def _end_push(self, t: float, x: float, why: str) -> bool:
        """Count the push (``why`` empty) or log why not; either way look for the next descent."""
        self._count_pending = False
        if why:
            self.rejected.append((t, why))
        else:
            self._count += 1
            self._last_count_t = t
        self._seeking_descent = True
        self._peak = x
        self._push_valley = self._valley
        return not why

    def _plank_motion_ok(self, x: float, hh: float, front: bool) -> bool:
        """The body rose as a plank pivoting on the feet (or knees): over the push the hips rose
        by a part of what the shoulders rose -- not with them (the hands moved: curls, presses,
        standing up) and not at all (hips on the floor: cobra, upward dog). Front views are
        exempt: there the hips are hidden behind the torso and their height is unreliable."""
        st = self.settings
        rise = x - self._valley
        if not front and rise <= 0:
            return False
        # Hip and shoulder levels of the same frames: with the hips missed at the bottom or at
        # the top, the nearest frames with hips stand in (a level held from the top before
        # refused real reps; none at all let a cobra count: both found by review). Hips seen
        # over under a quarter of the push give no verdict.
        top_hh, top_x = (hh, x) if np.isfinite(hh) else self._hips_seen
        if front or not (np.isfinite(top_hh) and np.isfinite(self._valley_hh)):
            return True
        seen_rise = top_x - self._valley_hh_x
        if seen_rise < 0.25 * rise:
            return True
        slope = (top_hh - self._valley_hh) / seen_rise
        return st.min_hip_follow <= slope <= st.max_hip_follow


# ----------------------------------------------------------------------------------------------
# Baselines
# ----------------------------------------------------------------------------------------------
class SeedCounter(_CounterBase):
    """The seed's algorithm: head height, FIR low-pass, sliding z-score, count 0->1 labels."""

    def __init__(self, settings: CounterSettings | None = None):
        super().__init__(settings)
        self._clock = _FrameClock(self.settings.nominal_fps, self.settings.max_gap_s)
        self._filter: _LiveFilter | None = None
        self._filter_fps = math.nan
        self._window: deque[float] = deque(maxlen=max(2, int(self.settings.seed_lag)))
        self._label = 0
        self._last_raw = math.nan

    def reset(self) -> None:
        super().reset()
        self._clock.reset()
        self._filter, self._filter_fps = None, math.nan
        self._window.clear()
        self._label = 0
        self._last_raw = math.nan

    def update(self, t: float, keypoints: np.ndarray, gate_open: bool = True) -> bool:
        kp = _check_keypoints(keypoints)
        st = self.settings
        self._clock.tick(float(t))
        rows = kp.tolist()
        if _seen(rows, HEAD, st.min_score):
            self._last_raw = 1.0 - rows[HEAD][1]  # head height, up = larger
        if not np.isfinite(self._last_raw):
            self.last = CounterDebug(float(t), math.nan, math.nan, math.nan, math.nan, 0, False, bool(gate_open), False)
            return False
        if self._filter is None or self._clock.drifted_from(self._filter_fps):
            # designed for the frame rate measured so far, and again when it turns out otherwise
            # (designed once at the first frame, it assumed nominal_fps on every clip)
            fps = self._clock.fps
            taps = firwin_lowpass(int(st.seed_numtaps), min(st.seed_cutoff_hz / (fps / 2.0), 0.95))
            self._filter, self._filter_fps = _LiveFilter(taps, np.array([1.0])).carrying_on(self._filter), fps
        s = self._filter(self._last_raw)
        counted = False
        if len(self._window) >= self._window.maxlen:  # a full window of the last n samples
            mu = float(np.mean(self._window))
            sd = float(np.std(self._window))
            upper = mu + st.seed_h * sd
            label = 1 if s > upper else 0
            if label == 1 and self._label == 0 and gate_open:
                self._count += 1
                counted = True
            self._label = label
        else:
            mu = upper = math.nan
        self._window.append(s)
        self.last = CounterDebug(float(t), s, mu, upper, mu, self._label, True, bool(gate_open), counted)
        return counted


class ElbowAngleCounter(_CounterBase):
    """The common recipe: down below ``elbow_down_deg``, a rep when back above ``elbow_up_deg``."""

    def __init__(self, settings: CounterSettings | None = None):
        super().__init__(settings)
        self._down = False

    def reset(self) -> None:
        super().reset()
        self._down = False

    def _angle(self, kp: np.ndarray) -> float:
        return _elbow_angle(kp.tolist(), self.settings.min_score)

    def update(self, t: float, keypoints: np.ndarray, gate_open: bool = True) -> bool:
        kp = _check_keypoints(keypoints)
        st = self.settings
        a = self._angle(kp)
        counted = False
        if np.isfinite(a):
            if a < st.elbow_down_deg:
                self._down = True
            elif a > st.elbow_up_deg and self._down:
                self._down = False
                if gate_open:
                    self._count += 1
                    counted = True
        mid = 0.5 * (st.elbow_down_deg + st.elbow_up_deg)
        self.last = CounterDebug(float(t), a, mid, st.elbow_up_deg, st.elbow_down_deg, 0 if self._down else 1,
                                 bool(np.isfinite(a)), bool(gate_open), counted)
        return counted


COUNTERS = {"ours": RepCounter, "seed": SeedCounter, "elbow": ElbowAngleCounter}


# ----------------------------------------------------------------------------------------------
# Offline helper
# ----------------------------------------------------------------------------------------------
@dataclass
class TraceResult:
    """A whole trace run through a counter, frame by frame (exactly as live)."""

    reps: int
    rep_times_s: list[float]
    rep_frames: list[int] = field(default_factory=list)
    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    signal: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    label: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    posture_ok: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    rejected: list[tuple[float, str]] = field(default_factory=list)  # pushes not counted: (t, why)

    def to_json(self) -> dict:
        return {"reps": int(self.reps), "rep_times_s": [round(float(x), 3) for x in self.rep_times_s]}


def count_trace(
    keypoints: np.ndarray,
    fps: float,
    settings: CounterSettings | None = None,
    counter_cls=RepCounter,
    gate: np.ndarray | None = None,
    times_s: np.ndarray | None = None,
) -> TraceResult:
    """Run a keypoint trace [T, K, 3] through a fresh counter at ``fps`` frames per second, or
    on each frame's own time ``times_s`` ([T] seconds, what `count --keypoints` saves): a clip
    with a variable frame rate or gaps then replays on the clock it was counted on.

    ``gate`` (optional, [T] bool) is the recognition gate per frame; without it the gate is
    open and the counter's own posture logic does all the rejecting.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise ValueError(f"keypoints must be [T, K, 3], got {kp.shape}")
    names(kp.shape[1])
    if times_s is None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = kp.shape[0]
    clock = np.arange(n) / float(fps) if times_s is None else np.asarray(times_s, np.float64)
    if clock.shape != (n,):
        raise ValueError(f"times_s must be one time per frame ({n}), got shape {clock.shape}")
    counter = counter_cls(settings)
    cols = {k: np.full(n, np.nan) for k in ("t", "signal", "mean", "upper", "lower")}
    label = np.zeros(n, dtype=np.int8)
    posture = np.zeros(n, dtype=bool)
    times, frames, rejected = [], [], []
    for i in range(n):
        t = float(clock[i])
        g = True if gate is None else bool(gate[i])
        if counter.update(t, kp[i], g):
            times.append(t)
            frames.append(i)
        d = counter.last
        cols["t"][i] = t
        cols["signal"][i], cols["mean"][i], cols["upper"][i], cols["lower"][i] = d.signal, d.mean, d.upper, d.lower
        label[i], posture[i] = d.label, d.posture_ok
        rej = getattr(counter, "rejected", None)
        if rej and (not rejected or rej[-1] != rejected[-1]) and rej[-1][0] == t:
            rejected.append(rej[-1])
    if n and counter.finish(float(clock[-1])):
        times.append(float(clock[-1]))
        frames.append(n - 1)
    return TraceResult(counter.count, times, frames, cols["t"], cols["signal"], cols["mean"], cols["upper"],
                       cols["lower"], label, posture, rejected)
