"""The inbox: scheduled scans of a folder or object prefix make one reel of what is new, exactly once,
even when scans overlap; the ledger beside the inbox remembers, recovers crashed claims, and keeps failures."""

from __future__ import annotations

import json
import os
import shutil
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from autoclip.config import ClipOptions, get_settings
from autoclip.sources import inbox as ib
from tests import synth

SMALL = ClipOptions(target_duration=4, width=320, height=180, fps=25)


def _video(path: Path, colour_source: str, tone: int) -> Path:
    return synth.lavfi(path, f"{colour_source}=s=320x180:r=25", 3, audio=f"sine=f={tone}:d=3")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("inbox-clips")
    return [_video(folder / "a.mp4", "testsrc2", 440), _video(folder / "b.mp4", "testsrc", 550),
            _video(folder / "c.mp4", "smptebars", 660)]


def _ledger(inbox: Path) -> dict:
    return json.loads((inbox / ".autoclip" / "ledger.json").read_text())["items"]


# ---------------------------------------------------------------------------------------- pure layer

def test_ledger_claims_recover_after_the_timeout_and_failures_stay_failed(tmp_path, clips):
    settings = get_settings()
    inbox = tmp_path / "in"
    inbox.mkdir()
    for clip in clips[:2]:
        shutil.copy(clip, inbox / clip.name)
    (inbox / "._a.mp4").write_bytes(b"macOS metadata")  # dot files are never videos
    (inbox / "notes.txt").write_text("not a video")

    items = ib.pending(str(inbox), settings)
    assert [Path(i.source).name for i in items] == ["a.mp4", "b.mp4"]
    claimed, abandoned = ib.claim(str(inbox), items, "run-1", settings)
    assert claimed == items and abandoned == {}
    assert ib.pending(str(inbox), settings) == []
    assert ib.claim(str(inbox), items, "run-2", settings) == ([], {})  # already claimed: nothing taken

    later = datetime.now(timezone.utc) + timedelta(hours=7)  # run-1 crashed: its claims expire
    assert ib.pending(str(inbox), settings, now=later) == items
    ib.mark_done(str(inbox), items[:1], "run-1", settings, reel="/reels/one.mp4")
    ib.mark_failed(str(inbox), items[1:], "run-1", settings, {items[1].source: "ingest: truncated"})
    entries = _ledger(inbox)
    assert {e["status"] for e in entries.values()} == {"done", "failed"}
    assert [e["reason"] for e in entries.values() if e["status"] == "failed"] == ["ingest: truncated"]
    assert ib.pending(str(inbox), settings, now=later) == []
    assert ib.pending(str(inbox), settings, retry_failed=True) == items[1:]

    os.utime(inbox / "b.mp4", ns=(0, 10**18))  # a changed file is a new video
    changed = ib.pending(str(inbox), settings)
    assert [Path(i.source).name for i in changed] == ["b.mp4"] and changed[0].fingerprint != items[1].fingerprint
    ready, settling = ib.settled(changed, 30, now=datetime.fromtimestamp(10**9 + 5, timezone.utc))
    assert (ready, settling) == ([], changed)

    assert ib.forget(str(inbox), settings) == 1
    assert len(ib.pending(str(inbox), settings)) == 1
    leftovers = [p.name for p in (inbox / ".autoclip").iterdir()]
    assert leftovers == ["ledger.json"]  # atomic writes leave no temp files behind


def test_a_claim_abandoned_too_often_is_marked_failed(tmp_path, clips):
    settings = get_settings()
    inbox = tmp_path / "in"
    inbox.mkdir()
    shutil.copy(clips[0], inbox / "a.mp4")
    moment = datetime.now(timezone.utc)
    for attempt in range(3):
        items = ib.pending(str(inbox), settings, now=moment)
        assert len(items) == 1
        assert ib.claim(str(inbox), items, f"run-{attempt}", settings, now=moment)[0] == items
        moment += timedelta(hours=7)
    claimed, abandoned = ib.claim(str(inbox), items, "run-4", settings, now=moment)
    assert claimed == [] and "abandoned" in abandoned[items[0].source]
    assert ib.pending(str(inbox), settings, now=moment) == []


def test_a_missing_inbox_and_a_broken_ledger_are_reported(tmp_path):
    from autoclip.errors import InputError, StorageError

    with pytest.raises(InputError, match="does not exist"):
        ib.pending(str(tmp_path / "nope"), get_settings())
    (tmp_path / ".autoclip").mkdir()
    (tmp_path / ".autoclip" / "ledger.json").write_text("{half a ledger")
    with pytest.raises(StorageError, match="unreadable"):
        ib.pending(str(tmp_path), get_settings())


# ---------------------------------------------------------------------------------------- the flow

@pytest.mark.slow
def test_scans_process_each_video_once_and_then_only_what_is_new(prefect_server, tmp_path, clips):
    from autoclip.flows.inbox import auto_clip_inbox
    from autoclip.media.probe import probe

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for clip in clips[:2]:
        shutil.copy(clip, inbox / clip.name)

    first = auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0)
    assert sorted(Path(s).name for s in first.processed) == ["a.mp4", "b.mp4"] and first.failed == {}
    reel = Path(first.reel)
    assert reel.parent == inbox.resolve() / ".autoclip" / "reels" and reel.name.startswith("inbox-reel-")
    assert 3.5 <= probe(reel).duration <= 4.2
    assert {e["status"] for e in _ledger(inbox).values()} == {"done"} and len(_ledger(inbox)) == 2

    second = auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0)
    assert second.message == "nothing new" and second.processed == [] and second.reel is None

    shutil.copy(clips[2], inbox / "c.mp4")
    waiting = auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0, min_videos=2)
    assert waiting.processed == [] and "min_videos=2" in waiting.message
    third = auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0)
    assert [Path(s).name for s in third.processed] == ["c.mp4"] and third.reel != first.reel
    assert len(list((inbox / ".autoclip" / "reels").glob("*.mp4"))) == 2


@pytest.mark.slow
def test_a_scheduled_scan_of_a_missing_inbox_creates_it_and_completes(prefect_server, tmp_path):
    from autoclip.flows.inbox import auto_clip_inbox

    inbox = tmp_path / "fresh" / "inbox"
    state = auto_clip_inbox(inbox=str(inbox), options=SMALL, return_state=True)
    assert state.is_completed() and inbox.is_dir()
    assert state.message == f"created the inbox {inbox}: nothing to do yet"
    assert auto_clip_inbox(inbox=str(inbox), options=SMALL).message == "nothing new"


@pytest.mark.slow
def test_overlapping_scans_take_each_video_exactly_once(prefect_server, tmp_path, clips, monkeypatch):
    from prefect.client.orchestration import get_client

    from autoclip.flows.inbox import auto_clip_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for clip in clips[:2]:
        shutil.copy(clip, inbox / clip.name)
    read, meet, seen = ib.load_ledger, threading.Barrier(2), set()

    def stalled_read(*args, **kwargs):
        """Each scan's first ledger read waits (up to 5 s) for the other's: without the lock both scans
        would read the empty ledger and claim both videos; with it the second cannot get here meanwhile."""
        ledger = read(*args, **kwargs)
        if threading.get_ident() not in seen:
            seen.add(threading.get_ident())
            try:
                meet.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
        return ledger

    monkeypatch.setattr(ib, "load_ledger", stalled_read)
    start = threading.Barrier(2)
    results, errors = [], []

    def scan():
        try:
            start.wait()
            results.append(auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == [] and len(results) == 2
    processed = sorted(Path(s).name for r in results for s in r.processed)
    assert processed == ["a.mp4", "b.mp4"]
    assert sorted(r.message == "nothing new" for r in results) == [False, True]
    assert len(list((inbox / ".autoclip" / "reels").glob("*.mp4"))) == 1
    with get_client(sync_client=True) as client:
        lock = client.read_global_concurrency_limit_by_name(ib.lock_name(str(inbox)))
    assert (lock.limit, lock.active, lock.active_slots) == (1, True, 0)


@pytest.mark.slow
def test_a_scan_of_an_object_prefix(prefect_server, s3_env, clips):
    from autoclip.flows.inbox import auto_clip_inbox

    fs, bucket = s3_env
    for clip in clips[:2]:
        fs.put_file(str(clip), f"{bucket}/inbox/{clip.name}")
    fs.pipe_file(f"{bucket}/inbox/readme.txt", b"not a video")
    inbox = f"s3://{bucket}/inbox/"

    first = auto_clip_inbox(inbox=inbox, options=SMALL)
    assert first.processed == [f"{inbox}a.mp4", f"{inbox}b.mp4"] and first.failed == {}
    assert first.reel.startswith(f"{inbox}.autoclip/reels/inbox-reel-") and first.reel.endswith(".mp4")
    assert fs.info(first.reel.removeprefix("s3://"))["size"] > 1000
    ledger = json.loads(fs.cat_file(f"{bucket}/inbox/.autoclip/ledger.json"))
    assert sorted(e["status"] for e in ledger["items"].values()) == ["done", "done"]

    second = auto_clip_inbox(inbox=inbox, options=SMALL)  # the reel under .autoclip/ is not a new video
    assert second.message == "nothing new" and second.reel is None


@pytest.mark.slow
def test_failures_are_recorded_and_retried_only_on_request(prefect_server, tmp_path, clips):
    from autoclip.flows.inbox import auto_clip_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(clips[0], inbox / "a.mp4")
    (inbox / "notes.mp4").write_text("meeting notes, not a video")

    first = auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0)
    assert [Path(s).name for s in first.processed] == ["a.mp4"] and first.reel
    assert [Path(s).name for s in first.failed] == ["notes.mp4"]
    assert next(iter(first.failed.values())).startswith("ingest: not a readable video file")
    assert "1 left out" in first.message

    again = auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0)
    assert again.message == "nothing new"  # a failed video is not retried by itself

    retried = auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0, retry_failed=True)
    assert retried.processed == [] and retried.reel is None and "the run failed" in retried.message
    assert "no usable video" in retried.failed[str(inbox.resolve() / "notes.mp4")]
    statuses = {Path(e["source"]).name: (e["status"], e["attempts"]) for e in _ledger(inbox).values()}
    assert statuses == {"a.mp4": ("done", 1), "notes.mp4": ("failed", 1)}


def test_a_run_the_machine_fails_gives_its_videos_back_for_the_next_scan(prefect_server, tmp_path, clips,
                                                                        monkeypatch):
    """A killed ffmpeg is the machine's fault: the videos stay pending, not failed for good."""
    from autoclip.flows.inbox import auto_clip_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(clips[0], inbox / "a.mp4")
    killed = tmp_path / "ffmpeg-killed"
    killed.write_text("#!/bin/sh\nkill -9 $$\n")
    killed.chmod(0o755)
    monkeypatch.setenv("AUTOCLIP_FFMPEG_BINARY", str(killed))
    get_settings.cache_clear()

    first = auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0)
    assert first.processed == [] and first.failed == {} and first.reel is None
    assert "not because of its 1 video(s)" in first.message and "killed by signal 9" in first.message
    assert [e["status"] for e in _ledger(inbox).values()] == ["retry"]

    monkeypatch.delenv("AUTOCLIP_FFMPEG_BINARY")
    get_settings.cache_clear()
    second = auto_clip_inbox(inbox=str(inbox), options=SMALL, settle_seconds=0)
    assert [Path(s).name for s in second.processed] == ["a.mp4"] and second.reel
    assert [e["status"] for e in _ledger(inbox).values()] == ["done"]
