"""SICA reasoning loops: draft → critique → refine, and the power-sampled variant."""

from genesis_ps.loops.critique import Critique, parse_critique
from genesis_ps.loops.sica import SicaConfig, SicaResult, SicaStep, compare_modes, run_sica
from genesis_ps.loops.sica_steps import SicaAction, SicaMachine

__all__ = [
    "Critique",
    "SicaAction",
    "SicaConfig",
    "SicaMachine",
    "SicaResult",
    "SicaStep",
    "compare_modes",
    "parse_critique",
    "run_sica",
]
