"""SE-Darwin: trajectories, operators (revision, recombination, refinement, power sampling), the archive
with score- and use-weighted parent selection, and the evolution loop."""

from genesis_ps.evaluators.code import extract_code
from genesis_ps.operators.evolution import EvolutionConfig, EvolutionResult, evolve
from genesis_ps.operators.ops import (
    DarwinContext,
    initial,
    parse_strategy,
    power_sampling,
    recombination,
    refinement,
    revision,
)
from genesis_ps.operators.trajectory import OPERATORS, Archive, Trajectory

__all__ = [
    "OPERATORS",
    "Archive",
    "DarwinContext",
    "EvolutionConfig",
    "EvolutionResult",
    "Trajectory",
    "evolve",
    "extract_code",
    "initial",
    "parse_strategy",
    "power_sampling",
    "recombination",
    "refinement",
    "revision",
]
