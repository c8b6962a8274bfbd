"""Measuring helpers: CPU and wall seconds of a piece of work (this process plus its waited-for children),
peak RSS of a whole process tree (sampled from /proc, no psutil needed), medians, and the machine."""

from __future__ import annotations

import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """One measurement: wall and CPU seconds, and the peak resident memory seen (MB, 0 when not sampled)."""

    wall: float
    cpu: float
    peak_mb: float = 0.0
    peaks: dict[str, float] = field(default_factory=dict)  # peak RSS per process kind (MB)
    at_peak: dict[str, float] = field(default_factory=dict)  # RSS per kind when the tree peaked (MB)
    extra: dict = field(default_factory=dict)


def _cpu_now() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object]) -> tuple[Sample, object]:
    """Run fn() in this process: wall seconds, and CPU seconds of this process plus the children it
    waited for (ffmpeg). Threads of this process count as this process."""
    cpu0, t0 = _cpu_now(), time.perf_counter()
    value = fn()
    return Sample(wall=time.perf_counter() - t0, cpu=_cpu_now() - cpu0), value


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def _tree(root: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def _rss_and_kind(pid: int) -> tuple[float, str]:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            rss = int(handle.read().split()[1]) * PAGE / 1e6
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmd = handle.read().split(b"\0")
    except (OSError, IndexError, ValueError):
        return 0.0, "?"
    return rss, _kind([c.decode(errors="replace") for c in cmd if c])


def _kind(cmd: list[str]) -> str:
    text = " ".join(cmd)
    if cmd and "ffmpeg" in os.path.basename(cmd[0]):
        return "ffmpeg"
    if "uvicorn" in text or ("prefect" in text and "server" in text and "start" in text):
        return "prefect server"
    if "python" in os.path.basename(cmd[0] if cmd else "") or "autoclip" in text:
        return "python"
    return os.path.basename(cmd[0]) if cmd else "?"


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants every `interval` seconds."""

    def __init__(self, root: int, interval: float = 0.05):
        self.root, self.interval = root, interval
        self.peak = 0.0
        self.peaks: dict[str, float] = {}
        self.at_peak: dict[str, float] = {}  # what the tree held, per process kind, at the moment of the peak
        self.started = time.perf_counter()
        self.peak_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            total = 0.0
            kinds: dict[str, float] = {}
            for pid in _tree(self.root):
                rss, kind = _rss_and_kind(pid)
                total += rss
                kinds[kind] = kinds.get(kind, 0.0) + rss
            if total > self.peak:
                self.peak, self.at_peak = total, kinds
                self.peak_at = time.perf_counter() - self.started
            for kind, rss in kinds.items():
                self.peaks[kind] = max(self.peaks.get(kind, 0.0), rss)
            self._stop.wait(self.interval)


def run_process(cmd: Sequence[str], *, env: dict | None = None, cwd: str | None = None,
                log: str | None = None, timeout: float = 3600, sample_memory: bool = False) -> Sample:
    """Run a command to the end: wall, CPU of its whole waited-for tree (RUSAGE_CHILDREN delta), and,
    when asked, the peak summed RSS of its process tree."""
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = open(log, "w") if log else subprocess.DEVNULL
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        memory = TreeMemory(proc.pid) if sample_memory else None
        if memory:
            memory.__enter__()
        try:
            code = proc.wait(timeout=timeout)
        finally:
            if memory:
                memory.__exit__(None, None, None)
    finally:
        if log:
            out.close()
    wall = time.perf_counter() - t0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        tail = open(log).read()[-3000:] if log else ""
        raise RuntimeError(f"command failed ({code}): {' '.join(cmd)[:300]}\n{tail}")
    cpu = (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
    return Sample(wall=wall, cpu=cpu, peak_mb=memory.peak if memory else 0.0,
                  peaks=dict(memory.peaks) if memory else {}, at_peak=dict(memory.at_peak) if memory else {},
                  extra={"peak_at": memory.peak_at if memory else 0.0})


def median(samples: Sequence[Sample]) -> Sample:
    """Field-wise median of several samples of the same work."""
    return Sample(wall=statistics.median(s.wall for s in samples), cpu=statistics.median(s.cpu for s in samples),
                  peak_mb=statistics.median(s.peak_mb for s in samples),
                  peaks={k: statistics.median(s.peaks.get(k, 0.0) for s in samples)
                         for k in {k for s in samples for k in s.peaks}},
                  extra=samples[-1].extra if samples else {})


def interleaved(works: dict[str, Callable[[], Sample]], repeats: int) -> dict[str, Sample]:
    """Run each piece of work `repeats` times, round robin (so a busy spell on the machine hits them
    alike), and return the median of each."""
    got: dict[str, list[Sample]] = {name: [] for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            got[name].append(work())
    return {name: median(samples) for name, samples in got.items()}


def machine(ffmpeg: str) -> dict[str, str]:
    """What the figures were measured on."""
    model = platform.processor() or "?"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        if m := re.search(r"Model name:\s*(.+)", lscpu):
            model = m.group(1).strip()
    except (OSError, subprocess.SubprocessError):
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    try:
        version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True,
                                 timeout=30).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "?"
    import av
    import prefect

    return {
        "cpu": model, "cores": str(os.cpu_count()), "memory": f"{mem_gb:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0], "ffmpeg": version, "pyav": av.__version__,
        "prefect": prefect.__version__,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
