"""The one deadline model: every wait on something outside the process (a download, object storage, a
provider, ffmpeg) has its own limit, and the run as a whole has one too. A wait asks `limit(own)` for
the seconds it may take, which is its own limit cut to what is left of the run; past the run's end,
`check` raises DeadlineExceeded (a TransientError is not what it is: retrying cannot help).

The run's deadline is a context variable, so pure code needs no parameter for it and threads started
with `contextvars.copy_context()` (as Prefect's task runner does) see the same one.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
from dataclasses import dataclass

from autoclip.errors import AutoclipError


class DeadlineExceeded(AutoclipError):
    """A wait ran past its limit or past the run's deadline."""


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time, with what it limits (for messages)."""

    at: float
    what: str

    @classmethod
    def after(cls, seconds: float, what: str) -> "Deadline":
        return cls(time.monotonic() + seconds, what)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at


_run_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("autoclip_run_deadline",
                                                                                default=None)


@contextlib.contextmanager
def run_deadline(seconds: float | None, what: str = "the run") -> Iterator[Deadline | None]:
    """Set the deadline of everything done inside (None: no overall limit). An inner, later deadline
    never extends an outer, earlier one."""
    outer = _run_deadline.get()
    inner = Deadline.after(seconds, what) if seconds else None
    chosen = min((d for d in (outer, inner) if d), key=lambda d: d.at, default=None)
    token = _run_deadline.set(chosen)
    try:
        yield chosen
    finally:
        _run_deadline.reset(token)


def current() -> Deadline | None:
    return _run_deadline.get()


def check(what: str) -> None:
    """Raise DeadlineExceeded naming `what` if the run's deadline has passed."""
    deadline = _run_deadline.get()
    if deadline is not None and deadline.expired:
        raise DeadlineExceeded(f"{what}: {deadline.what} ran out of time")


def limit(own: float | None, what: str) -> float | None:
    """Seconds a wait may take: its own limit, cut to what is left of the run (checked first)."""
    check(what)
    deadline = _run_deadline.get()
    if deadline is None:
        return own
    left = deadline.remaining()
    return left if own is None else min(own, left)


def run_timeout() -> float | None:
    """AUTOCLIP_RUN_TIMEOUT: seconds the whole run may take (unset, empty or 0: no overall limit)."""
    import os

    text = os.environ.get("AUTOCLIP_RUN_TIMEOUT", "").strip()
    try:
        seconds = float(text) if text else 0.0
    except ValueError:
        raise ValueError(f"AUTOCLIP_RUN_TIMEOUT={text!r} is not a number of seconds") from None
    return seconds if seconds > 0 else None
