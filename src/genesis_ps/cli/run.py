"""``genesis-ps run``: the whole graph on a request — plan → parallel waves of tasks (SICA for reasoning,
SE-Darwin for code, plain generation for the rest) → answer — with a live progress display.

Every super-step is checkpointed: to SQLite (``$GENESIS_PS_HOME/checkpoints.sqlite``, default
``~/.genesis_ps/``, or ``--checkpoint-db PATH``) or PostgreSQL (``--checkpoint-db postgresql://…``, the
``postgres`` extra). ``run --resume THREAD_ID`` continues an interrupted run where it stopped. The report
gives, per task, the method used, the acceptance rate, the measured cost multiplier and any fallback.
``run`` exits 1 when no task succeeded (saying how many failed and were skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from genesis_ps.cli import common
from genesis_ps.cli.common import add_model_args, plan_style
from genesis_ps.cli.run_report import Display, report
from genesis_ps.errors import ConfigError

__all__ = ["cmd_run", "register"]


def register(sub: Any) -> None:
    r = sub.add_parser("run", help="run the whole graph on a request (checkpointed, resumable)")
    r.add_argument("request", nargs="?", default=None, help="the request (omit with --resume)")
    r.add_argument("--resume", metavar="THREAD_ID", default=None, help="continue an interrupted run")
    r.add_argument("--thread-id", default=None, help="thread id for a new run (default: random)")
    r.add_argument("--checkpoint-db", default=None,
                   help="SQLite file or postgresql:// URL (default: $GENESIS_PS_HOME/checkpoints.sqlite)")  # fmt: skip
    r.add_argument("--task-max-new-tokens", type=int, default=96, help="token limit per task (96)")
    r.add_argument("--code-tests", action="append", default=None, metavar="ASSERT",
                   help="a test for code tasks, e.g. 'assert add(2, 3) == 5' (repeatable): SE-Darwin evolves "
                        "against them in the sandbox; without tests it makes one candidate")  # fmt: skip
    r.add_argument("--plan-attempts", type=int, default=2, help="decomposition attempts before the heuristic (2)")
    r.add_argument("--sica-max-iterations", type=int, default=None, help="answers SICA drafts at most (3; power 2)")
    r.add_argument("--darwin-max-generations", type=int, default=None, help="SE-Darwin generations (2)")
    r.add_argument("--darwin-offspring", type=int, default=None, help="SE-Darwin operators per generation (2)")
    r.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    r.add_argument("--metrics-addr", default="127.0.0.1", help="address the metrics server binds (127.0.0.1)")
    add_model_args(r)
    r.set_defaults(func=cmd_run)


def _loops(args: argparse.Namespace) -> dict[str, Any]:
    """The loops' budgets from the flags (validated here, before any model loads)."""
    from dataclasses import replace

    from genesis_ps.graph.env import DEFAULT_DARWIN, DEFAULT_SICA

    out: dict[str, Any] = {}
    if args.sica_max_iterations is not None:
        n = args.sica_max_iterations
        out["sica_config"] = replace(DEFAULT_SICA, max_iterations=n, power_max_iterations=n)
    kw = {k: v for k, v in (("max_generations", args.darwin_max_generations), ("offspring", args.darwin_offspring))
          if v is not None}  # fmt: skip
    if kw:
        out["darwin_config"] = replace(DEFAULT_DARWIN, **kw)
    if args.code_tests:
        from genesis_ps.evaluators import CodeEvaluator

        out["evaluators"] = {"code": CodeEvaluator(list(args.code_tests))}
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from genesis_ps.graph.checkpoints import checkpoint_target, redact_url
    from genesis_ps.settings import Settings

    settings = Settings.from_env()
    common.check_args(args, settings)
    if args.resume is None:
        from genesis_ps.planners import check_request

        check_request(args.request)
    target = args.checkpoint_db or str(common.checkpoint_path())
    kind, where = checkpoint_target(target)
    if kind == "sqlite":
        from genesis_ps.cli.checks import check_checkpoint

        check_checkpoint(Path(where), args.resume)
    loops = _loops(args)
    if args.metrics_port is not None:
        from genesis_ps.observability import start_metrics_server

        start_metrics_server(args.metrics_port, addr=args.metrics_addr)
    thread = args.resume or args.thread_id or f"run-{uuid.uuid4().hex[:12]}"
    shown = redact_url(where) if kind == "postgres" else where
    print(f"checkpoints: {shown}  thread: {thread}", file=sys.stderr)
    try:
        state = asyncio.run(_run(args, settings, target, thread, loops))
    except (Exception, KeyboardInterrupt) as exc:  # finished steps are checkpointed
        if not isinstance(exc, ConfigError):
            db = f" --checkpoint-db {redact_url(args.checkpoint_db)}" if args.checkpoint_db else ""
            print(f"interrupted; continue with: genesis-ps run --resume {thread}{db}", file=sys.stderr)
        raise
    if args.json:
        keys = ("answer", "tasks", "summary")
        print(json.dumps({"thread_id": thread, "checkpoint": shown, **{k: state.get(k) for k in keys}}, indent=2,
                         default=str))  # fmt: skip
    else:
        print(report(state))
    s = state.get("summary") or {}
    if s.get("tasks") and not s.get("done"):
        print(f"genesis-ps: no task succeeded ({s.get('failed', 0)} failed, {s.get('skipped', 0)} skipped)",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


async def _run(args: argparse.Namespace, settings: Any, target: str, thread: str, loops: dict[str, Any]) -> Any:
    from genesis_ps.graph import build_graph
    from genesis_ps.graph.checkpoints import open_checkpointer

    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    async with open_checkpointer(target) as saver:
        model = common.load_model(args, settings)
        planner = {"max_depth": args.max_depth, "style": plan_style(args, settings), "max_attempts": args.plan_attempts}
        graph = build_graph(model, settings=settings, checkpointer=saver, task_max_new_tokens=args.task_max_new_tokens,
                            plan_max_new_tokens=args.plan_max_new_tokens, temperature=args.temperature,
                            plan_lam=args.plan_lam, planner_options=planner, **loops)  # fmt: skip
        inp: dict[str, Any] | None = {"request": args.request}
        if args.resume is not None:
            snap = await graph.aget_state(config)
            if not snap.values:
                raise ConfigError("--resume", f"no checkpoint for thread {thread!r} in {target}")
            inp = None
            if not snap.next:
                return dict(snap.values)
        with Display(enabled=not args.json) as display:
            async for event in graph.astream(inp, config, stream_mode="custom", subgraphs=True, durability="sync"):
                display.update(event[-1] if isinstance(event, tuple) else event)
        return dict((await graph.aget_state(config)).values)
