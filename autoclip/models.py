"""Data that travels between stages: small, JSON-serialisable, paths and numbers only (never frames)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MediaInfo(BaseModel):
    """What PyAV tells about a file, normalised to what rendering needs."""

    duration: float
    format_name: str
    width: int
    height: int
    display_width: int = Field(description="width after sample aspect ratio and rotation")
    display_height: int
    rotation: int = Field(0, description="degrees the picture must turn to stand upright")
    sample_aspect_ratio: float = 1.0
    fps: float
    variable_frame_rate: bool = False
    video_codec: str
    has_audio: bool
    video_stream: int = Field(0, description="index of the moving-picture stream (a cover picture may come first)")
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None


class SourceVideo(BaseModel):
    """An ingested source: where it came from, its local copy for this run, and its probe."""

    index: int
    source: str
    name: str
    path: str
    sha256: str
    size_bytes: int
    info: MediaInfo


class Rejection(BaseModel):
    """A source left out of the reel, and why."""

    source: str
    stage: str
    reason: str


class Duplicate(BaseModel):
    """An input with the same content (sha256) as an earlier one: used once, under the earlier name."""

    source: str
    same_as: str


class Interval(BaseModel):
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


class Word(Interval):
    text: str


class Sentence(Interval):
    text: str
    words: list[Word] = Field(default_factory=list)


class Transcript(BaseModel):
    engine: str
    language: str | None = None
    sentences: list[Sentence] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.sentences).strip()


class ShotCaption(Interval):
    """What is on screen during a shot (from a vision model)."""

    caption: str
    tags: list[str] = Field(default_factory=list)


class VideoAnalysis(BaseModel):
    """Everything the planner needs about one video; keyed by content, so it is cached across runs."""

    sha256: str
    duration: float = Field(description="decodable duration, seconds")
    shot_cuts: list[float] = Field(default_factory=list, description="times where a new shot starts")
    activity: list[float] = Field(default_factory=list, description="mean scene change score per second")
    loudness_step: float = 0.25
    loudness_db: list[float] = Field(default_factory=list, description="RMS dBFS per loudness_step")
    flatness: list[float] = Field(default_factory=list, description="spectral flatness 0-1 per loudness_step: "
                                  "near 0 for a steady tone, mid for voices, high for noise such as applause")
    silences: list[Interval] = Field(default_factory=list)
    speech: list[Interval] = Field(default_factory=list, description="voiced (non-silent) stretches")
    transcript: Transcript | None = None
    captions: list[ShotCaption] = Field(default_factory=list)
    analysers: dict[str, str] = Field(default_factory=dict, description="stage -> engine that did it")
    usage: dict[str, Usage] = Field(default_factory=dict, description="model -> cost of this analysis")
    seconds: float = Field(0.0, description="wall time the analysis took")
    notes: list[str] = Field(default_factory=list, description="fallbacks and degradations, in words")
    degraded: bool = Field(False, description="a better provider failed: a later run analyses it again")


class Candidate(BaseModel):
    """A numbered moment the planner may pick. The model picks ids; code owns the times."""

    id: int
    video_index: int
    start: float
    end: float
    kind: str = Field("speech", description="speech, sound_event, visual_event, footage or quiet "
                                            "(planning/segments.py KINDS)")
    detail: str = Field("", description="what makes it that kind, e.g. 'loud burst +14 dB, noise-like'")
    text: str = ""
    caption: str = ""
    loudness_db: float = -90.0
    speech_ratio: float = 0.0
    activity: float = 0.0
    shot_cuts: int = 0

    @property
    def duration(self) -> float:
        return self.end - self.start


class VideoDigest(BaseModel):
    """A compact description of one video for pass 1 (theme)."""

    video_index: int
    name: str
    duration: float
    shots: int
    speech_ratio: float
    transcript_excerpt: str = ""
    captions: list[str] = Field(default_factory=list)
    language: str | None = Field(None, description="main language of the speech (ISO 639-1), when known")


class Theme(BaseModel):
    title: str
    summary: str
    keywords: list[str] = Field(default_factory=list)


class Pick(BaseModel):
    segment_id: int
    reason: str = ""


class Selection(BaseModel):
    picks: list[Pick]
    notes: list[str] = Field(default_factory=list, description="what the planner wants the plan to say, "
                             "e.g. which sources it left out and why")


class Usage(BaseModel):
    """What calls to one model cost: tokens, seconds of audio, and how many calls (cached ones cost nothing)."""

    input_tokens: int = 0
    output_tokens: int = 0
    audio_seconds: float = 0.0
    calls: int = 0
    cached_calls: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(input_tokens=self.input_tokens + other.input_tokens,
                     output_tokens=self.output_tokens + other.output_tokens,
                     audio_seconds=round(self.audio_seconds + other.audio_seconds, 3),
                     calls=self.calls + other.calls, cached_calls=self.cached_calls + other.cached_calls)


def as_cached(usage: dict[str, Usage]) -> dict[str, Usage]:
    """The same calls, answered from a cache this time: nothing spent."""
    return {model: Usage(cached_calls=u.calls + u.cached_calls) for model, u in usage.items()}


def add_usage(total: dict[str, Usage], more: dict[str, Usage]) -> dict[str, Usage]:
    """Sum per-model usage tables."""
    out = dict(total)
    for model, usage in more.items():
        out[model] = out.get(model, Usage()) + usage
    return out


class PlannerInfo(BaseModel):
    """Who planned: provider and model, and any fallback that happened (never silent)."""

    provider: str
    model: str
    heuristic: bool = False
    notes: list[str] = Field(default_factory=list)
    usage: dict[str, Usage] = Field(default_factory=dict, description="model -> tokens of pass 1 and 2")


class Clip(BaseModel):
    video_index: int
    source: str
    name: str
    path: str
    start: float
    end: float
    reason: str = ""
    segment_ids: list[int] = Field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.end - self.start


class EditPlan(BaseModel):
    """The edit decisions: what the reel is about and which moments make it, in order."""

    theme: Theme
    clips: list[Clip]
    target_duration: float
    planner: PlannerInfo
    candidates: int = 0
    rejected: list[Rejection] = Field(default_factory=list)
    duplicates: list[Duplicate] = Field(default_factory=list, description="inputs whose content was already in")
    usage: dict[str, Usage] = Field(default_factory=dict, description="model -> usage of the whole run")
    estimated_cost: float = Field(0.0, description="from AUTOCLIP_PRICES (CNY by default)")

    @property
    def duration(self) -> float:
        return sum(c.duration for c in self.clips)


class RunResult(BaseModel):
    """What a run returns: where the outputs are, and what happened on the way."""

    reel: str = Field(description="where the reel is: a local path or an s3:// / oss:// URI")
    reel_url: str | None = Field(None, description="presigned HTTPS URL when the reel is in object storage")
    reel_local: str | None = Field(None, description="local copy (local and hybrid backends)")
    plan: str
    subtitles: str | None = None
    duration: float
    clips: int
    sources_used: int
    rejected: list[Rejection] = Field(default_factory=list)
    duplicates: list[Duplicate] = Field(default_factory=list)
    analyses_cached: int = 0
    analyses_computed: int = 0
    estimated_cost: float = 0.0
    notes: list[str] = Field(default_factory=list, description="every fallback and degradation of the run")


class SelectionRequest(BaseModel):
    """Pass 2 input: the theme, the numbered candidates, and the time budget."""

    theme: Theme
    candidates: list[Candidate]
    videos: list[VideoDigest]
    target_duration: float
    min_clip: float = 1.5


VideoAnalysis.model_rebuild()
