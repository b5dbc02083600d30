"""The daemon: wires config, models, camera, pipeline, state and outputs, and runs the loop.

Order of a rep: counted by the pipeline -> written durably -> beep, OLED, STATUS=reps=N.
So a rep anyone has seen or heard survives a power cut.
"""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.counter import RepCounter
from appliance.config import MIN_FPS, Config
from appliance.display import Display, GifRecorder, Screen, open_emulator, open_oled, render
from appliance.errors import (ApplianceError, OutputError, SourceError, SourceNotInstalled, StateError, check_writable_dir,
                              first_line)
from appliance.frames import FrameError, brightness
from appliance.gate import Gate
from appliance.hardware import RESET, SHUTDOWN, Beeper, ResetButton
from appliance.models import KeypointModel, RecognitionModel
from appliance.pipeline import Pipeline
from appliance.sources import FrameSource, make_source
from appliance.state import StateStore
from appliance.systemd import Notifier

log = logging.getLogger(__name__)

NO_PERSON_SCORE = 0.3  # mean keypoint score under which nobody is in view
TOO_DARK = 20.0  # mean pixel (0-255) under which the picture is too dark to count in: the rendered
# sample and a real clip, darkened (tools.dark_check), counted 9-10 of 10 at a mean of 29, 3-9 at 14
LIGHT_AGAIN = 24.0  # ... and over which it is light enough again (no flicker around one threshold)
BRIGHTNESS_TIME_S = 1.0  # brightness is averaged over about this long, so one dark frame is not "too dark"
SCENES = ("counting", "ready", "no person", "too dark")  # what the camera sees; the activity rules are _note_scene's
PRESENCE_S = 1.0  # someone in view this long, after nobody, keeps the OLED lit (not a flicker)
SLOW_FPS_WARN_S = 10.0  # frames slower than MIN_FPS for this long: warn (once; not the slow first frames)
SHUTDOWN_TIMEOUT_S = 5.0  # the power-off command's answer; well inside the unit's WatchdogSec=10s
PRESS_LIT_S = 2.0  # a press held past long_press_s keeps the OLED lit this much longer, a stuck button not for ever
STATUS_EVERY_S = 5.0  # STATUS= for a new frame rate alone at most this often: a new state or count goes at once
ACTIVITY_FILE = "last-activity"  # in systemd's RuntimeDirectory=: the OLED's sleep timer across a restart


def activity_file() -> Path | None:
    """Where the time of the last activity outlives this daemon: the unit's RuntimeDirectory=
    (/run/pushup-counter, which RuntimeDirectoryPreserve=restart keeps across the unit's
    restarts and systemd empties at a stop and at boot); None outside systemd."""
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime) / ACTIVITY_FILE if runtime else None


class Terminate(BaseException):
    """Raised by the SIGTERM handler to break out of a blocking camera read.

    A BaseException, so that a source's own `except Exception` (PiCameraSource wraps every
    libcamera error) cannot turn a stop request into a camera fault and a retry.
    """


def load_pipeline(config) -> Pipeline:
    models = config.models
    keypoint_model = KeypointModel(Path(models.dir) / models.keypoints, models.num_threads, models.flip_average)
    recognition_model = RecognitionModel(Path(models.dir) / models.recognizer, models.num_threads)
    gate = Gate(config.gate.open_threshold, config.gate.close_threshold, config.gate.time_constant_s)
    return Pipeline(keypoint_model, recognition_model, gate, RepCounter(config.counter), models.recognition_every,
                    models.track_person)


@dataclass
class RunOptions:
    source: str = "camera"
    display: str | None = None  # overrides [display].kind
    state_dir: str | None = None  # overrides [state].dir
    realtime: bool = False
    record_dir: str | None = None  # desktop: write oled.gif and preview.mp4 here


def show_config_error(options: RunOptions) -> None:
    """The config file cannot be used, so the daemon exits (2) and systemd gives up after a few
    restarts: leave "config error" over the saved count on the OLED, lit after the exit, so
    the box says why it does nothing. The display is the default one (the file's own [display]
    is what could not be read); no display or no readable count: nothing shown, the one-line
    error still goes to the journal."""
    defaults = Config()
    kind = options.display or defaults.display.kind
    opener = {"oled": open_oled, "emulator": open_emulator}.get(kind)
    if opener is None:
        return
    try:
        reps = StateStore(options.state_dir or defaults.state.dir).load().reps
        device = opener(defaults.display)
        render(Screen(reps, "config error"), device)
        device.persist = True  # luma's cleanup then leaves the picture on
        device.cleanup()
    except Exception as exc:
        log.debug("cannot show the config error on the display: %s", exc)


class App:
    """The daemon. `source` and `pipeline` are seams for tests and tools/soak.py: the CLI
    passes neither, and then they are built from the config and options as before. `clock`
    and `sleep` drive every wait (camera backoff, retries), so tests can use a fake clock.
    """

    def __init__(self, config, options: RunOptions, clock=time.monotonic, *, source: FrameSource | None = None,
                 pipeline: Pipeline | None = None, sleep=time.sleep):
        if options.record_dir:  # before anything is opened: a bad path is one line, and nothing to undo
            check_writable_dir(options.record_dir, "the recording")
        self.config = config
        self.options = options
        self.clock = clock
        self._sleep = sleep
        self._source = source
        self._pipeline = pipeline
        self.notifier = Notifier(clock)
        self.store = StateStore(options.state_dir or config.state.dir)
        self.state = self.store.load()
        self.store.probe()  # a data partition that cannot be written shows from the first screen
        self._seen = self.store.identity()  # the state file as this daemon last read or wrote it
        self._written_reps = self.state.reps  # the count on disk; reps beyond it are only in memory
        self.display = self._make_display()
        self.beeper = Beeper(config.buzzer, clock=clock, sleep=sleep)
        self.button = ResetButton(config.button)
        self.preview = None
        self._stop = False
        self._sigterms = 0  # SIGTERMs received: one while the power-off command runs is the power-off itself
        self._powering_off = False  # a long press was taken: its screen is the last one
        self._keep_screen = False  # leave the last screen lit after the exit ("shutdown failed")
        self._in_blocking_read = False
        self._fps = None
        self._frame_dt: float | None = None  # the mean time between frames; _fps is its inverse
        self._last_frame_t = None
        self._slow_since: float | None = None  # frame time since which the frame rate is under MIN_FPS
        self._slow_warned = False
        self._brightness: float | None = None  # averaged over BRIGHTNESS_TIME_S since _brightness_since
        self._brightness_since = 0.0
        self._too_dark = False
        self._status = "starting"
        self._status_since = clock()
        self._scene: str | None = None  # what the camera sees (SCENES), whatever the status line says
        self._scene_since = clock()
        self._presence_noted = False
        self._last_activity = clock()  # a rep, a press, someone coming into view: keeps the OLED lit
        self._quiet_status: str | None = None  # the status the daemon before this one stopped on
        self._exiting_for_camera = False  # the exit for a fresh start: the only one that hands on the OLED's timer
        self._activity_file = activity_file()
        carried = self._carried_activity()
        if carried is not None:  # a restart (the exit for a fresh start without a camera) is not
            # something happening, nor the same error again: the OLED sleeps on schedule
            self._last_activity = self._status_since = carried[0]
            self._quiet_status = carried[1]
        self._press_started_dark: bool | None = None  # the OLED at the start of the press in progress
        self._down_since: float | None = None  # since when the loop has seen the button down
        self._ready_sent = False
        self._announced: tuple | None = None  # (status, reps, total) systemd last got, and when
        self._announced_at = float("-inf")
        self._last_retry = float("-inf")
        self._last_stat = float("-inf")
        self._bad_frames = 0  # skipped since the last log line about them
        self._last_bad_log = float("-inf")

    # --- setup -------------------------------------------------------------------------
    def _make_display(self) -> Display:
        kind = self.options.display or self.config.display.kind
        recorder = None
        if self.options.record_dir:
            size = (self.config.display.width, self.config.display.height)
            if self.config.display.rotate % 2:  # a panel on its side is drawn portrait (luma's size): record that
                size = size[::-1]
            recorder = GifRecorder(Path(self.options.record_dir) / "oled.gif", size)
        if kind == "oled":
            opener = lambda: open_oled(self.config.display)  # noqa: E731
        elif kind == "emulator":
            opener = lambda: open_emulator(self.config.display)  # noqa: E731
        else:
            opener = lambda: None  # noqa: E731
        return Display(opener, self.config.display.retry_s, self.clock, recorder)

    def _on_sigterm(self, signum, frame) -> None:
        self._stop = True
        self._sigterms += 1
        if self._in_blocking_read:
            raise Terminate()

    # --- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        self._show()
        failed = False
        ended = False  # the run ended without an error of its own (a file's end, SIGTERM, a long press)
        pipeline = None
        try:
            try:
                pipeline = self._pipeline if self._pipeline is not None else load_pipeline(self.config)
            except Exception:
                self._set_status("model error")
                self._show()
                raise
            source = self._source if self._source is not None else make_source(self.options.source, self.config.camera, realtime=self.options.realtime)
            self._loop(pipeline, source)
            ended = True
            if self._stop:  # SIGTERM between frames
                self._take_judged_push(pipeline, self._last_frame_t)
        except Terminate:  # SIGTERM in a blocking camera read
            ended = True
            self._take_judged_push(pipeline, self._last_frame_t)
        except ApplianceError as exc:  # a model or video file error: say so, and leave it on the OLED
            failed = True
            if self._status not in ("model error", "camera error"):
                self._set_status("video error" if isinstance(exc, SourceError) else "error")
            self._show()
            self.notifier.status(self._status_line())
            raise
        finally:
            output_error = self._shutdown(keep_screen=failed or self._keep_screen)
            signal.signal(signal.SIGTERM, previous_handler)
            if output_error is not None and not ended:  # the error on its way out is the exit code
                log.warning("on shutdown, %s", output_error)
        if output_error is not None:  # --record written only at the end (oled.gif, preview.mp4's trailer): exit 6
            raise output_error
        return 0

    def _loop(self, pipeline: Pipeline, source: FrameSource) -> None:
        try:
            self._frames(pipeline, source)
        finally:
            source.close()  # releases the camera on every exit path, SIGTERM included

    def _take_judged_push(self, pipeline: Pipeline | None, t: float | None) -> None:
        """At the end of a file or a stop: a push the counter has judged and counted but not yet
        announced (it waits for the top, under about 0.3 s) is a rep; the stop lost it (found
        by review). Not after a long press: nothing after the shutdown may touch the count."""
        if pipeline is not None and t is not None and not self._powering_off and pipeline.finish(t):
            self._record_rep(pipeline)
            self._show()

    def _frames(self, pipeline: Pipeline, source: FrameSource) -> None:
        """Read, process, announce, until the end of a file, SIGTERM or a long press.

        A live camera that fails to open, raises mid-stream, returns no frame, or gives only
        unusable frames for [camera].frame_timeout_s is closed and reopened with a doubling
        backoff (reset by the next good frame); the count is untouched throughout. A file
        that fails is an error (exit 4): there is nothing to wait for.
        """
        backoff = 0.5
        opened = False
        last_good = self.clock()  # the last good frame, or the camera opening
        last_frame = self.clock()  # the last good frame (or the start)
        last_t = None
        bad, first_bad = 0, None  # frames skipped as bad, and why the first one was
        while not self._stop:
            if not opened:
                try:
                    self._blocking(source.open)
                    opened = True
                    self._brightness = None  # a reopened camera's exposure starts over
                    last_good = self.clock()
                    log.info("reading frames from %s", source.name)
                    if self.options.record_dir and self.preview is None:
                        self._open_preview(source)
                except SourceError as exc:
                    if not source.live:
                        raise
                    if isinstance(exc, SourceNotInstalled):  # no retry installs picamera2: exit 4 now, not in 90 s
                        self._set_status("camera error")
                        raise
                    self._give_up_on_camera(str(exc), last_frame)
                    self._camera_trouble(str(exc), backoff, pipeline)
                    backoff = min(backoff * 2, self.config.camera.reopen_backoff_max_s)
                    continue
            trouble = None
            try:
                frame = self._blocking(source.read)
            except SourceError as exc:
                if not source.live:
                    raise
                frame, trouble = None, str(exc)
            if frame is None and trouble is None:
                if not source.live:
                    if last_t is None and bad:  # as `count`: a file of only unusable frames is an error, not 0 reps
                        raise SourceError(f"video file {source.name} has no usable frame: {bad} skipped, the first: {first_bad}")
                    log.info("end of %s", source.name)
                    self._take_judged_push(pipeline, last_t)
                    break
                trouble = f"{source.name} returned no frame"
            if frame is not None:
                try:
                    result = pipeline.process(frame)
                except FrameError as exc:  # only a frame of the wrong shape or dtype is skipped: any
                    self._bad_frame(exc)  # other error of the pipeline is a bug, not a camera fault
                    bad, first_bad = bad + 1, first_bad or str(exc)
                    if source.live and self.clock() - last_good > self.config.camera.frame_timeout_s:
                        trouble = f"{source.name} gave no usable frame for {self.config.camera.frame_timeout_s:.1f} s ({exc})"
                    else:
                        self.notifier.progress()  # the loop is alive: frame_timeout_s of bad frames is no hang
                        continue
                else:
                    last_good = last_frame = self.clock()
                    last_t = frame.t
                    backoff = 0.5
                    self._after_frame(pipeline, frame, result)
                    continue
            source.close()
            opened = False
            self._give_up_on_camera(trouble, last_frame)
            self._camera_trouble(trouble, backoff, pipeline)
            backoff = min(backoff * 2, self.config.camera.reopen_backoff_max_s)

    def _open_preview(self, source: FrameSource) -> None:
        """Desktop --record: the annotated preview, each frame at its own time; the source's
        frame rate (which a video file knows only once it is open) is the stream's nominal one."""
        from appliance.preview import PreviewWriter

        self.preview = PreviewWriter(Path(self.options.record_dir) / "preview.mp4", getattr(source, "fps", 0.0) or 25.0)

    def _bad_frame(self, exc: Exception) -> None:
        """Log the first bad frame, then at most one summary line a minute (30 fps of them would flood the journal)."""
        self._bad_frames += 1
        if self.clock() - self._last_bad_log >= 60.0:
            log.warning("skipping bad frame: %s (%d skipped since the last report)", exc, self._bad_frames)
            self._last_bad_log = self.clock()
            self._bad_frames = 0

    def _blocking(self, call):
        self._in_blocking_read = True
        try:
            if self._stop:
                raise Terminate()
            return call()
        finally:
            self._in_blocking_read = False

    def _give_up_on_camera(self, trouble: str, last_frame: float) -> None:
        """No frame from the live camera for [camera].restart_after_s: exit (4), for systemd to
        start a fresh daemon. libcamera lists the cameras once per process, and in the unit's
        private network namespace it never hears of one that appears later (a camera slow to
        come up at boot); a new process looks again. The count is saved on the way out."""
        limit = self.config.camera.restart_after_s
        if limit > 0 and self.clock() - last_frame >= limit:
            self._exiting_for_camera = True
            raise SourceError(f"{trouble}; no frame for {limit:g} s, exiting for a fresh start")

    def _camera_trouble(self, message: str, wait_s: float, pipeline: Pipeline) -> None:
        """Show and log the camera problem, then wait `wait_s` before the next attempt.

        READY=1 goes out here too if no frame ever came: the daemon is up and retrying, and
        a camera that never appears must not become a start-timeout restart loop. The
        watchdog is pinged while waiting because this loop is alive; a read that hangs is
        not here, so it is not pinged over. The button works meanwhile, and a reset reaches
        the counter too, so a rep half done before the camera went away is not counted after.
        """
        log.error("%s; retrying in %.1f s", message, wait_s)
        self._scene = None  # the camera sees nothing now: someone there when it is back is new
        # no frames, no rate: the one from before the error would stay on the OLED and in STATUS=,
        # and the gap across the outage is not a frame interval
        self._fps = self._frame_dt = self._last_frame_t = self._slow_since = None
        self._set_status("camera error")
        self._show()
        self._announce()
        deadline = self.clock() + wait_s
        while not self._stop and self.clock() < deadline:
            self.notifier.progress()  # the loop is alive and retrying: no restart needed
            self._handle_button(pipeline)
            if not self._stop and self._pick_up_external_reset(pipeline):
                self._show()  # no frame redraws the screen while the camera is out
                self._announce()
            self._sleep(min(0.1, max(0.0, deadline - self.clock())))

    def _record_rep(self, pipeline: Pipeline) -> None:
        self._last_activity = self.clock()
        self.state.reps += 1
        self.state.total += 1
        self._save(pipeline)
        self.beeper.rep()

    def _after_frame(self, pipeline: Pipeline, frame, result) -> None:
        if result.rep_counted:
            self._record_rep(pipeline)
        self._handle_button(pipeline)
        if self._powering_off:  # "shutting down", or why it failed, must not become "counting"
            return
        self._pick_up_external_reset(pipeline)
        if self.store.pending and self.clock() - self._last_retry > 5:
            self._last_retry = self.clock()
            self._save(pipeline)
        previous_t = self._last_frame_t
        self._update_fps(frame.t)
        self._update_brightness(frame, previous_t)
        scores = result.keypoints[:, 2]
        if result.gate_open:
            scene = "counting"
        elif not np.isfinite(scores).any() or float(np.nanmean(scores)) < NO_PERSON_SCORE:
            scene = "too dark" if self._too_dark else "no person"
        else:
            scene = "ready"  # someone is seen, dark or not
        self._note_scene(scene)  # first: someone in view wakes the OLED also under a storage error
        self._set_status("storage error" if self.store.error else scene)
        self._show()
        if self.preview is not None:
            from appliance.preview import annotate

            self.preview.add(annotate(frame, result.keypoints, self.state.reps, result.gate_open), frame.t)
        self._announce()
        self.notifier.progress()

    def _announce(self) -> None:
        """STATUS= to systemd when the state or the count changed, and for the frame rate alone
        at most every STATUS_EVERY_S (it changes at almost every frame: a datagram to PID 1 per
        frame). Each carries READY=1 until one of those got through (a single lost READY=1
        would have systemd kill the start at TimeoutStartSec)."""
        now = self.clock()
        announced = (self._status, self.state.reps, self.state.total)
        if not self._ready_sent:
            self._ready_sent = sent = self.notifier.ready(self._status_line())
            if sent:
                log.info("ready (%s), count %d", self._status, self.state.reps)
        elif announced != self._announced or now - self._announced_at >= STATUS_EVERY_S:
            sent = self.notifier.status(self._status_line())
        else:
            return
        if sent:
            self._announced, self._announced_at = announced, now

    def _update_fps(self, t: float) -> None:
        if self._last_frame_t is not None and t > self._last_frame_t:
            # average the interval, not its inverse: a mean of 1/dt overstates the rate of uneven frames
            dt = t - self._last_frame_t
            self._frame_dt = dt if self._frame_dt is None else 0.9 * self._frame_dt + 0.1 * dt
            self._fps = 1.0 / self._frame_dt
        self._last_frame_t = t
        if self._fps is None or self._fps >= MIN_FPS:
            self._slow_since = None
        elif self._slow_since is None or t < self._slow_since:
            self._slow_since = t
        elif t - self._slow_since >= SLOW_FPS_WARN_S and not self._slow_warned:
            self._slow_warned = True  # once: the journal needs the fact, not a line per frame
            log.warning("only %.1f frames a second for %.0f s: the counter needs at least %.0f (frames further "
                        "apart are gaps), so reps will be missed; [models] flip_average = false halves the keypoint time",
                        self._fps, SLOW_FPS_WARN_S, MIN_FPS)

    def _update_brightness(self, frame, previous_t: float | None) -> None:
        """Too dark: the average under TOO_DARK once it has BRIGHTNESS_TIME_S of frames (a camera
        just opened is still finding its exposure), light again over LIGHT_AGAIN."""
        level = brightness(frame)
        if self._brightness is None or previous_t is None or frame.t < previous_t:
            self._brightness, self._brightness_since = level, frame.t
        else:  # a repeated timestamp weighs nothing
            weight = 1.0 - math.exp(-(frame.t - previous_t) / BRIGHTNESS_TIME_S)
            self._brightness += weight * (level - self._brightness)
        if self._too_dark:
            self._too_dark = self._brightness < LIGHT_AGAIN
        else:
            self._too_dark = frame.t - self._brightness_since >= BRIGHTNESS_TIME_S and self._brightness < TOO_DARK

    def _handle_button(self, pipeline: Pipeline) -> None:
        if self.button.is_down:
            now = self.clock()
            if self._press_started_dark is None:
                self._press_started_dark = self.display.dark
            if self._down_since is None:
                self._down_since = now
            if now - self._down_since < self.config.button.long_press_s + PRESS_LIT_S:
                self._last_activity = now  # lights the panel while the button is held; a stuck
                # button is activity only at first, or its digits would burn in
            if self.display.dark:
                self._show()  # now, also while a camera error holds the loop between retries
        else:
            self._down_since = None
        for event in self.button.poll():
            was_dark = self._press_was_dark()
            if event == RESET:
                self._short_press(pipeline, was_dark)
            elif event == SHUTDOWN:
                log.info("button: long press, shutting down")
                self.beeper.shutdown()
                self._set_status("shutting down")
                self._show()
                self._announce()  # `systemctl status` says so while the power-off runs
                self._stop = True
                self._powering_off = True
                self._power_off()
                break  # the box is going down: nothing after the shutdown may touch the count
        if not self.button.press_pending:  # a press that ended in no event (a stuck button freed)
            self._press_started_dark = None  # must not decide the next press (found by review)

    def _press_was_dark(self) -> bool:
        """For a press the button has just reported: whether the screen was dark as it began."""
        was_dark = self.display.dark if self._press_started_dark is None else self._press_started_dark
        self._press_started_dark = None
        self._last_activity = self.clock()
        return was_dark

    def _short_press(self, pipeline: Pipeline | None, was_dark: bool) -> None:
        """A reset, or only a wake for a press that started on a dark (maybe black) screen."""
        if was_dark:
            log.info("button: screen woken, the count stays at %d", self.state.reps)
        else:
            log.info("button: reset at %d reps", self.state.reps)
            self.state.reps = 0
            self.state.resets += 1
            self._save(pipeline)
            if pipeline is not None:
                pipeline.reset_count()
            self.beeper.reset()
        self._show()  # at once, also during a camera error, where no frame redraws it

    def _last_press(self) -> None:
        """On the way out: a short press released less than debounce_s ago is still waiting out
        its bounce, and no loop will poll for it again; the button is about to be released, so
        it is taken now, and its reset saved with the rest. A long press released at the same
        moment is not acted on: the daemon is stopping already."""
        if self._powering_off:
            return
        try:
            for event in self.button.poll(final=True):
                was_dark = self._press_was_dark()
                if event == RESET:
                    self._short_press(None, was_dark)
                elif event == SHUTDOWN:
                    log.info("button: long press released as the daemon stopped; not powering off")
        except Exception as exc:  # the devices below are released whatever happens here
            log.warning("on shutdown, taking the last button press failed: %s", exc)

    def _power_off(self) -> None:
        """Run [button].shutdown_command and wait for its answer: once the daemon exits, systemd
        stops the service and kills what is left in it, a `systemctl poweroff` that has not yet
        reached logind included. A failure is one log line, and "shutdown failed" stays lit on
        the OLED after the daemon stops, so the owner knows the box did not power itself off.

        The power-off itself stops this service: systemd sends SIGTERM to the whole unit, the
        command still waiting for its answer included. A command killed by SIGTERM or SIGKILL,
        or any end of it while the daemon got a SIGTERM, is the shutdown under way, not a
        failure: "shutdown failed" would stay lit and tell the owner to unplug mid-shutdown."""
        command = self.config.button.shutdown_command
        sigterms = self._sigterms
        # A full watchdog period for the command's SHUTDOWN_TIMEOUT_S: the last ping could be
        # up to a half period old (9.4 s of 10 in the worst case; found by review).
        self.notifier.progress(now_due=True)
        try:
            subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=SHUTDOWN_TIMEOUT_S, check=True)
            return
        except subprocess.CalledProcessError as exc:
            if exc.returncode in (-signal.SIGTERM, -signal.SIGKILL) or self._sigterms > sigterms:
                self._stopped_by_the_shutdown(command, f"exit status {exc.returncode}", sigterms)
                return
            why = exc.stderr.strip().splitlines()[0] if exc.stderr.strip() else f"exit status {exc.returncode}"
        except subprocess.TimeoutExpired:
            if self._sigterms > sigterms:
                self._stopped_by_the_shutdown(command, "no answer yet", sigterms)
                return
            why = f"no answer in {SHUTDOWN_TIMEOUT_S:g} s"
        except OSError as exc:
            why = first_line(exc)
        log.error("shutdown command %s failed: %s", " ".join(command), why)
        self._set_status("shutdown failed")
        self._show()
        self.notifier.status(self._status_line())
        self._keep_screen = True

    def _stopped_by_the_shutdown(self, command: list[str], outcome: str, sigterms: int) -> None:
        by = "this daemon got SIGTERM" if self._sigterms > sigterms else "it was killed"
        log.info("shutdown command %s ended (%s) as %s: the system is stopping", " ".join(command), outcome, by)

    def _pick_up_external_reset(self, pipeline: Pipeline) -> bool:
        """`pushup-counter reset` while the daemon runs: look at the file once a second.
        True when a reset was taken."""
        now = self.clock()
        if now - self._last_stat < 1.0:
            return False
        self._last_stat = now
        return self._take_external_reset(pipeline)

    def _take_external_reset(self, pipeline: Pipeline | None) -> bool:
        """Apply a reset that another writer saved since this daemon last read or wrote the file;
        True when one was taken.

        Reps counted since the daemon's last write came after it, so they stay on top of the
        reset count. A file it cannot read (another writer's owner or mode) is logged once and
        ignored: the count in memory goes on and the next save replaces the file.
        """
        identity = self.store.identity()
        if identity is None or identity == self._seen:
            return False
        self._seen = identity
        try:
            saved = self.store.load()
        except StateError as exc:
            log.error("%s; counting on from %d in memory", exc, self.state.reps)
            return False
        if saved.resets > self.state.resets:
            log.info("count reset from the command line")
            self._last_activity = self.clock()
            unsaved = max(0, self.state.reps - self._written_reps)
            self.state.reps = saved.reps + unsaved
            self.state.resets = saved.resets
            self._written_reps = saved.reps
            if pipeline is not None:
                pipeline.reset_count()
            self.beeper.reset()
            return True
        return False

    def _save(self, pipeline: Pipeline | None = None) -> None:
        """Write the count, after taking any reset saved since the daemon's last look: writing
        over it unseen would undo a `pushup-counter reset` run just before a rep."""
        with self.store.locked():
            self._take_external_reset(pipeline)
            if self.store.save(self.state):
                self._written_reps = self.state.reps
            self._seen = self.store.written

    def _status_line(self) -> str:
        fps = f" fps={self._fps:.1f}" if self._fps else ""
        return f"{self._status} reps={self.state.reps} total={self.state.total}{fps}"

    def _set_status(self, status: str) -> None:
        if status != self._status:
            since = self.clock()
            if status == self._quiet_status:  # what the daemon before this one stopped on: no news
                since = min(since, self._last_activity)
            elif status != "starting":
                self._quiet_status = None
            self._status, self._status_since = status, since

    def _carried_activity(self) -> tuple[float, str] | None:
        """(last activity, status) that the daemon before this one left at its exit, in this
        boot's monotonic time; None (the OLED starts lit) when there is none or it cannot be
        used. Read once and removed: if this daemon is killed, the next one must not take an
        older time for its own and darken a panel someone was just using."""
        path = self._activity_file
        if path is None:
            return None
        try:
            text = path.read_bytes()
            path.unlink()
            saved = json.loads(text)
            when, status = float(saved["last_activity"]), saved["status"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.debug("no last activity from %s (%s): the OLED starts lit", path, exc)
            return None
        if not math.isfinite(when) or when > self.clock() or not isinstance(status, str):
            return None
        return when, status

    def _leave_activity(self) -> None:
        """For the next daemon, after the exit for a fresh start (no camera): when something
        last happened, and the status it stops on. Any other stop leaves nothing, so the next
        start is lit: `systemctl restart` after a config edit must show the screen."""
        if self._activity_file is None or not self._exiting_for_camera:
            return
        try:
            self._activity_file.write_text(json.dumps({"last_activity": self._last_activity, "status": self._status}))
        except (OSError, ValueError) as exc:
            log.debug("cannot leave the last activity in %s: %s", self._activity_file, exc)

    def _note_scene(self, scene: str) -> None:
        """Something happening in view keeps the OLED lit: every counting frame, and someone
        seen ("ready") for PRESENCE_S (someone came into view, not a score flickering over the
        threshold). Nobody there, or too dark, is not something happening."""
        now = self.clock()
        if scene != self._scene:
            self._scene, self._scene_since, self._presence_noted = scene, now, False
        if scene == "counting":
            self._last_activity = now
        elif scene == "ready" and not self._presence_noted and now - self._scene_since >= PRESENCE_S:
            self._presence_noted, self._last_activity = True, now

    def _show(self) -> None:
        """Draw the screen, or leave the OLED off once nothing has happened for
        [display].sleep_after_s. Something happening: a new status (an error, a stop) other
        than what the camera sees (SCENES: their rules are _note_scene's); a rep, a press
        (above). The desktop emulator never sleeps: its window is only serviced while it is drawn."""
        now = self.clock()
        if self._status not in SCENES and self._status_since > self._last_activity:
            self._last_activity = self._status_since
        sleep_after = self.config.display.sleep_after_s
        oled = (self.options.display or self.config.display.kind) == "oled"
        lit = not (oled and sleep_after > 0 and now - self._last_activity >= sleep_after)
        self.display.show(Screen(self.state.reps, self._status, round(self._fps) if self._fps else None), lit=lit,
                          t=self._last_frame_t)

    def _shutdown(self, keep_screen: bool = False) -> OutputError | None:
        """STOPPING=1, a last try at an unsaved count, then release every device.

        Each release is tried even if an earlier one fails, so the GPIO pins and the display
        are always given back; the failure is logged. `keep_screen` leaves an error on the OLED.
        A recording (--record) that could not be written is returned, one OutputError naming
        each file, for run() to make the exit code.
        """
        self.notifier.stopping()
        self._last_press()
        if self.store.pending:
            self._save()
        self._leave_activity()
        steps = [("the display", lambda: self.display.close(keep_screen)), ("the buzzer", self.beeper.close),
                 ("the button", self.button.close)]
        if self.preview is not None:
            steps.insert(0, ("the preview", self.preview.close))
        unwritten = []
        for what, step in steps:
            try:
                step()
            except OutputError as exc:
                unwritten.append(str(exc))
            except Exception as exc:
                log.warning("on shutdown, closing %s failed: %s", what, exc)
        log.info("stopped at %d reps (total %d)", self.state.reps, self.state.total)
        return OutputError("; ".join(unwritten)) if unwritten else None
