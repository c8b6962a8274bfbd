"""Publish a run's outputs (reel, plan, subtitles) to the chosen backend: a local folder, an object store,
or both (hybrid: local first, kept as the cache, then uploaded). Each output appears whole or not at all."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autoclip.config import Settings
from autoclip.errors import InputError, ProviderError, StorageError
from autoclip.retry import RetryPolicy
from autoclip.storage.local import publish_file
from autoclip.storage.objects import SCHEMES, presign, split_uri, upload

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
