"""One measured job in its own process, so its start-up, memory and CPU are its own.

    python benchmarks/worker.py cli  RESULT.json -- run FILE... -o OUT [options]   # exactly `autoclip run`
    python benchmarks/worker.py loop RESULT.json OUT DURATION FILE...              # the same pure functions, plain loop
    python benchmarks/worker.py speech RESULT.json WAV                             # the speech model alone

Both write {"import": {wall, cpu}, "work": {wall, cpu}} to RESULT.json: the seconds spent importing and the
seconds of the job itself (CPU = this process plus the ffmpeg processes it waited for). Settings come from
the environment the benchmark sets (private Prefect home and result store, local providers only).
BENCH_RENDER_CACHE=DIR (benchmark only) wraps the render task's `render` call with `cache_dir=DIR`, to
measure the render cache before the flow passes it itself.
"""

from __future__ import annotations

import json
import resource
import sys
import time

_T0 = time.perf_counter()


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _phase(wall0: float, cpu0: float) -> dict:
    return {"wall": time.perf_counter() - wall0, "cpu": _cpu() - cpu0}


def _with_render_cache(folder: str) -> None:
    """Benchmark-only: what the flow would do with the render cache wired in (`render(..., cache_dir=)`
    from the render task). The product code is not changed; its module global is wrapped here."""
    from pathlib import Path

    import autoclip.tasks.stages as stages

    real = stages.render

    def render(*args, **kwargs):
        if "cache_dir" in kwargs:  # the product passes it already: leave it, and say so
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / ".product-passes-cache_dir").touch()
        kwargs.setdefault("cache_dir", Path(folder))
        return real(*args, **kwargs)

    stages.render = render


def cli(result: str, argv: list[str]) -> None:
    """`autoclip run ...` in this process: the console script's own entry point."""
    import os

    import autoclip.cli
    import autoclip.flows.auto_clip  # noqa: F401  (imported lazily by `run`; counted as start-up here)

    if os.environ.get("BENCH_RENDER_CACHE"):
        _with_render_cache(os.environ["BENCH_RENDER_CACHE"])

    imported = _phase(_T0, 0.0)
    imported["cpu"] = _cpu()  # everything this process used so far, interpreter start included
    wall0, cpu0 = time.perf_counter(), _cpu()
    sys.argv = ["autoclip", *argv]
    code = 0
    try:
        autoclip.cli.main()
    except SystemExit as exc:
        code = exc.code or 0
    work = _phase(wall0, cpu0)
    with open(result, "w") as handle:
        json.dump({"import": imported, "work": work, "exit": code, "returned_at": time.perf_counter() - _T0},
                  handle)
    sys.exit(code)


def loop(result: str, output: str, duration: float, files: list[str]) -> None:
    """The flow's work without Prefect: ingest, analyse, theme, select, render, write plan and subtitles,
    one video after another."""
    import tempfile
    from pathlib import Path

    from autoclip.analysis import analyze
    from autoclip.config import ClipOptions, get_settings
    from autoclip.media.render import render
    from autoclip.media.subtitles import reel_cues, to_srt
    from autoclip.planning.segments import digest
    from autoclip.planning.two_pass import decide_theme, plan_edit
    from autoclip.planning.llm import language_model
    from autoclip.providers import Secrets
    from autoclip.sources import ingest

    imported = _phase(_T0, 0.0)
    imported["cpu"] = _cpu()
    wall0, cpu0 = time.perf_counter(), _cpu()
    settings = get_settings()
    secrets = Secrets.from_settings(settings)
    options = ClipOptions(target_duration=duration)
    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix="loop-", dir=settings.workspace_dir))
    videos = [ingest(f, i, workspace, settings) for i, f in enumerate(files)]
    analyses = [analyze(v, workspace / "analysis" / f"{v.index:03d}", settings, secrets) for v in videos]
    pairs = list(zip(videos, analyses))
    model = language_model(settings, secrets)
    theme, info = decide_theme(model, [digest(v, a) for v, a in pairs])
    plan = plan_edit(pairs, theme, info, model, target=options.target_duration, min_clip=options.min_clip,
                     max_clip=options.max_clip, rejected=[])
    target = Path(output)
    render(plan.clips, {v.path: v.info for v in videos}, options, target)
    target.with_suffix(".plan.json").write_text(json.dumps(plan.model_dump(mode="json"), indent=2))
    cues = reel_cues(plan.clips, {v.index: a.transcript for v, a in pairs})
    if cues:
        target.with_suffix(".srt").write_text(to_srt(cues))
    import shutil

    shutil.rmtree(workspace, ignore_errors=True)
    work = _phase(wall0, cpu0)
    with open(result, "w") as handle:
        json.dump({"import": imported, "work": work, "exit": 0, "clips": len(plan.clips)}, handle)


def speech(result: str, wav: str) -> None:
    """Transcribe a WAV with autoclip's WhisperRecognizer (bundled model) and report wall, CPU and this
    process's peak RSS."""
    from pathlib import Path

    from autoclip.providers.whisper import WhisperRecognizer, resolve_whisper_model

    wall0, cpu0 = time.perf_counter(), _cpu()
    transcript = WhisperRecognizer(resolve_whisper_model("auto")).transcribe(Path(wav))
    work = _phase(wall0, cpu0)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    with open(result, "w") as handle:
        json.dump({"work": work, "peak_mb": peak, "words": sum(len(s.words) for s in transcript.sentences)},
                  handle)


if __name__ == "__main__":
    mode, result = sys.argv[1], sys.argv[2]
    if mode == "cli":
        args = sys.argv[3:]
        cli(result, args[1:] if args and args[0] == "--" else args)
    elif mode == "speech":
        speech(result, sys.argv[3])
    elif mode == "loop":
        loop(result, sys.argv[3], float(sys.argv[4]), sys.argv[5:])
    else:
        sys.exit(f"unknown mode {mode!r}")
