"""Credentials live in a Prefect block whose secret stays masked in the API; tasks resolve keys from it."""

import subprocess
import sys

import pytest
from pydantic import SecretStr

from autoclip.blocks import DashScopeCredentials, resolve_secrets
from autoclip.config import get_settings

pytestmark = pytest.mark.slow


def test_block_registers_saves_masked_and_resolves(prefect_server, monkeypatch):
    registered = subprocess.run([sys.executable, "-m", "prefect", "block", "register", "-m", "autoclip.blocks"],
                                capture_output=True, text=True, timeout=120)
    assert registered.returncode == 0, registered.stdout + registered.stderr
    assert "dashscope-credentials" in registered.stdout.lower() or "DashScope" in registered.stdout

    DashScopeCredentials(api_key=SecretStr("sk-from-block-42"), base_url="http://127.0.0.1:9/api/v1").save(
        "autoclip-test", overwrite=True)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name("autoclip-test", "dashscope-credentials",
                                                      include_secrets=False)
    assert document.data["api_key"] != "sk-from-block-42" and "*" in str(document.data["api_key"])

    monkeypatch.setenv("AUTOCLIP_PROVIDER", "dashscope")
    monkeypatch.setenv("AUTOCLIP_DASHSCOPE_BLOCK", "autoclip-test")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-from-env")
    get_settings.cache_clear()
    settings, secrets = resolve_secrets(get_settings())
    assert secrets.dashscope_api_key.get_secret_value() == "sk-from-block-42"
    assert settings.dashscope_base_url == "http://127.0.0.1:9/api/v1"

    monkeypatch.setenv("AUTOCLIP_DASHSCOPE_BLOCK", "no-such-block")
    get_settings.cache_clear()
    _, secrets = resolve_secrets(get_settings())
    assert secrets.dashscope_api_key.get_secret_value() == "sk-from-env"


def test_local_runs_never_look_up_blocks(monkeypatch):
    lookups = []
    monkeypatch.setattr(DashScopeCredentials, "load", classmethod(lambda cls, *a, **k: lookups.append(a)))
    monkeypatch.setenv("AUTOCLIP_PROVIDER", "local")
    get_settings.cache_clear()
    settings, secrets = resolve_secrets(get_settings())
    assert secrets.dashscope_api_key is None and lookups == []


def test_object_storage_block_masks_keys_and_configures_outputs(prefect_server, s3_server, s3_env, monkeypatch):
    from autoclip.blocks import ObjectStorage, resolve_storage
    from autoclip.storage.outputs import destination

    fs, bucket = s3_env
    from tests.conftest import S3_KEYS

    block = ObjectStorage(provider="s3", endpoint_url=s3_server, region="eu-west-1", bucket=bucket, prefix="team/",
                          access_key_id=SecretStr(S3_KEYS["AWS_ACCESS_KEY_ID"]),
                          secret_access_key=SecretStr(S3_KEYS["AWS_SECRET_ACCESS_KEY"]), addressing_style="path")
    block.save("autoclip-storage-test", overwrite=True)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name("autoclip-storage-test", "autoclip-object-storage",
                                                      include_secrets=False)
    assert S3_KEYS["AWS_SECRET_ACCESS_KEY"] not in str(document.data)
    assert S3_KEYS["AWS_ACCESS_KEY_ID"] not in str(document.data)

    loaded = ObjectStorage.load("autoclip-storage-test")
    loaded.write_path("hello.txt", b"hi")
    assert fs.cat_file(f"{bucket}/team/hello.txt") == b"hi" and loaded.read_path("team/hello.txt") == b"hi"
    assert loaded.filesystem().exists(f"{bucket}/team/hello.txt")

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AUTOCLIP_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTOCLIP_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("AUTOCLIP_OBJECT_STORAGE_BLOCK", "autoclip-storage-test")
    get_settings.cache_clear()
    settings = resolve_storage(get_settings())
    assert settings.output_uri == f"s3://{bucket}/team/outputs"
    assert destination("reel.mp4", settings).remote == f"s3://{bucket}/team/outputs/reel.mp4"
    assert settings.s3_secret_access_key.get_secret_value() == S3_KEYS["AWS_SECRET_ACCESS_KEY"]


from prefect.testing.standard_test_suites import BlockStandardTestSuite  # noqa: E402

from autoclip.blocks import ObjectStorage  # noqa: E402


class _Standards(BlockStandardTestSuite):
    """Prefect's block standards, where they apply to a project without a public docs site or logo."""

    def test_has_a_documentation_url(self, block):
        pytest.skip("auto-clip has no public documentation site; the docs ship in the repository")

    def test_has_a_valid_image(self, block):
        pytest.skip("no logo, and fetching one would need the network")


class TestDashScopeCredentialsStandards(_Standards):
    @pytest.fixture
    def block(self):
        return DashScopeCredentials


class TestObjectStorageStandards(_Standards):
    @pytest.fixture
    def block(self):
        return ObjectStorage
