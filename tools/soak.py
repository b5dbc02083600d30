"""Soak test: the real daemon loop on clips replayed for hours, watching for leaks.

    python -m tools.soak --clip run/sample.mp4 --duration 3600 --out runs/soak.json

Runs `appliance.app.App` (real models, state file, OLED drawing on luma's dummy device,
buzzer and button on gpiozero mock pins, sd_notify if NOTIFY_SOCKET is set) on a source that
plays the clips one after the other, forever, like a camera: paced at the clip's frame rate
with latest-frame-wins (`--fast`: as fast as the pipeline goes). Every `--interval` seconds
it samples this process's resident memory (VmRSS), open file descriptors (/proc/self/fd),
thread count (/proc/self/status Threads), frames and reps so far, and every warning, error
or exception logged. After `--duration` seconds it sends itself SIGTERM (the daemon's real
stop path) and prints start/end/max of each figure; `--out` also writes them as JSON.
Exit status 0 when no exception escaped and no error was logged, else 1.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from appliance.sources import FrameSource


def proc_status() -> dict:
    """VmRSS (MiB), open fds and OS threads of this process, from /proc."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return {
        "rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024.0, 2),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": int(fields["Threads"]),
    }


class LoopingSource(FrameSource):
    """Plays the clips in turn, forever, as one live stream with increasing timestamps."""

    live = True

    def __init__(self, clips, realtime: bool = True, on_loop=None):
        from appliance.sources import VideoFileSource

        self.clips = [Path(c) for c in clips]
        self.sources = [VideoFileSource(c, realtime=realtime) for c in self.clips]
        self.name = "soak(" + ", ".join(c.name for c in self.clips) + ")"
        self.on_loop = on_loop
        self.current = 0
        self.plays = 0  # clips played to the end
        self.frames = 0
        self.fps = 25.0
        self._offset = 0.0
        self._last_t = 0.0

    def open(self) -> None:
        self.sources[self.current].open()
        self.fps = self.sources[self.current].fps or self.fps

    def read(self):
        from appliance.frames import Frame

        frame = self.sources[self.current].read()
        if frame is None:
            self.sources[self.current].close()
            self.plays += 1
            if self.on_loop is not None:
                self.on_loop(self.plays)
            self._offset = self._last_t + 1.0 / max(self.fps, 1.0)
            self.current = (self.current + 1) % len(self.sources)
            self.open()
            frame = self.sources[self.current].read()
            if frame is None:
                from appliance.errors import SourceError

                raise SourceError(f"{self.clips[self.current]} has no frames")
        self.frames += 1
        self._last_t = self._offset + frame.t
        return Frame(frame.image, frame.format, self._last_t, self.frames)

    def close(self) -> None:
        for source in self.sources:
            source.close()


class LogTally(logging.Handler):
    """Counts warnings and errors by message (first 160 characters)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record):
        key = f"{record.levelname} {record.getMessage()[:160]}"
        self.counts[key] = self.counts.get(key, 0) + 1


def summarise(values) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {}
    return {"start": values[0], "end": values[-1], "max": max(values), "min": min(values)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", action="append", required=True, help="a video file; repeat for several")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds to run")
    parser.add_argument("--interval", type=float, default=None, help="seconds between samples (default duration/120, 1..30)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the 'start' sample (default min(60, duration/10))")
    parser.add_argument("--config", help="TOML config (models, counter, ...)")
    parser.add_argument("--state-dir", help="where the count is written (default: a temporary directory)")
    parser.add_argument("--fast", action="store_true", help="feed frames as fast as the pipeline takes them")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    for clip in args.clip:
        if not Path(clip).is_file():
            print(f"tools.soak: error: clip not found: {clip}", file=sys.stderr)
            return 4
    interval = args.interval or min(30.0, max(1.0, args.duration / 120.0))
    warmup = args.warmup if args.warmup is not None else min(60.0, args.duration / 10.0)
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        os.environ.pop(name, None)  # the OLED is drawn on luma's invisible dummy device

    from appliance.app import App, RunOptions, load_pipeline
    from appliance.config import load_config
    from appliance.errors import ApplianceError
    from appliance.systemd import setup_logging

    setup_logging("WARNING")
    tally = LogTally()
    logging.getLogger().addHandler(tally)
    try:
        config = load_config(args.config) if args.config else load_config(None)
    except ApplianceError as exc:
        print(f"tools.soak: error: {exc}", file=sys.stderr)
        return exc.exit_code
    config.button.shutdown_command = ["true"]
    labels = []
    for clip in args.clip:
        npz = Path(clip).with_suffix(".npz")
        labels.append(int(np.load(npz)["reps"]) if npz.exists() else None)

    state_dir = args.state_dir or tempfile.mkdtemp(prefix="soak-state-")
    loops = []  # reps counted during each full play of a clip
    app_box = {}

    def on_loop(plays: int) -> None:
        app = app_box["app"]
        previous = sum(entry["reps"] for entry in loops)
        index = (plays - 1) % len(args.clip)
        loops.append({"clip": Path(args.clip[index]).name, "reps": app.state.total - app_box["total0"] - previous, "label": labels[index]})

    source = LoopingSource(args.clip, realtime=not args.fast, on_loop=on_loop)
    try:
        pipeline = load_pipeline(config)
    except ApplianceError as exc:
        print(f"tools.soak: error: {exc}", file=sys.stderr)
        return exc.exit_code
    app = App(config, RunOptions(source="soak", display="emulator", state_dir=state_dir), source=source, pipeline=pipeline)
    app_box.update(app=app, total0=app.state.total)

    samples = []
    started = time.monotonic()
    cpu0 = time.process_time()
    done = threading.Event()

    def sample() -> None:
        now = time.monotonic() - started
        entry = {"t_s": round(now, 1), **proc_status(), "frames": source.frames, "reps": app.state.total - app_box["total0"],
                 "warnings_errors": sum(tally.counts.values())}
        samples.append(entry)
        if args.out:  # so that a soak cut short still leaves its figures
            partial = Path(args.out).with_suffix(".partial.json")
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(samples))

    def sampler() -> None:
        sample()
        while not done.wait(interval):
            sample()
            if time.monotonic() - started >= args.duration:
                os.kill(os.getpid(), signal.SIGTERM)  # the daemon's own stop path
                return

    thread = threading.Thread(target=sampler, name="soak-sampler", daemon=True)
    thread.start()
    escaped = None
    try:
        app.run()
    except BaseException as exc:  # anything escaping the daemon loop is what we are looking for
        escaped = f"{type(exc).__name__}: {exc}"
    done.set()
    thread.join(timeout=5)
    wall = time.monotonic() - started
    cpu = time.process_time() - cpu0
    stopped = proc_status()  # after the daemon's shutdown: what it gave back

    after = [s for s in samples if s["t_s"] >= warmup] or samples
    t = np.array([s["t_s"] for s in after])
    rss = np.array([s["rss_mib"] for s in after])
    slope = float(np.polyfit(t, rss, 1)[0] * 3600.0) if len(after) >= 3 and np.ptp(t) > 0 else None
    report = {
        "command": "python -m tools.soak " + " ".join(sys.argv[1:] if argv is None else argv),
        "clips": args.clip,
        "duration_s": round(wall, 1),
        "warmup_s": warmup,
        "frames": source.frames,
        "fps": round(source.frames / wall, 2) if wall > 0 else None,
        "cpu_s": round(cpu, 1),
        "clip_plays": source.plays,
        "reps": app.state.total - app_box["total0"],
        "loops": loops,
        "loops_matching_label": sum(1 for entry in loops if entry["label"] is not None and entry["reps"] == entry["label"]),
        "rss_mib": summarise([s["rss_mib"] for s in after]) | {"max_overall": max(s["rss_mib"] for s in samples)},
        "rss_slope_mib_per_h": None if slope is None else round(slope, 2),
        "fds": summarise([s["fds"] for s in after]),
        "threads": summarise([s["threads"] for s in after]),
        "after_stop": stopped,
        "warnings_errors": tally.counts,
        "exception": escaped,
        "samples": samples,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
        Path(args.out).with_suffix(".partial.json").unlink(missing_ok=True)
    print(f"soak {report['duration_s']:.0f} s: {report['frames']} frames ({report['fps']} fps), {report['clip_plays']} clip plays, "
          f"{report['reps']} reps ({report['loops_matching_label']}/{len(loops)} plays matched their label)")
    for key in ("rss_mib", "fds", "threads"):
        s = report[key]
        print(f"  {key:8s} start {s['start']}  end {s['end']}  max {s['max']}")
    print(f"  after stop: {stopped}")
    print(f"  rss slope after warm-up: {report['rss_slope_mib_per_h']} MiB/h; warnings/errors: {sum(tally.counts.values())}; "
          f"exception: {escaped}")
    return 0 if escaped is None and not any(k.startswith(("ERROR", "CRITICAL")) for k in tally.counts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
