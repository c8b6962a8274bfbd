"""The one retry policy for calls that leave the machine: exponential back-off with jitter, only for
faults a retry can fix (TransientError), a server's `Retry-After` honoured up to a cap, one log line per
retry; and the provider wait budget, which bounds how long a run may spend waiting on providers in total
(every try and every pause is charged), so a slow service ends in a loud fallback, not an hour-long run.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from autoclip import deadline
from autoclip.errors import ProviderError, TransientError

T = TypeVar("T")
log = logging.getLogger("autoclip.retry")


class RetryAfter(TransientError):
    """A transient fault whose server said how long to wait (HTTP 429/503 `Retry-After`)."""

    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message)
        self.retry_after = retry_after


class ProviderBudgetExceeded(ProviderError):
    """The run has spent its provider wait budget: the caller falls back (loudly) instead of waiting."""


def parse_retry_after(value) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds; an HTTP date counts from now)."""
    if value is None or str(value).strip() == "":
        return None
    try:
        return max(0.0, float(str(value).strip()))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(str(value)).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@dataclass
class ProviderBudget:
    """Seconds a run may spend waiting on providers, shared by every call of the run (thread-safe).
    Parallel waits are each charged, so the bound is conservative."""

    seconds: float | None
    spent: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def remaining(self) -> float | None:
        with self._lock:
            return None if self.seconds is None else max(0.0, self.seconds - self.spent)

    def charge(self, seconds: float) -> None:
        with self._lock:
            self.spent += max(0.0, seconds)

    def check(self, what: str) -> None:
        left = self.remaining()
        if left is not None and left <= 0:
            raise ProviderBudgetExceeded(f"{what}: the run's provider wait budget of {self.seconds:.0f} s "
                                         "(AUTOCLIP_PROVIDER_BUDGET) is used up")

    def timeout(self, own: float, what: str) -> float:
        """A call's timeout: its own, cut to what is left of the budget and of the run's deadline."""
        self.check(what)
        left = self.remaining()
        cut = own if left is None else min(own, left)
        limited = deadline.limit(cut, what)
        return max(0.1, limited if limited is not None else cut)


_runs: OrderedDict[str, ProviderBudget] = OrderedDict()
_runs_lock = threading.Lock()


def budget_for_run(run_id, seconds: float | None) -> ProviderBudget:
    """The budget of one run (by its id), shared by every task of the run in this process; a fresh one
    without an id. The newest 64 runs are remembered (a worker may run for days)."""
    if not run_id:
        return ProviderBudget(seconds)
    key = str(run_id)
    with _runs_lock:
        if key not in _runs:
            _runs[key] = ProviderBudget(seconds)
            while len(_runs) > 64:
                _runs.popitem(last=False)
        _runs.move_to_end(key)
        return _runs[key]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    @classmethod
    def from_settings(cls, settings) -> "RetryPolicy":
        return cls(settings.retry_attempts, settings.retry_base_delay, settings.retry_max_delay,
                   max_retry_after=settings.retry_after_max)

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Pause before try `attempt + 1` (attempt counts from 1): the server's Retry-After (capped) when
        it sent one, else exponential back-off with +-jitter."""
        asked = getattr(exc, "retry_after", None)
        if asked is not None:
            return min(float(asked), self.max_retry_after)
        base = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))

    def call(self, what: str, fn: Callable[[], T], sleep: Callable[[float], None] = time.sleep,
             budget: ProviderBudget | None = None) -> T:
        """Run `fn`; retry TransientError up to `attempts` tries; then raise ProviderError naming `what`.
        With a budget, every try and pause is charged to it, and none starts once it is used up."""
        for attempt in range(1, self.attempts + 1):
            if budget is not None:
                budget.check(what)
            started = time.monotonic()
            try:
                return fn()
            except TransientError as exc:
                if attempt == self.attempts:
                    raise ProviderError(f"{what}: gave up after {attempt} tries: {exc}") from exc
                pause = self.delay(attempt, exc)
                left = budget.remaining() if budget is not None else None
                if left is not None and left - (time.monotonic() - started) <= pause:
                    raise ProviderBudgetExceeded(
                        f"{what}: gave up after {attempt} tries, the provider wait budget of "
                        f"{budget.seconds:.0f} s (AUTOCLIP_PROVIDER_BUDGET) would run out: {exc}") from exc
                log.warning("%s: %s; try %d of %d in %.1f s%s", what, exc, attempt + 1, self.attempts, pause,
                            " (as the server asked)" if getattr(exc, "retry_after", None) is not None else "")
                sleep(pause)
            finally:
                if budget is not None:
                    budget.charge(time.monotonic() - started)
        raise AssertionError("unreachable")
