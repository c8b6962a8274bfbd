"""The whole flow on a real Prefect server: bad files are left out with reasons, the reel is made from the
rest, artifacts are recorded, failed runs leave nothing behind, and a re-run is served from the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from autoclip.config import ClipOptions
from autoclip.errors import InputError
from autoclip.flows.auto_clip import auto_clip
from autoclip.media.probe import probe
from tests import synth

pytestmark = pytest.mark.slow
SMALL = dict(width=320, height=180, fps=25)


def _artifacts(flow_run_id):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in found}


def test_bad_files_are_left_out_and_the_reel_is_made_from_the_rest(prefect_server, media, tmp_path):
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    good = [media.two_shots, media.no_audio, media.rotated, media.anamorphic, media.one_second]
    bad = [media.fake, media.empty, media.truncated, media.audio_only, media.wrong_ext,
           tmp_path / "missing.mp4", empty_dir]
    out = tmp_path / "out" / "reel.mp4"
    state = auto_clip(sources=[str(p) for p in good + bad], options=ClipOptions(target_duration=8, **SMALL),
                      output=str(out), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()

    reasons = {r.source: r.reason for r in result.rejected}
    assert set(reasons) == {str(p) for p in bad}
    assert "empty (0 bytes)" in reasons[str(media.empty)]
    assert "not a readable video file" in reasons[str(media.fake)]
    assert "truncated" in reasons[str(media.truncated)]
    assert "audio-only" in reasons[str(media.audio_only)]
    assert "unsupported format" in reasons[str(media.wrong_ext)]
    assert "does not exist" in reasons[str(tmp_path / "missing.mp4")]
    assert "contains no videos" in reasons[str(empty_dir)]

    info = probe(out)
    assert result.reel == str(out.resolve())
    assert info.duration == pytest.approx(result.duration, abs=0.05) and 6.5 <= info.duration <= 8.2
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 320, 180)
    plan = json.loads(Path(result.plan).read_text())
    assert len({c["source"] for c in plan["clips"]}) >= 3
    assert plan["planner"]["heuristic"] is True and "Heuristic planner" in plan["theme"]["summary"]
    assert {r["source"] for r in plan["rejected"]} == {str(p) for p in bad}
    assert sorted(p.name for p in out.parent.iterdir()) == ["reel.mp4", "reel.plan.json"]  # no speech: no SRT

    artifacts = _artifacts(state.state_details.flow_run_id)
    assert artifacts["auto-clip-progress"].data == 100
    table = artifacts["auto-clip-plan"].data
    assert "| # | source | in | out | length | reason |" in table
    assert all(c["name"] in table for c in plan["clips"]) and "notes.mp4" in table


def test_a_run_with_only_bad_inputs_fails_and_writes_nothing(prefect_server, media, tmp_path):
    out = tmp_path / "reel.mp4"
    workspaces = Path(os.environ["AUTOCLIP_WORKSPACE_DIR"])
    before = set(workspaces.iterdir()) if workspaces.exists() else set()  # (other runs of the session may
    with pytest.raises(InputError, match="no usable video") as caught:  # still hold theirs)
        auto_clip(sources=[str(media.fake), str(media.empty)], output=str(out))
    assert "notes.mp4" in str(caught.value) and "empty.mp4" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    assert not workspaces.exists() or set(workspaces.iterdir()) <= before  # this run's workspace is gone


def test_second_run_is_served_from_the_analysis_cache(prefect_server, tmp_path):
    # fresh content, so the first run cannot hit a cache left by another test
    first_src = synth.two_shots(tmp_path / "a.mp4", seconds=5.2)
    second_src = synth.lavfi(tmp_path / "b.mp4", "testsrc=s=320x180:r=25", 4.4, audio="sine=f=700:d=4.4")
    sources = [str(first_src), str(second_src)]
    options = ClipOptions(target_duration=5, **SMALL)
    first = auto_clip(sources=sources, options=options, output=str(tmp_path / "one.mp4"))
    second = auto_clip(sources=sources, options=options, output=str(tmp_path / "two.mp4"))
    assert (first.analyses_computed, first.analyses_cached) == (2, 0)
    assert (second.analyses_computed, second.analyses_cached) == (0, 2)
    def cuts(result):
        return [(c["source"], c["start"], c["end"]) for c in json.loads(Path(result.plan).read_text())["clips"]]

    assert cuts(first) == cuts(second) and len(cuts(first)) == 2


def test_one_second_video_makes_a_one_second_reel(prefect_server, media, tmp_path):
    result = auto_clip(sources=[str(media.one_second)], options=ClipOptions(target_duration=30, **SMALL),
                       output=str(tmp_path / "short.mp4"))
    assert result.duration == pytest.approx(1.0, abs=0.1) and result.clips == 1


def test_speech_is_transcribed_and_written_as_srt(prefect_server, sample_speech, tmp_path):
    result = auto_clip(sources=[str(sample_speech)], options=ClipOptions(target_duration=12, **SMALL),
                       output=str(tmp_path / "talk.mp4"))
    srt = Path(result.subtitles).read_text()
    assert srt.startswith("1\n00:00:00,") and "-->" in srt
    plan = json.loads(Path(result.plan).read_text())
    spoken = " ".join(c["reason"] for c in plan["clips"]).lower()
    assert "speech" in spoken
    assert 10.5 <= result.duration <= 12.05


def test_cli_acceptance_on_real_rotated_anamorphic_and_silent_videos(prefect_server, shared_media, tmp_path):
    """The rotated phone clip, the documentary and the 139 s clip without audio at 30 s: a 30 +- 1 s reel."""
    sources = [shared_media / "pyscenedetect_issue134_goldeneye_rotated.mp4",
               shared_media / "pyscenedetect_issue195_documentary_speech.mp4",
               shared_media / "intel_one_by_one_person_139s_noaudio.mp4"]
    out = tmp_path / "reel.mp4"
    cmd = [sys.executable, "-m", "autoclip.cli", "run", *map(str, sources), "--duration", "30", "-o", str(out)]
    # cache records of its own: other tests of the session analyse some of the same files
    env = {**os.environ, "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(tmp_path / "results")}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    info = probe(out)
    assert 29 <= info.duration <= 31
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.sample_aspect_ratio, info.rotation) == (1280, 720, 1.0, 0)
    plan = json.loads(out.with_suffix(".plan.json").read_text())
    assert len({c["video_index"] for c in plan["clips"]}) >= 2
    assert "reel:" in first.stdout and "3 computed" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "analysis:  3 cached, 0 computed" in second.stdout


def test_cli_reports_bad_input_without_a_traceback(prefect_server, media, tmp_path):
    run = subprocess.run([sys.executable, "-m", "autoclip.cli", "run", str(media.fake), "-o",
                          str(tmp_path / "r.mp4")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert "error:" in run.stderr and "notes.mp4: not a readable video file" in run.stderr
    assert not (tmp_path / "r.mp4").exists()


@pytest.mark.parametrize("args, says", [
    (["-d", "0"], "--duration 0.0: input should be greater than 0"),
    (["-d", "nan"], "--duration nan: input should be a finite number"),
    (["--crf", "99"], "--crf 99: input should be less than or equal to 51"),
    (["--aspect", "100:1"], "--aspect 100:1 (its height) 13: input should be greater than or equal to 16"),
    (["--preset", "bogus"], "--preset 'bogus': must be one of ultrafast"),
])
def test_cli_names_a_bad_option_in_one_line_before_any_work(media, tmp_path, args, says):
    """Found by an adversarial sweep: bad options printed pydantic's report with a link, and an unknown
    preset was refused by ffmpeg only after the analysis."""
    run = subprocess.run([sys.executable, "-m", "autoclip.cli", "run", str(media.one_second), *args, "-o",
                          str(tmp_path / "r.mp4")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and says in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "pydantic" not in run.stderr, run.stderr


def test_doctor_reports_the_set_up():
    run = subprocess.run([sys.executable, "-m", "autoclip.cli", "doctor"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout
    for name in ("ffmpeg", "pyav", "prefect", "speech", "judge"):
        assert f"ok  {name}" in run.stdout
