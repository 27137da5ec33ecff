"""The one place that knows how a transformers version names the KV cache.

transformers 5.x takes ``cache=`` in a causal LM's ``forward`` and returns ``.cache``; the 4.x releases
the metadata still allows (>= 4.56) take and return ``past_key_values``, which 5.x deprecates. The
keyword is read once per model class from its ``forward`` signature, never per call.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = ["cache_keyword", "output_cache"]

_OLD = "past_key_values"  # transformers < 5: the keyword and output field of the cache


@functools.cache
def _keyword_for(model_class: Any) -> str:
    params = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in params else _OLD


def cache_keyword(model: Any) -> str:
    """``"cache"`` when ``model.forward`` takes it (transformers 5), else the 4.x keyword."""
    keyword: str = _keyword_for(type(model))  # type: ignore[arg-type]  # classes are hashable
    return keyword


def output_cache(out: Any) -> Any:
    """The KV cache a forward returned, under whichever name this transformers version uses."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, _OLD, None)
