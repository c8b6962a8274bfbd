"""Prefect blocks (credentials, object storage, notifications) arrive with the issues that need them."""
