"""Prefect flows."""

from autoclip.memory import limit_arenas

limit_arenas()  # before the flow's threads start (memory.py says why)
