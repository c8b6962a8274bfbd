"""Prefect blocks: credentials kept as secrets in Prefect (masked in the API and UI)."""

from autoclip.blocks.credentials import DashScopeCredentials, resolve_secrets

__all__ = ["DashScopeCredentials", "resolve_secrets"]
