"""The flow's stages as Prefect tasks. Each calls one function of the pure layers."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from uuid import UUID

from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError

from autoclip.analysis import analysis_cache_key, analyze
from autoclip.blocks import resolve_secrets, resolve_storage
from autoclip.config import ClipOptions, Settings, get_settings
from autoclip.media.render import render
from autoclip.models import EditPlan, PlannerInfo, Rejection, SourceVideo, Theme, VideoAnalysis, add_usage
from autoclip.planning.costs import estimate_cost
from autoclip.planning.segments import digest
from autoclip.planning.two_pass import decide_theme, plan_edit
from autoclip.planning.llm import language_model
from autoclip.providers import Secrets
from autoclip.sources import ingest
from autoclip.storage.outputs import Published, destination, publish_set
from autoclip.tasks import events
from autoclip.tasks.policy import RETRY_DELAYS, retry_transient
from autoclip.tasks.provider_faults import run_budget

_retrying = dict(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_jitter_factor=0.5,
                 retry_condition_fn=retry_transient)


_LIMIT_CHECK_SECONDS = 60.0
_limit_seen: dict[str, tuple[bool, float]] = {}


def _limit_exists(name: str) -> bool:
    """Whether the global limit exists, asked at most once a minute per process (a worker may run for days
    while someone applies the limits)."""
    known = _limit_seen.get(name)
    if known and time.monotonic() - known[1] < _LIMIT_CHECK_SECONDS:
        return known[0]
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(name)
        exists = True
    except Exception:  # noqa: BLE001 - not found (or no API): run unthrottled
        exists = False
        _logger().info("no '%s' rate limit (create it with `autoclip automations apply`); "
                              "DashScope calls are not throttled across runs", name)
    _limit_seen[name] = (exists, time.monotonic())
    return exists


def _logger():
    try:
        return get_run_logger()
    except MissingContextError:  # called outside a run (tests, scripts)
        return logging.getLogger("autoclip.tasks")


def dashscope_throttle() -> None:
    """Take a slot of the `dashscope` global rate limit shared by every run (created by
    `autoclip automations apply`), so many runs at once stay under the account's quota."""
    if _limit_exists("dashscope"):
        from prefect.concurrency.sync import rate_limit

        rate_limit("dashscope", occupy=1, strict=False)


def run_settings() -> tuple[Settings, Secrets]:
    """Settings with the storage block applied, and the keys (block or environment): read inside each
    task, so no secret is ever a parameter."""
    settings, secrets = resolve_secrets(resolve_storage(get_settings()))
    return settings, secrets.with_throttle(dashscope_throttle).with_budget(run_budget(settings))


@task(name="ingest", task_run_name="ingest {index}", tags=["ingest"], **_retrying)
def ingest_source(source: str, index: int, workspace: str) -> SourceVideo:
    return ingest(source, index, Path(workspace), run_settings()[0])


def _analysis_key(context, parameters) -> str:
    settings, secrets = run_settings()
    return analysis_cache_key(parameters["video"].sha256, settings, secrets)


@task(name="analyze", task_run_name="analyze {video.name}", tags=["analysis"], cache_key_fn=_analysis_key,
      persist_result=True, **_retrying)
def analyze_video(video: SourceVideo, workspace: str) -> VideoAnalysis:
    settings, secrets = run_settings()
    return analyze(video, Path(workspace) / "analysis" / f"{video.index:03d}", settings, secrets)


@task(name="theme", tags=["planning"], **_retrying)
def decide_theme_task(pairs: list[tuple[SourceVideo, VideoAnalysis]]) -> tuple[Theme, PlannerInfo]:
    model = language_model(*run_settings())
    return decide_theme(model, [digest(v, a) for v, a in pairs])


@task(name="select", tags=["planning"], **_retrying)
def select_clips_task(pairs: list[tuple[SourceVideo, VideoAnalysis]], theme: Theme, info: PlannerInfo,
                      options: ClipOptions, rejected: list[Rejection]) -> EditPlan:
    settings, secrets = run_settings()
    plan = plan_edit(pairs, theme, info, language_model(settings, secrets), target=options.target_duration,
                     min_clip=options.min_clip, max_clip=options.max_clip, rejected=rejected)
    usage = plan.planner.usage
    for _, analysis in pairs:
        usage = add_usage(usage, analysis.usage)
    return plan.model_copy(update={"usage": usage, "estimated_cost": estimate_cost(usage, settings.prices)})


def _render_progress(artifact_id):
    """The render's percent to the console and, every 5 %, to the run's progress artifact (70-90 %)."""
    from prefect.artifacts import update_progress_artifact

    last = [-1]

    def report(fraction: float) -> None:
        percent = int(fraction * 100)
        events.emit("render", percent=percent)
        if artifact_id and percent // 5 > last[0]:
            last[0] = percent // 5
            try:
                update_progress_artifact(artifact_id, 70 + 20 * fraction, description=f"auto-clip: rendering {percent}%")
            except Exception:  # noqa: BLE001 - progress is a courtesy; the render goes on
                pass

    return report


@task(name="render", tags=["render"])
def render_task(plan: EditPlan, videos: list[SourceVideo], options: ClipOptions, output: str,
                progress_id: UUID | None = None) -> float:
    infos = {v.path: v.info for v in videos}
    settings = get_settings()
    # the same cuts of the same content with the same options are not encoded twice (re-runs, resumes)
    return render(plan.clips, infos, options, Path(output), cache_dir=settings.cache_dir / "renders",
                  source_ids={v.path: v.sha256 for v in videos},
                  on_progress=_render_progress(progress_id)).duration


@task(name="publish", tags=["publish"])
def publish_task(files: list[tuple[str, str]], output: str, keep: str) -> list[Published]:
    """The (local file, suffix) pairs as one set beside the reel's destination, the reel first; `keep` is
    where finished files go when an upload fails and there is no local destination."""
    settings = run_settings()[0]
    return publish_set([(Path(local), suffix) for local, suffix in files], destination(output, settings),
                       settings, Path(keep))
