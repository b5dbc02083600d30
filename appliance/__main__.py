"""`pushup-counter`: the daemon and its tools. One error handler turns known errors into one line."""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from appliance.errors import ApplianceError, ConfigError, OutputError, SourceError, StateError, check_writable_dir, first_line

log = logging.getLogger("pushup-counter")


def _config(args):
    from appliance.config import load_config

    return load_config(getattr(args, "config", None))


def cmd_run(args) -> int:
    from appliance.app import App, RunOptions, show_config_error
    from appliance.systemd import setup_logging

    setup_logging(args.log_level)
    options = RunOptions(args.source, args.display, args.state_dir, args.realtime, args.record)
    try:
        config = _config(args)
    except ConfigError:
        show_config_error(options)
        raise
    return App(config, options).run()


def cmd_count(args) -> int:
    from appliance.app import load_pipeline
    from appliance.frames import FrameError
    from appliance.sources import VideoFileSource

    config = _config(args)
    if args.keypoints:
        if Path(args.keypoints).is_dir():
            raise OutputError(f"cannot write the keypoints to {args.keypoints}: it is a directory")
        check_writable_dir(Path(args.keypoints).parent, "the keypoints")
    pipeline = load_pipeline(config)
    source = VideoFileSource(args.video)
    rows, probs, times, rep_times = [], [], [], []
    stage_times = {k: [] for k in ("decode", "preprocess", "keypoints", "recognition", "counter")}
    skipped, first_bad = 0, None
    with source:
        while True:
            t0 = time.perf_counter()
            frame = source.read()
            stage_times["decode"].append((time.perf_counter() - t0) * 1e3)
            if frame is None:
                stage_times["decode"].pop()
                break
            try:
                result = pipeline.process(frame)
            except FrameError as exc:  # a frame of the wrong shape or size: skipped, as `run` does
                skipped += 1
                first_bad = first_bad or str(exc)
                continue
            for stage, ms in result.timings_ms.items():
                stage_times[stage].append(ms)
            rows.append(result.keypoints)
            probs.append(result.pushup_prob)
            times.append(frame.t)
            if result.rep_counted:
                rep_times.append(round(float(frame.t), 3))
            last_t = frame.t
    if skipped and not rows:
        raise SourceError(f"video file {args.video} has no usable frame: {skipped} skipped, the first: {first_bad}")
    if rows and pipeline.finish(last_t):
        rep_times.append(round(float(last_t), 3))
    if args.keypoints:
        count = pipeline.keypoint_model.count
        keypoints = np.stack(rows).astype(np.float32) if rows else np.zeros((0, count, 3), np.float32)
        try:  # into an open file: given a name, numpy would append ".npz" to one without it
            with open(args.keypoints, "wb") as out:
                # t: each frame's own time, so that count-trace replays a variable-rate or gappy
                # clip on its clock; fps (nominal) stays for the tools and older readers
                np.savez_compressed(out, keypoints=keypoints, pushup_prob=np.asarray(probs, np.float32),
                                    t=np.asarray(times, np.float64), fps=np.float32(source.fps))
        except OSError as exc:
            raise OutputError(f"cannot write the keypoints to {args.keypoints}: {exc.strerror or first_line(exc)}") from None
    report = {
        "video": str(args.video),
        "reps": len(rep_times),
        "rep_times_s": rep_times,
        "frames": len(rows),
        "skipped_frames": skipped,
        "fps": round(source.fps, 3),
        "timings_ms": {k: round(float(np.median(v)), 3) for k, v in stage_times.items() if v},
    }
    skipped_text = f", {skipped} skipped: {first_bad}" if skipped else ""
    return _print_report(report, args.json, f"{report['reps']} reps in {args.video} ({report['frames']} frames{skipped_text})")


def cmd_count_trace(args) -> int:
    from appliance.config import load_config
    from appliance.counter import count_trace

    config = load_config(args.config) if args.config else None
    try:
        data = np.load(args.trace)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array (or a pickle): no named arrays
            raise ValueError("not an .npz archive")
        with data:
            keypoints = np.asarray(data["keypoints"], dtype=np.float32)
            fps = float(data["fps"])
            times = np.asarray(data["t"], dtype=np.float64) if "t" in data.files else None  # older traces: i / fps
    except FileNotFoundError:
        raise SourceError(f"trace file not found: {args.trace}") from None
    except (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # EOFError: an empty file; BadZipFile, zlib.error: a truncated or damaged archive
        raise SourceError(f"trace file {args.trace} is not a keypoint trace (needs keypoints [T,K,3] and fps): {first_line(exc)}") from None
    if keypoints.ndim != 3 or keypoints.shape[1] not in (7, 9) or keypoints.shape[2] != 3:
        raise SourceError(f"trace file {args.trace}: keypoints must be [T, 7 or 9, 3], got {keypoints.shape}")
    settings = config.counter if config else None
    if times is not None:
        steps = np.diff(times) if times.ndim == 1 else np.zeros(0)
        span = float(times[-1] - times[0]) if len(steps) and np.isfinite(times).all() else 0.0
        rate = len(steps) / span if span > 0 else math.inf  # the mean: repeated stamps are allowed
        # Seconds, at 0.1 to 1000 frames a second on average: all zeros, 1e300 or milliseconds
        # counted 0 reps without a word.
        if (times.shape != keypoints.shape[:1] or not np.isfinite(times).all() or (steps < 0).any()
                or (len(steps) and not 0.1 <= rate <= 1000.0)):
            raise SourceError(f"trace file {args.trace}: t must be one finite, non-decreasing time in seconds per frame "
                              f"({len(keypoints)}) at 0.1 to 1000 frames a second, got shape {times.shape}"
                              + (f", {rate:.3g} frames a second" if len(steps) else ""))
    # No camera gives more than 1000 fps; inf or 1e300 put every frame at 0 s and counted 0 reps without a word.
    elif not (math.isfinite(fps) and 0 < fps <= 1000):
        raise SourceError(f"trace file {args.trace}: without per-frame times t it needs fps above 0 and at most 1000, "
                          f"got fps {fps}")
    result = count_trace(keypoints, fps, settings, times_s=times)  # times: the clock `count` counted on
    reps, rep_times = result.reps, result.rep_times_s
    report = {"trace": str(args.trace), "reps": int(reps), "rep_times_s": [round(float(t), 3) for t in rep_times], "frames": int(len(keypoints))}
    return _print_report(report, args.json, f"{report['reps']} reps in {args.trace}")


def _print_report(report: dict, as_json: bool, text: str) -> int:
    print(json.dumps(report) if as_json else text)
    return 0


def _state_dir(args) -> str:
    if args.state_dir:
        return args.state_dir
    return _config(args).state.dir


def _existing_store(args):
    """The state store of an existing directory: a typo in --state-dir must not start a new
    count somewhere nobody reads (the service's directory always exists)."""
    from appliance.state import StateStore

    store = StateStore(_state_dir(args), log_failures=False)
    if not store.directory.is_dir():
        raise StateError(f"state directory not found: {store.directory}")
    return store


def cmd_status(args) -> int:
    store = _existing_store(args)
    state = store.load(read_only=True)  # a damaged file is reported, not moved aside
    if args.json:
        print(json.dumps({"reps": state.reps, "total": state.total, "resets": state.resets, "updated": state.updated}))
    else:
        print(f"reps {state.reps} (lifetime total {state.total})")
    return 0


def cmd_reset(args) -> int:
    store = _existing_store(args)
    with store.locked(wait_s=30.0):  # the daemon saves in between no rep (in `total`) and no reset of ours
        state = store.load()
        state.reps = 0
        state.resets += 1
        if not store.save(state):
            raise StateError(store.error)
    print("count reset to 0")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pushup-counter", description="Counts push-ups with a camera, an OLED, a buzzer and a button.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the appliance daemon")
    run.add_argument("--config", help="TOML config (default /etc/pushup-counter/config.toml)")
    run.add_argument("--source", default="camera", help="camera, webcam or a video file path")
    run.add_argument("--display", choices=("oled", "emulator", "none"), help="overrides [display].kind")
    run.add_argument("--state-dir", help="overrides [state].dir")
    run.add_argument("--realtime", action="store_true", help="pace a video file at its own frame rate")
    run.add_argument("--record", metavar="DIR", help="write the OLED as DIR/oled.gif and an annotated DIR/preview.mp4")
    run.add_argument("--log-level", default=os.environ.get("PUSHUP_LOG_LEVEL", "INFO"),
                     help="debug, info, warning, error or critical, any case (default: $PUSHUP_LOG_LEVEL or info)")
    run.set_defaults(func=cmd_run)

    count = sub.add_parser("count", help="count the reps in a video file, as fast as possible")
    count.add_argument("video")
    count.add_argument("--config")
    count.add_argument("--json", action="store_true")
    count.add_argument("--keypoints", metavar="OUT.npz", help="save per-frame keypoints [T,K,3], pushup_prob [T] and times t [T] (s)")
    count.set_defaults(func=cmd_count)

    trace = sub.add_parser("count-trace", help="run the counter alone on a keypoint trace (.npz with keypoints, fps; t, each frame's time, when there)")
    trace.add_argument("trace")
    trace.add_argument("--config")
    trace.add_argument("--json", action="store_true")
    trace.set_defaults(func=cmd_count_trace)

    for name, func, text in (("status", cmd_status, "show the saved count"), ("reset", cmd_reset, "set the count to 0")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--state-dir")
        p.add_argument("--config")
        if name == "status":
            p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ApplianceError as exc:
        from appliance.systemd import error_line_prefix

        print(f"{error_line_prefix()}pushup-counter: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
