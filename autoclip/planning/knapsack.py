"""The 0/1 knapsack both the planner (which moments) and the timeline (which clips survive a budget)
solve: whole pieces only, never a piece cut to fit."""

from __future__ import annotations

import math

import numpy as np

RESOLUTION = 0.1  # seconds: the grid weights are rounded up to
CELLS = 4000  # a finer grid for a short budget: at most this many steps of capacity (memory: items x cells)


def best_fit(weights: list[float], values: list[float], capacity: float,
             resolution: float | None = RESOLUTION) -> list[int]:
    """Indices (ascending) of the most valuable set of items whose weights, rounded up to the grid, fit
    in `capacity`. Ties keep the earlier items out, so the answer is stable. resolution None: as fine as
    CELLS steps allow, down to 0.01 s (rounding up costs each item up to one step)."""
    if resolution is None:
        resolution = max(0.01, capacity / CELLS)
    cap = int(capacity / resolution + 1e-6)
    if cap <= 0 or not weights:
        return []
    grid = [max(1, int(math.ceil(w / resolution - 1e-6))) for w in weights]
    best = np.zeros(cap + 1)
    take = np.zeros((len(grid), cap + 1), dtype=bool)
    for k, (w, v) in enumerate(zip(grid, values)):
        if w > cap:
            continue
        shifted = np.full(cap + 1, -1.0)
        shifted[w:] = best[: cap + 1 - w] + v
        take[k] = shifted > best + 1e-9
        best = np.maximum(best, shifted)
    keep, c = [], int(np.argmax(best))
    for k in range(len(grid) - 1, -1, -1):
        if take[k, c]:
            keep.append(k)
            c -= grid[k]
    return sorted(keep)
