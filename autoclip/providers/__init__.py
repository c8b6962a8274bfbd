"""Pick the implementation of each brain from the settings."""

from __future__ import annotations

from autoclip.config import Settings
from autoclip.providers.base import LanguageModel, SpeechRecognizer, VisionDescriber
from autoclip.providers.local import HeuristicPlanner, WhisperRecognizer, resolve_whisper_model


def speech_recognizer(settings: Settings) -> SpeechRecognizer | None:
    """faster-whisper when a model is configured or bundled; None means speech/silence without text."""
    model = resolve_whisper_model(settings.whisper_model)
    return WhisperRecognizer(model, settings.whisper_compute_type) if model else None


def vision_describer(settings: Settings) -> VisionDescriber | None:
    """No offline vision model yet: shots go uncaptioned."""
    return None


def language_model(settings: Settings) -> LanguageModel:
    return HeuristicPlanner()
