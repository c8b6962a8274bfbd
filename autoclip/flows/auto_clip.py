"""The main flow: ingest -> analyse (fan-out, cached) -> theme -> select -> render -> publish."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import (create_link_artifact, create_markdown_artifact, create_progress_artifact,
                               update_progress_artifact)
from prefect.states import Completed
from prefect.futures import as_completed
from prefect.runtime import flow_run

from autoclip.config import ClipOptions, get_settings
from autoclip.errors import InputError, is_source_fault
from autoclip.media.ffmpeg import stop_children
from autoclip.media.subtitles import reel_cues, to_srt
from autoclip.memory import drop_models
from autoclip.models import Duplicate, EditPlan, Rejection, RunResult, SourceVideo, VideoAnalysis, as_cached
from autoclip.sources import expand_sources
from autoclip.blocks import resolve_storage, results_storage
from autoclip.flows.hooks import send_callback
from autoclip.storage.outputs import destination
from autoclip.tasks.provider_faults import check_keys, raise_if_refused_key, redo_if_degraded
from autoclip.storage.preflight import claim_workspace, preflight, sweep_abandoned
from autoclip.tasks import events
from autoclip.tasks.stages import (analyze_video, decide_theme_task, ingest_source, publish_task, render_task,
                                   select_clips_task)


class Progress:
    """One progress artifact that moves through the stages (0-100)."""

    def __init__(self):
        self.id = create_progress_artifact(0.0, key="auto-clip-progress", description="auto-clip: starting")

    def __call__(self, percent: float, stage: str) -> None:
        update_progress_artifact(self.id, round(percent, 1), description=f"auto-clip: {stage}")
        get_run_logger().info("[%3.0f%%] %s", percent, stage)
        events.emit("stage", percent=percent, text=stage)


def _failure_reason(state) -> str:
    """Why a source is left out. Only a fault of the source itself leaves it out; anything else (a full
    disk, a killed tool, refused keys, a worker that died, a bug) is raised: it fails the run with its
    real cause instead of blaming a video."""
    if not state.is_final():  # e.g. a Dask worker died: its future ends without a final state
        raise RuntimeError(f"a task never finished ({state.name}): the worker running it stopped")
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, BaseException) and not is_source_fault(exc):
        raise exc
    if isinstance(exc, InputError):
        return exc.reason
    return str(exc) if isinstance(exc, BaseException) else (state.message or state.name)


def _unique(videos: list[SourceVideo]) -> tuple[list[SourceVideo], list[Duplicate]]:
    """One video per content: identical files, links and copies count once (the first given)."""
    first: dict[str, SourceVideo] = {}
    duplicates = []
    for video in videos:
        if video.sha256 in first:
            duplicates.append(Duplicate(source=video.source, same_as=first[video.sha256].source))
        else:
            first[video.sha256] = video
    return list(first.values()), duplicates


def _for_publication(plan: EditPlan, videos: list[SourceVideo], duplicates: list[Duplicate]) -> EditPlan:
    """The plan as published: clip paths name the sources (the workspace is gone by then), and inputs
    that were the same content as another are noted."""
    origin = {v.path: v.source if "://" in v.source else str(Path(v.source).expanduser().resolve())
              for v in videos}
    clips = [c.model_copy(update={"path": origin.get(c.path, c.source)}) for c in plan.clips]
    notes = [f"{d.source} has the same content as {d.same_as}: used once" for d in duplicates]
    planner = plan.planner.model_copy(update={"notes": plan.planner.notes + notes})
    return plan.model_copy(update={"clips": clips, "duplicates": duplicates, "planner": planner})


def _mark_crashed(run_id: str) -> None:
    """A run whose process was killed (-9, power loss) cannot end its own state: the next run that finds
    its workspace says Crashed for it, so it does not show Running for ever."""
    try:
        flow_run_id = uuid.UUID(run_id)
    except ValueError:
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
            if state is not None and not state.is_final():
                client.set_flow_run_state(flow_run_id, Crashed(
                    message="its process was killed; a later run found its workspace and removed it"), force=True)
    except Exception as exc:  # noqa: BLE001 - another server's run, or no API: nothing to correct here
        get_run_logger().info("could not mark run %s as crashed: %s", run_id, exc)


def _bounded(task, items: list, limit: int, **kwargs):
    """Submit `task` for each item with at most `limit` running; yield (item, final state) as they end."""
    futures = {}
    queue = list(items)
    while queue or futures:
        while queue and len(futures) < limit:
            item = queue.pop(0)
            futures[task.submit(item, **kwargs)] = item
        done = next(as_completed(list(futures)))
        done.wait()  # sets the future's final state; without it `.state` asks the API and may lag
        yield futures.pop(done), done.state


def clip_table(plan: EditPlan) -> str:
    lines = [f"# {plan.theme.title}", "", plan.theme.summary, "",
             f"Planner: {plan.planner.provider} / {plan.planner.model}"
             + (" (heuristic)" if plan.planner.heuristic else ""),
             f"Reel: {plan.duration:.1f} s of {plan.target_duration:.0f} s target, {len(plan.clips)} clips "
             f"from {plan.candidates} candidates", "",
             "| # | source | in | out | length | reason |", "|---|---|---|---|---|---|"]
    for n, clip in enumerate(plan.clips, 1):
        reason = clip.reason.replace("|", "/")
        lines.append(f"| {n} | {clip.name} | {clip.start:.2f} | {clip.end:.2f} | {clip.duration:.2f} | {reason} |")
    for note in plan.planner.notes:
        lines.append(f"\n> {note}")
    if plan.usage:
        lines += ["", "## Model usage", "", "| model | calls | cached | input tokens | output tokens | audio s |",
                  "|---|---|---|---|---|---|"]
        for model, used in sorted(plan.usage.items()):
            lines.append(f"| {model} | {used.calls} | {used.cached_calls} | {used.input_tokens} | "
                         f"{used.output_tokens} | {used.audio_seconds:.1f} |")
        lines.append(f"\nEstimated cost: {plan.estimated_cost:.4f} (AUTOCLIP_PRICES)")
    if plan.rejected:
        lines += ["", "## Left out", ""] + [f"- `{r.source}` ({r.stage}): {r.reason}" for r in plan.rejected]
    return "\n".join(lines)


@flow(name="auto-clip", description="Turn several videos into one short highlight reel.",
      on_completion=[send_callback], on_failure=[send_callback], on_crashed=[send_callback])
def auto_clip(sources: list[str], options: ClipOptions | None = None, output: str = "reel.mp4",
              webhook_url: str | None = None, allow_output_among_inputs: bool = False) -> RunResult:
    """Make a highlight reel of `sources` and write it to `output`.

    Args:
        sources: video files, folders, globs, http(s) links, s3:// or oss:// objects or prefixes.
        options: what reel to make (length, size, frame rate, encoder, engine).
        output: where the reel goes (a path, or a name under AUTOCLIP_OUTPUT_URI for object storage);
            `<name>.plan.json` and, with speech, `<name>.srt` go beside it.
        webhook_url: optional URL that gets a signed JSON POST when the run finishes.
        allow_output_among_inputs: write the reel even where it overwrites a source or where a folder or
            glob source would take it as an input next time (refused by default).
    """
    settings = resolve_storage(get_settings())
    # --- runs from a deployment read and write only under the configured roots (flows/roots.py, issue 12)
    from autoclip.flows.roots import confine, started_from_deployment

    if started_from_deployment():
        sources, output = confine(sources, output, settings)
    # --- end of the roots check
    options = options or ClipOptions()
    logger = get_run_logger()
    progress = Progress()
    target = destination(output, settings)  # a misconfigured backend fails now, not after the work
    preflight(sources, target, options, settings, allow_output_among_inputs)
    store = results_storage(settings)
    analyze = analyze_video.with_options(result_storage=store) if store else analyze_video
    if store:
        logger.info("task results and cache records: %s", store.uri)
    for abandoned in sweep_abandoned(settings.workspace_dir):
        logger.warning("removed the workspace of a run that was killed: %s", abandoned)
        _mark_crashed(abandoned.name)
    workspace = settings.workspace_dir / str(flow_run.get_id() or uuid.uuid4())
    check_keys()  # a refused provider key stops the run before any work
    claim_workspace(workspace)
    events.emit("workspace", path=str(workspace))
    try:
        events.emit("begin", stage="ingest")
        paths, rejected = expand_sources(sources, settings)
        videos: list[SourceVideo] = []
        states = {}
        futures = [(p, ingest_source.submit(p, i, str(workspace))) for i, p in enumerate(paths)]
        for path, future in futures:
            future.wait()
            states[path] = future.state
        for path, _ in futures:
            state = states[path]
            if state.is_completed():
                videos.append(state.result())
            else:
                rejected.append(Rejection(source=path, stage="ingest", reason=_failure_reason(state)))
        videos, duplicates = _unique(videos)
        for d in duplicates:
            logger.warning("%s has the same content as %s: used once", d.source, d.same_as)
        for r in rejected:
            logger.warning("left out %s: %s", r.source, r.reason)
        if not videos:
            raise InputError(", ".join(sources) or "(no sources)",
                             "no usable video: " + "; ".join(f"{r.source}: {r.reason}" for r in rejected))
        progress(10, f"ingested {len(videos)} video(s), {len(rejected)} left out")

        events.emit("begin", stage="analysis")
        limit = options.max_parallel_analysis or settings.max_parallel_analysis
        analyses: dict[int, VideoAnalysis] = {}
        cached = 0
        for video, state in _bounded(analyze, videos, limit, workspace=str(workspace)):
            state = redo_if_degraded(analyze, video, state, logger, workspace=str(workspace))
            if state.is_completed():
                analysis = state.result()
                if state.name == "Cached":  # its models were paid for by an earlier run
                    cached += 1
                    analysis = analysis.model_copy(update={"usage": as_cached(analysis.usage)})
                analyses[video.index] = analysis
            else:
                raise_if_refused_key(state)
                rejected.append(Rejection(source=video.source, stage="analysis",
                                          reason=_failure_reason(state)))
                logger.warning("left out %s: analysis failed: %s", video.source, rejected[-1].reason)
            events.emit("video", name=video.name, ok=video.index in analyses)
            progress(10 + 50 * (len(analyses) + 1) / (len(videos) + 1), f"analysed {video.name}")
        pairs = [(v, analyses[v.index]) for v in videos if v.index in analyses]
        if not pairs:
            raise InputError(", ".join(sources), "every video failed analysis: "
                             + "; ".join(f"{r.source}: {r.reason}" for r in rejected))
        logger.info("analysis: %d cached, %d computed", cached, len(pairs) - cached)
        drop_models()  # the speech model: planning and the render need none of it

        events.emit("begin", stage="planning")
        theme, info = decide_theme_task(pairs)
        progress(65, f"theme: {theme.title}")
        plan = select_clips_task(pairs, theme, info, options, rejected)
        progress(70, f"selected {len(plan.clips)} clips, {plan.duration:.1f} s")
        for note in plan.planner.notes:
            logger.warning("planner: %s", note)
        create_markdown_artifact(clip_table(plan), key="auto-clip-plan", description="chosen clips")
        drop_models()  # the planner's: the render beside ffmpeg is the run's peak

        events.emit("begin", stage="render")
        rendered = workspace / "render" / "reel.mp4"
        duration = render_task(plan, [v for v, _ in pairs], options, str(rendered), progress.id)
        progress(90, f"rendered {duration:.1f} s")

        events.emit("begin", stage="publish")
        cues = reel_cues(plan.clips, {v.index: a.transcript for v, a in pairs})
        files = [(str(rendered), "")]
        plan_file = workspace / "render" / "reel.plan.json"
        published_plan = _for_publication(plan, videos, duplicates)
        plan_file.write_text(json.dumps(published_plan.model_dump(mode="json"), indent=2, ensure_ascii=False),
                             encoding="utf-8")
        files.append((str(plan_file), ".plan.json"))
        if cues:
            srt_file = workspace / "render" / "reel.srt"
            srt_file.write_text(to_srt(cues), encoding="utf-8")
            files.append((str(srt_file), ".srt"))
        published = publish_task(files, output, str(settings.cache_dir / "unsent" / workspace.name))
        reel = published[0]
        progress(100, f"published {reel.uri}")
        create_link_artifact(reel.url or reel.uri, link_text=reel.uri, key="auto-clip-reel",
                             description="the reel")
        result = RunResult(reel=reel.uri, reel_url=reel.url, reel_local=reel.local, plan=published[1].uri,
                         subtitles=published[2].uri if cues else None, duration=round(duration, 3),
                         clips=len(plan.clips), sources_used=len({c.video_index for c in plan.clips}),
                         rejected=rejected, duplicates=duplicates, analyses_cached=cached,
                         analyses_computed=len(pairs) - cached, estimated_cost=plan.estimated_cost,
                         notes=plan.planner.notes)
        # the message is the reel's URI, so automations can put it in their notifications
        return Completed(message=reel.uri, data=result)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # SIGTERM, SIGINT: no ffmpeg of this process goes on
            stop_children()
        raise
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
