"""WorFBench parsing, loading and the f1_chain / f1_graph metrics against hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genesis_ps.bench.matching import LexicalMatcher, get_matcher, match_nodes
from genesis_ps.bench.worfbench import (
    ParseError,
    Workflow,
    chain_scores,
    format_workflow,
    graph_scores,
    lis_length,
    parse_workflow,
    topological_sorts,
)
from genesis_ps.bench.worfbench_load import load_records
from genesis_ps.errors import ConfigError

DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "worfbench"

GOLD = (
    "Node:\n1: go to the kitchen\n2: take the apple\n3: wash the apple\n4: eat the apple\n"
    "Edge: (START,1) (1,2) (2,3) (3,4) (4,END)"
)


def identity(n: int) -> dict[int, int]:
    return {i: i for i in range(n)}


def test_parse_worfbench_text_form() -> None:
    wf = parse_workflow(GOLD)
    assert wf.nodes == ("go to the kitchen", "take the apple", "wash the apple", "eat the apple")
    assert wf.edges == ((0, 1), (1, 2), (2, 3))
    assert wf.valid


def test_parse_tolerates_dots_and_edges_on_separate_lines() -> None:
    wf = parse_workflow("Node:\n1. a\n2. b\n3. c\nEdges:\n(START,1)\n(START,2)\n(1,3)\n(2,3)\n(3,END)")
    assert wf.nodes == ("a", "b", "c")
    assert set(wf.edges) == {(0, 2), (1, 2)}


def test_parse_counts_dangling_edges_and_detects_cycles() -> None:
    wf = parse_workflow("Node:\n1: a\n2: b\nEdge: (START,1) (1,2) (2,7) (2,1) (2,END)")
    assert wf.dropped_edges == 1
    assert not wf.is_acyclic()
    assert not wf.valid


@pytest.mark.parametrize("text", ["", "I cannot help with that.", "Node:\n1: a\n2: b\n"])
def test_unparseable_text_raises(text: str) -> None:
    with pytest.raises(ParseError):
        parse_workflow(text)


def test_format_round_trips() -> None:
    wf = Workflow(nodes=("a", "b", "c"), edges=((0, 2), (1, 2)))
    assert parse_workflow(format_workflow(wf)) == wf


def test_lis_hand_worked() -> None:
    assert lis_length([3, 1, 2, 5, 4]) == 3  # 1,2,4 (or 1,2,5)
    assert lis_length([2, 2, 2]) == 1  # strictly increasing
    assert lis_length([]) == 0


def test_topological_sorts_of_diamond() -> None:
    orders = list(topological_sorts(4, [(0, 1), (0, 2), (1, 3), (2, 3)]))
    assert orders == [[0, 1, 2, 3], [0, 2, 1, 3]]
    assert len(list(topological_sorts(6, [], limit=7))) == 7  # bounded enumeration


def test_identical_graphs_score_one() -> None:
    g = parse_workflow(GOLD)
    m = identity(4)
    assert chain_scores(g, g, m)["f1"] == 1.0
    assert graph_scores(g, g, m)["f1"] == 1.0


def test_disjoint_graphs_score_zero() -> None:
    g = parse_workflow(GOLD)
    p = parse_workflow("Node:\n1: buy a car\n2: drive home\nEdge: (START,1) (1,2) (2,END)")
    m = match_nodes(LexicalMatcher().similarity(p.nodes, g.nodes), 0.5)
    assert m == {}
    assert chain_scores(p, g, m)["f1"] == 0.0
    assert graph_scores(p, g, m)["f1"] == 0.0


def test_one_edge_removed_scores_strictly_between() -> None:
    g = parse_workflow(GOLD)
    p = Workflow(nodes=g.nodes, edges=((0, 1), (2, 3)))  # (1,2) removed
    f = graph_scores(p, g, identity(4))
    assert f["lcc"] == 2 and 0.0 < f["f1"] < 1.0
    assert f["f1"] == pytest.approx(0.5)


def test_chain_hand_worked_example() -> None:
    # gold chain a<b<c<d<e; predicted order maps to gold positions [2, 0, 1, 4, 3] plus one unmatched node
    gold = Workflow(nodes=tuple("abcde"), edges=((0, 1), (1, 2), (2, 3), (3, 4)))
    pred = Workflow(nodes=tuple("cabedx"), edges=())
    m = {0: 2, 1: 0, 2: 1, 3: 4, 4: 3}
    s = chain_scores(pred, gold, m)
    assert s["lis"] == 3  # a, b, e  (or a, b, d)
    assert s["precision"] == pytest.approx(3 / 6) and s["recall"] == pytest.approx(3 / 5)
    assert s["f1"] == pytest.approx(2 * 0.5 * 0.6 / 1.1)


def test_chain_takes_best_topological_sort() -> None:
    # gold: a -> {b, c} -> d; predicting a, c, b, d is a valid order and must score 1
    gold = Workflow(nodes=tuple("abcd"), edges=((0, 1), (0, 2), (1, 3), (2, 3)))
    pred = Workflow(nodes=tuple("acbd"), edges=((0, 1), (0, 2), (1, 3), (2, 3)))
    m = {0: 0, 1: 2, 2: 1, 3: 3}
    assert chain_scores(pred, gold, m)["f1"] == 1.0
    assert graph_scores(pred, gold, m)["f1"] == 1.0  # every edge maps onto a gold edge


def test_graph_counts_edges_through_the_matching() -> None:
    gold = Workflow(nodes=tuple("abc"), edges=((0, 1), (1, 2)))
    # same graph, nodes listed in another order: predicted indices differ from gold's
    pred = Workflow(nodes=("c", "a", "b"), edges=((1, 2), (2, 0)))
    m = {0: 2, 1: 0, 2: 1}
    assert graph_scores(pred, gold, m)["f1"] == 1.0
    assert chain_scores(pred, gold, m)["lis"] == 2


def test_match_nodes_is_one_to_one_and_thresholded() -> None:
    sim = np.array([[0.9, 0.8], [0.85, 0.2], [0.1, 0.1]])
    assert match_nodes(sim, 0.6) == {0: 1, 1: 0}  # total 1.65 beats 0.9 alone
    assert match_nodes(sim, 0.95) == {}


def test_lexical_matcher_similarity_bounds() -> None:
    s = LexicalMatcher().similarity(["take the apple"], ["take the apple", "drive a truck"])
    assert s[0, 0] == pytest.approx(1.0) and s[0, 1] < 0.3


def test_embedding_matcher_separates_paraphrase_from_unrelated() -> None:
    matcher, note = get_matcher("embedding")
    if note is not None:
        pytest.skip(note)
    s = matcher.similarity(["pick up the apple"], ["take the apple", "deploy the website to production"])
    assert s[0, 0] > matcher.threshold > s[0, 1]


def test_unknown_matcher_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="matcher"):
        get_matcher("bleu")


@pytest.mark.skipif(not DATA.is_dir(), reason="shared WorFBench data not present")
def test_load_real_records_and_unknown_domain() -> None:
    rep = load_records(DATA, ["os"], limit=3)
    assert len(rep.records) == 3 and rep.records[0].domain == "os"
    assert all(r.gold.valid for r in rep.records)
    with pytest.raises(ConfigError, match="domains"):
        load_records(DATA, ["nosuchdomain"])


def test_bad_content_is_skipped_and_bad_shape_names_the_field_and_index(tmp_path: Path) -> None:
    good = {
        "id": "g",
        "conversations": [
            {"from": "system", "value": "s"},
            {"from": "user", "value": "do x"},
            {"from": "assistant", "value": GOLD},
        ],
    }
    no_workflow = {"id": "b3", "conversations": [{"from": "user", "value": "y"}, {"from": "assistant", "value": "no"}]}
    (tmp_path / "dom.json").write_text(json.dumps([good, no_workflow]))
    rep = load_records(tmp_path)
    assert [r.id for r in rep.records] == ["g"]
    assert [(s["id"], s["index"]) for s in rep.skipped] == [("b3", "1")] and "ParseError" in rep.skipped[0]["reason"]
    for bad, message in [
        ({"id": "b1"}, r"dom.json: record 1 \(id 'b1'\): missing field 'conversations'"),
        ("not a record", r"record 1: must be an object"),
        ({"conversations": [{"from": "user", "text": "y"}]}, r"conversations\[0\] is missing field 'content'"),
        ({"conversations": [{"value": "y"}]}, r"record 1: conversations\[0\] is missing field 'role'"),
        ({"conversations": [{"role": "user", "content": "y"}]}, r"record 1: field 'conversations' has no assistant"),
        ({"conversations": "abc"}, r"record 1: field 'conversations' must be a list"),
    ]:
        (tmp_path / "dom.json").write_text(json.dumps([good, bad]))
        with pytest.raises(ConfigError, match=message) as info:
            load_records(tmp_path, limit=1)  # the whole file is checked, past the limit too
        assert info.value.param == "data"
    (tmp_path / "dom.json").write_text(json.dumps({"records": []}))
    with pytest.raises(ConfigError, match="JSON list of records, found a dict"):
        load_records(tmp_path)
