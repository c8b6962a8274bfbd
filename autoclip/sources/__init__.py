"""Turn each source (path, glob, folder, http(s) link, s3:// or oss:// object or prefix) into a checked
local file in the run's workspace."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from autoclip.config import Settings
from autoclip.errors import AutoclipError, InputError
from autoclip.media.ffmpeg import run_ffmpeg
from autoclip.media.probe import probe, video_comes_first
from autoclip.models import Rejection, SourceVideo
from autoclip.sources.local import check_file, expand_sources as expand_local, place_in_workspace, sha256_file

__all__ = ["expand_sources", "ingest", "is_remote"]
_OBJECT = ("s3://", "oss://")
_WEB = ("http://", "https://")


def normalise(source: str) -> str:
    """A source as the code expects it: a URL scheme in lower case (`HTTP://` is `http://`), and a
    `file://` URL as the local path it names."""
    scheme, sep, rest = source.partition("://")
    if not sep or not (scheme[:1].isalpha() and scheme.isalnum()):
        return source
    scheme = scheme.lower()
    if scheme == "file":
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(f"file://{rest}")
        if parts.netloc not in ("", "localhost"):
            return source  # file://host/share: not a local path; reported as missing with its name
        return unquote(parts.path)
    return f"{scheme}://{rest}"


def is_remote(source: str) -> bool:
    return normalise(source).startswith(_OBJECT + _WEB)


def expand_sources(sources: list[str], settings: Settings) -> tuple[list[str], list[Rejection]]:
    """Local paths, globs and folders expand on disk; an object prefix (ending in '/') lists its videos;
    links and single objects pass through. Whatever cannot be listed becomes a Rejection."""
    from autoclip.storage.objects import list_videos

    found: list[str] = []
    rejected: list[Rejection] = []
    for given in sources:
        source = normalise(given)
        if source.startswith(_OBJECT) and source.endswith("/"):
            scheme = source.split("://", 1)[0]
            try:
                videos = list_videos(source, settings.object_store(scheme), settings.supported_formats)
            except AutoclipError as exc:
                rejected.append(Rejection(source=source, stage="import", reason=_reason(exc)))
                continue
            if not videos:
                rejected.append(Rejection(source=source, stage="import",
                                          reason=f"the prefix holds no videos ({', '.join(settings.supported_formats)})"))
            found += videos
        elif is_remote(source):
            found.append(source)
        else:
            paths, problems = expand_local([source], settings.supported_formats)
            found += paths
            rejected += problems
    return _distinct(found), rejected


def _distinct(found: list[str]) -> list[str]:
    """Each file once: a link, a second path or a glob through a symlink loop to the same file is the same
    source (copies with other inode are caught later, by their sha256)."""
    seen: set = set()
    kept = []
    for source in found:
        key = source
        if not is_remote(source):
            try:
                st = Path(source).expanduser().stat()
                key = (st.st_dev, st.st_ino)
            except OSError:
                key = source  # missing: ingest says so, once
        if key not in seen:
            seen.add(key)
            kept.append(source)
    return kept


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, InputError) else str(exc)


def fetch(source: str, folder: Path, settings: Settings) -> Path:
    """A remote source downloaded into `folder` (http(s) with the SSRF guard; objects with their SDK)."""
    if source.startswith(_WEB):
        from autoclip.sources.http import fetch_http

        return fetch_http(source, folder, settings)
    from autoclip.storage.objects import download, split_uri

    scheme, _, key = split_uri(source)
    name = PurePosixPath(key).name
    if not name or PurePosixPath(name).suffix.lower().lstrip(".") not in settings.supported_formats:
        raise InputError(source, f"unsupported format '{PurePosixPath(name).suffix or '(none)'}' "
                         f"(supported: {', '.join(settings.supported_formats)})")
    return download(source, folder / name, settings.object_store(scheme), settings.max_video_size)


def ingest(source: str, index: int, workspace: Path, settings: Settings) -> SourceVideo:
    """Fetch (when remote), check, probe, hash and place one source; InputError naming it when unusable."""
    source = normalise(source)
    if is_remote(source):
        path = fetch(source, workspace / "downloads" / f"{index:03d}", settings)
    else:
        path = Path(source).expanduser()
    path = check_file(str(path), settings.supported_formats, settings.max_video_size, name=source)
    info = probe(path, name=source)
    digest = sha256_file(path)
    if not video_comes_first(path, info):
        local = _without_cover(path, info, workspace / "inputs", index, source)
        info = probe(local, name=source)
    else:
        local = path if is_remote(source) else place_in_workspace(path, workspace / "inputs", index)
    return SourceVideo(index=index, source=source, name=path.name, path=str(local), sha256=digest,
                       size_bytes=path.stat().st_size, info=info)


def _without_cover(path: Path, info, folder: Path, index: int, source: str) -> Path:
    """Cutting and rendering take a file's first video stream: when a cover picture comes before the video
    (a PNG first in a Matroska file), the video and first audio are copied (no re-encoding) into the
    workspace without it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{index:03d}.mkv"
    target.unlink(missing_ok=True)
    try:
        run_ffmpeg(["-i", str(path), "-map", f"0:{info.video_stream}", "-map", "0:a:0?", "-c", "copy",
                    str(target)], what=f"separating the video of {source} from its cover picture")
    except AutoclipError as exc:
        target.unlink(missing_ok=True)
        raise InputError(source, f"its video cannot be separated from the cover picture before it ({exc})") from None
    return target
