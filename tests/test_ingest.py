"""Bad input gets a clear error naming the file and the reason; odd but valid input is understood."""

from pathlib import Path

import pytest

from autoclip.config import get_settings
from autoclip.errors import InputError
from autoclip.media.probe import probe
from autoclip.sources import ingest
from autoclip.sources.local import expand_sources, sha256_file


def _ingest(path, tmp_path):
    return ingest(str(path), 0, tmp_path / "ws", get_settings())


@pytest.mark.parametrize("name, reason", [
    ("empty", "empty (0 bytes)"),
    ("fake", "not a readable video file"),
    ("truncated", "truncated or corrupt"),
    ("audio_only", "no video stream (an audio-only file)"),
    ("wrong_ext", "unsupported format '.xyz'"),
])
def test_bad_files_are_refused_with_their_name_and_reason(media, tmp_path, name, reason):
    path = getattr(media, name)
    with pytest.raises(InputError) as caught:
        _ingest(path, tmp_path)
    assert str(path) in str(caught.value)
    assert reason in str(caught.value)


def test_a_file_without_an_extension_is_told_so(media, tmp_path):
    import shutil

    bare = tmp_path / "clip"
    shutil.copyfile(media.two_shots, bare)
    with pytest.raises(InputError, match=r"clip: has no file extension to tell its format \(supported: "):
        _ingest(bare, tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match=r"nothing_here\.mp4: does not exist"):
        _ingest(tmp_path / "nothing_here.mp4", tmp_path)


def test_file_over_the_size_limit(media, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCLIP_MAX_VIDEO_SIZE", "10KB")
    get_settings.cache_clear()
    with pytest.raises(InputError, match=r"two_shots\.mp4: is .* MiB, over the limit"):
        _ingest(media.two_shots, tmp_path)


def test_folder_without_videos_and_empty_glob_are_reported(tmp_path):
    (tmp_path / "readme.txt").write_text("no videos here")
    found, rejected = expand_sources([str(tmp_path), str(tmp_path / "*.mkv")], get_settings().supported_formats)
    assert found == []
    assert [r.source for r in rejected] == [str(tmp_path), str(tmp_path / "*.mkv")]
    assert "contains no videos" in rejected[0].reason
    assert "matches no videos" in rejected[1].reason


def test_folders_and_globs_expand_to_supported_videos(media):
    folder = media.two_shots.parent
    found, rejected = expand_sources([str(folder), str(folder / "two_*.mp4")], get_settings().supported_formats)
    names = [Path(f).name for f in found]
    assert "clip.xyz" not in names and "two_shots.mp4" in names
    assert names.count("two_shots.mp4") == 1  # named twice, imported once
    assert rejected == []


def test_ingest_hashes_probes_and_links_into_the_workspace(media, tmp_path):
    video = _ingest(media.two_shots, tmp_path)
    assert len(video.sha256) == 64
    assert Path(video.path).parent == tmp_path / "ws" / "inputs"
    assert Path(video.path).read_bytes() == media.two_shots.read_bytes()
    assert video.info.has_audio and video.info.duration == pytest.approx(6.0, abs=0.05)


def test_rotation_is_read_from_the_display_matrix(media):
    info = probe(media.rotated)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (320, 180)
    assert (info.display_width, info.display_height) == (180, 320)


def test_non_square_pixels_give_the_display_size(media):
    info = probe(media.anamorphic)
    assert info.sample_aspect_ratio == pytest.approx(16 / 11, rel=1e-3)
    assert (info.display_width, info.display_height) == (512, 288)


def test_variable_frame_rate_is_detected(media):
    assert probe(media.vfr).variable_frame_rate is True
    assert probe(media.two_shots).variable_frame_rate is False


def test_no_audio_and_one_second_videos_are_usable(media):
    assert probe(media.no_audio).has_audio is False
    assert probe(media.one_second).duration == pytest.approx(1.0, abs=0.05)


def test_real_phone_rotation_and_anamorphic_tv(shared_media):
    rotated = probe(shared_media / "pyscenedetect_issue134_goldeneye_rotated.mp4")
    assert rotated.rotation == 270 and (rotated.display_width, rotated.display_height) == (544, 1280)
    tv = probe(shared_media / "pyscenedetect_issue195_documentary_speech.mp4")
    assert (tv.display_width, tv.display_height) == (1024, 576)
    assert probe(shared_media / "sadtalker_WDA_KatieHill_talking_head.mp4").video_codec == "mpeg4"
    assert probe(shared_media / "autocut_test002_zh_en.mov").fps == pytest.approx(23.976, abs=0.01)


def test_a_long_gop_at_a_low_frame_rate_is_not_taken_for_a_truncated_file(media, tmp_path):
    """One keyframe in 14 s (libx264's 250 frames at 15 fps is 17 s): the truncation check reads on from the
    keyframe before the end instead of calling the file truncated (a rendered 15 fps reel was refused)."""
    from autoclip.media.ffmpeg import run_ffmpeg

    video = tmp_path / "slow.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x90:r=15:d=14", "-c:v", "libx264", "-preset", "ultrafast",
                "-g", "250", "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(video)], what="a long GOP")
    assert probe(video).duration == pytest.approx(14.0, abs=0.1)
    with pytest.raises(InputError, match="truncated or corrupt"):  # and a truncated file is still found
        probe(media.truncated)


# --- odd but ordinary files (the adversarial sweep) --------------------------------------------------------

TONE = ["-f", "lavfi", "-i", "sine=d=5"]


def _ffmpeg(*args: str, what: str) -> None:
    from autoclip.media.ffmpeg import run_ffmpeg

    run_ffmpeg(list(args), what=what)


def test_files_that_refuse_to_seek_are_probed_and_ingested(tmp_path):
    """Sorenson FLV and Matroska cut with `-c copy` and negative timestamps refuse `seek(0)` (PyAV raises
    PermissionError, which killed the whole run): probing reads them without seeking, and the one that
    cannot be cut at all is refused with its name and why."""
    flv = tmp_path / "sorenson.flv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=5", *TONE, "-c:v", "flv", "-c:a", "mp3",
            "-ar", "44100", str(flv), what="a Sorenson FLV")
    bframes = tmp_path / "bframes.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=8", "-c:v", "libx264", "-preset", "ultrafast",
            "-bf", "16", "-pix_fmt", "yuv420p", str(bframes), what="a video with many B-frames")
    negative = tmp_path / "negative_ts.mkv"
    _ffmpeg("-ss", "3.3", "-i", str(bframes), "-c", "copy", "-avoid_negative_ts", "disabled", str(negative),
            what="a cut with negative timestamps")
    flv_info = _ingest(flv, tmp_path).info
    assert flv_info.video_codec == "flv" and flv_info.duration == pytest.approx(5.0, abs=0.1)
    # ffmpeg's input seek (how clips are cut) gives no picture from this one: refused, as one bad file
    with pytest.raises(InputError) as caught:
        _ingest(negative, tmp_path)
    assert str(caught.value) == (f"{negative}: cannot be cut into clips: seeking inside it fails (as in a `-c "
                                 "copy` cut that kept timestamps before zero); re-encode it first")


def test_webm_and_matroska_without_a_duration_are_measured_from_their_packets(tmp_path):
    """MediaRecorder WebM and live-muxed Matroska carry no Duration element: the length is read from the
    packets instead of refusing the file as having no measurable duration."""
    import subprocess

    from autoclip.media.ffmpeg import ffmpeg_binary

    made = {}
    for name, codecs in (("recorded.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                            "-c:a", "libopus", "-f", "webm"]),
                         ("live.mkv", ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                                       "-f", "matroska"])):
        with open(tmp_path / name, "wb") as out:  # written to a pipe: the muxer cannot go back for the length
            subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                            "testsrc2=s=160x120:r=25:d=5", *TONE, *codecs, "pipe:1"],
                           stdout=out, check=True)
        made[name] = _ingest(tmp_path / name, tmp_path).info
    import av

    with av.open(str(tmp_path / "recorded.webm")) as container:
        assert not container.duration  # the case at hand: the header says nothing about the length
    for info in made.values():
        assert info.duration == pytest.approx(5.0, abs=0.1) and info.width == 160


def test_audio_with_album_art_is_called_audio_only(tmp_path):
    cover = tmp_path / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64", "-frames:v", "1", str(cover), what="a cover picture")
    song = tmp_path / "song.mp4"
    _ffmpeg(*TONE, "-i", str(cover), "-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "png",
            "-disposition:v", "attached_pic", str(song), what="a song with album art")
    with pytest.raises(InputError) as caught:
        _ingest(song, tmp_path)
    assert str(caught.value) == (f"{song}: has no video stream (an audio-only file with a cover picture); "
                                 "a reel needs pictures")


def test_a_cover_picture_before_the_video_is_not_taken_for_it(tmp_path):
    """A Matroska file whose first video stream is a one-frame PNG (no attached_pic flag): the moving video
    after it is the one probed."""
    cover = tmp_path / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64", "-frames:v", "1", str(cover), what="a cover picture")
    both = tmp_path / "cover_first.mkv"
    _ffmpeg("-i", str(cover), "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=4", "-map", "0", "-map", "1",
            "-c:v:0", "png", "-c:v:1", "libx264", "-preset", "ultrafast", str(both), what="cover then video")
    info = probe(both)
    assert (info.width, info.height, info.video_codec, info.video_stream) == (160, 120, "h264", 1)
    # Cutting and rendering take the first video stream: the run's copy holds the video alone.
    import av

    video = _ingest(both, tmp_path)
    assert video.info.video_stream == 0 and video.info.duration == pytest.approx(4.0, abs=0.1)
    with av.open(video.path) as copy:
        assert [(s.codec_context.name, s.codec_context.width) for s in copy.streams.video] == [("h264", 160)]
    assert both.exists() and video.sha256 == sha256_file(both)


def test_measuring_a_file_without_a_duration_is_bounded_in_time(tmp_path, monkeypatch):
    """A huge file without a duration is not read for ever: past MEASURE_SECONDS of reading it is refused."""
    import subprocess

    from autoclip.media import probe as probing
    from autoclip.media.ffmpeg import ffmpeg_binary

    live = tmp_path / "live.mkv"
    with open(live, "wb") as out:  # 20 s: 500 pictures and about 940 sound packets, past the first check
        subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=s=96x64:r=25:d=20", "-f", "lavfi", "-i", "sine=d=20", "-c:v", "libx264",
                        "-preset", "ultrafast", "-c:a", "aac", "-f", "matroska", "pipe:1"], stdout=out, check=True)
    assert probe(live).duration == pytest.approx(20.0, abs=0.1)
    monkeypatch.setattr(probing, "MEASURE_SECONDS", 0.0)
    with pytest.raises(InputError, match="has no duration in its header and is too large to measure within 0 s"):
        probe(live)


def test_a_name_with_brackets_and_a_relative_symlink_are_files(media, tmp_path):
    """Found by an adversarial sweep: "trip [1080p].mp4" was taken for a glob that matched nothing, and a
    relative symlink was hard-linked as the link itself into the workspace, where it pointed nowhere."""
    import shutil

    named = tmp_path / "trip [1080p].mp4"
    shutil.copyfile(media.two_shots, named)
    found, rejected = expand_sources([str(named)], get_settings().supported_formats)
    assert found == [str(named)] and rejected == []
    (tmp_path / "clips").mkdir()
    shutil.copyfile(media.two_shots, tmp_path / "clips" / "a.mp4")
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "a.mp4").symlink_to(Path("..") / "clips" / "a.mp4")
    for source in (named, tmp_path / "links" / "a.mp4"):
        video = _ingest(source, tmp_path)
        assert probe(Path(video.path)).duration > 0, video.path  # the workspace copy is readable
