"""Joint question–answer soft-prompt optimisation over a frozen local causal LM.

For each (Q, A) pair, K continuous content vectors ``c`` are optimised so that the model regenerates Q
from ``[Q_mode; c]`` and A from ``[A_mode; c]`` — can one set of K vectors hold both, and how small can K
be? Stages: baselines, (1) single-target diagnostic with a decision gate, (2) joint optimisation with
restarts and early stopping, (3) greedy decoding checked by exact match and token F1, (4) ablations over K,
the progressive schedule and a paraphrase regulariser. ``genesis-ps softprompt run`` drives it; torch and
transformers are imported only when a run starts.
"""

from __future__ import annotations

from genesis_ps.softprompt.config import SoftPromptConfig
from genesis_ps.softprompt.data import QAPair, arith_pairs, load_pairs, read_jsonl_pairs
from genesis_ps.softprompt.health import classify_curve, target_converged
from genesis_ps.softprompt.lm import FrozenLM, open_lm, tiny_frozen
from genesis_ps.softprompt.pipeline import parse_stages, run_pipeline
from genesis_ps.softprompt.prepare import Prepared, prepare_pairs

__all__ = [
    "FrozenLM",
    "Prepared",
    "QAPair",
    "SoftPromptConfig",
    "arith_pairs",
    "classify_curve",
    "load_pairs",
    "open_lm",
    "parse_stages",
    "prepare_pairs",
    "read_jsonl_pairs",
    "run_pipeline",
    "target_converged",
    "tiny_frozen",
]
