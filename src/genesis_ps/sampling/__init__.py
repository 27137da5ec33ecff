"""The mathematics of power sampling: the token-model protocol, parameters, targets, and MH / SMC / IMH /
TPS over it. Imports nothing of genesis_ps but :mod:`genesis_ps.errors`; no SDK and no torch at import time;
no metrics, spans or fallback policy (those are :mod:`genesis_ps.generation`'s)."""

from genesis_ps.sampling.api import run_power_sample, run_single_shot
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import (
    Capabilities,
    Completion,
    LookaheadModel,
    Prompt,
    Segment,
    TokenModel,
    as_prompt,
)
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Target

__all__ = [
    "Budget",
    "Capabilities",
    "Completion",
    "GenerationResult",
    "LookaheadModel",
    "Prompt",
    "SamplerParams",
    "Segment",
    "Target",
    "TokenModel",
    "as_prompt",
    "run_power_sample",
    "run_single_shot",
]
