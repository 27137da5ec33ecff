"""SICA prompts and a defensive parser for the model's critiques.

The critique format asked for::

    SCORE: <0-10>
    VERDICT: PASS | REVISE
    ISSUES:
    - <issue>

Models answer in many shapes. :func:`parse_critique` accepts a JSON object anywhere in the text (single
quotes and trailing commas repaired), ``score: 7/10``, ``Rating = 70%``, ``8 out of 10``, verdict words
(PASS/ACCEPT/CORRECT, REVISE/REJECT/FAIL/INCORRECT) and bulleted issues. A critique with neither a score
nor a verdict is *malformed*: the loop re-asks (``repair_prompt``) and, if it stays malformed, records
the failure rather than inventing a score.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from genesis_ps.sampling.protocol import Prompt

__all__ = ["Critique", "critique_prompt", "draft_prompt", "parse_critique", "refine_prompt", "repair_prompt"]

_FORMAT = "SCORE: <a number from 0 to 10>\nVERDICT: PASS or REVISE\nISSUES:\n- <one issue per line>"
_SCORE = re.compile(
    r"\b(?:score|rating|grade)\b[\s*_]*[:=]?\s*(?P<num>-?\d+(?:\.\d+)?)\s*(?P<scale>/\s*\d+(?:\.\d+)?|%|out of \d+)?",
    re.IGNORECASE,
)
_OUT_OF = re.compile(r"\b(?P<num>\d+(?:\.\d+)?)\s*(?:/|out of)\s*(?P<den>10|100|5)\b", re.IGNORECASE)
_PASS = re.compile(
    r"\b(?:verdict|decision)\b[\s*_]*[:=]?\s*\**(?P<v>pass|accept(?:ed)?|correct|revise|reject(?:ed)?|"
    r"fail|incorrect)\b",
    re.IGNORECASE,
)
_GOOD = {"pass", "accept", "accepted", "correct"}


@dataclass(frozen=True)
class Critique:
    """A parsed critique. ``score`` is in [0, 1] (None if the model gave none)."""

    raw: str
    score: float | None = None
    verdict: str | None = None
    """``pass`` or ``revise`` (None if absent)."""
    issues: tuple[str, ...] = ()
    repaired: bool = False
    """True when the JSON had to be repaired or the score was read from a loose phrase."""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Well-formed enough to use: it has a score or a verdict."""
        return self.score is not None or self.verdict is not None

    @property
    def feedback(self) -> str:
        """Text to hand to the refinement step."""
        if self.issues:
            return "\n".join(f"- {i}" for i in self.issues)
        return self.raw.strip()[:1500]


def _norm_score(num: float, scale: str | None) -> float | None:
    scale = (scale or "").strip().lower()
    if scale == "%":
        v = num / 100
    elif scale.startswith("/") or scale.startswith("out of"):
        den = float(re.sub(r"[^\d.]", "", scale) or 0)
        v = num / den if den > 0 else -1.0
    elif 0 <= num <= 1:
        v = num
    elif 1 < num <= 10:
        v = num / 10
    elif 10 < num <= 100:
        v = num / 100
    else:
        return None
    return v if 0.0 <= v <= 1.0 else None


def _from_json(text: str) -> tuple[dict[str, Any] | None, bool]:
    """(object, repaired) for the outermost ``{…}`` in ``text``."""
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return None, False
    blob = text[start : end + 1]
    for repaired, attempt in enumerate((blob, re.sub(r",\s*([}\]])", r"\1", blob.replace("'", '"')))):
        try:
            data = json.loads(attempt)
        except ValueError:
            continue
        return (data if isinstance(data, dict) else None), bool(repaired)
    return None, False


def parse_critique(text: str) -> Critique:
    """Parse a critique defensively (see the module docstring). Never raises."""
    raw = text if isinstance(text, str) else ""
    notes: list[str] = []
    score: float | None = None
    verdict: str | None = None
    issues: list[str] = []
    data, json_repaired = _from_json(raw)
    if json_repaired:
        notes.append("json_repaired")
    if data is not None:
        lowered = {str(k).lower(): v for k, v in data.items()}
        s = lowered.get("score", lowered.get("rating"))
        if isinstance(s, (int, float)) and not isinstance(s, bool):
            score = _norm_score(float(s), None)
        elif isinstance(s, str):
            m = _OUT_OF.search(s) or re.search(r"-?\d+(?:\.\d+)?", s)
            if m:
                score = _norm_score(
                    float(m.group(1) if m.re is _OUT_OF else m.group(0)),
                    f"/{m.group('den')}" if m.re is _OUT_OF else None,
                )
        v = str(lowered.get("verdict", "")).lower()
        verdict = "pass" if v in _GOOD else ("revise" if v else None)
        iss = lowered.get("issues", [])
        issues = [str(i) for i in iss] if isinstance(iss, list) else ([str(iss)] if iss else [])
        notes.append("json")
    if score is None:
        m = _SCORE.search(raw)
        if m:
            score = _norm_score(float(m.group("num")), m.group("scale"))
        else:
            m2 = _OUT_OF.search(raw)
            if m2:
                score = _norm_score(float(m2.group("num")), f"/{m2.group('den')}")
                notes.append("loose_score")
    if verdict is None:
        mv = _PASS.search(raw)
        if mv:
            verdict = "pass" if mv.group("v").lower() in _GOOD else "revise"
    if not issues:
        block = re.split(r"\bissues?\b\s*[:\-]?", raw, maxsplit=1, flags=re.IGNORECASE)
        body = block[1] if len(block) == 2 else ""
        issues = [
            re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", ln).strip()
            for ln in body.splitlines()
            if re.match(r"^\s*(?:[-*•]|\d+[.)])\s+\S", ln)
        ]
        issues = [i for i in issues if i.lower() not in ("none", "n/a", "")]
    return Critique(
        raw=raw,
        score=score,
        verdict=verdict,
        issues=tuple(issues[:20]),
        repaired=bool(notes) and notes != ["json"],
        notes=notes,
    )


def draft_prompt(task: str) -> Prompt:
    return Prompt.user(f"{task}\n\nThink step by step, then give your final answer.")


def critique_prompt(task: str, answer: str) -> Prompt:
    return Prompt.user(
        f"Task:\n{task}\n\nProposed answer:\n{answer}\n\nCritique the proposed answer: check every step for "
        f"errors. Reply exactly in this format:\n{_FORMAT}",
        system="You are a strict reviewer.",
    )


def repair_prompt(task: str, answer: str, bad: str) -> Prompt:
    return Prompt.user(
        f"Task:\n{task}\n\nProposed answer:\n{answer}\n\nYour previous review was not in the required format:\n"
        f"{bad[:600]}\n\nReply ONLY in this format, nothing else:\n{_FORMAT}",
        system="You are a strict reviewer.",
    )


def refine_prompt(task: str, answer: str, feedback: str) -> Prompt:
    return Prompt.user(
        f"Task:\n{task}\n\nPrevious answer:\n{answer}\n\nReview of that answer:\n{feedback}\n\n"
        "Write an improved answer that fixes every issue. Think step by step, then give your final answer."
    )
