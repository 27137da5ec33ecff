"""Step 5: do correct solutions fall into distinct clusters, and does power sampling change that?

Sets of ``n`` solutions: at ``clustering.temperature``, at ``low_temperature``, and from the power setting.
Each is scored by the package's math-answer evaluator; the correct ones' z at the plot layer are
clustered by K-means (scikit-learn, ``n_init=10``) for each K, with the silhouette score. A K that the
correct solutions cannot support (K ≥ their number, or more than their distinct latents) is skipped and
the reason recorded — how many solutions come out correct is only known after sampling. The optional
judge (any provider :func:`~genesis_ps.providers.registry.build_model` builds) reads the representatives
(nearest to each centroid) of different clusters and says whether they use distinct methods.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from genesis_ps.geometry.context import Context
from genesis_ps.geometry.pool import PoolSpec, mean_pairwise_distance, total_variance

__all__ = ["JUDGE_PROMPT", "cluster", "judge_pairs", "run"]

JUDGE_PROMPT = (
    "Two solutions to the same problem follow.\n\nProblem: {problem}\n\nSolution A:\n{a}\n\nSolution B:\n{b}\n\n"
    "Do A and B solve it by distinct methods? Reply DISTINCT or SAME on the first line, then one sentence why."
)


def cluster(z: np.ndarray, ks: list[int], seed: int) -> dict[str, Any]:
    """K-means and silhouette for each K on ``z`` (``(n, hidden)``)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(z)
    scale = float(np.abs(z).max()) if n else 1.0
    distinct = len(np.unique(np.round(z / (scale or 1.0), 6), axis=0)) if n else 0  # identical texts: one point
    per_k: dict[str, Any] = {}
    for k in ks:
        if k >= n or k > distinct:
            per_k[str(k)] = {"skipped": f"{n} solutions ({distinct} distinct latents) cannot support K={k}"}
            continue
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
        labels = km.labels_
        sizes = np.bincount(labels, minlength=k).tolist()
        reps = [int(np.argmin(np.where(labels == c, np.linalg.norm(z - km.cluster_centers_[c], axis=1), np.inf)))
                for c in range(k)]  # fmt: skip
        per_k[str(k)] = {"silhouette": float(silhouette_score(z, labels)), "sizes": sizes,
                         "labels": labels.tolist(), "representatives": reps}  # fmt: skip
    scored = {k: v["silhouette"] for k, v in per_k.items() if "silhouette" in v}
    best = max(scored, key=lambda k: scored[k]) if scored else None
    return {"distinct_latents": distinct, "per_k": per_k, "best_k": int(best) if best else None}


def judge_pairs(ctx: Context, texts: list[str], reps: list[int]) -> list[dict[str, Any]]:
    """The judge's verdict on representatives of different clusters (up to ``judge.max_pairs`` pairs)."""
    j = ctx.cfg.clustering.judge
    assert j is not None
    from genesis_ps.generation import single_shot
    from genesis_ps.providers.registry import build_model

    model = build_model(j.provider, model=j.model, base_url=j.base_url)
    pairs = [(a, b) for i, a in enumerate(reps) for b in reps[i + 1 :]][: j.max_pairs]
    out = []
    for a, b in pairs:
        prompt = JUDGE_PROMPT.format(problem=ctx.problem.prompt, a=texts[a], b=texts[b])
        r = asyncio.run(single_shot(model, prompt, max_new_tokens=j.max_new_tokens, temperature=0.0))
        first = r.text.strip().split("\n", 1)[0].upper()
        verdict = "distinct" if "DISTINCT" in first else ("same" if "SAME" in first else "unclear")
        out.append({"a": a, "b": b, "verdict": verdict, "reply": r.text.strip()[:400]})
    return out


def _score(ctx: Context, texts: list[str]) -> tuple[list[bool], list[str | None]]:
    """Whether each text is correct, and the answer the evaluator extracted from it."""
    from genesis_ps.evaluators.math_answer import MathAnswerEvaluator

    if ctx.problem.answer is None:
        return [False] * len(texts), [None] * len(texts)
    ev = MathAnswerEvaluator(ctx.problem.answer)
    scores = [ev.evaluate(t) for t in texts]
    return [s.value == 1.0 for s in scores], [s.details.get("extracted") for s in scores]


def _rate_tests(sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fisher's exact test of the correct rate of the last set (the power setting) against each other set."""
    if len(sets) < 2:
        return []
    from scipy.stats import fisher_exact

    last = sets[-1]
    out = []
    for s in sets[:-1]:
        table = [[last["correct"], last["n"] - last["correct"]], [s["correct"], s["n"] - s["correct"]]]
        out.append({"a": last["label"], "b": s["label"], "a_correct": last["correct"], "b_correct": s["correct"],
                    "n": [last["n"], s["n"]], "fisher_p": float(fisher_exact(table).pvalue)})  # fmt: skip
    return out


def run(ctx: Context) -> dict[str, Any]:
    from genesis_ps.geometry import plots

    c, k = ctx.cfg.clustering, ctx.cfg.stride
    pos = ctx.layer_index(ctx.plot_layer)
    sets: list[tuple[str, list[list[int]], np.ndarray]] = []
    temps = [c.temperature] + ([c.low_temperature] if c.low_temperature is not None else [])
    d = ctx.decode([[]] * (c.n * len(temps)), max_new=c.max_new_tokens, label="clustering: temperatures",
                   chunk=32, pools=[PoolSpec(k)], temperatures=[t for t in temps for _ in range(c.n)],
                   seed=ctx.seed("clustering"))  # fmt: skip
    for i, t in enumerate(temps):
        rows = slice(i * c.n, (i + 1) * c.n)
        sets.append((f"T={t:g}", d.tokens[rows], d.latents[0][rows, pos]))
    if c.power is not None:
        pr = ctx.power(c.power, c.n)
        e = ctx.decode(pr.tokens, max_new=0, label=f"clustering: encode {c.power.label}", chunk=8, pools=[PoolSpec(k)])
        sets.append((c.power.label, pr.tokens, e.latents[0][:, pos]))
    out_sets = []
    for label, tokens, z in sets:
        texts = [ctx.text(t) for t in tokens]
        correct, extracted = _score(ctx, texts)
        chosen = [i for i, ok in enumerate(correct) if ok] if c.correct_only else list(range(len(texts)))
        zc = z[chosen]
        info = cluster(zc, list(c.ks), ctx.seed("kmeans", label))
        entry: dict[str, Any] = {
            "label": label, "n": len(texts), "correct": int(sum(correct)), "clustered": len(chosen),
            "chosen": chosen, "correct_flags": correct, "extracted": extracted, "texts": texts,
            "lengths": [len(t) for t in tokens], "mean_length": float(np.mean([len(t) for t in tokens])),
            "distinct_texts": len(set(texts)),
            "distinct_clustered_texts": len({texts[i] for i in chosen}), **info,
            "variance": float(total_variance(zc[:, None])[0]) if len(chosen) >= 2 else None,
            "mean_pairwise_distance": float(mean_pairwise_distance(zc[:, None])[0]) if len(chosen) >= 2 else None,
            "z": z.tolist(),
        }  # fmt: skip
        best = info["best_k"]
        if best is not None:
            reps = [chosen[r] for r in info["per_k"][str(best)]["representatives"]]
            entry["representatives"] = [{"index": r, "text": texts[r][:400]} for r in reps]
            if c.judge is not None:
                entry["judge"] = judge_pairs(ctx, texts, reps)
        out_sets.append(entry)
    result: dict[str, Any] = {"correct_rate_tests": _rate_tests(out_sets), "layer": ctx.plot_layer,
                              "answer": ctx.problem.answer, "correct_only": c.correct_only,
                              "ks": list(c.ks), "sets": out_sets,
                              "judge": c.judge.model_dump() if c.judge is not None else None}  # fmt: skip
    result["plots"] = plots.clusters(result, ctx.out)
    for s in out_sets:
        s.pop("z")  # the scatter has them; results.json stays small
    return result
