"""Turn each source into a checked local file in the run's workspace."""

from __future__ import annotations

from pathlib import Path

from autoclip.config import Settings
from autoclip.media.probe import probe
from autoclip.models import SourceVideo
from autoclip.sources.local import check_file, expand_sources, place_in_workspace, sha256_file

__all__ = ["expand_sources", "ingest"]


def ingest(source: str, index: int, workspace: Path, settings: Settings) -> SourceVideo:
    """Check, hash, probe and place one source; InputError (naming it) when it cannot be used."""
    path = check_file(source, settings.supported_formats, settings.max_video_size)
    info = probe(path, name=source)
    digest = sha256_file(path)
    local = place_in_workspace(path, workspace / "inputs", index)
    return SourceVideo(index=index, source=source, name=path.name, path=str(local), sha256=digest,
                       size_bytes=path.stat().st_size, info=info)
