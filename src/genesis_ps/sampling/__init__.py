"""The mathematics of power sampling: no SDK and no torch at import time."""

from genesis_ps.sampling.api import fallback_reason, generate, power_sample, single_shot
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Capabilities, Completion, Prompt, Segment, TokenModel, as_prompt
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Target

__all__ = [
    "Budget",
    "Capabilities",
    "Completion",
    "GenerationResult",
    "Prompt",
    "SamplerParams",
    "Segment",
    "Target",
    "TokenModel",
    "as_prompt",
    "fallback_reason",
    "generate",
    "power_sample",
    "single_shot",
]
