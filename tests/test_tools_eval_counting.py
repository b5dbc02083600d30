"""The counting report's figures mean what the issue defines: MAE as in TransRAC and PoseRAC,
and announce latency measured from each rep's own top."""
import numpy as np

from tools.eval_counting import Clip, latencies, mean_relative_error, overall_table, per_clip_table


def test_mae_is_the_mean_over_clips_of_the_relative_error():
    # one long clip right and one short clip off by one: 0.125, not 1 / 14 reps
    assert mean_relative_error([10, 5], [10, 4]) == 0.125


def test_each_announcement_is_timed_from_its_own_top():
    tops = np.array([10, 20, 30])  # frames, 10 fps: one rep a second
    assert latencies([17, 27, 37], tops, fps=10) == [0.7, 0.7, 0.7]  # late, not early for the next rep
    assert latencies([22], np.array([10]), fps=10) == [1.2]  # later than a second is still timed
    assert latencies([11, 31], tops, fps=10) == [0.1, 0.1]  # a missed rep leaves its top unpaired


def test_an_announcement_far_from_every_top_is_not_timed():
    assert latencies([11, 60], np.array([10, 20]), fps=10) == [0.1]
    assert latencies([11, 12], np.array([10]), fps=10) == [0.1]  # one top, one latency: the extra is reported apart


def _clip(name, kind, truth, **reps):
    c = Clip(name=name, file=f"{kind}/{name}", kind=kind, truth=truth, confidence="high", view="side", group=name)
    c.results = {n: {"reps": r, "rep_times_s": [], "latency": []} for n, r in reps.items()}
    return c


def test_the_pipeline_is_a_row_beside_the_counters_in_the_same_tables():
    clips = [_clip("a.mp4", "pushup", 4, ours=4, seed=5, elbow=4, pipeline=3),
             _clip("b.mp4", "pushup", 2, ours=2, seed=2, elbow=0, pipeline=2),
             _clip("c.mp4", "negative", 0, ours=0, seed=6, elbow=1, pipeline=1)]
    rows = {line.split("|")[1].strip(): line.split("|") for line in overall_table(clips, "all") if line.startswith("| ")}
    assert rows["pipeline"][3].strip() == "50% (1)"      # exact
    assert rows["pipeline"][6].strip() == "1 on 1 (1)"   # false reps
    assert rows["seed"][6].strip() == "6 on 1 (1)"
    header, _, a_row, _ = per_clip_table(clips, ("pushup",), "clips")[2:6]
    assert header.split("|")[5:9] == [" ours ", " seed ", " elbow ", " pipeline "]
    assert a_row.split("|")[8].strip() == "**3**"


def test_without_a_pipeline_run_the_tables_hold_the_three_counters_only():
    clips = [_clip("a.mp4", "pushup", 4, ours=4, seed=5, elbow=4)]
    names = [line.split("|")[1].strip() for line in overall_table(clips, "all") if line.startswith("| ")][2:]
    assert names == ["ours", "seed", "elbow"]
    assert "pipeline" not in per_clip_table(clips, ("pushup",), "clips")[2]


def test_borderline_negatives_are_reported_apart_as_in_training(tmp_path):
    """The data's README marks burpees and the upward-dog flow as ambiguous; the upward dog's
    notes say "borderline", which the training split read as ambiguous and this tool did not:
    its seed and elbow reps were counted as false reps."""
    from tools.eval_counting import load_manifest

    header = ["file", "category", "reps_counted", "count_confidence", "view", "notes"]
    rows = [
        ["negative/dog.mp4", "negative", "0", "", "side", "YOGA HARD NEGATIVE (borderline): high plank -> upward dog"],
        ["negative/burpee.mp4", "negative", "0", "ambiguous (burpee)", "side", ""],
        ["negative/squat.mp4", "negative", "0", "", "front", "squats"],
    ]
    (tmp_path / "MANIFEST.tsv").write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n")
    kinds = {c.name: c.kind for c in load_manifest(tmp_path)}
    assert kinds == {"dog.mp4": "negative_ambiguous", "burpee.mp4": "negative_ambiguous", "squat.mp4": "negative"}
