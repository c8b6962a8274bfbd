"""Issue 11 end to end: `autoclip run` against the DashScope stand-in on a real Prefect server. A stalled
speech websocket does not keep the process alive; a refused key stops the run before any work; every
fallback reaches the plan JSON, the markdown artifact, the run's logs and the CLI summary; an analysis
made with a fallback is not served from the cache again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from autoclip.config import get_settings
from tests import synth
from tests.dashscope_standin import STANDIN_KEY, standin_settings, stall, status, task_failed

pytestmark = pytest.mark.slow
KEY = STANDIN_KEY
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def ds(standin, monkeypatch, tmp_path):
    return standin_settings(standin, monkeypatch, tmp_path, AUTOCLIP_RETRY_ATTEMPTS="1",
                            AUTOCLIP_WHISPER_MODEL="none")


def _cli(*args: str):
    from autoclip.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_a_stalled_speech_websocket_does_not_keep_the_process_alive(ds, standin, prefect_server, tmp_path):
    video = synth.two_shots(tmp_path / "stall.mp4", seconds=6.4)  # fresh content: no cached analysis
    standin.script("asr-ws", *[stall()] * 4)
    out = tmp_path / "reel.mp4"
    cmd = [sys.executable, "-m", "autoclip.cli", "run", str(video), "--duration", "4", "-o", str(out),
           "--width", "320", "--height", "180"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                            cwd=str(ROOT))
    summary_at: list[float] = []
    lines: list[str] = []

    def read():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("reel:"):
                summary_at.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    exited_at = time.monotonic()
    reader.join(5)
    stderr = proc.stderr.read()
    assert code == 0, stderr[-3000:]
    stalled = [e for e in standin.log if e["kind"] == "asr-ws"]
    assert stalled and stalled[0]["status"] in ("stalled", 499)
    limit = 2 + 6.4 * 1.5  # AUTOCLIP_REQUEST_TIMEOUT + 1.5 x the audio
    gave_up = next(e["at"] for e in standin.log if e["kind"] == "vision") - stalled[0]["at"]
    assert gave_up <= limit + 5, gave_up  # speech gave up on time; vision came next
    assert summary_at and exited_at - summary_at[0] <= 10, exited_at - summary_at[0]
    text = "".join(lines)
    assert "fallback:" in text and "no result within" in text
    print(f"\nstalled websocket: gave up after {gave_up:.1f} s (limit {limit:.1f} s); process exited "
          f"{exited_at - summary_at[0]:.1f} s after the summary; whole run {exited_at - started:.1f} s")


def test_every_fallback_is_shown_and_a_degraded_analysis_is_done_again(ds, standin, prefect_server, tmp_path):
    video = synth.two_shots(tmp_path / "fallback.mp4", seconds=6.6)
    standin.script("asr-ws", task_failed("model overloaded"))
    standin.script("vision", status(400, "DataInspectionFailed"))
    out = tmp_path / "reel.mp4"
    args = ["run", str(video), "--duration", "4", "-o", str(out), "--width", "320", "--height", "180"]
    first = _cli(*args)
    assert first.exit_code == 0, first.output
    plan = json.loads(out.with_suffix(".plan.json").read_text())
    notes = plan["planner"]["notes"]
    speech = [n for n in notes if "speech fell back" in n and "model overloaded" in n]
    vision = [n for n in notes if "left uncaptioned" in n and "DataInspectionFailed" in n]
    assert speech and vision and all(n.startswith("fallback.mp4: ") for n in speech + vision)
    for note in speech + vision:  # the CLI summary
        assert f"fallback:  {note}"[:60] in first.output
    with get_client(sync_client=True) as client:
        run = client.read_flow_runs(limit=1, sort="START_TIME_DESC")[0]
        from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, LogFilter,
                                                    LogFilterFlowRunId)

        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
        time.sleep(1.0)  # logs reach the server in batches
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    markdown = next(a for a in artifacts if a.key == "auto-clip-plan").data
    assert all(note.replace("|", "/")[:60] in markdown for note in speech + vision)  # the Prefect artifact
    assert any("speech fell back" in log.message for log in logs)  # the run logger (Prefect UI)
    assert any("DataInspectionFailed" in log.message for log in logs)
    asked = len([e for e in standin.log if e["kind"] == "asr-ws"])

    second = _cli(*args)  # the cached analysis was made with a fallback: Paraformer is tried again
    assert second.exit_code == 0, second.output
    assert len([e for e in standin.log if e["kind"] == "asr-ws"]) == asked + 1
    notes2 = json.loads(out.with_suffix(".plan.json").read_text())["planner"]["notes"]
    assert any("analysed again" in n and "better provider worked" in n for n in notes2), notes2
    assert not any("speech fell back" in n for n in notes2)
    assert "analysed again" in second.output

    third = _cli(*args)  # a good analysis is cached as usual
    assert third.exit_code == 0, third.output
    assert len([e for e in standin.log if e["kind"] == "asr-ws"]) == asked + 1
    assert "analysis:  1 cached, 0 computed" in third.output and "fallback:" not in third.output


def test_a_key_refused_on_the_websocket_stops_the_run_without_a_local_fallback(ds, standin, prefect_server,
                                                                             tmp_path):
    video = synth.two_shots(tmp_path / "refused.mp4", seconds=5.8)
    standin.script("asr-ws", task_failed("Invalid API-key provided.", code="InvalidApiKey"))
    result = _cli("run", str(video), "--duration", "4", "-o", str(tmp_path / "r.mp4"))
    assert result.exit_code == 1
    assert "DashScope refused the key (" in result.output and "check DASHSCOPE_API_KEY" in result.output
    assert "every video failed analysis" not in result.output
    assert "text" not in standin.kinds()  # planning never started
    assert not (tmp_path / "r.mp4").exists()


def test_a_refused_key_is_found_before_any_work(ds, standin, prefect_server, tmp_path, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-wrong-key-789")
    get_settings.cache_clear()
    started = time.monotonic()
    result = _cli("run", str(synth.two_shots(tmp_path / "k.mp4", seconds=5.4)), "-o", str(tmp_path / "r.mp4"))
    assert result.exit_code == 1
    assert "DashScope refused the key (" in result.output and "check DASHSCOPE_API_KEY" in result.output
    assert "sk-wrong-key-789" not in result.output
    assert [e["kind"] for e in standin.log] == ["asr-poll"]  # one free request, nothing else
    print(f"\nrefused key: the run stopped after {time.monotonic() - started:.1f} s")
