"""The one retry policy: retry only what a retry can fix."""

from __future__ import annotations

from autoclip.errors import TransientError

RETRY_DELAYS = [2, 10, 30]


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (TransientError, ConnectionError, TimeoutError))


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: bad input, bad plans and tool bugs fail at once; blips are retried."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)
