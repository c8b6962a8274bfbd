"""Probe a file with PyAV (no ffprobe binary needed) and reject what cannot be cut into a reel."""

from __future__ import annotations

import collections
from pathlib import Path

import av

from autoclip.errors import ProbeError
from autoclip.models import MediaInfo

_VFR_PACKETS = 240
_END_PACKETS = 5000  # how far past the keyframe before the end the data is read looking for it (a long GOP)


def _rotation(container, stream) -> int:
    """Degrees counter-clockwise the decoded picture must turn (from the display matrix of frame 1)."""
    for frame in container.decode(stream):
        return int(round(getattr(frame, "rotation", 0) or 0)) % 360
    return 0


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


def _ends_where_it_claims(container, stream, duration: float) -> bool:
    """A truncated file still has a header claiming the full length: look for packets near the end."""
    if duration < 4:
        container.seek(0)
        last = None
        for packet in container.demux(stream):
            if packet.pts is not None:
                last = packet
        return last is not None and float(last.pts * stream.time_base) >= duration * 0.8 - 0.5
    target = duration - 2.0
    try:
        container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
        # The seek lands on the keyframe before the target, which can be a whole GOP earlier (libx264's
        # 250 frames are 17 s at 15 fps): read on (packets only, no decoding) until the data reaches it.
        for n, packet in enumerate(container.demux(stream)):
            if packet.size == 0 or n > _END_PACKETS:
                return False
            if packet.pts is not None and float(packet.pts * stream.time_base) >= target - 10:
                return True
    except av.error.FFmpegError:
        return False
    return False


def probe(path: str | Path, name: str | None = None) -> MediaInfo:
    """MediaInfo for `path`; ProbeError naming the file when it is not a usable video."""
    name = name or str(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise ProbeError(name, f"not a readable video file ({exc.strerror or exc})") from None
    with container:
        if not container.streams.video:
            kind = "an audio-only file" if container.streams.audio else "a file without video"
            raise ProbeError(name, f"has no video stream ({kind}); a reel needs pictures")
        stream = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = _duration(container, stream)
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
        container.seek(0)
        vfr = _is_variable_frame_rate(container, stream)
        if not _ends_where_it_claims(container, stream, duration):
            raise ProbeError(name, f"is truncated or corrupt: its header claims {duration:.1f} s "
                             "but the data stops early")
    display_w = int(round(ctx.width * sar))
    display_h = ctx.height
    if rotation in (90, 270):
        display_w, display_h = display_h, display_w
    return MediaInfo(
        duration=duration, format_name=container.format.name, width=ctx.width, height=ctx.height,
        display_width=display_w, display_height=display_h, rotation=rotation,
        sample_aspect_ratio=sar, fps=fps, variable_frame_rate=vfr, video_codec=ctx.name,
        has_audio=audio is not None, audio_codec=audio.codec_context.name if audio else None,
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
