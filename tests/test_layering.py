"""Every import among our modules points down the layers of ARCHITECTURE.md, and none forms a circle.

Read from the source with :mod:`ast` (imports inside functions included), so a lazy import cannot hide an
upward arrow. A module imports only from its own component or from a lower one; within a component the
module graph is acyclic.
"""

from __future__ import annotations

import ast
from pathlib import Path

import genesis_ps

SRC = Path(genesis_ps.__file__).parent

LAYERS: list[set[str]] = [
    {"errors", "_version"},
    {"sampling"},
    {"settings", "observability", "testing"},
    {"generation", "providers", "evaluators"},
    {"planners", "operators", "loops"},
    {"graph"},
    {"bench"},
    {"geometry", "softprompt"},
    {"cli", "__init__"},
    {"__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}

# Inside providers, the wings sit between the shared boundary below and the registry above.
PROVIDER_RANK = {"keys": 0, "topk": 0, "normalize": 1, "resilience": 2, "local": 3, "hosted": 3,
                 "registry": 4, "__init__": 5}  # fmt: skip


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The genesis_ps modules ``path`` imports (``from pkg import sub`` resolves to ``pkg.sub``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("genesis_ps")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name if is_pkg else name.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rsplit(".", 1)[0]
                base = f"{pkg}.{base}" if base else pkg
            if not base.startswith("genesis_ps"):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if sub in known else base)
    found.discard(name)
    return found


def component(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_is_placed_in_a_layer() -> None:
    missing = {component(m) for m in modules()} - set(RANK)
    assert not missing, f"place these in LAYERS: {sorted(missing)}"


def test_imports_point_down() -> None:
    mods = modules()
    known = set(mods)
    upward = []
    for name, path in mods.items():
        for target in imports_of(path, name, known):
            a, b = component(name), component(target)
            if target == "genesis_ps" and name != "genesis_ps":
                upward.append(f"{name} -> genesis_ps (the front door)")
            elif a != b and RANK[b] >= RANK[a]:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports that do not point down:\n" + "\n".join(sorted(upward))


def test_sampling_imports_only_errors() -> None:
    mods = modules()
    bad = [f"{n} -> {t}" for n, p in mods.items() if component(n) == "sampling"
           for t in imports_of(p, n, set(mods)) if component(t) not in ("sampling", "errors")]  # fmt: skip
    assert not bad, bad


def test_provider_wings_point_down() -> None:
    mods = modules()
    bad = []
    for name, path in mods.items():
        if not name.startswith("genesis_ps.providers"):
            continue
        here = name.split(".")[2] if name.count(".") >= 2 else "__init__"
        for target in imports_of(path, name, set(mods)):
            if not target.startswith("genesis_ps.providers") or target == "genesis_ps.providers":
                if target == "genesis_ps.providers":
                    bad.append(f"{name} -> {target}")
                continue
            there = target.split(".")[2]
            if there != here and PROVIDER_RANK[there] >= PROVIDER_RANK[here]:
                bad.append(f"{name} -> {target}")
    assert not bad, bad


def test_no_import_circle() -> None:
    mods = modules()
    known = set(mods)
    graph = {n: imports_of(p, n, known) & known for n, p in mods.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                circles.append([*stack[stack.index(m):], m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)
