"""How SE-Darwin operators and SICA loops ask for text: one small async callable.

``await gen(prompt, power=...)`` returns a :class:`~genesis_ps.sampling.GenerationResult`. ``power=True``
asks for a power-sampled generation (which may still fall back, recorded in ``result.fallback``);
``power=False`` asks for plain single-shot sampling, which is not a fallback. Two ways to get one:
:func:`model_generator` over a :class:`~genesis_ps.sampling.TokenModel` (``sampling.api.generate``), or, in
the graph, the route context's generation pair (see :mod:`genesis_ps.operators.route`).
"""

from __future__ import annotations

from typing import Any, Protocol

from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult

__all__ = ["Generator", "model_generator"]


class Generator(Protocol):
    async def __call__(self, prompt: Prompt, *, power: bool) -> GenerationResult: ...


def model_generator(
    model: TokenModel,
    params: SamplerParams | None = None,
    *,
    enabled: bool = True,
    single_temperature: float | None = None,
    **sampler_kwargs: Any,
) -> Generator:
    """A :class:`Generator` over ``model``. Power requests power-sample with ``params`` when ``enabled``
    (else they fall back with reason ``flag_off``); plain requests sample once with method ``single``
    (at ``single_temperature``, default ``params.temperature``). ``sampler_kwargs`` go to
    :func:`~genesis_ps.sampling.api.generate` (``budget``, ``reward``, ``fallback_model`` …)."""
    from genesis_ps.sampling.api import generate

    p = params or SamplerParams()
    single = (
        p.with_(method="single")
        if single_temperature is None
        else p.with_(method="single", temperature=single_temperature)
    )

    async def gen(prompt: Prompt, *, power: bool) -> GenerationResult:
        if power:
            return await generate(model, prompt, p, power=enabled, disabled_reason="flag_off", **sampler_kwargs)
        return await generate(model, prompt, single, power=False)

    return gen
