"""Per-run callbacks: POST a JSON body signed with HMAC-SHA256 to the URL the caller gave (through the
downloader's SSRF guard), with bounded retries. Plain Python (the flow's state hooks call it); a callback that cannot be delivered is reported
to the caller of `deliver`, never raised into the run."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from autoclip.config import Settings
from autoclip.errors import AutoclipError
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


UNSIGNED_REFUSED = ("refused: no signing key. Save a Prefect Secret block named by "
                    "AUTOCLIP_WEBHOOK_SECRET_BLOCK (default 'autoclip-webhook-secret') or set "
                    "AUTOCLIP_WEBHOOK_SECRET; AUTOCLIP_CALLBACK_ALLOW_UNSIGNED=true sends unsigned callbacks")


def deliver(url: str, payload: dict, secret: str | None, settings: Settings) -> Delivery:
    """POST `payload` to `url` through the downloader's guard (addresses vetted and pinned, every
    redirect re-checked), retrying timeouts, 429 and 5xx. Without a signing key nothing is sent unless
    AUTOCLIP_CALLBACK_ALLOW_UNSIGNED says so: a receiver could not tell our callback from a forgery."""
    from autoclip.sources.http import post_json, redact_url

    shown = redact_url(url)
    if not secret and not settings.callback_allow_unsigned:
        return Delivery(shown, False, 0, UNSIGNED_REFUSED)
    body = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    attempts = 0

    def once() -> str:
        nonlocal attempts
        attempts += 1
        timestamp = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: timestamp}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        return post_json(url, body, headers, settings)

    try:
        policy = RetryPolicy(attempts=settings.callback_attempts, base_delay=settings.retry_base_delay,
                             max_delay=settings.retry_max_delay)
        detail = policy.call(f"callback to {shown}", once)
        return Delivery(shown, True, attempts, detail)
    except AutoclipError as exc:
        return Delivery(shown, False, attempts, str(exc))
