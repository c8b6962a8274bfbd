"""Per-run callbacks: POST a JSON body signed with HMAC-SHA256 to the URL the caller gave, with bounded
retries. Plain Python (the flow's state hooks call it); a callback that cannot be delivered is reported
to the caller of `deliver`, never raised into the run."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from autoclip.config import Settings
from autoclip.errors import AutoclipError, ProviderError, TransientError
from autoclip.retry import RetryPolicy

SIGNATURE_HEADER = "X-Autoclip-Signature"
TIMESTAMP_HEADER = "X-Autoclip-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """'sha256=<hex>' of HMAC-SHA256 over '<timestamp>.<body>' (the timestamp stops replays)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, max_age: float = 300.0) -> bool:
    """What a receiver does: constant-time compare, and refuse stale timestamps."""
    if abs(time.time() - float(timestamp)) > max_age:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class Delivery:
    url: str
    delivered: bool
    attempts: int
    detail: str


def deliver(url: str, payload: dict, secret: str | None, settings: Settings) -> Delivery:
    """POST `payload` to `url` (checked like a download URL), retrying timeouts, 429 and 5xx."""
    from autoclip.sources.http import redact_url, vet_url

    shown = redact_url(url)
    body = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    attempts = 0

    def once() -> str:
        nonlocal attempts
        attempts += 1
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": "auto-clip", TIMESTAMP_HEADER: timestamp}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=settings.http_read_timeout) as reply:
                return f"HTTP {reply.status}"
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise TransientError(f"HTTP {exc.code}") from None
            raise ProviderError(f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise TransientError(f"{getattr(exc, 'reason', exc)}") from None

    try:
        vet_url(url, settings)
        policy = RetryPolicy(attempts=settings.callback_attempts, base_delay=settings.retry_base_delay,
                             max_delay=settings.retry_max_delay)
        detail = policy.call(f"callback to {shown}", once)
        return Delivery(shown, True, attempts, detail)
    except AutoclipError as exc:
        return Delivery(shown, False, attempts, str(exc))
