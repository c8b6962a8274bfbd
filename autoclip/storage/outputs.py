"""Publish a run's outputs (reel, plan, subtitles) to the chosen backend: a local folder, an object store,
or both (hybrid: local first, kept as the cache, then uploaded). The outputs are one set: every file is
staged first, then all are renamed into place; a failure removes what this run placed, and an output of
an earlier run that this run does not make (an old reel.srt beside a reel without speech) is removed."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autoclip.config import Settings
from autoclip.errors import EnvironmentFault, InputError, ProviderError, StorageError, environment_fault
from autoclip.retry import RetryPolicy
from autoclip.storage.local import publish_file, stage_file
from autoclip.storage.objects import SCHEMES, presign, split_uri, upload

# every companion a run may place beside its reel; one this run does not make is stale
SIBLINGS = (".plan.json", ".srt")

log = logging.getLogger("autoclip.storage")


@dataclass
class Destination:
    """Where the reel goes: a local path, an object URI, or both."""

    local: Path | None
    remote: str | None

    def sibling(self, suffix: str) -> "Destination":
        """The same place for a companion file: reel.mp4 -> reel.plan.json."""
        local = self.local.with_suffix(suffix) if self.local else None
        remote = None
        if self.remote:
            scheme, bucket, key = split_uri(self.remote)
            remote = f"{scheme}://{bucket}/{PurePosixPath(key).with_suffix(suffix)}"
        return Destination(local, remote)


@dataclass
class Published:
    uri: str
    local: str | None = None
    url: str | None = None
    extra: dict = field(default_factory=dict)


def is_object_uri(text: str) -> bool:
    return text.split("://", 1)[0] in SCHEMES and "://" in text


def destination(output: str, settings: Settings) -> Destination:
    """Resolve the `output` parameter against AUTOCLIP_STORAGE_BACKEND and AUTOCLIP_OUTPUT_URI."""
    backend = settings.storage_backend
    if is_object_uri(output):
        name = PurePosixPath(split_uri(output)[2]).name
        return Destination(Path(name) if backend == "hybrid" else None, output)
    local = Path(output).expanduser()
    if backend == "local":
        return Destination(local, None)
    if not settings.output_uri or not is_object_uri(settings.output_uri):
        raise StorageError(f"AUTOCLIP_STORAGE_BACKEND={backend} needs AUTOCLIP_OUTPUT_URI "
                           "(s3://bucket/prefix or oss://bucket/prefix) or an s3:// / oss:// output")
    remote = f"{settings.output_uri.rstrip('/')}/{local.name}"
    return Destination(local if backend == "hybrid" else None, remote)


def publish(file: Path, target: Destination, settings: Settings) -> Published:
    """Put one finished file in place. The local copy lands first and is never removed before the upload
    succeeded; a failed upload is retried (one policy) and then raised as StorageError."""
    local_path = None
    source = file
    if target.local:
        local_path = publish_file(file, target.local)
        source = Path(local_path)
    if not target.remote:
        return Published(uri=local_path, local=local_path)
    scheme = split_uri(target.remote)[0]
    config = settings.object_store(scheme)
    try:
        RetryPolicy.from_settings(settings).call(f"uploading {target.remote}",
                                                 lambda: upload(source, target.remote, config))
    except (ProviderError, InputError) as exc:
        raise StorageError(f"upload failed, the local result is kept: {exc}") from exc
    url = None
    try:
        url = presign(target.remote, config, settings.presign_expiry)
    except Exception as exc:  # noqa: BLE001 - a missing URL must not undo a finished upload
        log.warning("no presigned URL for %s: %s", target.remote, type(exc).__name__)
    if not target.local:
        source.unlink(missing_ok=True)  # the workspace copy; the object is the result now
    return Published(uri=target.remote, local=local_path, url=url)


def _remove_object(uri: str, settings: Settings) -> None:
    try:
        scheme, bucket, key = split_uri(uri)
        config = settings.object_store(scheme)
        if scheme == "oss" and config.addressing_style != "path":
            config.oss_bucket(bucket).delete_object(key)
        else:
            fs = config.filesystem()
            if fs.exists(f"{bucket}/{key}"):
                fs.rm_file(f"{bucket}/{key}")
    except Exception as exc:  # noqa: BLE001 - best effort: say what could not be removed
        log.warning("could not remove %s: %s", uri, type(exc).__name__)


def publish_set(files: list[tuple[Path, str]], target: Destination, settings: Settings,
                keep: Path) -> list[Published]:
    """Publish (file, suffix) pairs as one set ('' is the reel; '.plan.json', '.srt' go beside it).

    Local: all are staged beside their destinations, then renamed; if a rename fails, what this run
    placed is removed. Object store: all are uploaded (retried); if one fails, this run's objects are
    removed and the local set stays where the error says (hybrid: in place; s3/oss only: moved to `keep`).
    Stale siblings are removed once the set is in place."""
    places = [(file, target.sibling(suffix) if suffix else target) for file, suffix in files]
    staged: list[tuple[Path, Path]] = []
    try:
        if target.local:
            for file, place in places:
                staged.append((stage_file(file, place.local), place.local))
        sources = [s for s, _ in staged] if target.local else [f for f, _ in places]
        uploaded: list[str] = []
        if target.remote:
            try:
                for source, (_, place) in zip(sources, places):
                    config = settings.object_store(split_uri(place.remote)[0])
                    RetryPolicy.from_settings(settings).call(f"uploading {place.remote}",
                                                             lambda: upload(source, place.remote, config))
                    uploaded.append(place.remote)
            except (ProviderError, InputError, StorageError) as exc:
                for uri in uploaded:
                    _remove_object(uri, settings)
                if target.local:
                    _rename_all(staged)
                    staged = []
                    where = f"the local result is kept at {target.local.resolve()}"
                else:
                    where = f"the finished files are kept in {_keep(sources, keep)}"
                raise StorageError(f"upload failed, {where}: {exc}") from exc
        _rename_all(staged)
        staged = []
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    _remove_stale(target, {suffix for _, suffix in files}, settings)
    published = []
    for file, place in places:
        local = str(place.local.resolve()) if place.local else None
        url = None
        if place.remote:
            try:
                url = presign(place.remote, settings.object_store(split_uri(place.remote)[0]), settings.presign_expiry)
            except Exception as exc:  # noqa: BLE001 - a missing URL must not undo a finished upload
                log.warning("no presigned URL for %s: %s", place.remote, type(exc).__name__)
        published.append(Published(uri=place.remote or local, local=local, url=url))
    return published


def _rename_all(staged: list[tuple[Path, Path]]) -> list[Path]:
    """Rename every staged file into place; on a failure remove what was placed and the rest."""
    placed: list[Path] = []
    try:
        for tmp, final in staged:
            os.replace(tmp, final)
            placed.append(final)
    except OSError as exc:
        for final in placed:
            final.unlink(missing_ok=True)
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise environment_fault(exc, "publishing the outputs") or StorageError(
            f"publishing the outputs: {exc}") from exc
    return placed


def _keep(files: list[Path], keep: Path) -> Path:
    """Move finished files out of the workspace (which is about to be removed) so nothing is lost."""
    try:
        keep.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.move(str(file), keep / file.name)
    except OSError as exc:
        raise EnvironmentFault(f"upload failed and the result could not be kept in {keep}: {exc}") from exc
    return keep


def _remove_stale(target: Destination, made: set[str], settings: Settings) -> None:
    for suffix in SIBLINGS:
        if suffix in made:
            continue
        place = target.sibling(suffix)
        if place.local and place.local.exists():
            place.local.unlink(missing_ok=True)
            log.info("removed %s: an output of an earlier run that this run does not make", place.local)
        if place.remote:
            _remove_object(place.remote, settings)
