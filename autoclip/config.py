"""Settings (machine-wide, from the environment and `.env`) and ClipOptions (per run, a flow parameter)."""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# List prices in CNY of Alibaba Cloud Model Studio (Bailian, mainland China region, non-thinking mode,
# lowest tier) as published on its model pricing page when written (docs/providers.md says where and
# when). Set AUTOCLIP_PRICES to your contract's; a model missing here costs 0 in the estimate.
DEFAULT_PRICES = {
    "qwen-plus": {"input": 0.0008, "output": 0.002},
    "qwen-max": {"input": 0.0024, "output": 0.0096},
    "qwen-vl-plus": {"input": 0.0015, "output": 0.0045},
    "paraformer-v2": {"audio_second": 0.00008},
    "paraformer-realtime-v2": {"audio_second": 0.00024},
}
DEFAULT_FORMATS = ("mp4", "avi", "mov", "mkv", "flv", "wmv", "webm")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
               "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def parse_size(value: int | str) -> int:
    """Accept bytes as an int or a string such as '2GiB', '500 MB', '1048576'."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (use bytes or e.g. '500MB', '2GiB')")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


class Settings(BaseSettings):
    """Machine-wide knobs; every field can be set as AUTOCLIP_<NAME> in the environment or `.env`."""

    model_config = SettingsConfigDict(env_prefix="AUTOCLIP_", env_file=".env", extra="ignore")

    max_video_size: int = Field(2 * 1024**3, description="largest accepted source, bytes or '2GiB'")
    supported_formats: Annotated[tuple[str, ...], NoDecode] = DEFAULT_FORMATS
    max_parallel_analysis: int = Field(4, ge=1, le=64)
    storage_backend: Literal["local", "oss", "s3", "hybrid"] = Field(
        "local", description="local folder, object store (oss/s3), or hybrid: local first, then uploaded")
    output_uri: str | None = Field(None, description="s3://bucket/prefix or oss://bucket/prefix for outputs")
    results_uri: str | None = Field(None, description="s3:// or oss:// prefix for Prefect results and cache records")
    object_storage_block: str = Field("autoclip-storage", description="name of an ObjectStorage block to use")
    presign_expiry: int = Field(3600, ge=60, le=7 * 86400, description="seconds a presigned URL stays valid")
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AUTOCLIP_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"))
    s3_secret_access_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AUTOCLIP_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"))
    s3_addressing: Literal["auto", "virtual", "path"] = "auto"
    oss_endpoint: str | None = Field(None, description="e.g. https://oss-cn-hangzhou.aliyuncs.com")
    oss_region: str | None = None
    oss_access_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AUTOCLIP_OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_ID"))
    oss_access_key_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AUTOCLIP_OSS_ACCESS_KEY_SECRET", "OSS_ACCESS_KEY_SECRET"))
    oss_addressing: Literal["auto", "virtual", "path"] = "virtual"
    workspace_dir: Path = Path.home() / ".cache" / "autoclip" / "runs"
    provider: Literal["auto", "dashscope", "openai", "local"] = Field(
        "auto", description="auto = DashScope when a key is set, else local")
    speech_provider: Literal["", "auto", "dashscope", "local"] = Field("", description="default: provider")
    vision_provider: Literal["", "auto", "dashscope", "openai", "local"] = Field("", description="default: provider")
    text_provider: Literal["", "auto", "dashscope", "openai", "local"] = Field("", description="default: provider")

    dashscope_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AUTOCLIP_DASHSCOPE_API_KEY", "DASHSCOPE_API_KEY"))
    dashscope_block: str = Field("dashscope", description="name of a DashScopeCredentials block to use")
    dashscope_base_url: str = "https://dashscope.aliyuncs.com/api/v1"
    dashscope_websocket_url: str = "wss://dashscope.aliyuncs.com/api-ws/v1/inference"
    text_model: str = "qwen-plus"
    vision_model: str = "qwen-vl-plus"
    asr_file_model: str = "paraformer-v2"
    asr_realtime_model: str = "paraformer-realtime-v2"
    openai_base_url: str = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AUTOCLIP_OPENAI_API_KEY", "OPENAI_API_KEY"))
    openai_text_model: str = "qwen-plus"
    openai_vision_model: str = "qwen-vl-plus"
    request_timeout: float = Field(60.0, gt=0, description="seconds for one model request")
    retry_attempts: int = Field(4, ge=1, le=10, description="tries per model request (429, 5xx, timeouts)")
    retry_base_delay: float = Field(1.0, ge=0, description="first back-off, doubled each try, with jitter")
    retry_max_delay: float = Field(30.0, ge=0)
    retry_after_max: float = Field(60.0, ge=0, description="longest server-asked pause (Retry-After) honoured")
    provider_budget: float | None = Field(
        600.0, gt=0, description="seconds a run may spend waiting on providers in total (every try and "
                                 "pause of every call); then each stage falls back loudly. Unset: no bound")
    preflight: bool = Field(True, description="check the DashScope key with one free request before any work")
    vision_frames_per_call: int = Field(8, ge=1, le=32)
    selection_token_budget: int = Field(12000, ge=500, description="above this, pass 2 runs in windows")
    judge: Literal["auto", "words"] = Field(
        "auto", description="how the offline planner judges talk: auto = by theme terms and, when the `judge` "
                            "extra is installed, by meaning (a sentence-embedding model); words = terms only")
    prices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="estimated price per model: CNY per 1,000 input/output tokens, or per audio second")
    cache_dir: Path = Path.home() / ".cache" / "autoclip"

    callback_attempts: int = Field(3, ge=1, le=10, description="tries to deliver a per-run callback")
    webhook_secret_block: str = Field("autoclip-webhook-secret",
                                      description="Prefect Secret block holding the callback signing key")
    webhook_secret: SecretStr | None = Field(None, description="signing key when no Secret block is saved")
    http_connect_timeout: float = Field(10.0, gt=0, description="seconds to connect when downloading a URL")
    http_read_timeout: float = Field(30.0, gt=0, description="seconds without data before a download stalls")
    http_max_redirects: int = Field(5, ge=0, le=20)
    http_allow: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="hosts, IPs or CIDRs a URL may reach even though they are private/loopback")

    http_download_timeout: float = Field(3600.0, gt=0, description="seconds a whole http(s) download may take")
    callback_allow_unsigned: bool = Field(False, description="send callbacks without a signing key (else refused)")

    # --- the HTTP service (`autoclip api serve`, autoclip/api/) -----------------------------------
    api_data_dir: Path = Field(Path.home() / ".local" / "share" / "autoclip",
                               description="API keys, uploaded videos (local storage) and the signing key")
    output_root: Path | None = Field(None, description="where service and deployment runs write outputs; "
                                     "default: <api_data_dir>/outputs")
    upload_uri: str | None = Field(None, description="s3:// or oss:// prefix for uploads; unset: <api_data_dir>/videos")
    api_deployment: str = Field("auto-clip/auto-clip", description="the deployment a task starts a run of")
    api_rate_limit: int = Field(120, ge=1, description="requests per minute per API key")
    api_max_files: int = Field(20, ge=1, le=500, description="files in one upload request")
    api_cors_origins: Annotated[tuple[str, ...], NoDecode] = Field((), description="origins allowed by CORS; none: off")

    source_roots: Annotated[tuple[Path, ...], NoDecode] = Field(
        (), description="folders local sources of deployment runs may come from; default: <api_data_dir>/videos")

    def resolved_output_root(self) -> Path:
        return (self.output_root or self.api_data_dir / "outputs").expanduser().resolve()

    def resolved_source_roots(self) -> list[Path]:
        roots = self.source_roots or (self.api_data_dir / "videos",)
        return [Path(r).expanduser().resolve() for r in roots]
    # --- end of the HTTP service settings ---------------------------------------------------------

    whisper_model: str | None = Field(
        None, description="auto (per job: base detects the language per speech chunk, English-only footage "
                          "goes to tiny.en), base, tiny.en, none, or a local CTranslate2 model directory")
    whisper_compute_type: str = "int8"
    language: str | None = Field(None, description="speech language: 'zh' or 'en' fixes it, 'zh,en' limits "
                                                   "detection to those; unset: detected per speech chunk")
    chinese_script: Literal["simplified", "traditional", "original"] = Field(
        "simplified", description="characters of Chinese transcripts (OpenCC); 'original' keeps the model's")

    frame_interval: float = Field(2.0, gt=0, description="seconds between sampled frames")
    scene_threshold: float = Field(0.3, gt=0, lt=1, description="ffmpeg scene score that marks a cut")
    silence_db: float = Field(-40.0, description="windows quieter than this (dBFS) count as silence")

    ffmpeg_binary: str | None = Field(None, description="path to ffmpeg; default: the imageio-ffmpeg one")
    ffmpeg_timeout: float = Field(3600.0, gt=0, description="seconds before an ffmpeg process is killed")

    @field_validator("max_video_size", mode="before")
    @classmethod
    def _size(cls, value):
        return parse_size(value)

    @field_validator("supported_formats", mode="before")
    @classmethod
    def _formats(cls, value):
        return tuple(v.lower().lstrip(".") for v in _as_list(value))

    @field_validator("http_allow", "api_cors_origins", "source_roots", mode="before")
    @classmethod
    def _allow(cls, value):
        return tuple(_as_list(value))

    def stage_provider(self, stage: Literal["speech", "vision", "text"], has_dashscope_key: bool) -> str:
        """The provider a stage uses: its own setting, else AUTOCLIP_PROVIDER; 'auto' resolves by key."""
        chosen = getattr(self, f"{stage}_provider") or self.provider
        if chosen == "auto":
            chosen = "dashscope" if has_dashscope_key else "local"
        if stage == "speech" and chosen == "openai":
            chosen = "local"  # Paraformer has no OpenAI-compatible route
        return chosen

    def object_store(self, scheme: str):
        """ObjectStoreConfig for 's3' or 'oss' from these settings."""
        from autoclip.storage.objects import ObjectStoreConfig

        if scheme == "oss":
            return ObjectStoreConfig(provider="oss", endpoint_url=self.oss_endpoint, region=self.oss_region,
                                     access_key_id=self.oss_access_key_id,
                                     secret_access_key=self.oss_access_key_secret,
                                     addressing_style=self.oss_addressing)
        return ObjectStoreConfig(provider="s3", endpoint_url=self.s3_endpoint_url, region=self.s3_region,
                                 access_key_id=self.s3_access_key_id, secret_access_key=self.s3_secret_access_key,
                                 addressing_style=self.s3_addressing)

    def analysis_fingerprint(self) -> str:
        """What changes analysis results: part of the analysis cache key."""
        knobs = {k: getattr(self, k) for k in (
            "whisper_model", "whisper_compute_type", "language", "chinese_script", "frame_interval",
            "scene_threshold", "silence_db", "vision_model", "asr_file_model", "asr_realtime_model",
            "openai_vision_model", "vision_frames_per_call")}
        return hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:16]


def _as_list(value) -> list[str]:
    """A list from a JSON array or a comma-separated string (as env variables give them)."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("[") else value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing the env."""
    return Settings()


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


class ClipOptions(BaseModel):
    """Per-run choices: what reel to make. A flow parameter, so it must stay JSON-serialisable."""

    model_config = ConfigDict(allow_inf_nan=False)

    target_duration: float = Field(60.0, gt=0, le=3600, description="length of the reel in seconds")
    width: int = Field(1280, ge=16, le=7680, description="output width in pixels (even)")
    height: int = Field(720, ge=16, le=4320, description="output height in pixels (even)")
    fps: float = Field(30.0, gt=0, le=120, description="output frame rate")
    preset: str = Field("veryfast", description="libx264 preset")
    crf: int = Field(23, ge=0, le=51, description="libx264 constant rate factor")
    engine: Literal["ffmpeg", "moviepy"] = Field("ffmpeg", description="render engine")
    min_clip: float = Field(1.5, gt=0, description="shortest clip worth showing, seconds")
    max_clip: float = Field(8.0, gt=0, description="longest single clip, seconds")
    max_parallel_analysis: int | None = Field(None, ge=1, le=64,
                                              description="default: AUTOCLIP_MAX_PARALLEL_ANALYSIS")

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        return value - value % 2

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in X264_PRESETS:  # refused here, not by ffmpeg after the analysis
            raise ValueError(f"must be one of {', '.join(X264_PRESETS)}")
        return value

    @model_validator(mode="after")
    def _clip_bounds(self):
        if self.min_clip > self.max_clip:
            raise ValueError("min_clip must not exceed max_clip")
        return self

    @classmethod
    def for_aspect(cls, aspect: str, long_side: int = 1280, **kwargs) -> "ClipOptions":
        """Options for an aspect ratio such as '16:9', '9:16' or '1:1' with the given long side."""
        match = re.fullmatch(r"(\d+):(\d+)", aspect.strip())
        if not match or int(match.group(1)) == 0 or int(match.group(2)) == 0:
            raise ValueError(f"aspect must look like 16:9, got {aspect!r}")
        aw, ah = int(match.group(1)), int(match.group(2))
        if aw >= ah:
            width, height = long_side, round(long_side * ah / aw)
        else:
            width, height = round(long_side * aw / ah), long_side
        return cls(width=width, height=height, **kwargs)
