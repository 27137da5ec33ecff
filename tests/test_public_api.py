"""The public surface is explicit (httpx's ``test_exported_members`` is the model), the front door works,
and importing the package stays light."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import genesis_ps

SURFACE: dict[str, list[str]] = {
    "genesis_ps": [
        "Budget", "Capabilities", "ConfigError", "GenerationResult", "Generator", "GenesisError", "Prompt",
        "SamplerParams", "Segment", "Settings", "Target", "TokenModel", "__version__", "build_graph",
        "build_model", "fallback_reason", "generate", "model_generator", "power_sample", "single_shot",
    ],
    "genesis_ps.sampling": [
        "Budget", "Capabilities", "Completion", "GenerationResult", "LookaheadModel", "Prompt", "SamplerParams",
        "Segment", "Target", "TokenModel", "as_prompt", "run_power_sample", "run_single_shot",
    ],
    "genesis_ps.providers": [
        "AnthropicModel", "BreakerPolicy", "GeminiModel", "LocalModel", "OpenAIChatModel",
        "OpenAICompletionsModel", "PROVIDERS", "ProviderRetryPolicy", "ProviderTimeoutPolicy", "Resilience",
        "build_model", "load_embedded",
    ],
    "genesis_ps.providers.local": ["EMBEDDED_NAME", "LocalModel", "load_embedded", "locate_embedded",
                                   "resolve_device"],
    "genesis_ps.providers.hosted": ["AnthropicModel", "DEFAULT_MODELS", "GeminiModel", "OpenAIChatModel",
                                    "OpenAICompletionsModel", "build"],
    "genesis_ps.graph": [
        "ChatModelAdapter", "DEFAULT_ROUTES", "GenerationPair", "GraphContext", "GraphState", "InputState",
        "OutputState", "RouteContext",
        "RouteRegistry", "TaskOutcome", "build_generation_graph", "build_graph", "default_retry_policy",
        "in_rollout", "power_decision", "register_route", "request_id_for", "rollout_bucket",
    ],
    "genesis_ps.planners": [
        "Decomposition", "DecompositionEvaluator", "MAX_REQUEST_CHARS", "MAX_TASKS", "ParseOutcome",
        "PlanAction", "PlanMachine", "TASK_TYPES", "Task", "TaskDAG", "check_request", "classify_types",
        "decompose", "decomposition_prompt", "find_cycle",
        "guess_type", "heuristic_decompose", "is_complex", "parse_dag", "score_dag", "task_prompt",
    ],
    "genesis_ps.evaluators": [
        "CodeEvaluator", "CompositeEvaluator", "Evaluator", "MathAnswerEvaluator", "SandboxLimits",
        "SandboxResult", "Score", "answers_equivalent", "as_reward", "extract_answer", "extract_code",
        "run_python", "safe_evaluate",
    ],
    "genesis_ps.operators": [
        "Archive", "DarwinContext", "EvolutionConfig", "EvolutionResult", "OPERATORS", "Trajectory", "evolve",
        "extract_code", "initial", "parse_strategy", "power_sampling", "recombination", "refinement",
        "revision",
    ],
    "genesis_ps.loops": ["Critique", "SicaAction", "SicaConfig", "SicaMachine", "SicaResult", "SicaStep",
                         "compare_modes", "parse_critique", "run_sica"],
    "genesis_ps.testing": ["ScriptedModel", "TOYS", "ToyLM", "eos_toy", "exact", "random_toy", "sharp_toy",
                           "trap_toy"],
    "genesis_ps.cli": ["build_parser", "main"],
    "genesis_ps.softprompt": [
        "FrozenLM", "Prepared", "QAPair", "SoftPromptConfig", "arith_pairs", "classify_curve", "load_pairs",
        "open_lm", "parse_stages", "prepare_pairs", "read_jsonl_pairs", "run_pipeline", "target_converged",
        "tiny_frozen",
    ],
    "genesis_ps.geometry": ["GeometryConfig", "STEPS", "dry_run_config", "load_config", "run_geometry"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SURFACE))
def test_exported_members(name: str) -> None:
    """``__all__`` is the intended list, every name in it exists, and every public class or function the
    namespace holds (defined in that package, or anywhere in genesis_ps for the front door) is exported."""
    mod = importlib.import_module(name)
    assert sorted(mod.__all__) == sorted(SURFACE[name])
    for member in mod.__all__:
        assert getattr(mod, member) is not None, member
    for member, value in vars(mod).items():
        if member.startswith("_") or inspect.ismodule(value):
            continue
        home = getattr(value, "__module__", "") or ""
        ours = home.startswith("genesis_ps") if name == "genesis_ps" else (home == name or home.startswith(name + "."))
        if (inspect.isclass(value) or inspect.isfunction(value)) and ours:
            assert member in mod.__all__, f"{name}.{member} is public but not in __all__"


def test_front_door() -> None:
    from genesis_ps import SamplerParams, Settings, build_graph, build_model, generate, power_sample

    assert callable(build_graph) and callable(build_model) and callable(generate) and callable(power_sample)
    assert SamplerParams().alpha == 4.0 and isinstance(Settings.from_env({}), Settings)
    with pytest.raises(AttributeError):
        _ = genesis_ps.no_such_name  # type: ignore[attr-defined]


def test_import_does_not_load_torch_sdks_or_langgraph() -> None:
    code = (
        "import sys, genesis_ps, genesis_ps.cli, genesis_ps.providers;"
        "heavy = [m for m in ('torch', 'transformers', 'openai', 'anthropic', 'google.genai', 'langgraph')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_package_ships_type_marker() -> None:
    from importlib.resources import files

    assert files("genesis_ps").joinpath("py.typed").is_file()
