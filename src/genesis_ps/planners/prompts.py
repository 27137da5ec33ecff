"""Decomposition prompts. Short, with one example, because the embedded model has 135M parameters."""

from __future__ import annotations

from genesis_ps.sampling.protocol import Prompt

__all__ = ["PROMPT_STYLES", "decomposition_prompt", "task_prompt"]

PROMPT_STYLES: tuple[str, ...] = ("json", "worfbench")

_JSON_SYSTEM = (
    "You split a request into a few small tasks. Answer with JSON only: "
    '{"tasks": [{"id": "1", "description": "...", "type": "general|reasoning|code", "depends_on": []}]}'
)
_JSON_EXAMPLE_Q = "Write a Python function that sorts a list, then test it."
_JSON_EXAMPLE_A = (
    '{"tasks": [{"id": "1", "description": "Write a Python sort function", "type": "code", "depends_on": []}, '
    '{"id": "2", "description": "Write tests for the function", "type": "code", "depends_on": ["1"]}]}'
)
_WORF_SYSTEM = (
    "Split the task into subtask nodes and give the dependency edges from START to END, in this form:\n"
    "Node:\n1: <subtask>\n2: <subtask>\nEdge: (START,1) (1,2) (2,END)"
)
_WORF_EXAMPLE_Q = "Make a cup of tea."
_WORF_EXAMPLE_A = (
    "Node:\n1: Boil water\n2: Put a tea bag in a cup\n3: Pour the water into the cup\n"
    "Edge: (START,1) (START,2) (1,3) (2,3) (3,END)"
)


def decomposition_prompt(
    request: str, *, style: str = "json", feedback: str | None = None, instructions: str | None = None
) -> Prompt:
    """The chat prompt asking for a decomposition of ``request``.

    ``feedback`` (on a retry) says what was wrong with the previous answer. ``instructions`` replaces the
    system text (e.g. a benchmark's own system turn); the one-shot example is kept.
    """
    if style not in PROMPT_STYLES:
        from genesis_ps.errors import ConfigError

        raise ConfigError("style", f"unknown prompt style {style!r}; choose one of {', '.join(PROMPT_STYLES)}")
    system, q, a = (
        (_JSON_SYSTEM, _JSON_EXAMPLE_Q, _JSON_EXAMPLE_A)
        if style == "json"
        else (_WORF_SYSTEM, _WORF_EXAMPLE_Q, _WORF_EXAMPLE_A)
    )
    user = (
        request if not feedback else f"{request}\n\n(Your previous answer was unusable: {feedback}. {_REMIND[style]})"
    )
    return Prompt(messages=(("system", instructions or system), ("user", q), ("assistant", a), ("user", user)))


_REMIND = {"json": "Reply with the JSON object only.", "worfbench": "Reply with Node: and Edge: lines only."}


def task_prompt(
    request: str, description: str, context: list[tuple[str, str]], *, max_context_chars: int = 600
) -> Prompt:
    """The prompt that carries out one task, with its dependencies' outputs (trimmed) as context."""
    parts = [f"Overall goal: {request}"] if request else []
    for dep_desc, out in context:
        snippet = out.strip()
        if len(snippet) > max_context_chars:
            snippet = snippet[:max_context_chars] + " …"
        parts.append(f"Earlier step ({dep_desc}): {snippet}")
    parts.append(f"Your task: {description}\nAnswer briefly.")
    return Prompt.user("\n".join(parts), system="You are a careful assistant completing one step of a plan.")
