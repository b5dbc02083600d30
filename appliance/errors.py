"""One exception root; each leaf maps to a one-line message and an exit code in the CLI."""
import tempfile
from pathlib import Path


class ApplianceError(Exception):
    exit_code = 1


class ConfigError(ApplianceError, ValueError):
    exit_code = 2


class ModelError(ApplianceError):
    exit_code = 3


class SourceError(ApplianceError):
    """A camera or video file that cannot be opened or read."""

    exit_code = 4


class SourceNotInstalled(SourceError):
    """A camera whose software is not installed (picamera2 on a desktop): no retry installs
    it, so the daemon exits (4) at once instead of waiting for a camera to appear."""


class StateError(ApplianceError):
    exit_code = 5


class OutputError(ApplianceError):
    """A desktop output (--record, --keypoints) that cannot be written."""

    exit_code = 6


def check_writable_dir(directory, what: str) -> None:
    """Create `directory` if needed and prove a file can be written in it, before any work is
    done: a clip counted for minutes must not end in a traceback over its output path."""
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write {what} in {directory}: {exc.strerror or first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    """The first line of a library's error message (the exception's name if it has none), so
    that an error naming a file or device stays one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
