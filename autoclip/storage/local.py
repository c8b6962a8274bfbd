"""Local storage: outputs land in a folder, each written atomically (temp file + rename), with the
permissions an ordinary new file gets (0666 less the umask), whichever file system the temp file was on."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from autoclip.errors import StorageError, environment_fault


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stage_file(local: Path, destination: Path) -> Path:
    """A finished copy of `local` beside `destination`, under a hidden temporary name, ready for the rename
    that publishes it (a rename within one folder is atomic)."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent)
        os.close(fd)
        staged = Path(tmp)
        try:
            try:
                os.replace(local, staged)  # same file system: no copy
            except OSError:
                shutil.copyfile(local, staged)
            os.chmod(staged, 0o666 & ~_umask())  # mkstemp makes 0600; an output is an ordinary file
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise environment_fault(exc, f"cannot write {destination}") or StorageError(
            f"cannot write {destination}: {exc}") from exc
    return staged


def publish_file(local: Path, destination: Path) -> str:
    """Move or copy `local` to `destination` so a reader sees either the finished file or none."""
    staged = stage_file(local, destination)
    try:
        os.replace(staged, destination)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise StorageError(f"cannot write {destination}: {exc}") from exc
    return str(destination.resolve())
