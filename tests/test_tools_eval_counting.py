"""The counting report's figures mean what the issue defines: MAE as in TransRAC and PoseRAC,
and announce latency measured from each rep's own top."""
import numpy as np

from tools.eval_counting import latencies, mean_relative_error


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
