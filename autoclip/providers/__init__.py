"""Pick the implementation of each analyser and chat transport from the settings and the available keys."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from pydantic import SecretStr

from autoclip.config import Settings
from autoclip.providers.base import SpeechRecognizer, VisionDescriber
from autoclip.providers.whisper import WhisperRecognizer, resolve_whisper_model
from autoclip.retry import ProviderBudget, RetryPolicy


@dataclass(frozen=True)
class Secrets:
    """API keys for this process: from a Prefect block (resolved by the task layer) or the environment."""

    dashscope_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    throttle: Callable[[], None] | None = None  # the orchestrator's rate limit for DashScope calls
    budget: ProviderBudget | None = None  # the run's provider wait budget (shared by its tasks)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Secrets":
        return cls(settings.dashscope_api_key, settings.openai_api_key)

    def with_throttle(self, throttle: Callable[[], None] | None) -> "Secrets":
        return replace(self, throttle=throttle)

    def with_budget(self, budget: ProviderBudget | None) -> "Secrets":
        return replace(self, budget=budget)

    def wait_budget(self, settings: Settings) -> ProviderBudget:
        return self.budget or ProviderBudget(settings.provider_budget)

    def __repr__(self) -> str:  # never show keys, even masked ones' lengths
        return f"Secrets(dashscope={'set' if self.dashscope_api_key else 'unset'}, " \
               f"openai={'set' if self.openai_api_key else 'unset'})"


def _has_key(secrets: Secrets) -> bool:
    return bool(secrets.dashscope_api_key and secrets.dashscope_api_key.get_secret_value())


def _session(settings: Settings, secrets: Secrets):
    from autoclip.errors import ProviderAuthError
    from autoclip.providers.dashscope import DashScopeSession

    if not _has_key(secrets):
        raise ProviderAuthError("DashScope is selected but no API key is set: save a DashScopeCredentials "
                                f"block named '{settings.dashscope_block}' or set DASHSCOPE_API_KEY")
    return DashScopeSession(secrets.dashscope_api_key, settings.dashscope_base_url,
                            settings.dashscope_websocket_url, settings.request_timeout,
                            RetryPolicy.from_settings(settings), secrets.throttle, secrets.wait_budget(settings))


def preflight(settings: Settings, secrets: Secrets | None = None) -> None:
    """Before any expensive work: when a stage uses DashScope, one free request checks the key, so a
    refused key stops the run at once (ProviderAuthError) instead of after local speech recognition."""
    secrets = secrets or Secrets.from_settings(settings)
    if settings.preflight and any(settings.stage_provider(stage, _has_key(secrets)) == "dashscope"
                                  for stage in ("speech", "vision", "text")):
        _session(settings, secrets).preflight()


def _cache(settings: Settings):
    from autoclip.providers.chat import ResponseCache

    return ResponseCache(settings.cache_dir / "responses")


def stage_signature(settings: Settings, secrets: Secrets) -> str:
    """Which engines analysis uses; part of the analysis cache key."""
    speech = settings.stage_provider("speech", _has_key(secrets))
    vision = settings.stage_provider("vision", _has_key(secrets))
    if speech == "local":  # which Whisper model(s), by name and path: installing one changes results
        recognizer = local_speech(settings)
        speech += f"({recognizer.identity if recognizer else 'none'})"
    return f"speech={speech},vision={vision}"


def local_speech(settings: Settings) -> SpeechRecognizer | None:
    model = resolve_whisper_model(settings.whisper_model)
    return WhisperRecognizer(model, settings.whisper_compute_type, settings.cache_dir,
                             settings.chinese_script) if model else None


def speech_recognizer(settings: Settings, secrets: Secrets | None = None,
                      audio_url: Callable[[Path], str | None] | None = None) -> SpeechRecognizer | None:
    """Paraformer with DashScope; else faster-whisper when a model is configured or bundled; else None
    (speech/silence without text)."""
    secrets = secrets or Secrets.from_settings(settings)
    if settings.stage_provider("speech", _has_key(secrets)) == "dashscope":
        from autoclip.providers.dashscope import ParaformerRecognizer

        hints = [h.strip() for h in (settings.language or "").split(",") if h.strip()]
        return ParaformerRecognizer(_session(settings, secrets), settings.asr_realtime_model,
                                    settings.asr_file_model, hints, audio_url)
    return local_speech(settings)


def vision_describer(settings: Settings, secrets: Secrets | None = None) -> VisionDescriber | None:
    """qwen-vl-plus (or an OpenAI-compatible vision model); offline, shots go uncaptioned."""
    chat = chat_model(settings, secrets, "vision")
    if chat is None:
        return None
    from autoclip.providers.vision import ChatVisionDescriber

    return ChatVisionDescriber(chat, settings.vision_frames_per_call)


def chat_model(settings: Settings, secrets: Secrets | None, stage: str):
    """The chat transport (with the response cache) a stage uses: DashScope, OpenAI-compatible, or None
    when the stage runs offline."""
    secrets = secrets or Secrets.from_settings(settings)
    chosen = settings.stage_provider(stage, _has_key(secrets))
    if chosen == "local":
        return None
    from autoclip.providers.chat import CachedChat

    vision = stage == "vision"
    if chosen == "dashscope":
        from autoclip.providers.dashscope import DashScopeChat

        backend = DashScopeChat(_session(settings, secrets), settings.vision_model if vision else settings.text_model,
                                multimodal=vision)
    else:
        backend = _openai(settings, secrets, settings.openai_vision_model if vision else settings.openai_text_model)
    return CachedChat(backend, _cache(settings))


def _openai(settings: Settings, secrets: Secrets, model: str):
    from autoclip.providers.openai_compat import OpenAICompatChat

    key = secrets.openai_api_key or secrets.dashscope_api_key
    return OpenAICompatChat(settings.openai_base_url, key, model, settings.request_timeout,
                            RetryPolicy.from_settings(settings), secrets.wait_budget(settings))
