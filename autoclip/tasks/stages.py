"""The flow's stages as Prefect tasks. Each calls one function of the pure layers."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from autoclip.analysis import analysis_cache_key, analyze
from autoclip.config import ClipOptions, get_settings
from autoclip.media.render import render
from autoclip.models import (EditPlan, PlannerInfo, Rejection, SourceVideo, Theme, VideoAnalysis)
from autoclip.planning.segments import digest
from autoclip.planning.two_pass import decide_theme, plan_edit
from autoclip.providers import language_model
from autoclip.sources import ingest
from autoclip.tasks.policy import RETRY_DELAYS, retry_transient

_retrying = dict(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_jitter_factor=0.5,
                 retry_condition_fn=retry_transient)


@task(name="ingest", task_run_name="ingest {index}", tags=["ingest"], **_retrying)
def ingest_source(source: str, index: int, workspace: str) -> SourceVideo:
    return ingest(source, index, Path(workspace), get_settings())


def _analysis_key(context, parameters) -> str:
    return analysis_cache_key(parameters["video"].sha256, get_settings())


@task(name="analyze", task_run_name="analyze {video.name}", tags=["analysis"], cache_key_fn=_analysis_key,
      persist_result=True, **_retrying)
def analyze_video(video: SourceVideo, workspace: str) -> VideoAnalysis:
    return analyze(video, Path(workspace) / "analysis" / f"{video.index:03d}", get_settings())


@task(name="theme", tags=["planning"], **_retrying)
def decide_theme_task(pairs: list[tuple[SourceVideo, VideoAnalysis]]) -> tuple[Theme, PlannerInfo]:
    return decide_theme(language_model(get_settings()), [digest(v, a) for v, a in pairs])


@task(name="select", tags=["planning"], **_retrying)
def select_clips_task(pairs: list[tuple[SourceVideo, VideoAnalysis]], theme: Theme, info: PlannerInfo,
                      options: ClipOptions, rejected: list[Rejection]) -> EditPlan:
    return plan_edit(pairs, theme, info, language_model(get_settings()), target=options.target_duration,
                     min_clip=options.min_clip, max_clip=options.max_clip, rejected=rejected)


@task(name="render", tags=["render"])
def render_task(plan: EditPlan, videos: list[SourceVideo], options: ClipOptions, output: str) -> float:
    infos = {v.path: v.info for v in videos}
    return render(plan.clips, infos, options, Path(output)).duration
