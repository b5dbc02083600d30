"""frame -> keypoints -> recognition (on the keypoint history) -> gate -> counter: one step per frame, pure, no I/O.

The same object runs in the daemon, in `pushup-counter count` and in the tests; only what
feeds it frames and what shows its results differ.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from appliance.counter import RepCounter
from appliance.frames import Frame, check_frame
from appliance.gate import Gate
from appliance.geometry import person_crop

@dataclass
class FrameResult:
    t: float
    keypoints: np.ndarray  # [K, 3] frame-normalised x, y, score
    pushup_prob: float  # latest recogniser output (held between its runs)
    gate_open: bool
    rep_counted: bool
    count: int
    timings_ms: dict = field(default_factory=dict)


class Pipeline:
    def __init__(self, keypoint_model, recognition_model, gate: Gate, counter: RepCounter, recognition_every: int = 1,
                 track_person: bool = False):
        self.keypoint_model = keypoint_model
        self.recognition_model = recognition_model
        self.gate = gate
        self.counter = counter
        self.recognition_every = max(1, recognition_every)
        # look for the person around where the last frame found them (geometry.person_crop)
        self.track_person = track_person
        self._region = None
        self._frames_seen = 0
        self._last_prob = float("nan")

    def reset_count(self) -> None:
        """The button: start a new set (the gate's and the counter's view of the person is kept)."""
        self.counter.new_set()

    def finish(self, t: float) -> bool:
        """The source ended at ``t``: True if a rep judged before the end is counted now."""
        return self.counter.finish(t)

    def process(self, frame: Frame) -> FrameResult:
        check_frame(frame)
        timings = {}
        t0 = time.perf_counter()
        width, height = frame.size
        region = self._region if self._region is not None and (self._region.frame_w, self._region.frame_h) == (width, height) else None
        pixels, box = self.keypoint_model.model_input(frame, region)
        t1 = time.perf_counter()
        keypoints = self.keypoint_model.predict_pixels(pixels, box)
        if self.track_person:
            model = self.keypoint_model
            self._region = person_crop(keypoints, width, height, model.input_w, model.input_h)
        t2 = time.perf_counter()
        if self.recognition_model.observe(frame.t, keypoints):
            # a new history after a stall: its first outputs come from an almost empty window,
            # which must not open the gate by itself (Gate), so the gate starts over as well
            self.gate.reset()
        probability = None
        if self._frames_seen % self.recognition_every == 0:
            probability = self.recognition_model.predict(width / height)
            self._last_prob = probability
        t3 = time.perf_counter()
        gate_open = self.gate.update(frame.t, probability)
        counted = self.counter.update(frame.t, keypoints, gate_open)
        t4 = time.perf_counter()
        self._frames_seen += 1
        timings["preprocess"] = (t1 - t0) * 1e3
        timings["keypoints"] = (t2 - t1) * 1e3
        if probability is not None:
            timings["recognition"] = (t3 - t2) * 1e3
        timings["counter"] = (t4 - t3) * 1e3
        return FrameResult(frame.t, keypoints, self._last_prob, gate_open, counted, self.counter.count, timings)
