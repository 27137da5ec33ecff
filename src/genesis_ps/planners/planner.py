"""HTDAG planning: :func:`decompose` a request into a validated :class:`TaskDAG`.

Each attempt generates through the power-sample / single-shot pair (``generator``; by default
:func:`genesis_ps.generation.generate` with a recorded fallback), parses defensively, validates, and
retries with feedback when the output is unusable. When every attempt fails, the heuristic decomposition
is used and ``Decomposition.fallback`` says so. Complex tasks are decomposed again, bounded by depth and
total task count.
"""

from __future__ import annotations

from typing import Any

from genesis_ps.errors import ConfigError, GenesisError
from genesis_ps.generation import Generator, generate
from genesis_ps.planners.decomposition import Decomposition
from genesis_ps.planners.quality import DecompositionEvaluator
from genesis_ps.planners.steps import PlanMachine
from genesis_ps.sampling.params import METHODS, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult

__all__ = ["MAX_REQUEST_CHARS", "Decomposition", "check_request", "decompose"]

MAX_REQUEST_CHARS = 4000


def check_request(request: object) -> str:
    """A clean request, or :class:`ConfigError` naming ``request`` (before any model work)."""
    if not isinstance(request, str) or not request.strip():
        raise ConfigError("request", "must be a non-empty text")
    if len(request) > MAX_REQUEST_CHARS:
        raise ConfigError("request", f"is {len(request)} characters; the limit is {MAX_REQUEST_CHARS}")
    try:
        request.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError("request", f"holds a character that cannot be encoded as UTF-8 at position {exc.start} "
                                     "(a lone surrogate: was the input decoded with the wrong encoding?)") from None
    return request.strip()


def _default_generator(model: TokenModel, params: SamplerParams, **kw: Any) -> Generator:
    """Generation straight through :func:`~genesis_ps.generation.generate` (the graph hands in its
    power_sample / single_shot node pair instead)."""

    async def gen(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        return await generate(model, prompt, params or default, power=power, **kw)

    default = params

    return gen


async def decompose(
    request: str,
    model: TokenModel | None = None,
    *,
    params: SamplerParams | None = None,
    method: str | None = None,
    power: bool | None = None,
    settings: Any = None,
    generator: Generator | None = None,
    max_attempts: int = 2,
    max_depth: int = 0,
    max_total_tasks: int = 16,
    max_new_tokens: int | None = None,
    style: str = "json",
    retry_style: str | None = "worfbench",
    instructions: str | None = None,
    lam: float = 0.0,
    classify: bool = False,
) -> Decomposition:
    """Decompose ``request`` into a validated task DAG.

    ``method`` (``single``/``mh``/``smc``/``imh``) overrides ``params.method``; ``power`` defaults to
    ``method != "single"``. With ``settings`` (a :class:`~genesis_ps.settings.Settings`) and no explicit
    ``params``/``power``, the ``htdag`` layer's flag and parameters decide (the graph and the CLI also
    apply the rollout percentage). ``lam > 0`` tilts power
    sampling towards higher decomposition quality. ``max_depth`` > 0 re-decomposes complex tasks.
    When an answer holds no task list at all (prose), the retry asks in ``retry_style`` instead (small
    models that cannot write JSON often manage WorFBench's ``Node:``/``Edge:`` lines); None disables it.
    ``classify`` types the tasks the model left ``general`` by keyword rules (``type_sources`` says which
    decided). The steps are :class:`~genesis_ps.planners.steps.PlanMachine`'s.
    Raises :class:`ConfigError` for bad arguments; never raises because of the model's output.
    """
    req = check_request(request)
    if model is None and generator is None:
        raise ConfigError("model", "decompose needs a model or a generator")
    if generator is not None and lam:
        raise ConfigError("lam", "a custom generator applies its own tilt; pass lam only with model=")
    for name, value, low in (
        ("max_attempts", max_attempts, 1),
        ("max_depth", max_depth, 0),
        ("max_total_tasks", max_total_tasks, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(name, f"must be an integer >= {low}, got {value!r}")
    disabled_reason = "disabled"
    if settings is not None and params is None:
        layer = settings.layer("htdag")
        params = layer.params
        if power is None:
            power, disabled_reason = layer.enabled, "flag_off"
    p = params or SamplerParams(method="single", max_new_tokens=192)
    if method is not None:
        if method not in METHODS:
            raise ConfigError("method", f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        p = p.with_(method=method)
    if max_new_tokens is not None:
        p = p.with_(max_new_tokens=max_new_tokens)
    use_power = (p.method != "single") if power is None else bool(power and p.method != "single")
    if generator is None:
        assert model is not None
        kw: dict[str, Any] = {"disabled_reason": disabled_reason}
        if lam > 0:
            from genesis_ps.evaluators.base import as_reward

            kw |= {"reward": as_reward(DecompositionEvaluator(), {"request": req}), "lam": lam}
        generator = _default_generator(model, p, **kw)
    machine = PlanMachine(req, method=p.method, style=style, retry_style=retry_style, instructions=instructions,
                          max_attempts=max_attempts, max_depth=max_depth, max_total_tasks=max_total_tasks,
                          classify=classify)  # fmt: skip
    action = machine.next_action()
    while action.kind == "generate":
        assert action.prompt is not None
        try:
            g = await generator(action.prompt, power=use_power, params=p)
        except ConfigError:
            raise
        except (GenesisError, TimeoutError) as exc:  # single-shot itself failed: recorded, retried
            action = machine.record_error(f"{type(exc).__name__}: {exc}", type(exc).__name__)
            continue
        action = machine.record(g)
    result: Decomposition = machine.finish()
    return result
