"""Local sources: paths, globs and folders -> a list of video files, with clear reasons for what is refused."""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path

from autoclip.errors import InputError
from autoclip.models import Rejection

_HASH_CHUNK = 4 * 1024 * 1024


def is_pattern(source: str) -> bool:
    """Whether a local source is a glob to expand: it has * ? or [ and is not itself a file or folder
    ("trip [1080p].mp4" is a file)."""
    return glob.has_magic(source) and not Path(source).expanduser().exists()


def expand_sources(sources: list[str], formats: tuple[str, ...]) -> tuple[list[str], list[Rejection]]:
    """Files named directly, matched by a glob, or found (non-recursively sorted) in a folder.

    Files named directly are kept even with an odd extension so ingest can say what is wrong with them;
    folders and globs keep only supported extensions.
    """
    found: list[str] = []
    rejected: list[Rejection] = []
    for source in sources:
        path = Path(source).expanduser()
        if is_pattern(source):
            matches = sorted(m for m in glob.glob(os.path.expanduser(source), recursive=True)
                             if Path(m).is_file() and Path(m).suffix.lower().lstrip(".") in formats)
            if not matches:
                rejected.append(Rejection(source=source, stage="import",
                                          reason=f"the pattern matches no videos ({', '.join(formats)})"))
            found += matches
        elif path.is_dir():
            matches = sorted(str(p) for p in path.iterdir()
                             if p.is_file() and p.suffix.lower().lstrip(".") in formats)
            if not matches:
                rejected.append(Rejection(source=source, stage="import",
                                          reason=f"the folder contains no videos ({', '.join(formats)})"))
            found += matches
        else:
            found.append(source)
    unique = list(dict.fromkeys(found))
    return unique, rejected


def check_file(source: str, formats: tuple[str, ...], max_size: int, name: str | None = None) -> Path:
    """The cheap checks before any decoding: exists, is a file, extension, size. Errors name `name`
    (the source as the user gave it) when the file is a download of it."""
    path = Path(source).expanduser()
    source = name or source
    if not path.exists():
        raise InputError(source, "does not exist")
    if not path.is_file():
        raise InputError(source, "is not a regular file")
    ext = path.suffix.lower().lstrip(".")
    if ext not in formats:
        what = f"unsupported format '.{ext}'" if ext else "has no file extension to tell its format"
        raise InputError(source, f"{what} (supported: {', '.join(formats)}; see AUTOCLIP_SUPPORTED_FORMATS)")
    size = path.stat().st_size
    if size == 0:
        raise InputError(source, "is empty (0 bytes)")
    if size > max_size:
        raise InputError(source, f"is {size / 1024**2:.1f} MiB, over the limit of {max_size / 1024**2:.1f} MiB "
                         "(AUTOCLIP_MAX_VIDEO_SIZE)")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def place_in_workspace(path: Path, workspace: Path, index: int) -> Path:
    """A hard link (or a copy across file systems) so the run keeps its input even if the original moves."""
    workspace.mkdir(parents=True, exist_ok=True)
    target = workspace / f"{index:03d}{path.suffix.lower()}"
    target.unlink(missing_ok=True)
    path = Path(os.path.realpath(path))  # a (relative) symlink is linked as what it points to, not as itself
    try:
        os.link(path, target)
    except OSError:
        import shutil

        shutil.copyfile(path, target)
    return target
