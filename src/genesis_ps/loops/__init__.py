"""SICA reasoning loops: draft → critique → refine, and the power-sampled variant."""

from genesis_ps.loops.critique import Critique, parse_critique
from genesis_ps.loops.sica import SicaConfig, SicaResult, SicaStep, run_sica

__all__ = ["Critique", "SicaConfig", "SicaResult", "SicaStep", "parse_critique", "run_sica"]
