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
