"""WorFBench data files: the domains of a data directory, records, the per-domain subset a run uses.

Each ``<domain>.json`` is a JSON list of records ``{"id", "source", "conversations": [system, user,
assistant], ...}`` (turns ``{"role"|"from", "content"|"value"}``; the seven shared files use
``role``/``content``, the original release ``from``/``value``; both are read). Two kinds of bad input:

- a file in the **wrong shape** (not a list, a record that is not an object, a missing or mistyped
  ``conversations`` / turn role / turn text, no user or assistant turn) is a :class:`ConfigError`
  naming ``data``, the file, the record index and the field — the whole selected file is checked, before
  any model loads;
- a record of the right shape whose *content* is unusable (a gold workflow that does not parse or has a
  cycle, a task the planner refuses) is skipped and reported with its reason; it does not count
  toward the per-domain limit.

The per-domain subset is deterministic: ``pick="first"`` keeps the first N usable records in file
order; ``pick="shortest"`` the N usable records with the shortest task (user turn, in characters; ties
to file order), listed in file order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesis_ps.bench.worfbench import ParseError, Workflow, parse_workflow
from genesis_ps.errors import ConfigError

__all__ = ["PICKS", "LoadReport", "Record", "list_domains", "load_records", "parse_domains"]

PICKS = ("first", "shortest")


@dataclass(frozen=True)
class Record:
    """One WorFBench test record: the task (user turn), its system prompt and the gold workflow."""

    id: str
    domain: str
    system: str
    task: str
    gold_text: str
    gold: Workflow


@dataclass
class LoadReport:
    """What loading kept and skipped (records with unusable content are counted with their reasons)."""

    records: list[Record] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    available: dict[str, int] = field(default_factory=dict)
    """Per selected domain: how many records its file holds."""


def list_domains(data: str | Path) -> list[str]:
    """The domains (``*.json`` file stems) in a WorFBench directory, or the one file given."""
    p = Path(data)
    if p.is_file():
        return [p.stem]
    if not p.is_dir():
        raise ConfigError("data", f"{str(p)!r} is neither a WorFBench directory nor a JSON file")
    return sorted(f.stem for f in p.glob("*.json"))


def parse_domains(text: str | Sequence[str] | None, data: str | Path) -> list[str]:
    """The domains to run: all of ``data``'s when ``text`` is None, else the named ones (in the order
    given, without repeats); an empty list or an unknown name is a ConfigError naming ``domains``."""
    available = list_domains(data)
    if text is None:
        if not available:
            raise ConfigError("data", f"{data} holds no <domain>.json files")
        return available
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise ConfigError("domains", "give at least one domain (or leave --domains out for all of them)")
    unknown = [d for d in names if d not in available]
    if unknown:
        raise ConfigError("domains", f"unknown domain(s) {', '.join(unknown)}; available: {', '.join(available)}")
    return list(dict.fromkeys(names))


def load_records(
    data: str | Path, domains: Sequence[str] | None = None, limit: int | None = None, pick: str = "first"
) -> LoadReport:
    """Load up to ``limit`` usable records per domain (see the module docstring for ``pick``)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError("limit", f"must be an integer >= 1, got {limit!r}")
    if pick not in PICKS:
        raise ConfigError("pick", f"must be one of {', '.join(PICKS)}, got {pick!r}")
    p = Path(data)
    out = LoadReport()
    for dom in parse_domains(domains, p):
        path = p if p.is_file() else p / f"{dom}.json"
        items = _read_list(path)
        out.available[dom] = len(items)
        usable: list[tuple[int, Record]] = []
        for k, item in enumerate(items):
            rec_id, turns = _check_shape(item, k, path)
            try:
                rec = _record(item, rec_id, turns, dom)
            except (ParseError, ValueError) as e:
                out.skipped.append({"id": rec_id, "domain": dom, "index": str(k), "reason": f"{type(e).__name__}: {e}"})
                continue
            usable.append((k, rec))
        if pick == "shortest":
            usable = sorted(sorted(usable, key=lambda kr: (len(kr[1].task), kr[0]))[:limit], key=lambda kr: kr[0])
        out.records += [r for _, r in usable[:limit]]
    return out


def _read_list(path: Path) -> list[Any]:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError("data", f"cannot read {path}: {e}") from e
    if not isinstance(items, list):
        raise ConfigError("data", f"{path} must hold a JSON list of records, found a {type(items).__name__}")
    return items


def _check_shape(item: Any, k: int, path: Path) -> tuple[str, list[tuple[str, str]]]:
    """(record id, [(role, text)]) of a well-shaped record; ConfigError naming the field otherwise."""

    def bad(what: str) -> ConfigError:
        return ConfigError("data", f"{path.name}: record {k}{rid}: {what}")

    rid = ""
    if not isinstance(item, dict):
        raise bad(f"must be an object, found a {type(item).__name__}")
    if "id" in item:
        rid = f" (id {item['id']!r})"
    if "conversations" not in item:
        raise bad("missing field 'conversations'")
    conv = item["conversations"]
    if not isinstance(conv, list):
        raise bad(f"field 'conversations' must be a list of turns, found a {type(conv).__name__}")
    turns: list[tuple[str, str]] = []
    for j, t in enumerate(conv):
        if not isinstance(t, dict):
            raise bad(f"conversations[{j}] must be an object with 'role' and 'content'")
        role = t.get("role", t.get("from"))
        text = t.get("content", t.get("value"))
        if not isinstance(role, str):
            raise bad(f"conversations[{j}] is missing field 'role' (or 'from')")
        if not isinstance(text, str):
            raise bad(f"conversations[{j}] is missing field 'content' (or 'value') as text")
        turns.append((role, text))
    roles = [r for r, _ in turns]
    for need, names in (("user", ("user", "human")), ("assistant", ("assistant", "gpt"))):
        if not any(r in names for r in roles):
            raise bad(f"field 'conversations' has no {need} turn (roles: {', '.join(roles) or 'none'})")
    return str(item.get("id", f"{path.stem}#{k}")), turns


def _record(item: dict[str, Any], rec_id: str, turns: list[tuple[str, str]], domain: str) -> Record:
    from genesis_ps.planners.planner import check_request

    roles = [r for r, _ in turns]
    user_i = max(i for i, r in enumerate(roles) if r in ("user", "human"))
    asst_i = max(i for i, r in enumerate(roles) if r in ("assistant", "gpt"))
    gold_text = turns[asst_i][1]
    gold = parse_workflow(gold_text)
    if not gold.is_acyclic():
        raise ValueError("gold workflow has a cycle")
    task = turns[user_i][1]
    try:
        check_request(task)
    except ConfigError as e:
        raise ValueError(f"the planner refuses this task ({e})") from None
    return Record(
        id=rec_id,
        domain=domain,
        system=turns[0][1] if roles[0] == "system" else "",
        task=task,
        gold_text=gold_text,
        gold=gold,
    )
