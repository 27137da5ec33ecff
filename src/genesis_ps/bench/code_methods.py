"""The methods of ``genesis-ps bench code``, how each prompts the model, and which a provider can run.

Besides the sampling methods of :mod:`genesis_ps.bench.methods` (``greedy``, ``single``, ``low-temp``,
``power-mh``, ``power-smc``, …) and the compute-matched ``bon`` (best-of-N matched to each power method's
measured tokens, :mod:`genesis_ps.bench.baselines`), two SE-Darwin runs with the same generation budget
(:mod:`genesis_ps.operators.evolution`, the same :class:`~genesis_ps.operators.EvolutionConfig`):

- ``darwin-power``: with the power-sampling operator (initial member 0 and the first offspring slot of
  every generation are :func:`~genesis_ps.operators.power_sampling` calls);
- ``darwin``: without it — those slots go to the ordinary operators (``initial`` for the initial
  population; revision / refinement / recombination by the archive's rules for offspring).

Prompt styles: ``completion`` — the raw HumanEval prompt, continued as text and cut at the stop sequences;
``chat`` — one user message asking for the completed function in a fenced block, whose code is extracted.
SE-Darwin's operators always write chat prompts (they ask for strategies and show failures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genesis_ps.bench.methods import MethodSpec, parse_methods
from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.code import extract_code
from genesis_ps.sampling.protocol import Capabilities, Prompt

__all__ = [
    "DARWIN_METHODS",
    "PROMPT_STYLES",
    "CodeMethods",
    "candidate",
    "code_prompt",
    "parse_code_methods",
    "unsupported",
]

DARWIN_METHODS = ("darwin", "darwin-power")
PROMPT_STYLES = ("completion", "chat")
CHAT_INSTRUCTION = "Complete the following Python function. Answer with the whole function in one ```python block."


@dataclass(frozen=True)
class CodeMethods:
    """The methods of one run: sampling methods, ``bon`` on or off, and the SE-Darwin variants."""

    regular: tuple[MethodSpec, ...]
    bon: bool
    darwin: tuple[str, ...]

    @property
    def power(self) -> list[str]:
        return [m.name for m in self.regular if m.power]

    def names(self) -> list[str]:
        return [m.name for m in self.regular] + [f"bon[{p}]" for p in self.power if self.bon] + list(self.darwin)


def parse_code_methods(text: str | Sequence[str]) -> CodeMethods:
    """``"single,power-mh,bon,darwin-power"`` → :class:`CodeMethods`; unknown names are a ConfigError."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise ConfigError("methods", "give at least one method")
    alias = {"se-darwin": "darwin", "se-darwin-power": "darwin-power", "darwin_power": "darwin-power"}
    darwin = tuple(dict.fromkeys(alias.get(n, n) for n in names if alias.get(n, n) in DARWIN_METHODS))
    rest = [n for n in names if alias.get(n, n) not in DARWIN_METHODS]
    if any(n in ("self_consistency", "self-consistency") for n in rest):
        raise ConfigError("methods", "self_consistency votes on an extracted answer, and code has none; use bon")
    specs = parse_methods(rest) if rest else []
    regular = tuple(m for m in specs if not m.baseline)
    bon = any(m.baseline for m in specs)
    if bon and not any(m.power for m in regular):
        raise ConfigError("methods", "bon is matched to power methods' measured tokens: list at least one power method")
    return CodeMethods(regular, bon, darwin)


def unsupported(caps: Capabilities, name: str, sampler: str | None = None) -> str | None:
    """Why a provider with ``caps`` cannot run method ``name`` (None when it can). Without prefix
    continuation the sampler itself runs MH as independence MH and SMC as one block (the rows' ``method_ran``
    and the report's "ran as" say so)."""
    needs_logp = sampler not in (None, "single") or name.startswith("bon[") or name == "darwin-power"
    if needs_logp and caps.logprobs == "none":
        return "the provider returns no log-probabilities, which this method needs"
    if sampler == "tps" and not caps.lookahead:
        return "the provider has no look-ahead (extend_until), which power-tps needs"
    return None


def code_prompt(problem_prompt: str, style: str) -> Prompt:
    """The prompt a sampling method sends for one problem in ``style``."""
    if style == "completion":
        return Prompt.text(problem_prompt)
    return Prompt.user(f"{CHAT_INSTRUCTION}\n\n```python\n{problem_prompt.rstrip()}\n```")


def candidate(text: str, style: str) -> tuple[str, bool]:
    """``(code, full_program)`` from a model answer: in ``completion`` style the continuation cut at the
    HumanEval stop sequences (appended to the prompt); in ``chat`` style the fenced code, run after the
    prompt (it redefines the function, or continues its body)."""
    from genesis_ps.bench.humaneval import truncate

    if style == "completion":
        return truncate(text), False
    return extract_code(text), True
