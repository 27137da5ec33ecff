"""Quality evaluators: text + context → :class:`Score` in [0, 1] with details.

``base`` (protocol, ``safe_evaluate``, ``as_reward``), ``code`` (sandboxed test runs), ``math_answer`` and
``composite``. The decomposition-quality evaluator lives with the planners
(:mod:`genesis_ps.planners.quality`), since it parses task graphs.
"""

from genesis_ps.evaluators.base import Evaluator, Score, as_reward, safe_evaluate
from genesis_ps.evaluators.code import CodeEvaluator, extract_code
from genesis_ps.evaluators.composite import CompositeEvaluator
from genesis_ps.evaluators.math_answer import MathAnswerEvaluator, answers_equivalent, extract_answer
from genesis_ps.evaluators.sandbox import SandboxLimits, SandboxResult, run_python

__all__ = [
    "CodeEvaluator",
    "CompositeEvaluator",
    "Evaluator",
    "MathAnswerEvaluator",
    "SandboxLimits",
    "SandboxResult",
    "Score",
    "answers_equivalent",
    "as_reward",
    "extract_answer",
    "extract_code",
    "run_python",
    "safe_evaluate",
]
