"""Estimated cost of a run from its per-model usage and a price table (AUTOCLIP_PRICES)."""

from __future__ import annotations

from autoclip.models import Usage


def estimate_cost(usage: dict[str, Usage], prices: dict[str, dict[str, float]]) -> float:
    """Prices per model: 'input'/'output' per 1,000 tokens, 'audio_second' per second of audio."""
    total = 0.0
    for model, used in usage.items():
        price = prices.get(model, {})
        total += used.input_tokens / 1000 * price.get("input", 0.0)
        total += used.output_tokens / 1000 * price.get("output", 0.0)
        total += used.audio_seconds * price.get("audio_second", 0.0)
    return round(total, 6)
