"""Fakes and toy models that ship with the package, for users' tests and ours.

- :class:`ScriptedModel` — a scripted, deterministic token model (honest log-prob 0 per token).
- :class:`ToyLM` and the toys (:func:`sharp_toy`, :func:`eos_toy`, :func:`random_toy`, :func:`trap_toy`) — real token
  models whose sequence distribution, and so p^α, is enumerable; :mod:`~genesis_ps.testing.exact`
  enumerates it and measures distances to it.
"""

from genesis_ps.testing import exact
from genesis_ps.testing.scripted import ScriptedModel
from genesis_ps.testing.toys import TOYS, ToyLM, eos_toy, random_toy, sharp_toy, trap_toy

__all__ = ["TOYS", "ScriptedModel", "ToyLM", "eos_toy", "exact", "random_toy", "sharp_toy", "trap_toy"]
