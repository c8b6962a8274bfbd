"""DashScope credentials as a Prefect block, and the one place that turns blocks/env into Secrets."""

from __future__ import annotations

import logging

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from autoclip.config import Settings
from autoclip.providers import Secrets

log = logging.getLogger("autoclip.blocks")


class DashScopeCredentials(Block):
    """API key for Alibaba Cloud DashScope (Paraformer, qwen-vl-plus, qwen text models)."""

    _block_type_name = "DashScope Credentials"
    _block_type_slug = "dashscope-credentials"
    _description = "API key (and optional endpoints) for Alibaba Cloud DashScope, used by auto-clip."
    _code_example = """
```python
from autoclip.blocks import DashScopeCredentials

DashScopeCredentials(api_key="sk-...").save("dashscope")
credentials = DashScopeCredentials.load("BLOCK_NAME")
```"""

    api_key: SecretStr = Field(description="DashScope API key (sk-...).")
    base_url: str | None = Field(None, description="HTTP API base, e.g. https://dashscope.aliyuncs.com/api/v1.")
    websocket_url: str | None = Field(None, description="Websocket base for realtime speech recognition.")


def resolve_secrets(settings: Settings) -> tuple[Settings, Secrets]:
    """Keys from the DashScopeCredentials block named AUTOCLIP_DASHSCOPE_BLOCK when it exists (its
    endpoints too), else from the environment. Nothing is looked up when every stage is local."""
    env = Secrets.from_settings(settings)
    stages = {settings.speech_provider, settings.vision_provider, settings.text_provider, settings.provider}
    if stages <= {"", "local", "openai"} and settings.provider in ("local", "openai"):
        return settings, env
    try:
        block = DashScopeCredentials.load(settings.dashscope_block, _sync=True)
    except (ValueError, LookupError) as exc:
        log.debug("no DashScopeCredentials block %r (%s); using the environment", settings.dashscope_block, exc)
        return settings, env
    except Exception as exc:  # API unreachable or the block type is unknown there
        log.debug("DashScopeCredentials block not available (%s); using the environment", type(exc).__name__)
        return settings, env
    updates = {k: v for k, v in (("dashscope_base_url", block.base_url),
                                 ("dashscope_websocket_url", block.websocket_url)) if v}
    return settings.model_copy(update=updates), Secrets(block.api_key, env.openai_api_key)
