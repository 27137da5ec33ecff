"""WorFBench data and metrics: records, the ``Node:/Edge:`` workflow form, f1_chain and f1_graph.

WorFBench (Qiao et al., arXiv 2410.07869) scores a predicted workflow graph against a gold one:

- nodes are matched one-to-one by a similarity matcher (:mod:`genesis_ps.bench.matching`: sentence
  embeddings with a threshold, maximum-weight matching);
- **f1_chain**: the predicted nodes, in the order they are listed, are mapped to their matched gold
  nodes; the longest *strictly increasing* subsequence of those gold positions, best over the gold
  graph's topological sorts, gives precision (over predicted nodes) and recall (over gold nodes);
- **f1_graph**: the largest connected component formed by matched nodes and the edges present in both
  graphs gives precision and recall the same way.

Two deliberate differences from the reference code (``evaluator/graph_evaluator.py``), both recorded in
benchmarks/README.md: (1) an unmatched predicted node never counts toward the LIS (the reference
initialises its DP to 1 for every node, so a prediction with no match at all still scores 1/len);
(2) a predicted edge counts as shared only when its *matched gold* endpoints form a gold edge (the
reference compares predicted and gold index pairs directly, which is right only when the numbering
happens to agree), and the virtual START/END nodes are not scored. Unparseable predictions score 0.
The data files are read by :mod:`genesis_ps.bench.worfbench_load`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_TOPO_SORTS",
    "ParseError",
    "Workflow",
    "chain_scores",
    "format_workflow",
    "graph_scores",
    "lis_length",
    "parse_workflow",
    "topological_sorts",
]

MAX_TOPO_SORTS = 100
"""f1_chain takes the best over at most this many topological sorts of the gold graph (the reference
code takes the first 20, and only the listed order for graphs of 8 or more task nodes)."""

_NODE_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:node\s*)?(\d+)\s*[:.)]\s*(.+?)\s*$", re.IGNORECASE)
_EDGE = re.compile(r"\(\s*(START|\d+)\s*,\s*(END|\d+)\s*\)", re.IGNORECASE)
_EDGE_HEADER = re.compile(r"^\s*(?:edges?|graph)\s*:?", re.IGNORECASE)


class ParseError(ValueError):
    """The text holds no workflow in the ``Node:/Edge:`` form (the reason is the message)."""


@dataclass(frozen=True)
class Workflow:
    """A workflow graph: task ``nodes`` (text) and ``edges`` between them as 0-based index pairs.

    Edges from START or to END are not kept as pairs: they add no order between task nodes.
    ``dropped_edges`` counts edges that named a node that does not exist or were self-loops.
    """

    nodes: tuple[str, ...]
    edges: tuple[tuple[int, int], ...] = ()
    dropped_edges: int = 0
    had_edges: bool = True

    def is_acyclic(self) -> bool:
        return _kahn_order(len(self.nodes), self.edges) is not None

    @property
    def valid(self) -> bool:
        """A usable DAG: at least one node, some edge list given, no dangling edge, no cycle."""
        return bool(self.nodes) and self.had_edges and self.dropped_edges == 0 and self.is_acyclic()


def parse_workflow(text: str) -> Workflow:
    """Parse WorFBench's text form (``Node:`` numbered lines, then ``Edge: (START,1) (1,2) (2,END)``).

    Node numbers are the labels the text uses (1-based); edges naming an unknown node are dropped and
    counted. Raises :class:`ParseError` when there are no numbered nodes or no edges at all (the
    reference evaluator treats a workflow without edges as unparseable).
    """
    if not isinstance(text, str) or not text.strip():
        raise ParseError("empty text")
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"^\s*nodes?\s*:?", ln, re.IGNORECASE)), None)
    body = lines[start + 1 :] if start is not None else lines
    first = lines[start] if start is not None else ""
    tail = re.sub(r"^\s*nodes?\s*:?", "", first, flags=re.IGNORECASE)
    if tail.strip():
        body = [tail, *body]
    labels: dict[int, int] = {}
    nodes: list[str] = []
    edge_text: list[str] = []
    in_edges = False
    for ln in body:
        if _EDGE_HEADER.match(ln) or (nodes and _EDGE.search(ln) and not _NODE_LINE.match(ln)):
            in_edges = True
        if in_edges:
            edge_text.append(ln)
            continue
        m = _NODE_LINE.match(ln)
        if m and m.group(2).strip():
            label = int(m.group(1))
            if label not in labels:
                labels[label] = len(nodes)
                nodes.append(m.group(2).strip())
    if not nodes:
        raise ParseError("no numbered nodes found")
    raw_edges = _EDGE.findall("\n".join(edge_text))
    if not raw_edges:
        raise ParseError("no edges found")
    edges: list[tuple[int, int]] = []
    dropped = 0
    for a, b in raw_edges:
        if a.upper() == "START" or b.upper() == "END":
            ok = a.upper() == "START" or int(a) in labels
            ok = ok and (b.upper() == "END" or int(b) in labels)
            dropped += 0 if ok else 1
            continue
        ia, ib = labels.get(int(a)), labels.get(int(b))
        if ia is None or ib is None or ia == ib:
            dropped += 1
            continue
        if (ia, ib) not in edges:
            edges.append((ia, ib))
    return Workflow(nodes=tuple(nodes), edges=tuple(edges), dropped_edges=dropped)


def format_workflow(wf: Workflow) -> str:
    """The ``Node:/Edge:`` text of a workflow (sources hang from START, sinks lead to END)."""
    n = len(wf.nodes)
    lines = ["Node:"] + [f"{i + 1}: {t}" for i, t in enumerate(wf.nodes)]
    has_in = {b for _, b in wf.edges}
    has_out = {a for a, _ in wf.edges}
    pairs = [f"(START,{i + 1})" for i in range(n) if i not in has_in]
    pairs += [f"({a + 1},{b + 1})" for a, b in wf.edges]
    pairs += [f"({i + 1},END)" for i in range(n) if i not in has_out]
    return "\n".join(lines) + "\nEdge: " + " ".join(pairs)


# ----------------------------------------------------------------------------------------- metrics


def _kahn_order(n: int, edges: Iterable[tuple[int, int]]) -> list[int] | None:
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    ready = [i for i in range(n) if indeg[i] == 0]
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
    return order if len(order) == n else None


def topological_sorts(n: int, edges: Sequence[tuple[int, int]], limit: int = MAX_TOPO_SORTS) -> Iterator[list[int]]:
    """Up to ``limit`` topological orders of nodes ``0..n-1`` (lexicographic, by backtracking).
    A cyclic graph yields its Kahn order of the acyclic part followed by the rest in index order."""
    if _kahn_order(n, edges) is None:
        part = _kahn_order_partial(n, edges)
        yield part + [i for i in range(n) if i not in set(part)]
        return
    preds: list[set[int]] = [set() for _ in range(n)]
    for a, b in edges:
        preds[b].add(a)
    count = 0
    order: list[int] = []
    placed = [False] * n

    def rec() -> Iterator[list[int]]:
        nonlocal count
        if len(order) == n:
            count += 1
            yield list(order)
            return
        for i in range(n):
            if not placed[i] and preds[i] <= set(order):
                placed[i] = True
                order.append(i)
                yield from rec()
                order.pop()
                placed[i] = False
                if count >= limit:
                    return

    for o in rec():
        yield o
        if count >= limit:
            return


def _kahn_order_partial(n: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    indeg = [0] * n
    for _, b in edges:
        indeg[b] += 1
    done: list[int] = []
    ready = [i for i in range(n) if indeg[i] == 0]
    while ready:
        i = ready.pop(0)
        done.append(i)
        for a, b in edges:
            if a == i:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    return done


def lis_length(seq: Sequence[int]) -> int:
    """Length of the longest strictly increasing subsequence (O(n log n))."""
    import bisect

    tails: list[int] = []
    for x in seq:
        k = bisect.bisect_left(tails, x)
        if k == len(tails):
            tails.append(x)
        else:
            tails[k] = x
    return len(tails)


def _prf(correct: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = correct / n_pred if n_pred else 0.0
    r = correct / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": p, "recall": r, "f1": f}


def chain_scores(
    pred: Workflow, gold: Workflow, mapping: dict[int, int], *, limit: int = MAX_TOPO_SORTS
) -> dict[str, Any]:
    """f1_chain given a one-to-one ``mapping`` predicted index → gold index (unmatched nodes absent)."""
    best = _prf(0, len(pred.nodes), len(gold.nodes))
    best_lis, n_orders = 0, 0
    matched_seq = [mapping[i] for i in range(len(pred.nodes)) if i in mapping]
    for order in topological_sorts(len(gold.nodes), gold.edges, limit):
        n_orders += 1
        rank = {g: k for k, g in enumerate(order)}
        lis = lis_length([rank[g] for g in matched_seq])
        if lis > best_lis:
            best_lis = lis
            best = _prf(lis, len(pred.nodes), len(gold.nodes))
            if lis == len(matched_seq):
                break
    return {**best, "lis": best_lis, "orders_checked": n_orders}


def graph_scores(pred: Workflow, gold: Workflow, mapping: dict[int, int]) -> dict[str, Any]:
    """f1_graph: the largest connected component of matched nodes joined by edges both graphs share."""
    gold_edges = set(gold.edges)
    shared = [(a, b) for a, b in pred.edges if a in mapping and b in mapping and (mapping[a], mapping[b]) in gold_edges]
    parent = {i: i for i in mapping}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in shared:
        parent[find(a)] = find(b)
    sizes: dict[int, int] = {}
    for i in mapping:
        r = find(i)
        sizes[r] = sizes.get(r, 0) + 1
    lcc = max(sizes.values(), default=0)
    return {**_prf(lcc, len(pred.nodes), len(gold.nodes)), "lcc": lcc, "shared_edges": len(shared)}
