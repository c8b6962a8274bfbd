"""Probe a file with PyAV (no ffprobe binary needed) and reject what cannot be cut into a reel.

Nothing here depends on seeking: some files refuse it (Sorenson FLV, Matroska cut with negative timestamps),
so each pass that must start at the beginning opens the file afresh, and a refused seek near the end falls
back to reading the packets through."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import av

from autoclip.errors import ProbeError
from autoclip.models import MediaInfo

_VFR_PACKETS = 240
_END_PACKETS = 5000  # how far past the keyframe before the end the data is read looking for it (a long GOP)
_STILL_PACKETS = 300  # packets read to tell a cover picture (one frame) from the moving video beside it
MEASURE_SECONDS = 30.0  # longest a file without a duration in its header is read to measure it (packets only)


def _open(path: str):
    return av.open(path, metadata_errors="ignore")


def _is_cover(stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _video_stream_index(path: str, container) -> int | None:
    """Index (among the video streams) of the moving picture: never an attached cover picture, and when
    several video streams remain, the one with the most packets at the start (a PNG cover in a Matroska
    file is a one-frame stream without the attached_pic flag)."""
    videos = [s for s in container.streams.video if not _is_cover(s)]
    if len(videos) <= 1:
        return videos[0].index if videos else None
    counts = collections.Counter()
    with _open(path) as other:
        for n, packet in enumerate(other.demux([other.streams[s.index] for s in videos])):
            if n >= _STILL_PACKETS:
                break
            counts[packet.stream.index] += 1
    return max(videos, key=lambda s: counts[s.index]).index


def video_comes_first(path: str | Path, info: MediaInfo) -> bool:
    """Whether the probed video is the file's first video stream, the one ffmpeg's `0:v` and rendering take."""
    with _open(str(path)) as container:
        return container.streams.video[0].index == info.video_stream


def _rotation(container, stream) -> int | None:
    """Degrees counter-clockwise the decoded picture must turn (from the display matrix of frame 1); None
    when not one picture decodes."""
    for frame in container.decode(stream):
        return int(round(getattr(frame, "rotation", 0) or 0)) % 360
    return None


def _is_variable_frame_rate(container, stream) -> bool:
    """Sorted packet timestamps of the first seconds: more than one distinct step means VFR."""
    pts = []
    for packet in container.demux(stream):
        if packet.pts is not None:
            pts.append(packet.pts)
        if len(pts) >= _VFR_PACKETS:
            break
    pts.sort()
    pts = pts[:-8]  # decode order: the last packets read may leave holes in the sorted tail
    steps = [b - a for a, b in zip(pts, pts[1:]) if b > a]
    if len(steps) < 10:
        return False
    usual = collections.Counter(steps).most_common(1)[0][0]
    odd = sum(1 for step in steps if abs(step - usual) > max(1, usual * 0.02))
    return odd > len(steps) * 0.1


def _measured_end(container, streams) -> float | None:
    """Seconds from the first packet to the end of the last one, read from the packets (nothing decoded).
    None when reading takes longer than MEASURE_SECONDS (a huge file: not measured rather than a guess)."""
    started = time.monotonic()
    first, end = None, 0.0
    for n, packet in enumerate(container.demux(streams)):
        if packet.pts is None or not packet.time_base:
            continue
        t = float(packet.pts * packet.time_base)
        first = t if first is None else min(first, t)
        end = max(end, t + float((packet.duration or 0) * packet.time_base))
        if n % 1000 == 999 and time.monotonic() - started > MEASURE_SECONDS:
            return None
    return end - first if first is not None else 0.0


def _ends_where_it_claims(path: str, stream_index: int, duration: float) -> bool:
    """A truncated file still has a header claiming the full length: look for packets near the end. When
    the file refuses the seek there, its packets are read through from the start instead."""
    target = duration - 2.0
    if duration >= 4:
        with _open(path) as container:
            stream = container.streams[stream_index]
            try:
                container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                pass  # cannot seek this file: read it through below
            else:
                # The seek lands on the keyframe before the target, which can be a whole GOP earlier
                # (libx264's 250 frames are 17 s at 15 fps): read on (packets only) until the data reaches it.
                try:
                    for n, packet in enumerate(container.demux(stream)):
                        if packet.size == 0 or n > _END_PACKETS:
                            return False
                        if packet.pts is not None and float(packet.pts * stream.time_base) >= target - 10:
                            return True
                except av.error.FFmpegError:
                    return False
                return False
    with _open(path) as container:
        stream = container.streams[stream_index]
        try:
            end = _measured_end(container, stream)
        except av.error.FFmpegError:
            return False
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        return end is None or end + max(start, 0.0) >= duration * 0.8 - 0.5


def _seeks_inside(path: str, stream_index: int, duration: float) -> bool:
    """Clips are cut with an input seek (`-ss` before `-i`): a file that refuses a seek to its middle (a `-c
    copy` cut that kept timestamps before zero) gives ffmpeg no picture at all."""
    with _open(path) as container:
        stream = container.streams[stream_index]
        try:
            container.seek(int(duration / 2 / stream.time_base), stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            return False
    return True


def probe(path: str | Path, name: str | None = None) -> MediaInfo:
    """MediaInfo for `path`; ProbeError naming the file when it is not a usable video. Any other failure
    while reading one file is a ProbeError too, so one odd file never sinks a batch."""
    name = name or str(path)
    try:
        return _probe(str(path), name)
    except ProbeError:
        raise
    except av.error.FFmpegError as exc:
        raise ProbeError(name, f"cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - whatever an odd file makes PyAV raise: it is this file's fault
        raise ProbeError(name, f"cannot be read ({type(exc).__name__}: {exc})") from None


def _probe(path: str, name: str) -> MediaInfo:
    try:
        container = _open(path)
    except av.error.FFmpegError as exc:
        raise ProbeError(name, f"not a readable video file ({exc.strerror or exc})") from None
    with container:
        index = _video_stream_index(path, container)
        if index is None:
            if container.streams.audio:
                kind = "an audio-only file" + (" with a cover picture" if container.streams.video else "")
            else:
                kind = "a file without video"
            raise ProbeError(name, f"has no video stream ({kind}); a reel needs pictures")
        stream = container.streams[index]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = _duration(container, stream)
        measured = duration <= 0
        if measured:  # no duration in the header (MediaRecorder WebM, live-muxed Matroska): read the packets
            with _open(path) as other:
                end = _measured_end(other, [other.streams[s.index] for s in (stream, audio) if s is not None])
            if end is None:
                raise ProbeError(name, "has no duration in its header and is too large to measure "
                                 f"within {MEASURE_SECONDS:g} s")
            duration = end
        if duration <= 0:
            raise ProbeError(name, "has no measurable duration (empty or broken video stream)")
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise ProbeError(name, "video stream has no picture size")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 25.0
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        sar = float(sar) if sar and sar > 0 else 1.0
        try:
            rotation = _rotation(container, stream)
        except av.error.FFmpegError as exc:
            raise ProbeError(name, f"first video frame cannot be decoded ({exc.strerror or exc})") from None
        if rotation is None:
            raise ProbeError(name, f"has no picture that can be decoded (too short: {duration:.2f} s)")
        format_name = container.format.name
        video_codec = ctx.name
    with _open(path) as container:
        vfr = _is_variable_frame_rate(container, container.streams[index])
    if not measured and not _ends_where_it_claims(path, index, duration):
        raise ProbeError(name, f"is truncated or corrupt: its header claims {duration:.1f} s "
                         "but the data stops early")
    if not _seeks_inside(path, index, duration):
        raise ProbeError(name, "cannot be cut into clips: seeking inside it fails (as in a `-c copy` cut that "
                         "kept timestamps before zero); re-encode it first")
    display_w = int(round(ctx.width * sar))
    display_h = ctx.height
    if rotation in (90, 270):
        display_w, display_h = display_h, display_w
    return MediaInfo(
        duration=duration, format_name=format_name, width=ctx.width, height=ctx.height,
        display_width=display_w, display_height=display_h, rotation=rotation,
        sample_aspect_ratio=sar, fps=fps, variable_frame_rate=vfr, video_codec=video_codec,
        has_audio=audio is not None, video_stream=index, audio_codec=audio.codec_context.name if audio else None,
        sample_rate=audio.codec_context.sample_rate if audio else None,
        channels=audio.codec_context.channels if audio else None)


def _duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return seconds
    if container.duration:
        return container.duration / 1_000_000
    return 0.0
