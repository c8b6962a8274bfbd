"""Fault injection: full disks, read-only outputs, killed tools, SIGTERM mid-render, duplicate inputs.
Faults of the machine fail the run with their cause and never leave a video out; nothing half-done stays."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from autoclip.config import ClipOptions, get_settings
from autoclip.errors import EnvironmentFault, InputError, is_source_fault
from autoclip.media.ffmpeg import FFmpegError, run_ffmpeg, running_children, stop_children
from autoclip.media.probe import probe
from autoclip.media.render import cache_key, render
from autoclip.models import Clip
from autoclip.storage.local import publish_file
from tests import synth

SMALL = dict(width=320, height=180, fps=25)


def _tmpfs(mount: Path, options: str):
    """Mount a tmpfs at `mount` (needs root and mount); skip with the reason when mounting is refused."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: a disk that fills."""
    yield from _tmpfs(tmp_path / "tiny", "size=256k")


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only tmpfs (root ignores permission bits, not a read-only mount)."""
    yield from _tmpfs(tmp_path / "ro", "ro,size=1m")


def _clip(path: Path, start: float, end: float) -> Clip:
    return Clip(video_index=0, source=str(path), name=path.name, path=str(path), start=start, end=end)


def test_a_full_disk_is_the_machines_fault_not_the_videos(media, tiny_disk):
    clips = [_clip(media.two_shots, 0, 6)]
    with pytest.raises(EnvironmentFault, match="full") as caught:
        render(clips, {str(media.two_shots): probe(media.two_shots)}, ClipOptions(**SMALL, crf=0, preset="ultrafast"),
               tiny_disk / "reel.mp4")
    assert not is_source_fault(caught.value)
    assert list(tiny_disk.iterdir()) == []  # no partial file left


def test_a_full_workspace_keeps_a_good_render_cache_entry(media, tmp_path, tiny_disk):
    clips = [_clip(media.two_shots, 0, 6)]
    infos = {str(media.two_shots): probe(media.two_shots)}
    options = ClipOptions(**SMALL, crf=0, preset="ultrafast")
    cache = tmp_path / "renders"
    render(clips, infos, options, tmp_path / "first.mp4", cache_dir=cache)
    kept = cache / f"{cache_key(clips, options)}.mp4"
    assert kept.stat().st_size > 256 * 1024  # bigger than the tiny disk
    with pytest.raises(EnvironmentFault):
        render(clips, infos, options, tiny_disk / "again.mp4", cache_dir=cache)
    assert kept.exists()


def test_a_killed_ffmpeg_is_an_environment_fault():
    failure = []

    def endless():
        try:
            run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x64:r=25", "-f", "null", "-"], what="analysing x.mp4")
        except Exception as exc:  # noqa: BLE001 - inspected below
            failure.append(exc)

    worker = threading.Thread(target=endless)
    worker.start()
    deadline = time.monotonic() + 10
    while not running_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = running_children()[0]
    os.kill(pid, signal.SIGKILL)  # as the OOM killer or an operator would
    worker.join(10)
    assert isinstance(failure[0], EnvironmentFault) and "killed by signal 9" in str(failure[0])
    assert not is_source_fault(failure[0]) and is_source_fault(FFmpegError("cannot decode"))
    assert stop_children() == 0


def test_the_run_deadline_stops_ffmpeg():
    from autoclip import deadline

    started = time.monotonic()
    with deadline.run_deadline(1.0), pytest.raises(deadline.DeadlineExceeded, match="AUTOCLIP_RUN_TIMEOUT"):
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x64:r=25", "-f", "null", "-"], what="rendering r.mp4")
    assert time.monotonic() - started < 5


def test_outputs_follow_the_umask_across_file_systems(tmp_path, tiny_disk):
    made = tiny_disk / "work.json"
    made.write_text("{}")
    os.chmod(made, 0o600)
    old = os.umask(0o022)
    try:
        publish_file(made, tmp_path / "out" / "reel.plan.json")
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "reel.plan.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.slow
def test_read_only_output_is_found_before_any_work(prefect_server, media, read_only_dir):
    from autoclip.flows.auto_clip import auto_clip

    started = time.monotonic()
    state = auto_clip(sources=[str(media.two_shots)], options=ClipOptions(target_duration=4, **SMALL),
                      output=str(read_only_dir / "reel.mp4"), return_state=True)
    assert state.is_failed()
    with pytest.raises(EnvironmentFault, match="not writable"):
        state.result()
    assert time.monotonic() - started < 20


@pytest.mark.slow
@pytest.mark.parametrize("name, says", [("folder", "is a folder"), ("reel.mkv", "ending in .mp4"),
                                        ("x" * 240 + ".mp4", "too long")])
def test_an_output_the_publish_could_not_write_is_refused_before_any_work(prefect_server, media, tmp_path,
                                                                         name, says):
    """Found by an adversarial sweep: a folder or a 240-character name as -o failed only when publishing,
    after analysis and render; -o reel.mkv wrote MP4 data under that name."""
    from autoclip.flows.auto_clip import auto_clip

    (tmp_path / "folder").mkdir()
    started = time.monotonic()
    with pytest.raises(InputError, match=says):
        auto_clip(sources=[str(media.two_shots)], options=ClipOptions(target_duration=4, **SMALL),
                  output=str(tmp_path / name))
    assert time.monotonic() - started < 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"] and not any((tmp_path / "folder").iterdir())


@pytest.mark.slow
def test_a_workspace_without_room_fails_the_run_in_preflight(prefect_server, media, tmp_path, tiny_disk, monkeypatch):
    from autoclip.flows.auto_clip import auto_clip

    monkeypatch.setenv("AUTOCLIP_WORKSPACE_DIR", str(tiny_disk / "runs"))
    get_settings.cache_clear()
    with pytest.raises(EnvironmentFault, match="MiB free"):
        auto_clip(sources=[str(media.two_shots)], options=ClipOptions(target_duration=4, **SMALL),
                  output=str(tmp_path / "reel.mp4"))
    assert not (tmp_path / "reel.mp4").exists()


@pytest.mark.slow
def test_duplicates_count_once_and_outputs_are_one_set(prefect_server, media, tmp_path):
    from autoclip.flows.auto_clip import auto_clip

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(media.two_shots, folder / "a.mp4")
    shutil.copyfile(media.two_shots, folder / "copy.mp4")     # same content, another inode
    (folder / "link.mp4").symlink_to(folder / "a.mp4")         # the same file through a link
    (folder / "loop").symlink_to(folder)                       # a symlink loop for the recursive glob
    shutil.copyfile(media.anamorphic, folder / "b.mp4")
    out = tmp_path / "out" / "reel.mp4"
    out.parent.mkdir()
    (out.parent / "reel.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nstale\n")  # an earlier run's
    state = auto_clip(sources=[str(folder / "**" / "*.mp4"), str(folder / "link.mp4")],
                      options=ClipOptions(target_duration=5, **SMALL), output=str(out), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    plan = json.loads(Path(result.plan).read_text())
    assert {Path(c["path"]).name for c in plan["clips"]} <= {"a.mp4", "b.mp4"}  # sources, not the workspace
    assert all(Path(c["path"]).exists() for c in plan["clips"])
    assert [d["source"] for d in plan["duplicates"]] == [str(folder / "copy.mp4")]
    assert any("same content" in n for n in plan["planner"]["notes"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["reel.mp4", "reel.plan.json"]  # stale SRT gone
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~_umask() for p in out.parent.iterdir())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.slow
def test_output_over_a_source_or_among_inputs_is_refused(prefect_server, media, tmp_path):
    from autoclip.flows.auto_clip import auto_clip

    folder = tmp_path / "in"
    folder.mkdir()
    source = folder / "a.mp4"
    shutil.copyfile(media.two_shots, source)
    before = source.read_bytes()
    with pytest.raises(InputError, match="is the source"):
        auto_clip(sources=[str(source)], options=ClipOptions(target_duration=4, **SMALL), output=str(source))
    with pytest.raises(InputError, match="next run"):
        auto_clip(sources=[str(folder)], options=ClipOptions(target_duration=4, **SMALL),
                  output=str(folder / "reel.mp4"))
    assert source.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["a.mp4"]


@pytest.mark.slow
def test_sigterm_mid_render_stops_everything_within_seconds(prefect_server, tmp_path):
    workspaces = tmp_path / "runs"
    out = tmp_path / "out" / "reel.mp4"
    env = {**os.environ, "AUTOCLIP_WORKSPACE_DIR": str(workspaces), "AUTOCLIP_CACHE_DIR": str(tmp_path / "cache")}
    proc = _start_slow_render(tmp_path, env, out, "--width", "1280", "--height", "720",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        render_pid = _wait_for_child_ffmpeg(proc.pid, "libx264", 120)
        assert render_pid, "the render never started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = proc.communicate(timeout=15)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 10, took
    assert proc.returncode == 143, err
    assert "error: render: stopped by SIGTERM" in err and "Traceback" not in err
    assert not _alive(render_pid)
    assert not out.exists() and not (out.parent.exists() and list(out.parent.iterdir()))
    assert not workspaces.exists() or list(workspaces.iterdir()) == []
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:  # the run itself ends Crashed, not Running
        run = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
    assert run.state.is_crashed() or run.state.is_cancelled(), run.state


def _children_of(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == pid:
                    found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _wait_for_child_ffmpeg(pid: int, marker: str, seconds: float) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for child, cmd in _children_of(pid):
            if "ffmpeg" in cmd and marker in cmd:
                return child
        time.sleep(0.2)
    return None


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


def _start_slow_render(tmp_path: Path, env: dict, out: Path, *extra: str, **popen) -> subprocess.Popen:
    """`autoclip run` of a 40 s video with a veryslow encode: long enough to act on it mid-render."""
    long = synth.lavfi(tmp_path / "long.mp4", "testsrc2=s=640x360:r=25", 40, audio="sine=f=440:d=40")
    return subprocess.Popen([sys.executable, "-m", "autoclip.cli", "run", str(long), "--duration", "30",
                             "--preset", "veryslow", *extra, "-o", str(out)], env=env, **popen)


@pytest.mark.slow
def test_kill_9_mid_render_takes_ffmpeg_along_and_the_next_run_sweeps_the_workspace(prefect_server, media, tmp_path):
    workspaces = tmp_path / "runs"
    env = {**os.environ, "AUTOCLIP_WORKSPACE_DIR": str(workspaces), "AUTOCLIP_CACHE_DIR": str(tmp_path / "cache")}
    proc = _start_slow_render(tmp_path, env, tmp_path / "out" / "reel.mp4", "--width", "1280", "--height", "720",
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        render_pid = _wait_for_child_ffmpeg(proc.pid, "libx264", 120)
        assert render_pid, "the render never started"
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _gone_within(render_pid, 5)  # PR_SET_PDEATHSIG: the render died with its parent
    assert len(list(workspaces.iterdir())) == 1  # the killed run could not clean up
    killed_run = next(workspaces.iterdir()).name

    done = subprocess.run([sys.executable, "-m", "autoclip.cli", "run", str(media.one_second), "--duration", "1",
                           "--width", "320", "--height", "180", "-o", str(tmp_path / "again" / "reel.mp4")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(workspaces.iterdir()) == []
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # it no longer shows Running for ever
        state = client.read_flow_run(uuid.UUID(killed_run)).state
    assert state.is_crashed() and "killed" in state.message


@pytest.mark.slow
def test_kill_9_takes_the_temporary_prefect_server_along(media, tmp_path):
    """Without PREFECT_API_URL the run starts a temporary server; a watcher stops it when the run dies."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "home"), AUTOCLIP_WORKSPACE_DIR=str(tmp_path / "runs"),
               AUTOCLIP_CACHE_DIR=str(tmp_path / "cache"))
    proc = _start_slow_render(tmp_path, env, tmp_path / "out" / "reel.mp4",
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for_child_ffmpeg(proc.pid, "libx264", 180), "the render never started"
        servers = [pid for pid, cmd in _children_of(proc.pid) if "uvicorn" in cmd]
        assert len(servers) == 1, _children_of(proc.pid)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _gone_within(servers[0], 10)


def test_a_prefect_database_from_a_newer_prefect_is_named_not_timed_out(media, tmp_path):
    """A downgrade of Prefect leaves a database whose schema this Prefect cannot migrate: the temporary
    server would print a page of migration errors and the run time out. The run says which file and what
    to do, at once, and starts no server."""
    import sqlite3

    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(home / "prefect.db") as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version VALUES ('ffffffffffff')")
    unset = ("PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(PREFECT_HOME=str(home), AUTOCLIP_WORKSPACE_DIR=str(tmp_path / "runs"),
               AUTOCLIP_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "autoclip.cli", "run", str(media.one_second), "--duration", "1",
                           "-o", str(tmp_path / "out" / "reel.mp4")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert str(home / "prefect.db") in done.stderr and "PREFECT_HOME" in done.stderr, done.stderr
    assert "ffffffffffff" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()
