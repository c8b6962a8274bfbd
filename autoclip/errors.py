"""One small error hierarchy, so callers can tell bad input from a broken tool or a passing fault."""

from __future__ import annotations


class AutoclipError(Exception):
    """Base of every error auto-clip raises on purpose."""


class InputError(AutoclipError):
    """A source cannot be used: missing, empty, unsupported, too large, unreadable."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class ProbeError(InputError):
    """The container or its streams cannot be read."""


class ProviderError(AutoclipError):
    """A speech, vision or language provider failed."""


class ProviderAuthError(ProviderError):
    """The service refused the request itself (400/401/403): retrying or falling back cannot help."""


class PlanError(AutoclipError):
    """No usable edit could be planned (for example zero clips)."""


class RenderError(AutoclipError):
    """ffmpeg or the moviepy engine failed, or the output does not match the plan."""


class StorageError(AutoclipError):
    """An output could not be written to its destination."""


class TransientError(AutoclipError):
    """A fault worth retrying (network blip, throttling, a busy server)."""


class EnvironmentFault(AutoclipError):
    """The machine failed, not the video: a full disk, a read-only or missing folder or bucket, a tool killed
    by a signal, refused credentials. It fails the run (or the stage) with its cause and never marks a
    source as bad."""


# errno values that say the machine (disk, quota, permissions, process limits) failed, not the file read
_ENVIRONMENT_ERRNOS = {"ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EMFILE", "ENFILE", "ENOMEM"}


def environment_fault(exc: BaseException, what: str) -> EnvironmentFault | None:
    """An EnvironmentFault naming `what` when `exc` is an OSError of the machine, else None."""
    import errno
    import os

    if isinstance(exc, OSError) and exc.errno is not None and errno.errorcode.get(exc.errno) in _ENVIRONMENT_ERRNOS:
        where = f" ({exc.filename})" if exc.filename else ""
        return EnvironmentFault(f"{what}: {os.strerror(exc.errno)}{where}")
    return None


def is_source_fault(exc: BaseException) -> bool:
    """Whether a failure is the source's own (unreadable, unsupported, undecodable): only those leave a
    source out of the reel; anything else is the environment's or a bug, and fails the run."""
    if isinstance(exc, EnvironmentFault) or environment_fault(exc, "") is not None:
        return False
    return isinstance(exc, (InputError, RenderError))  # RenderError: ffmpeg could not decode it
