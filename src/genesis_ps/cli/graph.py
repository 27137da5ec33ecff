"""``genesis-ps decompose`` and ``genesis-ps run``.

``decompose REQUEST`` prints the task DAG (a tree, or ``--json``). ``run REQUEST`` runs the whole graph
(plan → parallel waves of tasks → summary) with a live progress display, checkpointing every step to
SQLite (``$GENESIS_PS_HOME/checkpoints.sqlite``, default ``~/.genesis_ps/``); ``run --resume THREAD_ID``
continues an interrupted run without redoing finished tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.sampling import GenerationResult, Prompt, SamplerParams

__all__ = ["check_args", "checkpoint_path", "load_model", "register"]


def checkpoint_path(explicit: str | None = None) -> Path:
    """Where ``run`` keeps its SQLite checkpoints."""
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("GENESIS_PS_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".genesis_ps") / "checkpoints.sqlite"


def load_model(args: argparse.Namespace, settings: Any) -> Any:
    """The TokenModel named by ``--provider/--model/--base-url`` (default: settings, i.e. embedded)."""
    from genesis_ps.providers.registry import build_model

    provider = args.provider or settings.provider
    return build_model(provider, model=args.model or settings.model, base_url=args.base_url)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", default=None, help="model provider (default: POWER_SAMPLING_PROVIDER or embedded)")
    p.add_argument("--model", default=None, help="model name or path for the provider")
    p.add_argument("--base-url", default=None, help="base URL for OpenAI-compatible servers")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--max-depth", type=int, default=0, help="recursive decomposition depth (default 0)")
    p.add_argument("--plan-max-new-tokens", type=int, default=128, help="token limit of the decomposition (128)")
    p.add_argument("--plan-lam", type=float, default=0.0,
                   help="tilt the plan's power sampling by decomposition quality: p^alpha*exp(lam*q) (0)")  # fmt: skip
    p.add_argument("--temperature", type=float, default=0.3,
                   help="single-shot temperature (0.3; power sampling samples at 1/alpha instead)")  # fmt: skip


def register(sub: Any) -> None:
    d = sub.add_parser("decompose", help="decompose a request into a task DAG")
    d.add_argument("request", help="what to decompose")
    d.add_argument(
        "--method",
        default=None,
        choices=["single", "mh", "smc", "imh"],
        help="generation method (default: the htdag layer's flags and parameters)",
    )
    d.add_argument(
        "--style",
        default="auto",
        choices=["auto", "json", "worfbench"],
        help="answer format asked for (auto: WorFBench Node/Edge text for the embedded 135M model, which "
        "never wrote valid JSON in our runs; JSON otherwise)",
    )
    _add_model_args(d)
    d.set_defaults(func=cmd_decompose)

    r = sub.add_parser("run", help="run the whole graph on a request (checkpointed, resumable)")
    r.add_argument("request", nargs="?", default=None, help="the request (omit with --resume)")
    r.add_argument("--resume", metavar="THREAD_ID", default=None, help="continue an interrupted run")
    r.add_argument("--thread-id", default=None, help="thread id for a new run (default: random)")
    r.add_argument("--checkpoint-db", default=None, help="SQLite file (default: $GENESIS_PS_HOME/checkpoints.sqlite)")
    r.add_argument("--task-max-new-tokens", type=int, default=96, help="token limit per task (96)")
    r.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    _add_model_args(r)
    r.set_defaults(func=cmd_run)


# ---- decompose ------------------------------------------------------------------------------------------
def check_args(args: argparse.Namespace, settings: Any) -> None:
    """Every flag of ``decompose`` / ``run`` checked before any model loads, naming the flag."""
    from genesis_ps.cli.checks import check_float, check_int, check_model_flags, check_temp

    check_model_flags(args.provider or settings.provider, args.model or settings.model, args.base_url)
    check_int("--max-depth", args.max_depth, 0)
    check_int("--plan-max-new-tokens", args.plan_max_new_tokens, 1)
    check_float("--plan-lam", args.plan_lam)
    check_temp("--temperature", args.temperature)
    if hasattr(args, "task_max_new_tokens"):
        check_int("--task-max-new-tokens", args.task_max_new_tokens, 1)
    if getattr(args, "metrics_port", None) is not None:
        check_int("--metrics-port", args.metrics_port, 1, 65535)


def cmd_decompose(args: argparse.Namespace) -> int:
    from genesis_ps.graph.generation import GenerationPair
    from genesis_ps.graph.rollout import request_id_for
    from genesis_ps.planners import check_request, decompose
    from genesis_ps.settings import Settings

    settings = Settings.from_env()
    check_args(args, settings)
    request = check_request(args.request)
    model = load_model(args, settings)
    pair = GenerationPair(model, settings=settings)
    rid = request_id_for(request)
    explicit = args.method is not None

    tilt: dict[str, Any] = {}
    if args.plan_lam:
        from genesis_ps.evaluators.base import as_reward
        from genesis_ps.planners.quality import DecompositionEvaluator

        if not args.plan_lam > 0:
            raise ConfigError("--plan-lam", f"must be > 0, got {args.plan_lam!r}")
        tilt = {"reward": as_reward(DecompositionEvaluator(), {"request": request}), "lam": args.plan_lam}

    plan_params = settings.layer("htdag").params.with_(max_new_tokens=args.plan_max_new_tokens,
                                                       temperature=args.temperature)  # fmt: skip

    async def gen(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
        mode = (True if explicit else None) if power else False
        return await pair(prompt, layer="htdag", params=params or plan_params, power=mode, request_id=rid,
                          sampler_kwargs=tilt)  # fmt: skip

    d = asyncio.run(
        decompose(
            request,
            generator=gen,
            params=plan_params,
            method=args.method,
            power=True,
            max_depth=args.max_depth,
            style=plan_style(args, settings),
        )
    )
    if args.json:
        print(json.dumps(d.to_dict(), indent=2, default=str))
        return 0
    print(d.dag.render_tree())
    q = "n/a" if d.quality is None or d.quality.value is None else f"{d.quality.value:.2f}"
    print(
        f"\nmethod: {d.method} requested, {'/'.join(sorted({g.method for g in d.generations})) or 'none'} used  "
        f"plan fallback: {d.fallback or 'none'}  quality: {q}  "
        f"cost multiplier: {d.cost_multiplier:.2f} ({d.tokens_generated} tokens generated)"
    )
    if d.generation_fallbacks:
        print(f"generation fallbacks: {', '.join(d.generation_fallbacks)}")
    return 0


# ---- run ------------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from genesis_ps.settings import Settings

    settings = Settings.from_env()
    check_args(args, settings)
    if args.resume is None:
        from genesis_ps.planners import check_request

        check_request(args.request)
    from genesis_ps.cli.checks import check_checkpoint

    check_checkpoint(checkpoint_path(args.checkpoint_db), args.resume)
    if args.metrics_port is not None:
        from genesis_ps.observability import start_metrics_server

        start_metrics_server(args.metrics_port)
    path = checkpoint_path(args.checkpoint_db)
    path.parent.mkdir(parents=True, exist_ok=True)
    thread = args.resume or args.thread_id or f"run-{uuid.uuid4().hex[:12]}"
    print(f"checkpoints: {path}  thread: {thread}", file=sys.stderr)
    try:
        state = asyncio.run(_run(args, settings, path, thread))
    except (Exception, KeyboardInterrupt):  # any interruption: finished tasks are checkpointed
        if args.resume is not None or args.request is not None:
            print(
                f"interrupted; continue with: genesis-ps run --resume {thread}"
                + (f" --checkpoint-db {path}" if args.checkpoint_db else ""),
                file=sys.stderr,
            )
        raise
    if args.json:
        print(json.dumps({"thread_id": thread, "checkpoint": str(path), **state}, indent=2, default=str))
    else:
        print(_report(state))
    return 0


def plan_style(args: argparse.Namespace, settings: Any) -> str:
    """The decomposition answer format: ``auto`` picks WorFBench text for the embedded model."""
    style = getattr(args, "style", "auto")
    if style != "auto":
        return str(style)
    return "worfbench" if (args.provider or settings.provider) == "embedded" else "json"


async def _run(args: argparse.Namespace, settings: Any, path: Path, thread: str) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from genesis_ps.graph import build_graph

    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        model = load_model(args, settings)
        graph = build_graph(
            model,
            settings=settings,
            checkpointer=saver,
            task_max_new_tokens=args.task_max_new_tokens,
            plan_max_new_tokens=args.plan_max_new_tokens,
            temperature=args.temperature,
            plan_lam=args.plan_lam,
            planner_options={"max_depth": args.max_depth, "style": plan_style(args, settings)},
        )
        inp: dict[str, Any] | None = {"request": args.request}
        if args.resume is not None:
            snap = await graph.aget_state(config)
            if not snap.values:
                raise ConfigError("--resume", f"no checkpoint for thread {thread!r} in {path}")
            inp = None
            if not snap.next:
                return dict(snap.values)
        display = _Display(enabled=not args.json)
        with display:
            async for mode, event in graph.astream(inp, config, stream_mode=["custom", "updates"]):
                display.update(mode, event)
        return dict((await graph.aget_state(config)).values)


class _Display:
    """Live progress on stderr (rich): the plan, then each task's status as waves run."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = (enabled and sys.stderr.isatty()) or (enabled and os.environ.get("GENESIS_PS_PROGRESS") == "1")
        self.rows: dict[str, list[str]] = {}
        self.phase = "planning…"
        self.live: Any = None

    def __enter__(self) -> _Display:
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

    def update(self, mode: str, event: Any) -> None:
        if mode != "custom" or not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "plan_end":
            self.phase = "running tasks" + (f" (plan fallback: {event['fallback']})" if event.get("fallback") else "")
            for t in event.get("tasks", []):
                self.rows[t["id"]] = [t["id"], t["type"], t["description"][:60], "pending", ""]
        elif kind == "task_start" and event.get("task_id") in self.rows:
            self.rows[event["task_id"]][3] = "running"
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


def _report(state: dict[str, Any]) -> str:
    from genesis_ps.planners import TaskDAG

    dag = TaskDAG.from_dict(state["dag"])
    plan, s, outcomes = state.get("plan") or {}, state.get("summary") or {}, state.get("outcomes") or {}
    q = plan.get("quality")
    lines = [
        "Task DAG:",
        dag.render_tree(),
        "",
        f"plan: method {plan.get('method', '?')} requested, {'/'.join(plan.get('methods_used') or ['none'])} used "
        f"(generation fallbacks: {', '.join(plan.get('generation_fallbacks') or []) or 'none'}), "
        f"plan fallback {plan.get('fallback') or 'none'}, "
        f"quality {'n/a' if q is None else f'{q:.2f}'}",
        "",
    ]
    for t in dag.tasks:
        o = outcomes.get(t.id, {})
        score = "n/a" if o.get("score") is None else f"{o['score']:.2f}"
        fb = ", ".join(o.get("fallbacks") or []) or "none"
        lines.append(
            f"[{t.id}] {t.description}  — {o.get('status', 'not run')} via {o.get('route', '?')}, "
            f"score {score}, fallbacks: {fb}"
        )
        text = (o.get("output") or o.get("error") or "").strip()
        lines += ["    " + ln for ln in text.splitlines()[:12]] + [""]
    reasons = ", ".join(f"{k}×{v}" for k, v in (s.get("fallback_reasons") or {}).items()) or "none"
    lines.append(
        f"tasks: {s.get('done', 0)} done, {s.get('failed', 0)} failed, {s.get('skipped', 0)} skipped; "
        f"fallbacks: {reasons}"
    )
    lines.append(
        f"cost: {s.get('tokens_generated', 0)} tokens generated for {s.get('tokens_returned', 0)} returned "
        f"(measured cost multiplier {s.get('cost_multiplier', 0):.2f})"
    )
    return "\n".join(lines)
