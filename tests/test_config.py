import pytest
from pydantic import ValidationError

from autoclip.config import ClipOptions, Settings, get_settings, parse_size


def test_sizes_accept_bytes_and_units():
    assert parse_size("2GiB") == 2 * 1024**3
    assert parse_size("500 MB") == 500_000_000
    assert parse_size(1234) == 1234
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("AUTOCLIP_MAX_VIDEO_SIZE", "10MiB")
    monkeypatch.setenv("AUTOCLIP_SUPPORTED_FORMATS", "mp4, .MOV")
    monkeypatch.setenv("AUTOCLIP_MAX_PARALLEL_ANALYSIS", "2")
    settings = get_settings()
    assert settings.max_video_size == 10 * 1024**2
    assert settings.supported_formats == ("mp4", "mov")
    assert settings.max_parallel_analysis == 2


def test_defaults_match_the_seed():
    settings = Settings(_env_file=None)
    assert settings.max_video_size == 2 * 1024**3
    assert settings.supported_formats == ("mp4", "avi", "mov", "mkv", "flv", "wmv", "webm")
    assert settings.max_parallel_analysis == 4
    assert settings.storage_backend == "local"


def test_analysis_fingerprint_follows_analyser_knobs():
    assert Settings(frame_interval=2).analysis_fingerprint() != Settings(frame_interval=1).analysis_fingerprint()
    assert Settings(max_parallel_analysis=1).analysis_fingerprint() == Settings().analysis_fingerprint()


def test_clip_options_aspect_and_validation():
    portrait = ClipOptions.for_aspect("9:16", target_duration=15)
    assert (portrait.width, portrait.height) == (720, 1280)
    assert ClipOptions(width=641).width == 640
    with pytest.raises(ValueError):
        ClipOptions.for_aspect("wide")
    with pytest.raises(ValidationError):
        ClipOptions(target_duration=0)
    with pytest.raises(ValidationError):
        ClipOptions(min_clip=5, max_clip=2)
    assert ClipOptions.model_validate_json(ClipOptions(crf=20).model_dump_json()).crf == 20
