"""Local storage: outputs land in a folder, each written atomically (temp file + rename)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from autoclip.errors import StorageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_file(local: Path, destination: Path) -> str:
    """Move or copy `local` to `destination` so a reader sees either the finished file or none."""
    try:
        os.chmod(local, 0o666 & ~_umask())  # temp files are created 0600; outputs are ordinary files
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local, destination)
        except OSError:  # another file system: copy beside the target, then rename
            fd, tmp = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
            os.close(fd)
            try:
                shutil.copyfile(local, tmp)
                os.replace(tmp, destination)
            finally:
                Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot write {destination}: {exc}") from exc
    return str(destination.resolve())
