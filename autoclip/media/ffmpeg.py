"""The one ffmpeg runner: find the binary, run it with a timeout, report progress, fail with a clear error.

ffmpeg-python only builds argument lists here (`graph_args`); every process goes through `run_ffmpeg`.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache

from autoclip.config import get_settings
from autoclip.errors import RenderError


class FFmpegError(RenderError):
    """ffmpeg exited non-zero, timed out, or could not start."""


@lru_cache(maxsize=4)
def _resolve(configured: str | None) -> str:
    if configured:
        found = shutil.which(configured) or (configured if os.path.isfile(configured) else None)
        if not found:
            raise FFmpegError(f"AUTOCLIP_FFMPEG_BINARY={configured!r} is not an executable file")
        return found
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - a dependency, but keep the message clear
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        try:
            return imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError:
            pass
    found = shutil.which("ffmpeg")
    if not found:
        raise FFmpegError("no ffmpeg found: install imageio-ffmpeg or set AUTOCLIP_FFMPEG_BINARY")
    return found


def ffmpeg_binary() -> str:
    """Path of the ffmpeg executable: AUTOCLIP_FFMPEG_BINARY, else the imageio-ffmpeg wheel's, else PATH."""
    return _resolve(get_settings().ffmpeg_binary)


def ffmpeg_python():
    """The ffmpeg-python module, checked: other packages also install a top-level `ffmpeg`."""
    import ffmpeg

    if not all(hasattr(ffmpeg, name) for name in ("input", "output", "concat", "get_args")):
        raise FFmpegError(
            f"the 'ffmpeg' module at {getattr(ffmpeg, '__file__', '?')} is not ffmpeg-python 0.2.0; "
            "uninstall the package that shadows it (e.g. `pip uninstall ffmpeg python-ffmpeg`)")
    return ffmpeg


def graph_args(stream_spec) -> list[str]:
    """Arguments (without the binary) for an ffmpeg-python output node."""
    return ffmpeg_python().get_args(stream_spec)


def run_ffmpeg(
    args: Sequence[str],
    *,
    what: str,
    timeout: float | None = None,
    expected_seconds: float | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Run ffmpeg with `args`; raise FFmpegError naming `what` and the tail of ffmpeg's own message.

    Progress (0..1) is read from `-progress pipe:1` when `expected_seconds` and `on_progress` are given.
    """
    timeout = timeout or get_settings().ffmpeg_timeout
    cmd = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    want_progress = bool(on_progress and expected_seconds)
    if want_progress:
        cmd += ["-progress", "pipe:1", "-nostats"]
    cmd += [a for a in args if a != "-y"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if want_progress else subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, errors="replace")
    except OSError as exc:
        raise FFmpegError(f"{what}: cannot start ffmpeg ({exc})") from exc

    tail: collections.deque[str] = collections.deque(maxlen=30)
    drain = threading.Thread(target=lambda: tail.extend(proc.stderr), daemon=True)
    drain.start()
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, _kill)
    timer.start()
    try:
        if want_progress:
            for line in proc.stdout:
                value = line[12:].strip() if line.startswith("out_time_us=") else ""
                if value.isdigit():
                    on_progress(min(1.0, int(value) / 1e6 / expected_seconds))
        proc.wait()
    finally:
        timer.cancel()
        drain.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    if timed_out.is_set():
        raise FFmpegError(f"{what}: ffmpeg took longer than {timeout:.0f} s and was stopped")
    if proc.returncode != 0:
        message = " | ".join(line.strip() for line in tail if line.strip())[-1500:]
        raise FFmpegError(f"{what}: ffmpeg exited with {proc.returncode}: {message or 'no message'}")
