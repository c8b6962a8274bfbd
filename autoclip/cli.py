"""`autoclip` command line: run the flow in-process (or against PREFECT_API_URL), and check the set-up."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Optional

import typer

from autoclip.config import ClipOptions, get_settings
from autoclip.errors import AutoclipError
from autoclip.memory import limit_arenas

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn several raw videos into one short highlight reel.")


@app.command()
def run(
    sources: list[str] = typer.Argument(..., help="video files, globs or folders"),
    duration: float = typer.Option(60.0, "--duration", "-d", help="target reel length, seconds"),
    output: Path = typer.Option(Path("reel.mp4"), "--output", "-o", help="where to write the reel"),
    aspect: Optional[str] = typer.Option(None, help="output aspect such as 16:9, 9:16, 1:1 (long side 1280)"),
    width: int = typer.Option(1280, help="output width (ignored with --aspect)"),
    height: int = typer.Option(720, help="output height (ignored with --aspect)"),
    fps: float = typer.Option(30.0, help="output frame rate"),
    preset: str = typer.Option("veryfast", help="libx264 preset"),
    crf: int = typer.Option(23, help="libx264 CRF (lower is better quality)"),
    engine: str = typer.Option("ffmpeg", help="render engine: ffmpeg or moviepy"),
    max_parallel: Optional[int] = typer.Option(None, help="videos analysed at once"),
    webhook_url: Optional[str] = typer.Option(None, help="POST a signed JSON callback here when the run ends"),
    task_runner: str = typer.Option("thread", help="where analysis fans out: thread or dask"),
    dask_address: Optional[str] = typer.Option(None, help="join this Dask scheduler (tcp://host:8786)"),
    dask_workers: Optional[int] = typer.Option(None, help="worker processes of a local Dask cluster"),
    allow_output_among_inputs: bool = typer.Option(
        False, "--allow-output-among-inputs", help="write the reel even over a source or into a source folder"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show Prefect's log lines instead of the progress display"),
) -> None:
    """Make a highlight reel from SOURCES and print where the outputs are."""
    try:
        common = dict(target_duration=duration, fps=fps, preset=preset, crf=crf, engine=engine,
                      max_parallel_analysis=max_parallel)
        options = (ClipOptions.for_aspect(aspect, **common) if aspect
                   else ClipOptions(width=width, height=height, **common))
    except ValueError as exc:
        typer.secho(f"error: {_option_problem(exc, aspect)}", fg="red", err=True)
        raise typer.Exit(2)
    from rich.console import Console

    from autoclip import console as term
    from autoclip.deadline import run_deadline, run_timeout
    from autoclip.flows.auto_clip import auto_clip

    flow = auto_clip
    if task_runner != "thread" or dask_address:
        from autoclip.flows.runners import task_runner as make_runner

        flow = auto_clip.with_options(task_runner=make_runner("dask" if dask_address else task_runner,
                                                              address=dask_address, workers=dask_workers))
    if not webhook_url:  # no callback to send: no hook to run (nor its log lines)
        flow = flow.with_options()
        flow.on_completion_hooks, flow.on_failure_hooks, flow.on_crashed_hooks = [], [], []
    log_file = term.open_log_file(get_settings().cache_dir / "logs")
    log_handler = term.route_logs(log_file, verbose)
    screen = Console(stderr=True)
    display = term.LiveProgress(screen, enabled=not verbose)
    try:
        with display, run_deadline(run_timeout(), "the run (AUTOCLIP_RUN_TIMEOUT)"):
            term.start_temporary_server()
            result = flow(sources=list(sources), options=options, output=str(output), webhook_url=webhook_url,
                          allow_output_among_inputs=allow_output_among_inputs)
    except BaseException as exc:  # noqa: BLE001 - every way out is one line; the details go to the log
        _fail(exc, display, log_file, log_handler)
    typer.echo("")
    typer.secho(f"reel:      {result.reel}  ({result.duration:.1f} s, {result.clips} clips from "
                f"{result.sources_used} source(s))", fg="green")
    if result.reel_url:
        typer.echo(f"url:       {result.reel_url}")
    if result.reel_local and result.reel_local != result.reel:
        typer.echo(f"local:     {result.reel_local}")
    typer.echo(f"plan:      {result.plan}")
    if result.subtitles:
        typer.echo(f"subtitles: {result.subtitles}")
    typer.echo(f"analysis:  {result.analyses_cached} cached, {result.analyses_computed} computed")
    for d in result.duplicates:
        typer.secho(f"same file: {d.source} is {d.same_as}: used once", fg="yellow")
    for r in result.rejected:
        typer.secho(f"left out:  {r.source} ({r.stage}): {r.reason}", fg="yellow")
    for note in result.notes:  # every fallback and degradation (also in the plan and the run's log)
        typer.secho(f"fallback:  {note}", fg="yellow")


OPTION_NAMES = {"target_duration": "--duration", "width": "--width", "height": "--height", "fps": "--fps",
                "preset": "--preset", "crf": "--crf", "engine": "--engine", "max_parallel_analysis": "--max-parallel"}


def _option_problem(exc: ValueError, aspect: str | None) -> str:
    """One line per bad option, named as the user typed it, instead of pydantic's report."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = OPTION_NAMES.get(field, field)
        if aspect and field in ("width", "height"):
            name = f"--aspect {aspect} (its {field})"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{name} {error.get('input')!r}: {message[0].lower() + message[1:]}")
    return "; ".join(parts)


def _fail(exc: BaseException, display, log_file: Path, log_handler) -> None:
    """One line `error: <stage>: <cause>` on the terminal, the traceback in the log file; on SIGTERM or
    SIGINT also stop every ffmpeg, the workspace and the temporary server, then leave at once."""
    import logging
    import shutil

    from autoclip import console as term
    from autoclip.media.ffmpeg import stop_children

    if isinstance(exc, typer.Exit):
        raise exc
    interrupted = term.signal_name(exc)
    logging.getLogger("autoclip").error("run failed in %s", display.stage, exc_info=exc)
    log_handler.flush()
    if interrupted:
        stop_children()
        if display.workspace:
            shutil.rmtree(display.workspace, ignore_errors=True)
        typer.secho(f"error: {display.stage}: stopped by {interrupted}; nothing was published", fg="red", err=True)
        term.stop_temporary_servers()
        logging.shutdown()
        os._exit(130 if interrupted == "SIGINT" else 143)  # worker threads may still wait on the network
    cause = str(exc) if isinstance(exc, AutoclipError) else f"{type(exc).__name__}: {exc}"
    typer.secho(f"error: {display.stage}: {cause} (details: {log_file})", fg="red", err=True)
    raise typer.Exit(1)


automations_app = typer.Typer(help="Prefect automations (notifications) and concurrency limits.")
app.add_typer(automations_app, name="automations")


@automations_app.command("apply")
def automations_apply(file: Path = typer.Option(None, "--file", "-f", help="default: the automations.yaml shipped in autoclip/ops/")) -> None:
    """Create or update the automations, tag concurrency limits and the DashScope rate limit (idempotent)."""
    from autoclip.ops.automations import apply

    try:
        lines = apply(file) if file else apply()
    except (ValueError, LookupError, AutoclipError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1)
    for line in lines:
        typer.echo(line)


@app.command()
def status(run_id: str = typer.Argument(..., help="flow run id")) -> None:
    """State, progress and outputs of a run, from the Prefect API."""
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    try:
        flow_run_id = uuid.UUID(run_id)
    except ValueError:
        typer.secho(f"error: {run_id!r} is not a flow run id", fg="red", err=True)
        raise typer.Exit(2)
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(flow_run_id)
        except Exception as exc:  # noqa: BLE001 - ObjectNotFound or an unreachable API: say which
            typer.secho(f"error: cannot read flow run {run_id}: {exc}", fg="red", err=True)
            raise typer.Exit(1)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    state = run.state
    typer.echo(f"run:       {run.name} ({run.id})")
    typer.echo(f"state:     {state.name if state else 'unknown'}" + (f": {state.message}" if state and state.message else ""))
    by_key = {a.key: a for a in artifacts if a.key}
    if "auto-clip-progress" in by_key:
        progress = by_key["auto-clip-progress"]
        typer.echo(f"progress:  {progress.data:.0f}% ({progress.description or ''})")
    if "auto-clip-reel" in by_key:
        typer.echo(f"reel:      {by_key['auto-clip-reel'].data}")
    if "auto-clip-callback" in by_key:
        typer.echo(f"callback:  {by_key['auto-clip-callback'].description}")
    sources = (run.parameters or {}).get("sources")
    if sources:
        typer.echo(f"sources:   {', '.join(map(str, sources))}")
    if "auto-clip-plan" in by_key:  # the clip table with reasons, as the run recorded it
        typer.echo("")
        typer.echo(by_key["auto-clip-plan"].data)
    if state and state.is_failed():
        raise typer.Exit(1)


api_app = typer.Typer(help="The HTTP service: upload, start, follow and download reels (docs/api.md).")
app.add_typer(api_app, name="api")
keys_app = typer.Typer(help="API keys (stored hashed in AUTOCLIP_API_DATA_DIR).")
api_app.add_typer(keys_app, name="keys")


@api_app.command("serve")
def api_serve(host: str = typer.Option("127.0.0.1", help="address to listen on"),
              port: int = typer.Option(8000, help="port to listen on")) -> None:
    """Serve the API and the web page; runs go to the auto-clip deployment on PREFECT_API_URL."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        typer.secho("error: set PREFECT_API_URL to the Prefect server the workers use "
                    "(e.g. http://127.0.0.1:4200/api)", fg="red", err=True)
        raise typer.Exit(2)
    import uvicorn

    from autoclip.api.app import create_app

    try:
        application = create_app()
    except AutoclipError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2)
    typer.echo(f"auto-clip API on http://{host}:{port}/  (docs: /api/v1/docs)")
    uvicorn.run(application, host=host, port=port, log_level="info")


@keys_app.command("create")
def api_keys_create(name: str = typer.Argument(..., help="who or what the key is for")) -> None:
    """Create a key and print it once (only its hash is kept)."""
    from autoclip.api.store import Store

    key, secret = Store(get_settings().api_data_dir).create_key(name)
    typer.echo(f"id:   {key.id}\nname: {key.name}\nkey:  {secret}")
    typer.secho("keep the key now: it is not shown again", fg="yellow", err=True)


@keys_app.command("list")
def api_keys_list() -> None:
    """Every key: id, name, created, revoked."""
    import datetime

    from autoclip.api.store import Store

    def when(t):
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if t else "-"

    keys = Store(get_settings().api_data_dir).keys()
    typer.echo(f"{'id':<13} {'name':<24} {'created':<21} revoked")
    for key in keys:
        typer.echo(f"{key.id:<13} {key.name:<24} {when(key.created):<21} {when(key.revoked)}")


@keys_app.command("revoke")
def api_keys_revoke(key_id: str = typer.Argument(..., help="the key's id (from `autoclip api keys list`)")) -> None:
    """Revoke a key: its requests are refused from now on."""
    from autoclip.api.store import Store

    if not Store(get_settings().api_data_dir).revoke(key_id):
        typer.secho(f"error: no active key with id {key_id}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@app.command()
def doctor() -> None:
    """Report the ffmpeg, PyAV, Prefect and speech-model set-up."""
    ok = True

    def line(name: str, good: bool, text: str) -> None:
        nonlocal ok
        ok &= good
        typer.secho(f"{'ok ' if good else 'BAD'} {name:<10} {text}", fg="green" if good else "red")

    settings = get_settings()
    try:
        from autoclip.media.ffmpeg import ffmpeg_binary

        binary = ffmpeg_binary()
        version = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=30)
        line("ffmpeg", version.returncode == 0, f"{binary} ({version.stdout.split(chr(10))[0]})")
    except (AutoclipError, OSError, subprocess.SubprocessError) as exc:
        line("ffmpeg", False, str(exc))
    try:
        import av

        line("pyav", True, f"av {av.__version__}, FFmpeg libraries {av.ffmpeg_version_info}")
    except ImportError as exc:
        line("pyav", False, str(exc))
    import prefect
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    line("prefect", True, f"prefect {prefect.__version__}; "
         + (f"server {api}" if api else "no PREFECT_API_URL: runs start a temporary local server"))
    from autoclip.providers.whisper import speech_report

    for name, good, text in speech_report(settings.whisper_model, settings.cache_dir, settings.language,
                                          settings.chinese_script):
        line(name, good, text)
    from autoclip.planning import meaning

    if meaning.wanted(settings.judge):
        judge = f"offline planner judges talk by theme terms and meaning ({meaning.MODEL}, {meaning.PACKAGE})"
    elif meaning.available():
        judge = "offline planner judges talk by theme terms only (AUTOCLIP_JUDGE=words)"
    else:
        judge = "offline planner judges talk by theme terms only; pip install 'auto-clip[judge]' for meaning too"
    line("judge", True, judge)
    has_key = bool(settings.dashscope_api_key and settings.dashscope_api_key.get_secret_value())
    stages = ", ".join(f"{stage}={settings.stage_provider(stage, has_key)}" for stage in ("speech", "vision", "text"))
    line("providers", True, f"{stages}; DashScope key in environment: {'set' if has_key else 'not set'} "
         f"(a DashScopeCredentials block named '{settings.dashscope_block}' is used when it exists)")
    line("settings", True, f"max size {settings.max_video_size} B, formats {','.join(settings.supported_formats)}, "
         f"parallel {settings.max_parallel_analysis}, storage {settings.storage_backend}")
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    # Prefect's anonymous usage telemetry races its own start-up on a temporary server and prints
    # "database is locked" noise; keep it off unless the user asked for it.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # SIGTERM outside a flow run ends the process as SIGINT would (Prefect takes SIGTERM over inside one)
    signal.signal(signal.SIGTERM, _terminate)
    limit_arenas()
    app()


def _terminate(signum, frame) -> None:
    from prefect.exceptions import TerminationSignal

    raise TerminationSignal(signum)


if __name__ == "__main__":
    main()
