"""What ``genesis-ps run`` shows: a live table while it runs (stderr) and the report at the end."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["Display", "report"]


class Display:
    """Live progress on stderr (rich): the plan, then each task's status as waves run."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and (sys.stderr.isatty() or os.environ.get("GENESIS_PS_PROGRESS") == "1")
        self.rows: dict[str, list[str]] = {}
        self.phase = "planning…"
        self.live: Any = None

    def __enter__(self) -> Display:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._render(), console=Console(stderr=True), refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(*exc)

    def update(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "plan_end":
            self.phase = "running tasks" + (f" (plan fallback: {event['fallback']})" if event.get("fallback") else "")
            for t in event.get("tasks", []):
                self.rows[t["id"]] = [t["id"], t["type"], t["description"][:60], "pending", ""]
        elif kind == "task_start" and event.get("task_id") in self.rows:
            self.rows[event["task_id"]][3] = f"running ({event.get('route')})"
        elif kind == "task_end" and event.get("task_id") in self.rows:
            self.rows[event["task_id"]][3] = event.get("status", "?")
            self.rows[event["task_id"]][4] = ", ".join(event.get("fallbacks") or [])
        if self.live is not None:
            self.live.update(self._render())

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(title=f"genesis-ps: {self.phase}")
        for col in ("id", "type", "task", "status", "fallback"):
            table.add_column(col)
        for row in self.rows.values():
            table.add_row(*row)
        return table


def _num(v: Any, fmt: str = ".2f") -> str:
    return "n/a" if v is None else format(v, fmt)


def _task_line(t: Mapping[str, Any]) -> list[str]:
    by = f", typed by {t['type_source']}" if t.get("type_source") else ""
    fb = ", ".join(t.get("fallbacks") or []) or "none"
    models = f" (fallback model {', '.join(t['fallback_models'])})" if t.get("fallback_models") else ""
    loop = (t.get("extra") or {}).get("sica") or (t.get("extra") or {}).get("se_darwin") or {}
    stop = f", stop {loop['stop_reason']}" if loop.get("stop_reason") else ""
    method = "/".join(t.get("methods") or []) or "none"
    head = (f"[{t['id']}] ({t['type']}{by}) {t['description']}  — {t['status']} via {t['route']}{stop}; "
            f"method {method}, acceptance {_num(t.get('acceptance'))}, cost ×{_num(t.get('cost_multiplier'))}, "
            f"score {_num(t.get('score'))}, fallbacks: {fb}{models}")  # fmt: skip
    text = (t.get("output") or t.get("error") or "").strip()
    return [head, *("    " + ln for ln in text.splitlines()[:12]), ""]


def report(state: Mapping[str, Any]) -> str:
    """The run's report: the DAG, the plan, each task (method, acceptance, cost, fallbacks), the totals."""
    from genesis_ps.planners import TaskDAG

    tasks, s = state.get("tasks") or [], state.get("summary") or {}
    plan = s.get("plan") or {}
    dag = TaskDAG.from_dict({"tasks": [{k: t[k] for k in ("id", "description", "type", "depends_on")} for t in tasks]})
    lines = ["Task DAG:", dag.render_tree(), "",
             f"plan: method {plan.get('method', '?')} requested, {'/'.join(plan.get('methods_used') or ['none'])} "
             f"used (generation fallbacks: {', '.join(plan.get('generation_fallbacks') or []) or 'none'}), "
             f"plan fallback {plan.get('fallback') or 'none'}, quality {_num(plan.get('quality'))}", ""]  # fmt: skip
    for t in tasks:
        lines += _task_line(t)
    reasons = ", ".join(f"{k}×{v}" for k, v in (s.get("fallback_reasons") or {}).items()) or "none"
    lines.append(f"tasks: {s.get('done', 0)} done, {s.get('failed', 0)} failed, {s.get('skipped', 0)} skipped; "
                 f"fallbacks: {reasons}" + (f" (fallback model {s['fallback_model']})" if s.get("fallback_model")
                                            else ""))  # fmt: skip
    lines.append(f"cost: {s.get('tokens_generated', 0)} tokens generated for {s.get('tokens_returned', 0)} returned "
                 f"(measured cost multiplier {s.get('cost_multiplier', 0):.2f}); {s.get('latency_s', 0):.1f} s")
    return "\n".join(lines)
