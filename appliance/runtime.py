"""The one import chain for the TFLite runtime: ai-edge-litert first, tflite-runtime as fallback.

Both expose the same `Interpreter` API; ai-edge-litert is the maintained one and runs int8
graphs on XNNPACK. Torch never runs here.
"""
from __future__ import annotations

from pathlib import Path

from appliance.errors import ModelError, first_line

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover - exercised only where ai-edge-litert is absent
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        Interpreter = None


def load_interpreter(path: str | Path, num_threads: int = 1):
    """Build the interpreter once, allocate its tensors, and name the file if it is unusable."""
    path = Path(path)
    if Interpreter is None:
        raise ModelError("no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime)")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"model file {path} cannot be read: {exc.strerror}") from None
    # A FlatBuffer TFLite model carries the identifier "TFL3" at byte 4; checking it first
    # turns a truncated or foreign file into a clear error instead of a crash in C++.
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ModelError(f"model file {path} is not a TFLite model (truncated or foreign file)")
    try:
        interpreter = Interpreter(model_content=content, num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError, TypeError) as exc:  # TypeError: pybind11 quoting the whole model
        raise ModelError(f"model file {path} cannot be loaded: {first_line(exc)[:200]}") from None
    return interpreter

