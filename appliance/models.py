"""Our two int8 TFLite models: load with their model cards, check the contract, run, decode.

Each `<name>.tflite` ships with `<name>.json` (models/CARD.md). At load the card is checked
against the interpreter's real tensors, so a model that would silently mis-read frames is
refused with a one-line error naming the file.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from appliance import keypoints as kp
from appliance import recognition
from appliance.errors import ModelError
from appliance.frames import Frame, to_rgb
from appliance.geometry import Crop, Letterbox, decode_heatmaps
from appliance.runtime import load_interpreter

_NP_DTYPES = {"int8": np.int8, "uint8": np.uint8, "float32": np.float32}


@dataclass(frozen=True)
class TensorContract:
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int


def _load_card(model_path: Path) -> dict:
    card_path = model_path.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model card not found: {card_path}") from None
    except (OSError, ValueError, RecursionError, MemoryError) as exc:  # deep nesting: RecursionError
        raise ModelError(f"model card {card_path} is unreadable: {exc or type(exc).__name__}") from None
    if not isinstance(card, dict) or not isinstance(card.get("input"), dict) or not isinstance(card.get("output"), dict):
        raise ModelError(f"model card {card_path} lacks its input/output sections")
    return card


def _card_error(model_path: Path, field: str, want: str, value) -> ModelError:
    """A card field of the wrong type or range, named with its card (the value cut short)."""
    return ModelError(f"model card {model_path.with_suffix('.json')}: {field} must be {want}, got {value!r:.60}")


def _check_tensor(model_path: Path, which: str, declared: dict, detail: dict, layout_wanted: str) -> TensorContract:
    """Compare one card section with the interpreter's tensor; refuse any mismatch."""
    try:
        shape = tuple(int(v) for v in declared["shape"])
        if not all(type(v) is int for v in declared["shape"]):  # 144.9 is not a size
            raise ValueError(f"shape {declared['shape']!r:.60} is not whole numbers")
        dtype = str(declared["dtype"])
        scale = float(declared.get("scale", 0.0))
        zero_point = int(declared.get("zero_point", 0))
        layout = declared.get("layout", "NHWC")
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: 1e999 as an integer
        raise ModelError(f"model card for {model_path}: {which} section incomplete ({exc})") from None
    real_shape = tuple(int(v) for v in detail["shape"])
    real_dtype = np.dtype(detail["dtype"]).name
    real_scale, real_zero = detail["quantization"]
    problems = []
    if layout != layout_wanted:
        problems.append(f"layout {layout} (the appliance reads this {which} as {layout_wanted})")
    if real_shape != shape:
        problems.append(f"shape {list(real_shape)} != card {list(shape)}")
    if real_dtype != dtype:
        problems.append(f"dtype {real_dtype} != card {dtype}")
    if dtype in ("int8", "uint8"):
        if not np.isclose(real_scale, scale, rtol=1e-4, atol=1e-9) or int(real_zero) != zero_point:
            problems.append(f"quantisation ({real_scale:.6g}, {real_zero}) != card ({scale:.6g}, {zero_point})")
    if problems:
        raise ModelError(f"model {model_path} does not match its card: {which} " + "; ".join(problems))
    return TensorContract(shape, dtype, scale, zero_point)


class _TFLiteModel:
    """Interpreter + card + the tensor checks and (de)quantisation both models share."""

    task = ""
    input_layout = ""  # NHWC: an image; NTKC: a keypoint window
    output_layout = ""  # NHWC: heatmaps; NC: one value

    def __init__(self, path: str | Path, num_threads: int = 1):
        self.path = Path(path)
        self.card = _load_card(self.path)
        if self.card.get("task") != self.task:
            raise ModelError(f"model card for {self.path} is for task {self.card.get('task')!r}, expected {self.task!r}")
        # Required: without it a model with damaged weights would load and count wrong in silence.
        expected_sha = self.card.get("sha256")
        if not isinstance(expected_sha, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", expected_sha):
            raise _card_error(self.path, "sha256", "the .tflite's sha256, 64 hex digits", expected_sha)
        try:
            actual = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            actual = None  # load_interpreter names the missing or unreadable file
        if actual is not None and actual != expected_sha.lower():
            raise ModelError(f"model {self.path} does not match its card: sha256 differs (corrupt or replaced file)")
        self.interpreter = load_interpreter(self.path, num_threads)
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"model {self.path} must have one input and one output, has {len(inputs)} and {len(outputs)}")
        self._input_index = inputs[0]["index"]
        self._output_index = outputs[0]["index"]
        self.input = _check_tensor(self.path, "input", self.card["input"], inputs[0], self.input_layout)
        self.output = _check_tensor(self.path, "output", self.card["output"], outputs[0], self.output_layout)
        if len(self.input.shape) != 4 or self.input.shape[0] != 1 or self.input.shape[3] != 3:
            raise ModelError(f"model {self.path}: input must be [1, H, W, 3], card says {list(self.input.shape)}")

    def _keypoint_order(self, field: str, names, counts: tuple[int, ...]) -> tuple[str, ...]:
        """A card's keypoint list: a list of one of ``counts`` names in the project's order."""
        if not isinstance(names, list):
            raise _card_error(self.path, field, "a list of keypoint names", names)
        names = tuple(names)
        if len(names) not in counts or names != kp.NAMES[:len(names)]:
            expected = list(kp.NAMES[:counts[-1]])
            raise ModelError(f"model {self.path}: card keypoint order {list(names)} is not the project's {expected}")
        return names

    def _quantise(self, real: np.ndarray) -> np.ndarray:
        if self.input.dtype == "float32":
            return np.asarray(real, np.float32)
        info = np.iinfo(_NP_DTYPES[self.input.dtype])
        q = np.round(np.asarray(real, np.float64) / self.input.scale + self.input.zero_point)
        return np.clip(q, info.min, info.max).astype(_NP_DTYPES[self.input.dtype])

    def _invoke(self, tensor: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._input_index, tensor[None])
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._output_index)[0]
        if self.output.dtype == "float32":
            return raw.astype(np.float32)
        return (raw.astype(np.float32) - self.output.zero_point) * self.output.scale


class KeypointModel(_TFLiteModel):
    """Frame -> [K, 3] keypoints (x, y normalised to the frame, score) in appliance.keypoints order."""

    task = "keypoints"
    input_layout = output_layout = "NHWC"

    def __init__(self, path: str | Path, num_threads: int = 1, flip_average: bool = True):
        super().__init__(path, num_threads)
        # Test-time flip: the model also sees the mirrored frame and the two sets of heatmaps
        # are averaged (left and right swapped back). Twice the model time; on validation
        # footage PCK@0.25 seven 0.66 -> 0.69, hips 0.63 -> 0.68 (models/README.md).
        self.flip_average = flip_average
        if self.card["input"].get("color", "RGB") != "RGB" or self.card["input"].get("resize", "letterbox") != "letterbox":
            raise ModelError(f"model {self.path}: only RGB letterboxed input is supported")
        count = len(self._keypoint_order("keypoints", self.card.get("keypoints"), (kp.SEED_COUNT, kp.FULL_COUNT)))
        if self.card["output"].get("decoding") != "heatmap" or len(self.output.shape) != 4 or self.output.shape[3] != count:
            raise ModelError(f"model {self.path}: output must be heatmaps [1, h, w, {count}]")
        self.count = count
        self.input_h, self.input_w = self.input.shape[1:3]
        self.pad_value = self.card["input"].get("pad_value", 0)
        if type(self.pad_value) is not int or not 0 <= self.pad_value <= 255:  # it fills uint8 pixels
            raise _card_error(self.path, "input.pad_value", "an integer from 0 to 255", self.pad_value)
        value_range = self.card["input"].get("value_range", [0.0, 1.0])
        if not (isinstance(value_range, list) and len(value_range) == 2 and all(map(_is_number, value_range))
                and value_range[0] < value_range[1]):
            raise _card_error(self.path, "input.value_range", "[low, high], two numbers with low < high", value_range)
        low, high = map(float, value_range)
        if self.input.dtype != "float32":  # a range the int8 input cannot hold would be clipped flat
            info = np.iinfo(_NP_DTYPES[self.input.dtype])
            can_low, can_high = ((v - self.input.zero_point) * self.input.scale for v in (info.min, info.max))
            if low < can_low - self.input.scale or high > can_high + self.input.scale:
                raise _card_error(self.path, "input.value_range", f"inside what the {self.input.dtype} input holds "
                                  f"[{can_low:.4g}, {can_high:.4g}]", value_range)
        # uint8 pixel -> input tensor value, as a 256-entry lookup (one gather per frame)
        self._lut = self._quantise(low + (high - low) * np.arange(256) / 255.0)

    def letterbox(self, frame: Frame) -> tuple[np.ndarray, Letterbox]:
        """The frame scaled into the model input with its aspect kept, padded, as uint8 RGB."""
        width, height = frame.size
        box = Letterbox(width, height, self.input_w, self.input_h)
        canvas = np.full((self.input_h, self.input_w, 3), self.pad_value, dtype=np.uint8)
        cw, ch = box.content_size
        ox, oy = box.offset
        resized = Image.fromarray(to_rgb(frame)).resize((cw, ch), Image.BILINEAR)
        canvas[oy : oy + ch, ox : ox + cw] = np.asarray(resized)
        return canvas, box

    def crop(self, frame: Frame, region: Crop) -> tuple[np.ndarray, Crop]:
        """The frame's ``region`` scaled onto the model input as uint8 RGB, padded past the edges."""
        rgb = to_rgb(frame)
        height, width = rgb.shape[:2]
        window = np.full((region.height, region.width, 3), self.pad_value, dtype=np.uint8)
        left, top = max(region.x0, 0), max(region.y0, 0)
        right, bottom = min(region.x0 + region.width, width), min(region.y0 + region.height, height)
        if right > left and bottom > top:
            window[top - region.y0 : bottom - region.y0, left - region.x0 : right - region.x0] = rgb[top:bottom, left:right]
        pixels = np.asarray(Image.fromarray(window).resize((self.input_w, self.input_h), Image.BILINEAR))
        return pixels, region

    def model_input(self, frame: Frame, region: Crop | None = None) -> tuple[np.ndarray, Letterbox | Crop]:
        """The whole frame letterboxed, or ``region`` of it, as the model's uint8 input."""
        return self.letterbox(frame) if region is None else self.crop(frame, region)

    def predict(self, frame: Frame, region: Crop | None = None) -> np.ndarray:
        """Keypoints of the whole frame, or of ``region`` of it (both frame-normalised)."""
        return self.predict_pixels(*self.model_input(frame, region))

    def heatmaps(self, pixels: np.ndarray) -> np.ndarray:
        """Heatmaps [h, w, K] of a letterboxed uint8 image, flip-averaged if configured."""
        maps = self._invoke(self._lut[pixels])
        if self.flip_average:
            maps = kp.average_with_mirror(maps, self._invoke(self._lut[pixels[:, ::-1]]))
        return maps

    def predict_pixels(self, pixels: np.ndarray, box: Letterbox | Crop) -> np.ndarray:
        points = decode_heatmaps(self.heatmaps(pixels))
        points[:, :2] = box.input_to_frame(points[:, :2])
        return points


class RecognitionModel(_TFLiteModel):
    """The last seconds of keypoints -> P(this person is doing push-ups right now).

    Its input is a keypoint window (appliance.recognition); the card states the window's steps,
    spacing and keypoint order, and the normalisation it was trained with.
    """

    task = "recognition"
    input_layout, output_layout = "NTKC", "NC"

    def __init__(self, path: str | Path, num_threads: int = 1):
        super().__init__(path, num_threads)
        self.decoding = self.card["output"].get("decoding")
        if self.decoding not in ("logit", "probability") or int(np.prod(self.output.shape)) != 1:
            raise ModelError(f"model {self.path}: output must be one logit or probability")
        window = self.card["input"].get("window")
        if self.card["input"].get("kind") != "keypoint_window" or not isinstance(window, dict):
            raise ModelError(f"model {self.path}: input must be a keypoint window (card input.kind, input.window)")
        _, steps, count, _ = self.input.shape
        self._keypoint_order("input.window.keypoints", window.get("keypoints"), (count,))
        if window.get("normalisation") != recognition.NORMALISATION:
            raise ModelError(f"model {self.path}: window normalisation {window.get('normalisation')!r} is not "
                             f"this appliance's {recognition.NORMALISATION!r}")
        step_s = window.get("step_s")
        if not _is_number(step_s) or not step_s > 0:  # 0, less or NaN: the history would never drop a frame
            raise _card_error(self.path, "input.window.step_s", "a number of seconds above 0", step_s)
        # What normalise_window does with them is fixed here: a model trained otherwise is refused.
        for field, value in (("steps", steps), ("min_score", recognition.MIN_SCORE), ("clip", recognition.CLIP)):
            if not _is_number(window.get(field)) or window[field] != value:
                raise _card_error(self.path, f"input.window.{field}", f"{value} (the input tensor and this appliance's window)",
                                  window.get(field))
        self.count = count
        self.history = recognition.PoseHistory(steps, step_s)

    def observe(self, t: float, keypoints: np.ndarray) -> bool:
        """Remember one frame's keypoints (every frame, whether or not the model runs); True if
        the history started over with it (PoseHistory.add)."""
        if keypoints.shape[0] < self.count:
            raise ModelError(f"model {self.path} needs {self.count} keypoints, the keypoint model gives {keypoints.shape[0]}")
        return self.history.add(t, keypoints[: self.count])

    def predict(self, aspect: float) -> float:
        """P(push-ups) for the newest observed frame; ``aspect`` is the frame's width / height.

        The mean of the model's answers on the window and on its mirror image (test-time flip,
        as for the keypoints): steadier on the negatives for one more run of a 0.02 ms model."""
        window = self.history.window(aspect)
        return 0.5 * (self._probability(window) + self._probability(recognition.mirror_window(window)))

    def _probability(self, window: np.ndarray) -> float:
        value = float(self._invoke(self._quantise(window)).reshape(-1)[0])
        if self.decoding == "logit":
            return float(1.0 / (1.0 + np.exp(-value)))
        return float(np.clip(value, 0.0, 1.0))


def _is_number(value) -> bool:
    """A finite JSON number (true and false are not numbers here, nor a 400-digit one)."""
    try:
        return type(value) in (int, float) and math.isfinite(value)
    except OverflowError:
        return False
