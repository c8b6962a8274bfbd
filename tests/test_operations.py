"""Operating on Prefect: deploy from prefect.yaml, trigger over the REST API, a process worker runs it;
`autoclip status` reads it back; a render concurrency limit of 1 serialises renders across runs while
their analyses overlap."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from tests import synth

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _api(url: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"},
                                     method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def _prefect(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ))


def test_rest_trigger_runs_on_a_process_worker_and_status_reads_it(prefect_server, media, tmp_path, monkeypatch):
    # a deployment run reads and writes only under the configured roots (autoclip/flows/roots.py)
    monkeypatch.setenv("AUTOCLIP_SOURCE_ROOTS", str(media.two_shots.parent))
    monkeypatch.setenv("AUTOCLIP_OUTPUT_ROOT", str(tmp_path))
    assert _prefect("work-pool", "create", "auto-clip-process", "--type", "process", "--overwrite").returncode == 0
    deployed = _prefect("deploy", "--name", "auto-clip")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    # what the README's curl does: look the deployment up by name, then create a run with parameters
    deployment = _api(f"{prefect_server}/deployments/name/auto-clip/auto-clip")
    out = tmp_path / "rest-reel.mp4"
    run = _api(f"{prefect_server}/deployments/{deployment['id']}/create_flow_run", {
        "parameters": {"sources": [str(media.two_shots), str(media.no_audio)], "output": str(out),
                       "options": {"target_duration": 5, "width": 320, "height": 180, "fps": 25}}})
    worker = _prefect("worker", "start", "--pool", "auto-clip-process", "--run-once", timeout=400)
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run["id"]).state
    assert state.is_completed(), state.message
    assert state.message == str(out.resolve()) and out.exists()

    shown = subprocess.run([sys.executable, "-m", "autoclip.cli", "status", run["id"]], capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "state:     Completed" in shown.stdout and "progress:  100%" in shown.stdout
    assert f"reel:      [{out.resolve()}]" in shown.stdout  # the link artifact, as markdown
    assert "| # | source | in | out | length | reason |" in shown.stdout  # the clip table, as the docs promise


def test_render_limit_of_one_serialises_renders_while_analyses_go_on(prefect_server, tmp_path):
    from prefect.concurrency.sync import concurrency

    from autoclip.ops.automations import apply

    videos = [synth.lavfi(tmp_path / f"long{i}.mp4", "testsrc2=s=640x360:r=25", 20, audio=f"sine=f={300 + 90 * i}:d=20")
              for i in range(4)]
    outputs = [tmp_path / "reel0.mp4", tmp_path / "reel1.mp4"]
    limits = tmp_path / "limits.yaml"
    limits.write_text("concurrency:\n  tags:\n    render: 1\n")
    assert apply(limits) == ["created tag concurrency limit 'render' = 1"]  # the product's own path
    try:
        # hold the only render slot, as a long render of a third run would: both runs must still analyse
        with concurrency("tag:render", occupy=1):
            runs = [subprocess.Popen([sys.executable, "-m", "autoclip.cli", "run", *map(str, videos[2 * n:2 * n + 2]),
                                      "--duration", "10", "--width", "640", "--height", "360", "-o", str(outputs[n])],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (0, 1)]
            run_ids = _wait_for_analyses(outputs, deadline=time.monotonic() + 240)
            released = datetime.datetime.now(datetime.timezone.utc)
        for proc in runs:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err[-3000:]
    finally:
        with get_client(sync_client=True) as client:
            client.delete_concurrency_limit_by_tag("render")

    with get_client(sync_client=True) as client:
        def spans(run_id, name: str) -> list:
            return [(t.start_time, t.end_time) for t in client.read_task_runs(flow_run_filter=_by_id(run_id))
                    if t.name.startswith(name)]

        (a_start, a_end), = spans(run_ids[0], "render")
        (b_start, b_end), = spans(run_ids[1], "render")
        analysed = [spans(run_id, "analyze") for run_id in run_ids]
    assert all(end <= released for run in analysed for _, end in run)  # analyses ran while renders waited
    assert a_start >= released and b_start >= released
    assert a_end <= b_start or b_end <= a_start  # then one render after the other


def _wait_for_analyses(outputs, deadline: float) -> list:
    """The two runs' ids, once each has both analysis task runs completed."""
    from prefect.client.schemas.sorting import FlowRunSort

    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            recent = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=20)
            ids = [next((r.id for r in recent if (r.parameters or {}).get("output") == str(out)), None)
                   for out in outputs]
            if all(ids):
                done = [[t for t in client.read_task_runs(flow_run_filter=_by_id(i))
                         if t.name.startswith("analyze") and t.state and t.state.is_completed()] for i in ids]
                if all(len(d) == 2 for d in done):
                    return ids
        time.sleep(0.5)
    raise AssertionError("the two runs did not finish their analyses while the render slot was held")


def _by_id(run_id):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))


def test_dashscope_calls_share_one_rate_limit(prefect_server):
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from autoclip.tasks import stages

    stages._limit_seen.clear()
    stages.dashscope_throttle()  # asks the API once whether the limit exists (it does not)
    started = time.monotonic()
    for _ in range(4):
        stages.dashscope_throttle()  # no limit: straight through, without asking again
    assert time.monotonic() - started < 0.2
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
            name="dashscope", limit=1, slot_decay_per_second=4.0))
    try:
        stages._limit_seen.clear()
        stages.dashscope_throttle()  # finds the limit and takes its one slot
        started = time.monotonic()
        for _ in range(4):
            stages.dashscope_throttle()
        assert time.monotonic() - started >= 0.75  # each further call waits for the slot to refill (4/s)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name("dashscope")
        stages._limit_seen.clear()
