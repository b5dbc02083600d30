"""The shipped appliance on the project's own rendered clips: counts and announce latency.

Every clip's rep tops are exact (the renderer's labels), so the announce latency -- the time from
a rep's top to the frame on which ``pushup-counter count`` counted it -- needs no estimate.
The clip set spans views, camera heights, tempos (slow to 3 reps a second), depths, pauses and
the non-push-up scenes; seeds differ from every rendered training clip (tools.synthetic_cache
uses 100.., tools.pose_traces 500..).

    python -m tools.eval_rendered --out runs/rendered_eval
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tools.dataset import REPO

PUSHUPS = [
    dict(view=view, tempo=tempo, camera_height=height, reps=reps, seed=900 + i, depth=depth, pause_top=pause)
    for i, (view, tempo, height, reps, depth, pause) in enumerate([
        ("side", 1.0, 0.1, 6, "full", 0.0), ("side", 0.5, 0.1, 4, "full", 0.5), ("side", 2.0, 0.4, 8, "full", 0.0),
        ("side", 3.0, 0.1, 9, "full", 0.0), ("oblique", 1.0, 0.1, 6, "full", 0.0), ("oblique", 1.5, 0.9, 6, "shallow", 0.0),
        ("oblique", 0.7, 0.1, 5, "mixed", 0.0), ("front", 1.0, 0.1, 6, "full", 0.0), ("front", 2.0, 0.15, 8, "full", 0.0),
        ("front", 0.5, 0.4, 4, "full", 0.6), ("oblique-left", 1.2, 0.1, 6, "full", 0.0), ("side-left", 2.2, 0.05, 7, "full", 0.0),
    ])
]
OTHERS = [dict(scenario=s, view=v, seed=950 + i, duration=9.0)
          for i, (s, v) in enumerate([("standing", "oblique"), ("walking", "side"), ("squats", "front"), ("squats", "oblique"),
                                       ("plank", "side"), ("plank", "front"), ("empty", "side")])]


def count(path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "appliance", "count", str(path), "--json"], capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout)


def main(argv=None) -> int:
    from tools.render import render_clip

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "runs" / "rendered_eval"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, offsets = [], []
    for spec in [dict(scenario="pushups", **p) for p in PUSHUPS] + OTHERS:
        name = f"{spec['scenario']}_{spec['view']}_{spec['seed']}"
        labels = render_clip(out / f"{name}.mp4", **spec)
        truth = int(labels["reps"])
        got = count(out / f"{name}.mp4")
        tops = np.asarray(labels["rep_top_times_s"], float)
        # pair each announcement with the nearest top (one announcement per top at most)
        lat = []
        for t in got["rep_times_s"]:
            if tops.size:
                lat.append(float(t - tops[np.argmin(np.abs(tops - t))]))
        offsets += lat
        rows.append({"clip": name, "true": truth, "counted": got["reps"],
                     "latency_median_s": round(float(np.median(lat)), 3) if lat else None})
        print(json.dumps(rows[-1]), flush=True)
    push = [r for r in rows if r["clip"].startswith("pushups")]
    other = [r for r in rows if not r["clip"].startswith("pushups")]
    summary = {
        "pushup_clips": len(push), "exact": sum(r["true"] == r["counted"] for r in push),
        "within_one": sum(abs(r["true"] - r["counted"]) <= 1 for r in push),
        "other_clips": len(other), "false_reps": sum(r["counted"] for r in other),
        "announce_latency_s": {"median": round(float(np.median(offsets)), 3), "latest": round(float(np.max(offsets)), 3),
                               "earliest": round(float(np.min(offsets)), 3), "reps": len(offsets)} if offsets else None,
    }
    (out / "report.json").write_text(json.dumps({"summary": summary, "clips": rows}, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
