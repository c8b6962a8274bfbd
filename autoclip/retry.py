"""The one retry policy for calls that leave the machine: exponential back-off with jitter, only for
faults a retry can fix (TransientError); anything else is raised at once."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from autoclip.errors import ProviderError, TransientError

T = TypeVar("T")
log = logging.getLogger("autoclip.retry")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5

    @classmethod
    def from_settings(cls, settings) -> "RetryPolicy":
        return cls(settings.retry_attempts, settings.retry_base_delay, settings.retry_max_delay)

    def delay(self, attempt: int) -> float:
        """Back-off before try `attempt + 1` (attempt counts from 1), with +-jitter."""
        base = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))

    def call(self, what: str, fn: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
        """Run `fn`; retry TransientError up to `attempts` tries; then raise ProviderError naming `what`."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except TransientError as exc:
                if attempt == self.attempts:
                    raise ProviderError(f"{what}: gave up after {attempt} tries: {exc}") from exc
                pause = self.delay(attempt)
                log.warning("%s: %s; try %d of %d in %.1f s", what, exc, attempt + 1, self.attempts, pause)
                sleep(pause)
        raise AssertionError("unreachable")
