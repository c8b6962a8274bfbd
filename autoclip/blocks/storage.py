"""ObjectStorage: an OSS or S3 bucket as a Prefect block. Its keys are SecretStr (masked in the API and
UI); it yields the fsspec filesystem or an oss2 bucket, and it is a WritableFileSystem, so Prefect can
keep task results and cache records in the bucket."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Literal

from prefect.filesystems import WritableFileSystem
from pydantic import Field, SecretStr

from autoclip.config import Settings
from autoclip.storage.objects import ObjectStoreConfig, split_uri

log = logging.getLogger("autoclip.blocks")


class ObjectStorage(WritableFileSystem):
    """An Alibaba OSS or S3 (or S3-compatible) bucket and prefix for auto-clip outputs and Prefect results."""

    _block_type_name = "auto-clip Object Storage"
    _block_type_slug = "autoclip-object-storage"
    _description = "OSS or S3 bucket for auto-clip outputs and Prefect results (keys kept as secrets)."
    _code_example = """
```python
from autoclip.blocks import ObjectStorage

ObjectStorage(provider="oss", endpoint_url="https://oss-cn-hangzhou.aliyuncs.com", bucket="my-bucket",
              prefix="autoclip", access_key_id="LTAI...", secret_access_key="...").save("autoclip-storage")
storage = ObjectStorage.load("BLOCK_NAME")
fs = storage.filesystem()
```"""

    provider: Literal["oss", "s3"] = Field("s3", description="oss (Alibaba Cloud) or s3 (AWS or compatible).")
    endpoint_url: str | None = Field(None, description="Endpoint, e.g. https://oss-cn-hangzhou.aliyuncs.com.")
    region: str | None = Field(None, description="Region, e.g. cn-hangzhou or eu-west-1.")
    bucket: str = Field(description="Bucket name.")
    prefix: str = Field("", description="Key prefix inside the bucket, e.g. autoclip/.")
    access_key_id: SecretStr | None = Field(None, description="Access key id (kept as a secret).")
    secret_access_key: SecretStr | None = Field(None, description="Secret access key (kept as a secret).")
    addressing_style: Literal["auto", "virtual", "path"] = Field(
        "auto", description="virtual for OSS; path for most S3-compatible test servers.")

    def config(self) -> ObjectStoreConfig:
        return ObjectStoreConfig(provider=self.provider, endpoint_url=self.endpoint_url, region=self.region,
                                 access_key_id=self.access_key_id, secret_access_key=self.secret_access_key,
                                 addressing_style=self.addressing_style)

    def filesystem(self):
        """The fsspec (s3fs) filesystem for this bucket."""
        return self.config().filesystem()

    def oss_bucket(self):
        """The oss2 Bucket (OSS only: resumable transfers, sign_url)."""
        return self.config().oss_bucket(self.bucket)

    @property
    def uri(self) -> str:
        return f"{self.provider}://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")

    def _key(self, path: str) -> str:
        prefix = self.prefix.strip("/")
        path = path.lstrip("/")
        return path if not prefix or path.startswith(prefix + "/") else f"{prefix}/{path}"

    def _resolve_path(self, path: str) -> str:  # Prefect stores result keys through this
        return self._key(path)

    # Prefect calls these with `_sync=True` on its synchronous paths: accept and ignore such flags.
    def read_path(self, path: str, **_flags) -> bytes:
        return self.filesystem().cat_file(f"{self.bucket}/{self._key(path)}")

    def write_path(self, path: str, content: bytes, **_flags) -> str:
        key = self._key(path)
        self.filesystem().pipe_file(f"{self.bucket}/{key}", content)
        return key

    async def aread_path(self, path: str) -> bytes:
        return await asyncio.to_thread(self.read_path, path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await asyncio.to_thread(self.write_path, path, content)


def _load_block(settings: Settings) -> ObjectStorage | None:
    try:
        return ObjectStorage.load(settings.object_storage_block, _sync=True)
    except Exception as exc:  # noqa: BLE001 - no such block, or no API: the settings decide
        log.debug("no ObjectStorage block %r: %s", settings.object_storage_block, type(exc).__name__)
        return None


def resolve_storage(settings: Settings) -> Settings:
    """Settings with the ObjectStorage block (when one is saved) filled in: its endpoint and keys for its
    scheme, and its bucket/prefix as AUTOCLIP_OUTPUT_URI when that is unset. Local runs look nothing up."""
    if settings.storage_backend == "local" and not settings.results_uri:
        return settings
    block = _load_block(settings)
    if block is None:
        return settings
    if block.provider == "oss":
        updates = {"oss_endpoint": block.endpoint_url, "oss_region": block.region,
                   "oss_access_key_id": block.access_key_id, "oss_access_key_secret": block.secret_access_key,
                   "oss_addressing": "virtual" if block.addressing_style == "auto" else block.addressing_style}
    else:
        updates = {"s3_endpoint_url": block.endpoint_url, "s3_region": block.region,
                   "s3_access_key_id": block.access_key_id, "s3_secret_access_key": block.secret_access_key,
                   "s3_addressing": block.addressing_style}
    if not settings.output_uri:
        updates["output_uri"] = f"{block.uri}/outputs"
    return settings.model_copy(update=updates)


def results_storage(settings: Settings) -> ObjectStorage | None:
    """Where Prefect keeps task results and cache records: AUTOCLIP_RESULTS_URI, or with an object-store
    backend `<output URI>/_prefect-results`, with the credentials of its scheme (pass settings through
    `resolve_storage` first to use the block's); None keeps Prefect's local default."""
    uri = settings.results_uri
    if not uri and settings.storage_backend != "local" and settings.output_uri:
        uri = f"{settings.output_uri.rstrip('/')}/_prefect-results"
    if not uri:
        return None
    scheme, bucket, prefix = split_uri(uri)
    config = settings.object_store(scheme)
    store = ObjectStorage(provider=config.provider, endpoint_url=config.endpoint_url, region=config.region,
                          bucket=bucket, prefix=prefix, access_key_id=config.access_key_id,
                          secret_access_key=config.secret_access_key, addressing_style=config.addressing_style)
    # Prefect keeps result storage as a saved block; the name follows the location, so each machine that
    # points at the same bucket saves (or updates) the same block and finds the same cache records.
    name = "autoclip-results-" + hashlib.sha256(f"{uri}|{config.endpoint_url}".encode()).hexdigest()[:12]
    store.save(name, overwrite=True, _sync=True)
    return store
