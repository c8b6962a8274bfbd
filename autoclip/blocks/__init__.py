"""Prefect blocks: credentials kept as secrets in Prefect (masked in the API and UI)."""

from autoclip.blocks.credentials import DashScopeCredentials, resolve_secrets
from autoclip.blocks.storage import ObjectStorage, resolve_storage, results_storage

__all__ = ["DashScopeCredentials", "ObjectStorage", "resolve_secrets", "resolve_storage", "results_storage"]
