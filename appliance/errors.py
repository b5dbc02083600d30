"""One exception root; each leaf maps to a one-line message and an exit code in the CLI."""


class ApplianceError(Exception):
    exit_code = 1


class ConfigError(ApplianceError, ValueError):
    exit_code = 2


class ModelError(ApplianceError):
    exit_code = 3


class SourceError(ApplianceError):
    """A camera or video file that cannot be opened or read."""

    exit_code = 4


class StateError(ApplianceError):
    exit_code = 5


def first_line(exc: BaseException) -> str:
    """The first line of a library's error message (the exception's name if it has none), so
    that an error naming a file or device stays one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
