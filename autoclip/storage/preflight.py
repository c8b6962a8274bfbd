"""Checks made before any work, so a run that cannot finish fails in seconds with the cause, not after
the render: the output is writable, the bucket exists, the workspace has room, and the outputs do not
sit among (or overwrite) the inputs."""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from pathlib import Path

from autoclip.config import ClipOptions, Settings
from autoclip.errors import EnvironmentFault, InputError
from autoclip.sources.local import is_pattern
from autoclip.storage.outputs import Destination

# What a run writes into its workspace besides the reel: a 16 kHz mono WAV (32 kB/s) and a few JPEGs per
# source, the partial reel, the plan. The reel is estimated from libx264 at CRF 23 on busy 720p pictures
# (about 2.5 Mbit/s at 1280x720x30, scaled by pixels per second), doubled for the render cache's copy.
_FIXED_BYTES = 64 * 1024**2
_BITS_PER_PIXEL = 0.09


def estimate_workspace(options: ClipOptions, local_source_bytes: int = 0) -> int:
    """Bytes a run needs free in its workspace (a generous estimate: better refused early than full late)."""
    reel = options.target_duration * options.width * options.height * options.fps * _BITS_PER_PIXEL / 8
    analysis = local_source_bytes // 10  # WAV + frames, well under a tenth of a compressed source
    return int(_FIXED_BYTES + 2 * reel + analysis)


def check_free_space(folder: Path, needed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise EnvironmentFault(f"the workspace {folder} has {free / 1024**2:.0f} MiB free, the run needs about "
                               f"{needed / 1024**2:.0f} MiB (AUTOCLIP_WORKSPACE_DIR)")


def _nearest_existing(folder: Path) -> Path:
    """`folder`, or the nearest folder above it that exists (publishing creates the rest)."""
    existing = folder.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def check_writable(folder: Path) -> None:
    """Create and remove a file in `folder`, or (when it does not exist yet) in the nearest folder above it
    that does, since publishing will create the rest: permissions, read-only mounts. Creates nothing."""
    existing = _nearest_existing(folder)
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a folder", str(existing))
        with tempfile.NamedTemporaryFile(prefix=".autoclip-check.", dir=existing):
            pass
    except OSError as exc:
        raise EnvironmentFault(f"the output folder {folder} is not writable: {exc.strerror or exc}") from exc


REEL_SUFFIXES = (".mp4", ".m4v", ".mov")  # the reel is H.264/AAC in an MP4 container
STAGING_EXTRA = len(".plan.json") + len("..12345678.partial")  # the longest name written beside the reel


def check_output_name(output: Path) -> None:
    """Refuse, before any work, an output the publish step could not write: an existing folder, a name
    that is not an MP4's, or a name so long that the files staged beside it exceed the file system's
    limit on a name."""
    if output.is_dir():
        raise InputError(str(output), f"is a folder; give the reel a file name, e.g. -o {output / 'reel.mp4'}")
    if output.suffix.lower() not in REEL_SUFFIXES:
        raise InputError(str(output), f"the reel is an MP4 (H.264/AAC); give -o a name ending in .mp4 "
                         f"(or {', '.join(REEL_SUFFIXES[1:])}), not {output.suffix or 'no extension'}")
    folder = _nearest_existing(output.parent)
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    size = len(output.stem.encode())
    if size + STAGING_EXTRA > limit:
        raise InputError(str(output), f"the file name is too long: its stem is {size} bytes and at most "
                         f"{limit - STAGING_EXTRA} fit, since the plan and the files staged while writing "
                         f"add {STAGING_EXTRA} to it (this folder allows {limit})")


def check_not_among_inputs(sources: list[str], output: Path, allow: bool) -> None:
    """Refuse an output that is a source, or that lands where a folder or glob source will find it next
    time (unless `allow`: the user asked for it)."""
    if allow:
        return
    out = Path(os.path.realpath(output))
    names = [out] + [out.with_suffix(s) for s in (".plan.json", ".srt")]  # a source overwritten
    for source in sources:
        if "://" in source:
            continue
        path = Path(source).expanduser()
        pattern = is_pattern(source)
        if pattern:
            pattern = os.path.abspath(os.path.expanduser(source))
            hit = fnmatch.fnmatch(str(out), pattern) or fnmatch.fnmatch(os.path.abspath(output), pattern)
        elif path.is_dir():
            hit = Path(os.path.realpath(path)) == out.parent
        else:
            hit = Path(os.path.realpath(path)) in names
        if hit:
            what = "is the source" if not path.is_dir() and not pattern else \
                f"is inside the input {source}, so the next run would take the reel as a source"
            raise InputError(str(output), f"the output {what}; choose another -o "
                             "(or pass --allow-output-among-inputs)")


def preflight(sources: list[str], target: Destination, options: ClipOptions, settings: Settings,
              allow_output_among_inputs: bool = False) -> None:
    """Everything that can be known wrong before the work starts."""
    if target.local:
        check_output_name(target.local)
        check_not_among_inputs(sources, target.local, allow_output_among_inputs)
        check_writable(target.local.parent if str(target.local.parent) else Path("."))
    if target.remote:
        from autoclip.storage.objects import check_bucket, split_uri

        check_bucket(target.remote, settings.object_store(split_uri(target.remote)[0]))
    local_bytes = 0
    for source in sources:
        if "://" not in source and Path(source).expanduser().is_file():
            local_bytes += Path(source).expanduser().stat().st_size
    check_free_space(settings.workspace_dir, estimate_workspace(options, local_bytes))


OWNER_FILE = ".owner"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (tells a live owner from a new process that reused its PID)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def claim_workspace(workspace: Path) -> None:
    """Create the run's workspace and record its owner (PID and start time) for `sweep_abandoned`."""
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / OWNER_FILE).write_text(f"{os.getpid()} {_process_start(os.getpid()) or ''}\n")


def sweep_abandoned(workspace_dir: Path) -> list[Path]:
    """Remove the workspaces of runs whose process is gone (killed with -9, or the machine stopped): their
    partial files would otherwise stay for ever. Workspaces without an owner record are left alone."""
    removed = []
    if not workspace_dir.is_dir():
        return removed
    for folder in workspace_dir.iterdir():
        owner = folder / OWNER_FILE
        try:
            pid_text, _, started = owner.read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        if _process_start(pid) is None or (started and _process_start(pid) != started):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
