"""Wilson intervals, paired bootstrap and paired tests on cases worked by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest

from genesis_ps.bench.stats import mean_ci, paired_compare, paired_permutation_p, wilson_interval


def test_wilson_known_values() -> None:
    lo, hi = wilson_interval(15, 100)
    assert lo == pytest.approx(0.0930, abs=5e-4) and hi == pytest.approx(0.2328, abs=5e-4)
    lo0, hi0 = wilson_interval(0, 10)
    assert lo0 == 0.0 and 0.25 < hi0 < 0.35
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_paired_compare_detects_a_consistent_improvement() -> None:
    a = [0.0] * 20 + [1.0] * 5
    b = [1.0] * 20 + [1.0] * 5
    c = paired_compare(a, b, name_a="std", name_b="mh", metric="acc", seed=1)
    assert c.mean_diff == pytest.approx(0.8)
    assert c.ci_low > 0.5 and c.ci_high <= 1.0
    assert c.p_wilcoxon is not None and c.p_wilcoxon < 0.001
    assert c.p_permutation < 0.001


def test_paired_compare_no_difference() -> None:
    c = paired_compare([0.3, 0.5, 0.7], [0.3, 0.5, 0.7])
    assert c.mean_diff == 0.0 and c.ci_low == 0.0 and c.ci_high == 0.0
    assert c.p_wilcoxon is None and c.p_permutation == 1.0


def test_exact_permutation_small_sample() -> None:
    # diffs (1, 1, 1): of the 8 sign patterns only ±(1,1,1) reach |mean| = 1 -> p = 2/8
    assert paired_permutation_p([1.0, 1.0, 1.0]) == pytest.approx(0.25)


def test_mismatched_lengths_rejected_and_empty_is_nan() -> None:
    with pytest.raises(ValueError):
        paired_compare([1.0], [1.0, 0.0])
    assert math.isnan(paired_compare([], []).mean_diff)
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and 1.0 <= lo <= m <= hi <= 3.0


def test_comparisons_table_and_mean_present() -> None:
    import math

    from genesis_ps.bench.report import comparisons_table, mean_present

    row = {"a": "single", "b": "power-mh", "metric": "f1_chain", "n": 12, "mean_diff": 0.174,
           "ci_low": 0.042, "ci_high": 0.341, "p_wilcoxon": 0.125, "p_permutation": 0.11}  # fmt: skip
    table = comparisons_table([row]).splitlines()
    assert table[0].startswith("| difference | metric | n | mean | bootstrap 95% CI")
    assert "power-mh − single" in table[2] and "[0.042, 0.341]" in table[2] and "0.125" in table[2]
    assert mean_present([1.0, None, 3.0]) == 2.0
    assert math.isnan(mean_present([None]))


def test_machine_info_names_the_cpu_and_its_decode_features(tmp_path: Any, monkeypatch: Any) -> None:
    from genesis_ps.bench import report

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 avx2 fma f16c avx512f\n"
                       "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu\n")  # fmt: skip
    real = report.Path

    def fake(p: Any) -> Any:
        return cpuinfo if str(p) == "/proc/cpuinfo" else real(p)

    monkeypatch.setattr(report, "Path", fake)
    assert report.cpu_model() == ("Test CPU 9000", ["avx2", "fma", "f16c", "avx512f"])
    info = report.machine_info()
    assert info["cpu"] == "Test CPU 9000" and info["cpu_features"] == ["avx2", "fma", "f16c", "avx512f"]
    monkeypatch.setattr(report, "Path", lambda p: tmp_path / "missing")
    assert report.cpu_model() == (None, [])
