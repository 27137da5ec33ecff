"""genesis_ps: power sampling from p(x)^α inside a LangGraph task-decomposition graph.

Importing the package needs neither torch nor any provider SDK; those load when a backend is used.
"""

from genesis_ps.errors import ConfigError, GenesisError
from genesis_ps.sampling import (
    Budget,
    Capabilities,
    GenerationResult,
    Prompt,
    SamplerParams,
    Segment,
    Target,
    TokenModel,
    generate,
    power_sample,
    single_shot,
)
from genesis_ps.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "Budget",
    "Capabilities",
    "ConfigError",
    "GenerationResult",
    "GenesisError",
    "Prompt",
    "SamplerParams",
    "Segment",
    "Settings",
    "Target",
    "TokenModel",
    "__version__",
    "generate",
    "power_sample",
    "single_shot",
]
