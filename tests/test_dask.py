"""Scale-out: the main flow on a Dask task runner sends each video's analysis to a worker process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autoclip.config import ClipOptions, get_settings
from autoclip.flows.runners import task_runner
from tests import synth

pytestmark = pytest.mark.slow


def test_task_runner_choices():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(task_runner(), ThreadPoolTaskRunner)
    assert task_runner("thread", workers=3)._max_workers == 3
    joined = task_runner("dask", address="tcp://127.0.0.1:8786")
    assert isinstance(joined, DaskTaskRunner) and joined.address == "tcp://127.0.0.1:8786"
    local = task_runner("dask", workers=3)
    assert local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["processes"] is True
    with pytest.raises(ValueError, match="unknown task runner"):
        task_runner("ray")
    with pytest.raises(ValueError, match="dask task runner"):
        task_runner("thread", address="tcp://127.0.0.1:8786")


def _ffmpeg_spy(folder: Path) -> tuple[Path, Path]:
    """An ffmpeg stand-in that logs the PID of the process that started it, then runs the real ffmpeg."""
    from autoclip.media.ffmpeg import ffmpeg_binary

    log = folder / "ffmpeg-calls.log"
    spy = folder / "ffmpeg-spy"
    spy.write_text(f'#!/bin/sh\nprintf "%s\\t%s\\n" "$PPID" "$*" >> "{log}"\nexec "{ffmpeg_binary()}" "$@"\n')
    spy.chmod(0o755)
    return spy, log


def test_analyses_run_in_two_dask_worker_processes(prefect_server, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from autoclip.flows.auto_clip import auto_clip

    # fresh content, so no cached analysis can stand in for the work
    first = synth.lavfi(tmp_path / "first.mp4", "testsrc2=s=320x180:r=25", 4, audio="sine=f=523:d=4")
    second = synth.lavfi(tmp_path / "second.mp4", "testsrc=s=320x180:r=25", 4)
    spy, log = _ffmpeg_spy(tmp_path)
    monkeypatch.setenv("AUTOCLIP_FFMPEG_BINARY", str(spy))  # Dask workers inherit the environment
    get_settings.cache_clear()

    flow = auto_clip.with_options(task_runner=task_runner("dask", workers=2))
    state = flow(sources=[str(first), str(second)], output=str(tmp_path / "reel.mp4"), return_state=True,
                 options=ClipOptions(target_duration=4, width=320, height=180, fps=25))
    assert state.is_completed(), state.message
    result = state.result()
    assert (result.analyses_computed, result.analyses_cached, result.sources_used) == (2, 0, 2)

    calls = [line.split("\t", 1) for line in log.read_text().splitlines()]
    analysis_pids = {int(pid) for pid, args in calls if "lavfi.scene_score" in args}
    render_pids = {int(pid) for pid, args in calls if "render" in args and "lavfi.scene_score" not in args}
    assert render_pids == {os.getpid()}  # the spy sees the flow's own process too ...
    assert len(analysis_pids) == 2 and os.getpid() not in analysis_pids  # ... and two other ones analysed

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    analyses = [r for r in runs if r.name.startswith("analyze ")]
    assert sorted(r.name for r in analyses) == ["analyze first.mp4", "analyze second.mp4"]
    assert all(r.state.is_completed() for r in analyses)
