"""EditPlan -> one H.264/AAC MP4.

The default engine builds ONE ffmpeg filter graph with ffmpeg-python: every clip is its own accurately
seeked input, normalised (rotation, square pixels, letterbox/pillarbox, fps, yuv420p, 48 kHz stereo,
silence where the source has none), then concatenated and encoded once. The moviepy engine does the same
through moviepy, kept for comparison. Both write to a temporary file and rename it only when the output
has been verified, so a failed render leaves nothing at the destination.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from autoclip.config import ClipOptions
from autoclip.errors import RenderError
from autoclip.media.ffmpeg import ffmpeg_python, graph_args, run_ffmpeg
from autoclip.media.probe import probe
from autoclip.models import Clip, MediaInfo


def fit_size(info: MediaInfo, width: int, height: int) -> tuple[int, int]:
    """Largest even size with the source's display aspect that fits inside width x height."""
    scale = min(width / info.display_width, height / info.display_height)
    w = max(2, int(info.display_width * scale) // 2 * 2)
    h = max(2, int(info.display_height * scale) // 2 * 2)
    return min(w, width), min(h, height)


def build_graph(clips: list[Clip], infos: dict[str, MediaInfo], options: ClipOptions, output: str):
    """The ffmpeg-python output node for the whole reel."""
    ffmpeg = ffmpeg_python()
    W, H = options.width, options.height
    parts = []
    for clip in clips:
        info = infos[clip.path]
        duration = round(clip.duration, 3)
        src = ffmpeg.input(clip.path, ss=f"{clip.start:.3f}", t=f"{duration:.3f}")
        w, h = fit_size(info, W, H)
        video = (src.video
                 .filter("fps", fps=options.fps)
                 .filter("scale", w, h, flags="bicubic")
                 .filter("setsar", "1")
                 .filter("pad", W, H, (W - w) // 2, (H - h) // 2, color="black")
                 .filter("format", "yuv420p")
                 .filter("tpad", stop_mode="clone", stop_duration=1)
                 .filter("trim", duration=duration)
                 .filter("setpts", "PTS-STARTPTS"))
        if info.has_audio:
            audio = src.audio
        else:
            audio = ffmpeg.input("anullsrc=channel_layout=stereo:sample_rate=48000", f="lavfi",
                                 t=f"{duration:.3f}").audio
        audio = (audio
                 .filter("aresample", 48000)
                 .filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
                 .filter("apad")
                 .filter("atrim", duration=duration)
                 .filter("asetpts", "PTS-STARTPTS"))
        parts += [video, audio]
    joined = ffmpeg.concat(*parts, v=1, a=1).node
    return ffmpeg.output(
        joined[0], joined[1], output, vcodec="libx264", preset=options.preset, crf=options.crf,
        pix_fmt="yuv420p", r=options.fps, acodec="aac", audio_bitrate="128k", ar=48000, ac=2,
        movflags="+faststart", f="mp4")


def render(clips: list[Clip], infos: dict[str, MediaInfo], options: ClipOptions, output: Path, *,
           on_progress: Callable[[float], None] | None = None) -> MediaInfo:
    """Render `clips` to `output` (atomically) with the engine in `options`; return the output's probe."""
    if not clips:
        raise RenderError("nothing to render: the plan has no clips")
    output.parent.mkdir(parents=True, exist_ok=True)
    expected = sum(c.duration for c in clips)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".partial.mp4", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if options.engine == "moviepy":
            render_moviepy(clips, infos, options, tmp)
        else:
            args = graph_args(build_graph(clips, infos, options, str(tmp)))
            run_ffmpeg(args, what=f"rendering {output.name}", expected_seconds=expected,
                       on_progress=on_progress)
        result = verify(tmp, expected, len(clips), options)
        os.replace(tmp, output)
        return result
    finally:
        tmp.unlink(missing_ok=True)


def verify(path: Path, expected: float, clips: int, options: ClipOptions) -> MediaInfo:
    """The output must be H.264 + AAC at the asked size, and as long as the plan (to a frame per clip)."""
    info = probe(path, name=f"rendered reel {path.name}")
    tolerance = 0.15 + clips / options.fps
    problems = []
    if abs(info.duration - expected) > tolerance:
        problems.append(f"lasts {info.duration:.2f} s but the plan adds up to {expected:.2f} s")
    if info.video_codec != "h264" or info.audio_codec != "aac":
        problems.append(f"codecs are {info.video_codec}/{info.audio_codec}, not h264/aac")
    if (info.width, info.height) != (options.width, options.height) or abs(info.sample_aspect_ratio - 1) > 1e-3:
        problems.append(f"picture is {info.width}x{info.height} SAR {info.sample_aspect_ratio:.3f}, "
                        f"not {options.width}x{options.height} square pixels")
    if problems:
        raise RenderError("rendered reel failed verification: " + "; ".join(problems))
    return info


def render_moviepy(clips: list[Clip], infos: dict[str, MediaInfo], options: ClipOptions, output: Path) -> None:
    """The same cut list through moviepy (slower; kept to compare engines)."""
    import numpy as np
    from moviepy import AudioClip, ColorClip, CompositeVideoClip, VideoFileClip, concatenate_videoclips

    from autoclip.media.ffmpeg import ffmpeg_binary

    os.environ.setdefault("IMAGEIO_FFMPEG_EXE", ffmpeg_binary())
    W, H = options.width, options.height
    sources: dict[str, VideoFileClip] = {}
    pieces = []
    try:
        for clip in clips:
            info = infos[clip.path]
            if clip.path not in sources:
                sources[clip.path] = VideoFileClip(clip.path, audio=info.has_audio, fps_source="fps")
            part = sources[clip.path].subclipped(clip.start, clip.end)
            w, h = fit_size(info, W, H)
            part = part.resized(new_size=(w, h))
            if part.audio is None:
                silence = AudioClip(lambda t: np.zeros((np.size(t), 2)), duration=part.duration, fps=48000)
                part = part.with_audio(silence)
            background = ColorClip(size=(W, H), color=(0, 0, 0), duration=part.duration)
            framed = CompositeVideoClip([background, part.with_position("center")], size=(W, H))
            pieces.append(framed.with_audio(part.audio))
        reel = concatenate_videoclips(pieces, method="chain")
        reel.write_videofile(str(output), fps=options.fps, codec="libx264", audio_codec="aac",
                             audio_fps=48000, preset=options.preset, audio_bitrate="128k",
                             ffmpeg_params=["-crf", str(options.crf), "-pix_fmt", "yuv420p",
                                            "-movflags", "+faststart", "-ac", "2"],
                             logger=None, temp_audiofile_path=str(output.parent))
    except RenderError:
        raise
    except Exception as exc:  # moviepy raises bare OSError/ValueError with long texts
        raise RenderError(f"moviepy engine failed: {exc}") from exc
    finally:
        for source in sources.values():
            source.close()
