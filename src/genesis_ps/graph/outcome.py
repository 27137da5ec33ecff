"""What a task route receives and returns: :class:`RouteContext`, :class:`TaskOutcome`, the
:data:`Handler` signature, and two helpers the built-in routes share (:func:`task_text`,
:func:`pair_generator`). See :mod:`genesis_ps.graph.routes` for the registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from genesis_ps.generation import Generator
from genesis_ps.planners.dag import Task
from genesis_ps.planners.prompts import task_prompt
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult

__all__ = [
    "GenerateFn",
    "Handler",
    "RouteContext",
    "TaskOutcome",
    "finished",
    "pair_generator",
    "task_text",
    "task_text_for",
]


@dataclass
class TaskOutcome:
    """What happened to one task. ``status``: ``done``, ``failed`` or ``skipped``."""

    task_id: str
    status: str
    output: str = ""
    score: float | None = None
    score_details: dict[str, Any] = field(default_factory=dict)
    route: str = "default"
    generations: list[dict[str, Any]] = field(default_factory=list)
    """``GenerationResult.to_dict()`` of every generation the handler made."""
    fallbacks: list[str] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_generated(self) -> int:
        return sum(int(g.get("tokens_generated", 0)) for g in self.generations)

    @property
    def tokens_returned(self) -> int:
        return sum(int(g.get("tokens_returned", 0)) for g in self.generations)

    def add_generation(self, g: GenerationResult | Mapping[str, Any]) -> None:
        d = g.to_dict() if isinstance(g, GenerationResult) else dict(g)
        self.generations.append(d)
        if d.get("fallback"):
            self.fallbacks.append(str(d["fallback"]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TaskOutcome:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


GenerateFn = Callable[..., Awaitable[GenerationResult]]


@dataclass
class RouteContext:
    """Everything a handler may use. ``generate`` runs the power_sample / single_shot node pair."""

    request: str
    request_id: str
    model: TokenModel
    generate: GenerateFn
    """``await generate(prompt, *, layer="htdag", params=None, power=None) -> GenerationResult``."""
    settings: Any
    max_new_tokens: int = 96
    temperature: float | None = None
    """Temperature of single-shot generation (the graph's ``temperature``); None keeps the layer's."""
    evaluators: Mapping[str, Any] = field(default_factory=dict)
    """Evaluator per task type (``evaluators.base.Evaluator``); the default handler scores with it."""
    emit: Callable[[dict[str, Any]], None] = lambda event: None
    """Send a progress event to the graph's custom stream."""

    def layer_params(self, layer: str) -> SamplerParams:
        """The layer's sampler parameters with this graph's token limit (and single-shot temperature)."""
        params: SamplerParams = self.settings.layer(layer).params
        if self.temperature is not None:
            params = params.with_(temperature=self.temperature)
        return params.with_(max_new_tokens=self.max_new_tokens)


Handler = Callable[[Task, Mapping[str, TaskOutcome], RouteContext], Awaitable[TaskOutcome]]


def task_text(task: Task, deps: Mapping[str, TaskOutcome], ctx: RouteContext) -> str:
    """The task as one text: the overall goal, the dependencies' outputs (trimmed), the task itself."""
    return task_text_for(ctx.request, task, {k: v.to_dict() for k, v in deps.items()})


def task_text_for(request: str, task: Task, deps: Mapping[str, Mapping[str, Any]]) -> str:
    """:func:`task_text` over outcome dicts (as the graph state holds them)."""
    context = [(d, str(deps[d].get("output", ""))) for d in task.depends_on if d in deps]
    return task_prompt(request, task.description, context).messages[-1][1]


def finished(outcome: TaskOutcome) -> dict[str, Any]:
    """A task subgraph's final update: the outcome under the namespaced key (and a ``task_end`` event)."""
    from genesis_ps.graph.wire import emit

    emit({"event": "task_end", "task_id": outcome.task_id, "status": outcome.status, "fallbacks": outcome.fallbacks})
    return {"genesis_ps": {"outcomes": {outcome.task_id: outcome.to_dict()}}}


def pair_generator(ctx: RouteContext, layer: str, sink: list[GenerationResult]) -> Generator:
    """A :class:`~genesis_ps.generation.Generator` over the graph's pair: power requests let the flags
    decide (a fallback is recorded when they say no); plain requests sample once (method ``single``)."""
    base = ctx.layer_params(layer)

    async def gen(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        p = params or base
        if power:
            g: GenerationResult = await ctx.generate(prompt, layer=layer, params=p, power=None)
        else:
            g = await ctx.generate(prompt, layer=layer, params=p.with_(method="single"), power=False)
        sink.append(g)
        return g

    return gen


