"""genesis_ps: power sampling from p(x)^α inside a LangGraph task-decomposition graph.

The front door::

    from genesis_ps import build_graph, build_model, power_sample, generate, SamplerParams, Settings

Importing the package needs neither torch nor any provider SDK; those load when a backend is used, and
LangGraph loads with the first use of :func:`build_graph`.
"""

from typing import TYPE_CHECKING, Any

from genesis_ps._version import __version__
from genesis_ps.errors import ConfigError, GenesisError
from genesis_ps.generation import (
    Generator,
    fallback_reason,
    generate,
    model_generator,
    power_sample,
    single_shot,
)
from genesis_ps.providers import build_model
from genesis_ps.sampling import (
    Budget,
    Capabilities,
    GenerationResult,
    Prompt,
    SamplerParams,
    Segment,
    Target,
    TokenModel,
)
from genesis_ps.settings import Settings

if TYPE_CHECKING:
    from genesis_ps.graph import build_graph

__all__ = [
    "Budget",
    "Capabilities",
    "ConfigError",
    "GenerationResult",
    "Generator",
    "GenesisError",
    "Prompt",
    "SamplerParams",
    "Segment",
    "Settings",
    "Target",
    "TokenModel",
    "__version__",
    "build_graph",
    "build_model",
    "fallback_reason",
    "generate",
    "model_generator",
    "power_sample",
    "single_shot",
]


def __getattr__(name: str) -> Any:
    if name == "build_graph":  # LangGraph loads only when the graph is wanted
        from genesis_ps.graph import build_graph

        return build_graph
    raise AttributeError(f"module 'genesis_ps' has no attribute {name!r}")
