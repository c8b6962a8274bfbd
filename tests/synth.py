"""Synthetic test media from ffmpeg's lavfi sources: small, fast, and with known content."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoclip.media.ffmpeg import run_ffmpeg

ENC = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"]
AAC = ["-c:a", "aac", "-b:a", "64k"]
# tone 0-2 s, silence 2-3 s, tone 3-5 s, silence 5-6 s
GATED_TONE = "aevalsrc='0.4*sin(2*PI*440*t)*lt(mod(t\\,3)\\,2)':s=48000:d={d}"


@dataclass
class MediaSet:
    two_shots: Path      # 6 s, hard cut at 3.0 s, tone with silences at 2-3 s and 5-6 s
    no_audio: Path       # 5 s, no audio stream
    rotated: Path        # stored 320x180 red|blue, display matrix 90 degrees: shows as 180x320
    anamorphic: Path     # stored 352x288 at SAR 16:11: shows as 512x288 (16:9)
    one_second: Path
    truncated: Path
    audio_only: Path
    fake: Path           # a text file named .mp4
    empty: Path
    wrong_ext: Path      # a valid video named .xyz
    vfr: Path            # 2 s at 10 fps then 2 s at 30 fps in one stream (variable frame rate)


def lavfi(out: Path, video: str, seconds: float, audio: str | None = None, extra: list[str] | None = None):
    args = ["-f", "lavfi", "-i", f"{video}:d={seconds}" if "d=" not in video else video]
    if audio:
        args += ["-f", "lavfi", "-i", audio]
    args += ENC + (AAC if audio else ["-an"]) + ["-t", str(seconds)] + (extra or []) + [str(out)]
    run_ffmpeg(args, what=f"making {out.name}")
    return out


def two_shots(out: Path, seconds: float = 6.0) -> Path:
    half = seconds / 2
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s=320x180:r=25:d={half}",
                "-f", "lavfi", "-i", f"color=c=0x2040ff:s=320x180:r=25:d={half}",
                "-f", "lavfi", "-i", GATED_TONE.format(d=seconds),
                "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
                *ENC, *AAC, "-t", str(seconds), str(out)], what=f"making {out.name}")
    return out


def make_media(folder: Path) -> MediaSet:
    folder.mkdir(parents=True, exist_ok=True)
    shots = two_shots(folder / "two_shots.mp4")
    no_audio = lavfi(folder / "no_audio.mp4", "testsrc2=s=320x240:r=25", 5)
    flat = folder / "red_blue.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=red:s=160x180:r=25:d=3",
                "-f", "lavfi", "-i", "color=c=blue:s=160x180:r=25:d=3",
                "-f", "lavfi", "-i", GATED_TONE.format(d=3),
                "-filter_complex", "[0:v][1:v]hstack[v]", "-map", "[v]", "-map", "2:a",
                *ENC, *AAC, "-t", "3", str(flat)], what="making red_blue.mp4")
    rotated = folder / "rotated.mp4"
    run_ffmpeg(["-display_rotation:v:0", "90", "-i", str(flat), "-c", "copy", str(rotated)],
               what="making rotated.mp4")
    anamorphic = lavfi(folder / "anamorphic.mp4", "testsrc2=s=352x288:r=25", 4,
                       audio="sine=f=330:d=4", extra=["-vf", "setsar=16/11"])
    one = lavfi(folder / "one_second.mp4", "testsrc2=s=320x180:r=25", 1, audio="sine=f=550:d=1")
    whole = lavfi(folder / "whole.mp4", "testsrc2=s=320x180:r=25", 6, audio="sine=f=550:d=6",
                  extra=["-movflags", "+faststart"])
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 5])
    audio_only = folder / "audio_only.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=f=440:d=3", *AAC, str(audio_only)], what="making audio_only.mp4")
    fake = folder / "notes.mp4"
    fake.write_text("these are my meeting notes, not a video\n")
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    wrong = folder / "clip.xyz"
    wrong.write_bytes(shots.read_bytes())
    vfr = folder / "vfr.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=10:d=2", "-f", "lavfi", "-i",
                "testsrc2=s=320x180:r=30:d=2", "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]",
                "-map", "[v]", *ENC, "-fps_mode", "vfr", "-video_track_timescale", "90000", str(vfr)],
               what="making vfr.mp4")
    return MediaSet(vfr=vfr, two_shots=shots, no_audio=no_audio, rotated=rotated, anamorphic=anamorphic,
                    one_second=one, truncated=truncated, audio_only=audio_only, fake=fake, empty=empty,
                    wrong_ext=wrong)


def frame_at(path: Path, seconds: float):
    """The decoded RGB frame nearest `seconds` as a numpy array (height, width, 3), rotation not applied."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= seconds:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {seconds} s in {path}")
