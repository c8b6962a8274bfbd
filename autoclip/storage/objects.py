"""Object storage (Alibaba OSS, S3 and S3-compatible servers) through fsspec/s3fs, with oss2 for what
only OSS's own SDK does: resumable downloads of large objects and presigned URLs.

OSS speaks the S3 API, so one s3fs code path lists, reads and writes both; `oss://` URIs use OSS's endpoint
and virtual-hosted addressing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field, SecretStr

from autoclip.errors import InputError, StorageError, TransientError

log = logging.getLogger("autoclip.storage")
SCHEMES = ("s3", "oss")


def split_uri(uri: str) -> tuple[str, str, str]:
    """'oss://bucket/a/b.mp4' -> ('oss', 'bucket', 'a/b.mp4')."""
    parsed = urlparse(uri)
    if parsed.scheme not in SCHEMES or not parsed.netloc:
        raise ValueError(f"not an object URI (s3://bucket/key or oss://bucket/key): {uri}")
    return parsed.scheme, parsed.netloc, parsed.path.lstrip("/")


class ObjectStoreConfig(BaseModel):
    """Where and how to reach one object store. Secrets stay SecretStr until the SDK call."""

    provider: Literal["s3", "oss"] = "s3"
    endpoint_url: str | None = Field(None, description="e.g. https://oss-cn-hangzhou.aliyuncs.com; unset = AWS")
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    addressing_style: Literal["auto", "virtual", "path"] = "auto"

    def _secret(self, value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value else None

    def filesystem(self):
        """An s3fs filesystem for this store (OSS through its S3-compatible API)."""
        import s3fs

        style = self.addressing_style
        if style == "auto":
            style = "virtual" if self.provider == "oss" else "auto"
        client_kwargs = {"region_name": self.region} if self.region else {}
        return s3fs.S3FileSystem(
            key=self._secret(self.access_key_id), secret=self._secret(self.secret_access_key),
            token=self._secret(self.session_token), endpoint_url=self.endpoint_url,
            client_kwargs=client_kwargs, config_kwargs={"s3": {"addressing_style": style}},
            skip_instance_cache=True, use_listings_cache=False)

    def oss_bucket(self, bucket: str):
        """An oss2 Bucket (path-style addressing is what S3-compatible test servers need)."""
        import oss2

        if not self.endpoint_url:
            raise StorageError("OSS needs an endpoint (AUTOCLIP_OSS_ENDPOINT, e.g. https://oss-cn-hangzhou.aliyuncs.com)")
        auth = (oss2.StsAuth(self._secret(self.access_key_id), self._secret(self.secret_access_key),
                             self._secret(self.session_token)) if self.session_token
                else oss2.Auth(self._secret(self.access_key_id) or "", self._secret(self.secret_access_key) or ""))
        return oss2.Bucket(auth, self.endpoint_url, bucket, is_cname=self.addressing_style == "path")


def redact(text: str, config: ObjectStoreConfig) -> str:
    for secret in (config.access_key_id, config.secret_access_key, config.session_token):
        if secret and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "***")
    return text


def classify_error(uri: str, exc: Exception, config: ObjectStoreConfig) -> Exception:
    """Missing objects and refused access are the user's to fix; network faults are worth a retry."""
    text = redact(f"{type(exc).__name__}: {exc}", config)
    status = getattr(exc, "status", None)
    if isinstance(exc, FileNotFoundError) or status == 404 or "NoSuchKey" in text or "NoSuchBucket" in text:
        return InputError(uri, "no such object or bucket")
    if isinstance(exc, PermissionError) or status in (401, 403) or "AccessDenied" in text:
        return InputError(uri, f"access denied ({text})")
    if status is not None and (status >= 500 or status == 429) or _is_connection_fault(exc):
        return TransientError(f"{uri}: {text}")
    if isinstance(exc, OSError) and not status:
        return TransientError(f"{uri}: {text}")
    return StorageError(f"{uri}: {text}")


def _is_connection_fault(exc: BaseException) -> bool:
    """A refused or dropped connection or a timeout, by any client's name for it (botocore's and aiohttp's
    connection errors are not Python's ConnectionError)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, (ConnectionError, TimeoutError)):
            return True
        names = {cls.__name__ for cls in type(seen).__mro__}
        if names & {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
                    "ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "RequestError"}:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def check_bucket(uri: str, config: ObjectStoreConfig) -> None:
    """Preflight: the bucket of `uri` exists and these credentials may use it (EnvironmentFault if not)."""
    from autoclip.errors import EnvironmentFault

    scheme, bucket, _ = split_uri(uri)
    try:
        if scheme == "oss" and config.addressing_style != "path":
            config.oss_bucket(bucket).get_bucket_info()
            return
        fs = config.filesystem()
        if not fs.exists(bucket):
            raise FileNotFoundError(bucket)
    except Exception as exc:  # noqa: BLE001 - classified below
        fault = classify_error(uri, exc, config)
        if isinstance(fault, InputError):
            raise EnvironmentFault(f"output bucket {scheme}://{bucket}: {fault.reason}") from exc
        if isinstance(fault, TransientError):
            raise EnvironmentFault(f"output bucket {scheme}://{bucket} cannot be reached: {fault}") from exc
        raise EnvironmentFault(f"output bucket {scheme}://{bucket}: {fault}") from exc


def list_videos(uri: str, config: ObjectStoreConfig, formats: tuple[str, ...]) -> list[str]:
    """The video objects under a prefix URI (ending in '/'), sorted, as URIs."""
    scheme, bucket, prefix = split_uri(uri)
    try:
        if scheme == "oss" and config.addressing_style != "path":
            import oss2

            keys = [o.key for o in oss2.ObjectIterator(config.oss_bucket(bucket), prefix=prefix)]
        else:
            keys = [p.split("/", 1)[1] for p in config.filesystem().find(f"{bucket}/{prefix}")]
    except Exception as exc:  # noqa: BLE001 - classified below
        raise classify_error(uri, exc, config) from exc
    return sorted(f"{scheme}://{bucket}/{k}" for k in keys
                  if not k.endswith("/") and k.rsplit(".", 1)[-1].lower() in formats)


def download(uri: str, target: Path, config: ObjectStoreConfig, max_size: int) -> Path:
    """Fetch one object to `target` (via a .part file); OSS objects use oss2's resumable download."""
    scheme, bucket, key = split_uri(uri)
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if scheme == "oss":
            import oss2

            store = config.oss_bucket(bucket)
            size = store.head_object(key).content_length
            _check_size(uri, size, max_size)
            oss2.resumable_download(store, key, str(part), store=oss2.ResumableDownloadStore(
                root=str(target.parent)), multiget_threshold=64 * 1024 * 1024)
        else:
            fs = config.filesystem()
            _check_size(uri, fs.info(f"{bucket}/{key}")["size"], max_size)
            fs.get_file(f"{bucket}/{key}", str(part))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - classified below
        part.unlink(missing_ok=True)
        raise classify_error(uri, exc, config) from exc
    part.replace(target)
    return target


def _check_size(uri: str, size: int | None, max_size: int) -> None:
    if size == 0:
        raise InputError(uri, "is empty (0 bytes)")
    if size and size > max_size:
        raise InputError(uri, f"is {size / 1024**2:.1f} MiB, over the limit of {max_size / 1024**2:.1f} MiB "
                         "(AUTOCLIP_MAX_VIDEO_SIZE)")


def upload(local: Path, uri: str, config: ObjectStoreConfig) -> str:
    """Put a file at `uri`. A PUT (or a completed multipart upload) is atomic: readers see the finished
    object or none."""
    scheme, bucket, key = split_uri(uri)
    try:
        if scheme == "oss" and config.addressing_style != "path":
            import oss2

            oss2.resumable_upload(config.oss_bucket(bucket), key, str(local),
                                  multipart_threshold=64 * 1024 * 1024)
        else:
            config.filesystem().put_file(str(local), f"{bucket}/{key}")
    except Exception as exc:  # noqa: BLE001 - classified below
        raise classify_error(uri, exc, config) from exc
    return uri


def presign(uri: str, config: ObjectStoreConfig, expires: int) -> str:
    """An HTTPS URL others can GET for `expires` seconds (oss2 sign_url for OSS, s3fs for S3)."""
    scheme, bucket, key = split_uri(uri)
    if scheme == "oss":
        return config.oss_bucket(bucket).sign_url("GET", key, expires, slash_safe=True)
    return config.filesystem().sign(f"{bucket}/{key}", expiration=expires)
