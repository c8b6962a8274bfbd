"""EditPlan -> one H.264/AAC MP4.

The default engine builds ONE ffmpeg filter graph with ffmpeg-python: every clip is its own accurately
seeked input (a cut in the first second is read from the file's start), placed by its timestamps (a
stream that starts later than the other keeps its place), normalised (rotation, square pixels,
letterbox/pillarbox, fps, yuv420p, 48 kHz stereo, silence where the source has none), then concatenated
and encoded once. The moviepy engine does the same
through moviepy, kept for comparison. Both write to a temporary file and rename it only when the output
has been verified, so a failed render leaves nothing at the destination.

With `allow_copy=True` a plan whose every cut sits on a keyframe of a source that already matches the
output (H.264 yuv420p at the output size and frame rate, square pixels, upright, constant rate, the same
SPS/PPS in every source) keeps its pictures as they are: whole GOPs are copied packet by packet (frame-exact
by construction, and counted), only the sound is re-encoded. Any other plan, or any failure on that path,
takes the re-encoding path.

With `cache_dir`, a reel is kept under a key made of its sources' identities (their sha256 when the caller
passes `source_ids`, else device/inode/size/mtime), the cut list, the options and this module's code; the
same plan again is a copy of the kept file (verified like a fresh render) instead of an encode. The
newest `CACHE_ENTRIES` reels are kept.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

from autoclip.config import ClipOptions
from autoclip.errors import AutoclipError, RenderError, environment_fault
from autoclip.media.ffmpeg import ffmpeg_python, graph_args, run_ffmpeg
from autoclip.media.probe import probe
from autoclip.models import Clip, MediaInfo

log = logging.getLogger("autoclip.render")
CACHE_ENTRIES = 16
# Sources up to this size are decoded on one thread each: only one clip decodes at a time while libx264
# takes the cores, and every input's threaded decoder would hold its own frames (about 3 MB per clip at
# 720p, all inputs are open at once). Larger pictures (4K) keep the threaded decoder so it keeps up.
SINGLE_THREAD_PIXELS = 1920 * 1088
# Clips one ffmpeg graph holds at once. Every clip is its own input, and each keeps its decoder, its
# scale/pad frame pools and its copy of the source's index until the graph ends: measured at 720p from a
# 20-minute source, 16 clips in one graph peaked at 368 MB, 8 at 258 MB. A longer plan is rendered in parts
# of at most this many clips (pictures encoded once, sound kept as PCM) and the parts are joined with the
# pictures copied and the sound encoded once, so a long reel costs no more memory than a short one.
CLIPS_PER_PART = 8
# A cut that starts this close to the beginning is read from the file's start instead of seeked to: an
# H.264 FLV seeked before its first keyframe's time (`-ss 0` lands on 0.057 s, "could not seek") gives no
# pictures at all, and decoding up to a second more costs nothing that matters.
SEEK_FROM = 1.0


def fit_size(info: MediaInfo, width: int, height: int) -> tuple[int, int]:
    """Largest even size with the source's display aspect that fits inside width x height."""
    scale = min(width / info.display_width, height / info.display_height)
    w = max(2, int(info.display_width * scale) // 2 * 2)
    h = max(2, int(info.display_height * scale) // 2 * 2)
    return min(w, width), min(h, height)


class _Inputs:
    """Opens the graph's inputs so that no two of them merge. ffmpeg-python merges input nodes whose
    arguments are equal (two silences of one length, or one cut used twice) and then refuses the graph
    ("multiple outgoing edges"); sharing one input through a split is no cure either, since the concat
    filter reads segments one after the other and a split branch waiting for a later segment stalls the
    earlier one. So every use is its own input: each silence is a source filter with its own instance name
    (`anullsrc@clip3`), and a repeated cut of a file gets a different (harmless) packet queue size."""

    def __init__(self, ffmpeg):
        self.ffmpeg = ffmpeg
        self.seen: collections.Counter = collections.Counter()

    def open(self, filename: str, **options):
        key = (filename, tuple(sorted(options.items())))
        repeat = self.seen[key]
        self.seen[key] += 1
        if repeat:
            options["thread_queue_size"] = 8 + repeat
        return self.ffmpeg.input(filename, **options)

    def clip(self, clip: Clip, info: MediaInfo, start: float, duration: float, precision: int):
        """The clip's input and how far past the cut its timestamps run (`start` when it is read from the
        beginning, see `SEEK_FROM`; 0 when seeked). Either way a stream's timestamps keep their place in the
        source, so a sound that starts later than the picture (or earlier) stays where it was."""
        threads = {"threads": 1} if info.width * info.height <= SINGLE_THREAD_PIXELS else {}
        start = round(start, precision)
        if start < SEEK_FROM:
            return self.open(clip.path, t=f"{start + duration:.{precision}f}", **threads), start
        return self.open(clip.path, ss=f"{start:.{precision}f}", t=f"{duration:.{precision}f}", **threads), 0.0

    def silence(self, n: int, duration: float, precision: int):
        return self.open(f"anullsrc@clip{n}=channel_layout=stereo:sample_rate=48000", f="lavfi",
                         t=f"{duration:.{precision}f}").audio


def _audio_chain(audio, duration: float, silence=None, shift: float = 0.0):
    """Any sound -> 48 kHz stereo float, exactly `duration` long, from the cut's time on (its timestamps
    less `shift`). The sound is placed by its timestamps, not by its first sample: silence fills the time
    before a track that starts late and any gap over 0.1 s, samples before the cut are dropped (a track
    starting 2 s after the picture had its tone moved 2 s early when the first sample was taken as the
    cut). With `silence` (a silent input of that length) the sound is followed by it before the cut, so a
    clip whose sound reaches the graph as nothing at all (found by the generative tests: a 0.125 s cut of
    an 8 kHz track before another clip) still gives `duration` of silence instead of an empty segment,
    which the concat filter refuses ("Invalid data found when processing input")."""
    if shift:
        audio = audio.filter("asetpts", f"PTS-{shift}/TB")
    audio = (audio.filter("aresample", 48000, **{"async": 1, "first_pts": 0})
             .filter("aformat", sample_fmts="fltp", channel_layouts="stereo"))
    if silence is not None:
        silence = silence.filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
        audio = ffmpeg_python().concat(audio, silence, v=0, a=1)
    return (audio
            .filter("apad")
            .filter("atrim", duration=duration)
            .filter("asetpts", "PTS-STARTPTS"))


def build_graph(clips: list[Clip], infos: dict[str, MediaInfo], options: ClipOptions, output: str,
                part: bool = False):
    """The ffmpeg-python output node for the whole reel; with `part`, for one part of it (a MOV file whose
    sound stays PCM until the parts are joined, see `CLIPS_PER_PART`)."""
    ffmpeg = ffmpeg_python()
    W, H = options.width, options.height
    inputs = _Inputs(ffmpeg)
    parts = []
    for n, clip in enumerate(clips):
        info = infos[clip.path]
        duration = round(clip.duration, 3)
        # a whole number of output frames per clip, and the sound cut to the same length: the reel stays in
        # sync clip after clip (a trim by duration gave 13 frames to one 0.5 s clip at 25 fps and 12 to the
        # next, and the concat filter padded the sound each time)
        frames = max(1, round(duration * options.fps))
        source, shift = inputs.clip(clip, info, clip.start, duration, 3)
        w, h = fit_size(info, W, H)
        video = source.video
        if shift:  # read from the file's start: drop what precedes the cut, as an accurate seek does
            video = video.filter("trim", start=shift).filter("setpts", f"PTS-{shift}/TB")
        # from the cut's time on, by timestamps: a picture that starts after the sound holds its first frame
        video = (video
                 .filter("fps", fps=options.fps, start_time=0)
                 .filter("scale", w, h, flags="bicubic")
                 .filter("setsar", "1")
                 .filter("pad", W, H, (W - w) // 2, (H - h) // 2, color="black")
                 .filter("format", "yuv420p")
                 .filter("tpad", stop_mode="clone", stop_duration=1)
                 .filter("trim", end_frame=frames)
                 .filter("setpts", "PTS-STARTPTS"))
        length = frames / options.fps
        silence = inputs.silence(n, length, 6)
        audio = (_audio_chain(source.audio, length, silence, shift) if info.has_audio
                 else _audio_chain(silence, length))
        parts += [video, audio]
    joined = ffmpeg.concat(*parts, v=1, a=1).node
    sound = {"acodec": "pcm_s16le", "f": "mov"} if part else {"acodec": "aac", "audio_bitrate": "128k",
                                                              "movflags": "+faststart", "f": "mp4"}
    return ffmpeg.output(
        joined[0], joined[1], output, vcodec="libx264", preset=options.preset, crf=options.crf,
        pix_fmt="yuv420p", r=options.fps, ar=48000, ac=2, **sound)


def render(clips: list[Clip], infos: dict[str, MediaInfo], options: ClipOptions, output: Path, *,
           on_progress: Callable[[float], None] | None = None, allow_copy: bool = False,
           cache_dir: Path | None = None, source_ids: dict[str, str] | None = None) -> MediaInfo:
    """Render `clips` to `output` (atomically) with the engine in `options`; return the output's probe.

    `allow_copy`: with the ffmpeg engine, copy the pictures instead of re-encoding them when the plan is
    eligible (see `copy_segments`); otherwise, or if copying fails, re-encode as usual.
    `cache_dir`: reuse a reel rendered before from the same sources, cuts and options (see `cache_key`);
    `source_ids` maps each clip path to a content id (sha256) for that key."""
    if not clips:
        raise RenderError("nothing to render: the plan has no clips")
    expected = sum(c.duration for c in clips)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".partial.mp4", dir=output.parent)
        os.close(fd)
    except OSError as exc:
        raise environment_fault(exc, f"rendering {output.name}") or RenderError(
            f"rendering {output.name}: cannot write in {output.parent}: {exc}") from exc
    tmp = Path(tmp_name)
    key = cache_key(clips, options, source_ids, allow_copy) if cache_dir else None
    try:
        result = _from_cache(cache_dir, key, tmp, expected, len(clips), options) if key else None
        if result is None:
            result = _render_to(clips, infos, options, tmp, output.name, expected, on_progress, allow_copy)
            if key:
                _store(cache_dir, key, tmp)
        os.replace(tmp, output)
        return result
    finally:
        tmp.unlink(missing_ok=True)


def _render_to(clips, infos, options, tmp: Path, name: str, expected: float, on_progress, allow_copy) -> MediaInfo:
    if options.engine == "moviepy":
        render_moviepy(clips, infos, options, tmp)
        return verify(tmp, expected, len(clips), options)
    segments = copy_segments(clips, infos, options) if allow_copy else None
    if segments:
        try:
            render_copy(clips, segments, infos, options, tmp, on_progress=on_progress)
            return verify(tmp, expected, len(clips), options)
        except (RenderError, OSError, ValueError) as exc:  # PyAV raises its errors as OSError/ValueError
            log.warning("stream copy failed, re-encoding instead: %s", exc)
    if len(clips) <= CLIPS_PER_PART:
        args = graph_args(build_graph(clips, infos, options, str(tmp)))
        run_ffmpeg(args, what=f"rendering {name}", expected_seconds=expected, on_progress=on_progress)
    else:
        _render_in_parts(clips, infos, options, tmp, name, expected, on_progress)
    return verify(tmp, expected, len(clips), options)


def _render_in_parts(clips, infos, options, tmp: Path, name: str, expected: float, on_progress) -> None:
    """The reel as parts of at most CLIPS_PER_PART clips, of even size, joined by ffmpeg's concat demuxer.
    Every part is encoded with the same settings at the same size, so its pictures join as they are; its
    sound is PCM cut to a whole number of frames per clip, so the reel's single AAC encode keeps sync."""
    count = math.ceil(len(clips) / CLIPS_PER_PART)
    size = math.ceil(len(clips) / count)
    groups = [clips[k:k + size] for k in range(0, len(clips), size)]
    folder = Path(tempfile.mkdtemp(prefix=f".{tmp.stem}.parts-", dir=tmp.parent))
    try:
        done = 0.0
        names = []
        for k, group in enumerate(groups):
            part = folder / f"part{k:03d}.mov"
            seconds = sum(c.duration for c in group)

            def report(fraction: float, done: float = done, seconds: float = seconds) -> None:
                on_progress(min(1.0, (done + fraction * seconds) / expected))

            run_ffmpeg(graph_args(build_graph(group, infos, options, str(part), part=True)),
                       what=f"rendering {name} (part {k + 1} of {len(groups)})", expected_seconds=seconds,
                       on_progress=report if on_progress else None)
            names.append(part.name)
            done += seconds
        listing = folder / "parts.txt"
        listing.write_text("".join(f"file '{n}'\n" for n in names))
        run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v", "-map", "0:a",
                    "-c:v", "copy", "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4",
                    str(tmp)], what=f"joining the parts of {name}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@lru_cache(maxsize=1)
def _code_version() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def _identity(path: str) -> str:
    st = os.stat(path)
    return f"file:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def cache_key(clips: list[Clip], options: ClipOptions, source_ids: dict[str, str] | None = None,
              allow_copy: bool = False) -> str | None:
    """What makes a reel: the sources' content (sha256 from `source_ids`, else file identity), the cuts,
    the options, the render code and the ffmpeg used. None when a source cannot be identified."""
    ids = dict(source_ids or {})
    try:
        for clip in clips:
            if clip.path not in ids:
                ids[clip.path] = _identity(clip.path)
    except OSError:
        return None
    from autoclip.media.ffmpeg import ffmpeg_binary

    recipe = {"clips": [[ids[c.path], round(c.start, 6), round(c.end, 6)] for c in clips],
              "options": options.model_dump(mode="json", exclude={"target_duration", "min_clip", "max_clip",
                                                                  "max_parallel_analysis"}),
              "copy": allow_copy, "code": _code_version(), "ffmpeg": ffmpeg_binary()}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:32]


def _from_cache(cache_dir: Path, key: str, tmp: Path, expected: float, clips: int,
                options: ClipOptions) -> MediaInfo | None:
    kept = cache_dir / f"{key}.mp4"
    if not kept.is_file():
        return None
    try:
        shutil.copyfile(kept, tmp)
    except OSError as exc:
        fault = environment_fault(exc, f"copying the kept reel into {tmp.parent}")
        if fault:  # the workspace is full or read-only: the entry is fine, the machine is not
            raise fault from exc
        log.warning("render cache entry %s unreadable, rendering again: %s", kept.name, exc)
        return None
    try:
        info = verify(tmp, expected, clips, options)
        os.utime(kept)  # most recently used
        return info
    except AutoclipError as exc:  # a damaged entry (wrong length, broken file): render afresh
        log.warning("render cache entry %s unusable, rendering again: %s", kept.name, exc)
        kept.unlink(missing_ok=True)
        return None


def _store(cache_dir: Path, key: str, rendered: Path) -> None:
    """Keep a copy of a verified reel (best effort: a full disk must not fail the run)."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_dir / f".{key}.{os.getpid()}.partial"
        shutil.copyfile(rendered, partial)
        os.replace(partial, cache_dir / f"{key}.mp4")
        entries = sorted(cache_dir.glob("*.mp4"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[CACHE_ENTRIES:]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not keep the reel in the render cache %s: %s", cache_dir, exc)


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


@dataclass(frozen=True)
class CopySegment:
    """Whole GOPs of one source: from the keyframe at `start` up to (not including) the keyframe at `end`
    (or the end of the stream), in decode order; `frames` pictures."""

    path: str
    start: float
    end: float
    frames: int


@dataclass
class _VideoIndex:
    extradata: bytes
    pix_fmt: str
    time_base: Fraction
    keyframes: list[float]   # presentation times (s) of the keyframes, ascending
    end: float               # presentation end of the last picture (s)


def _video_index(path: str) -> _VideoIndex:
    """Keyframe times of the first video stream, read from the packets (nothing is decoded)."""
    import av

    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        tb = Fraction(stream.time_base.numerator, stream.time_base.denominator)
        keyframes, end = [], 0.0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            t = float(packet.pts * tb)
            end = max(end, t + float((packet.duration or 0) * tb))
            if packet.is_keyframe:
                keyframes.append(t)
        return _VideoIndex(extradata=bytes(ctx.extradata or b""), pix_fmt=ctx.format.name if ctx.format else "",
                           time_base=tb, keyframes=sorted(keyframes), end=end)


def copy_segments(clips: list[Clip], infos: dict[str, MediaInfo], options: ClipOptions) -> list[CopySegment] | None:
    """The segments to copy when every cut of every clip sits on a keyframe (within half a frame) of a
    source that already is what the output must be; None when the plan is not eligible."""
    if options.engine != "ffmpeg" or not clips:
        return None
    fps = float(options.fps)
    half = 0.5 / fps
    indexes: dict[str, _VideoIndex] = {}
    for path in dict.fromkeys(c.path for c in clips):
        info = infos[path]
        if (info.video_codec != "h264" or (info.width, info.height) != (options.width, options.height)
                or abs(info.sample_aspect_ratio - 1) > 1e-3 or info.rotation or info.variable_frame_rate
                or abs(info.fps - fps) > 1e-3):
            return None
        try:
            indexes[path] = _video_index(path)
        except (OSError, ValueError, IndexError):
            return None
    first = next(iter(indexes.values()))
    if any(ix.pix_fmt != "yuv420p" or ix.extradata != first.extradata or not ix.extradata
           for ix in indexes.values()):
        return None
    segments = []
    for clip in clips:
        ix = indexes[clip.path]
        start = _nearest(ix.keyframes, clip.start, half)
        if start is None:
            return None
        if clip.end >= ix.end - half:
            end = ix.end
        else:
            end = _nearest(ix.keyframes, clip.end, half)
            if end is None or end <= start:
                return None
        segments.append(CopySegment(path=clip.path, start=start, end=end, frames=round((end - start) * fps)))
    return segments


def _nearest(points: list[float], t: float, within: float) -> float | None:
    best = min(points, key=lambda p: abs(p - t), default=None)
    return best if best is not None and abs(best - t) <= within else None


def copy_video(segments: list[CopySegment], output: Path) -> int:
    """Write the segments' video packets, re-timed end to end, into a video-only MP4; return the number
    of pictures written. Raises RenderError when a segment does not hold exactly the pictures it should
    (for example an open GOP, whose first pictures need the GOP before)."""
    import av

    written = 0
    offset = Fraction(0)
    with av.open(str(output), "w", format="mp4") as out:
        ostream = None
        for seg in segments:
            with av.open(seg.path, metadata_errors="ignore") as src:
                stream = src.streams.video[0]
                tb = Fraction(stream.time_base.numerator, stream.time_base.denominator)
                if ostream is None:
                    ostream = out.add_stream_from_template(stream)
                tolerance = max(1, round(Fraction(1, 4) / (tb * round(stream.average_rate or 25))))
                first = round(Fraction(seg.start) / tb)
                last = round(Fraction(seg.end) / tb)
                src.seek(first, stream=stream, backward=True, any_frame=False)
                count, base = 0, None
                for packet in src.demux(stream):
                    if packet.pts is None or packet.dts is None:
                        continue  # the flush packet at the end of the stream
                    if base is None:
                        if not (packet.is_keyframe and abs(packet.pts - first) <= tolerance):
                            continue  # a seek may land a GOP early
                        base = packet.pts
                        shift = round(offset / tb) - base
                    elif packet.is_keyframe and packet.pts >= last - tolerance:
                        break  # the next GOP starts where the segment ends
                    if not base <= packet.pts < last + tolerance:
                        raise RenderError(f"stream copy: {Path(seg.path).name} has a picture at "
                                          f"{float(packet.pts * tb):.3f} s outside {seg.start:.3f}-{seg.end:.3f} s "
                                          "(open GOP)")
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = ostream
                    out.mux(packet)
                    count += 1
            if count != seg.frames:
                raise RenderError(f"stream copy: {Path(seg.path).name} {seg.start:.3f}-{seg.end:.3f} s gave "
                                  f"{count} pictures, expected {seg.frames}")
            written += count
            offset += Fraction(seg.end) - Fraction(seg.start)
    return written


def render_copy(clips: list[Clip], segments: list[CopySegment], infos: dict[str, MediaInfo],
                options: ClipOptions, output: Path, *, on_progress: Callable[[float], None] | None = None) -> None:
    """Pictures copied (whole GOPs), sound cut sample-exactly and encoded as in `build_graph`."""
    ffmpeg = ffmpeg_python()
    video_only = output.with_name(output.stem + ".video.mp4")
    try:
        copy_video(segments, video_only)
        inputs = _Inputs(ffmpeg)
        parts = []
        for n, (clip, seg) in enumerate(zip(clips, segments)):
            duration = round(seg.end - seg.start, 6)
            info = infos[clip.path]
            silence = inputs.silence(n, duration, 6)
            if info.has_audio:
                source, shift = inputs.clip(clip, info, seg.start, duration, 6)
                parts.append(_audio_chain(source.audio, duration, silence, shift))
            else:
                parts.append(_audio_chain(silence, duration))
        sound = ffmpeg.concat(*parts, v=0, a=1) if len(parts) > 1 else parts[0]
        video = ffmpeg.input(str(video_only)).video
        node = ffmpeg.output(video, sound, str(output), vcodec="copy", acodec="aac", audio_bitrate="128k",
                             ar=48000, ac=2, movflags="+faststart", f="mp4")
        expected = sum(s.end - s.start for s in segments)
        run_ffmpeg(graph_args(node), what=f"rendering {output.name} (stream copy)", expected_seconds=expected,
                   on_progress=on_progress)
    finally:
        video_only.unlink(missing_ok=True)


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
