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
