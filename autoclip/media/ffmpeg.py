"""The one ffmpeg runner: find the binary, run it with a timeout, report progress, fail with a clear error.

ffmpeg-python only builds argument lists here (`graph_args`); every process goes through `run_ffmpeg`.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache

from autoclip.config import get_settings
from autoclip import deadline
from autoclip.errors import EnvironmentFault, RenderError


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


_children: set[subprocess.Popen] = set()
_children_lock = threading.Lock()
_NO_SPACE = ("No space left on device", "Disk quota exceeded", "Read-only file system")


def _death_signal_setter():
    """Linux: a function for the child (between fork and exec) that makes it get SIGKILL when the process
    that started it dies, even by `kill -9`. Resolved here, in the parent: the child may take no lock
    (an import would wait forever on a lock another thread held at the fork)."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_die_with_parent = _death_signal_setter()


def stop_children(sig: int = signal.SIGKILL) -> int:
    """Stop every ffmpeg this process is running (each is its own process group), by PID; how many."""
    with _children_lock:
        procs = list(_children)
    for proc in procs:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    return len(procs)


def running_children() -> list[int]:
    with _children_lock:
        return [p.pid for p in _children]


def run_ffmpeg(
    args: Sequence[str],
    *,
    what: str,
    timeout: float | None = None,
    expected_seconds: float | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Run ffmpeg with `args`; raise FFmpegError naming `what` and the tail of ffmpeg's own message.

    The wait is limited by `timeout` (default AUTOCLIP_FFMPEG_TIMEOUT), cut to what is left of the run's
    deadline (`deadline.limit`). ffmpeg runs in its own process group, is listed for `stop_children` (the
    CLI's SIGTERM/SIGINT handler) and dies with this process on Linux. A full disk or a kill by a signal is
    an EnvironmentFault, not a fault of the media. Progress (0..1) is read from `-progress pipe:1` when
    `expected_seconds` and `on_progress` are given.
    """
    own = timeout or get_settings().ffmpeg_timeout
    timeout = deadline.limit(own, what)
    cmd = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    want_progress = bool(on_progress and expected_seconds)
    if want_progress:
        cmd += ["-progress", "pipe:1", "-nostats"]
    cmd += [a for a in args if a != "-y"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if want_progress else subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
                                preexec_fn=_die_with_parent)
    except OSError as exc:
        raise FFmpegError(f"{what}: cannot start ffmpeg ({exc})") from exc
    with _children_lock:
        _children.add(proc)

    tail: collections.deque[str] = collections.deque(maxlen=30)
    drain = threading.Thread(target=lambda: tail.extend(proc.stderr), daemon=True)
    drain.start()
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, _kill)
    timer.daemon = True
    timer.start()
    try:
        if want_progress:
            for line in proc.stdout:
                value = line[12:].strip() if line.startswith("out_time_us=") else ""
                if value.isdigit():
                    on_progress(min(1.0, int(value) / 1e6 / expected_seconds))
        proc.wait()
    except BaseException:  # KeyboardInterrupt, SystemExit: no ffmpeg outlives the wait on it
        _kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
        with _children_lock:
            _children.discard(proc)
        drain.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    message = " | ".join(line.strip() for line in tail if line.strip())[-1500:]
    if timed_out.is_set():
        if timeout < own:
            raise deadline.DeadlineExceeded(f"{what}: stopped after {timeout:.0f} s, the run's deadline "
                                            "(AUTOCLIP_RUN_TIMEOUT) ran out")
        raise FFmpegError(f"{what}: ffmpeg took longer than {timeout:.0f} s and was stopped")
    if any(text in message for text in _NO_SPACE):
        raise EnvironmentFault(f"{what}: the disk is full or read-only ({message[-300:]})")
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else "?"
        raise EnvironmentFault(f"{what}: ffmpeg was killed by signal {-proc.returncode} ({name}), "
                               "not by anything in the media")
    if proc.returncode != 0:
        raise FFmpegError(f"{what}: ffmpeg exited with {proc.returncode}: {message or 'no message'}")
