"""Pipeline wiring: what one stage's state means for the next (stub keypoint model, fast)."""
import numpy as np

from appliance.counter import RepCounter
from appliance.frames import Frame
from appliance.gate import Gate
from appliance.pipeline import Pipeline
from appliance.recognition import MAX_GAP_S, PoseHistory
from tests.conftest import MODELS, needs_models
from tests.test_counter import TOP_H, _standing_pose, plank_pose

IMAGE = np.zeros((240, 320, 3), np.uint8)


class StubKeypoints:
    """Gives whatever pose the test sets."""

    input_w = input_h = 192

    def __init__(self):
        self.pose = None

    def model_input(self, frame, region):
        return None, None

    def predict_pixels(self, pixels, box):
        return self.pose.copy()


class FreshWindowRecogniser:
    """What the shipped recogniser does with a plank in an almost empty window: P 0.95 while
    the history holds a single frame, 0 after. The history is the real PoseHistory."""

    def __init__(self):
        self.history = PoseHistory()

    def observe(self, t, keypoints):
        return self.history.add(t, keypoints)

    def predict(self, aspect):
        return 0.95 if len(self.history._frames) == 1 else 0.0


def run(pipeline, stub, pose, times):
    results = []
    for i, t in enumerate(times):
        stub.pose = pose
        results.append(pipeline.process(Frame(IMAGE, "RGB", float(t), i)))
    return results


def test_after_a_camera_stall_one_output_does_not_open_the_gate():
    """A stall restarts the recogniser's history; the gate must start over with it, as at a
    fresh start, or the first output after the stall (dt of seconds) is taken whole."""
    stub = StubKeypoints()
    pipeline = Pipeline(stub, FreshWindowRecogniser(), Gate(0.35, 0.1, 0.3), RepCounter(), recognition_every=1)
    assert not run(pipeline, stub, plank_pose(TOP_H), [0.0])[0].gate_open  # a fresh start
    run(pipeline, stub, plank_pose(TOP_H), np.arange(1, 300) / 30)
    after = run(pipeline, stub, plank_pose(TOP_H), [10.0 + MAX_GAP_S + 2.0])[0]
    assert after.pushup_prob == 0.95 and not after.gate_open


@needs_models
def test_after_a_camera_stall_the_shipped_recogniser_does_not_open_the_gate_at_once():
    from appliance.models import RecognitionModel

    stub = StubKeypoints()
    pipeline = Pipeline(stub, RecognitionModel(MODELS / "recognizer.tflite"), Gate(0.35, 0.1, 0.3), RepCounter(),
                        recognition_every=3)
    times = np.arange(300) / 30
    assert not any(r.gate_open for r in run(pipeline, stub, _standing_pose(0.0, 0.0), times))
    after = run(pipeline, stub, plank_pose(TOP_H), [times[-1] + 3.0])[0]
    assert not after.gate_open
