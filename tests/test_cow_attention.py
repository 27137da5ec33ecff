"""Copy-on-write KV (:class:`~genesis_ps.providers.local.cow.SharedKV`): decode attention by the C kernel
(``cowattn.c``) against the batched torch path and against one plain softmax over each row's whole key
sequence, for groups of unequal prefixes, an empty prefix, tails that outgrow their buffers, rows dropped
mid-run, and any thread count."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from genesis_ps.providers.local import blockmm  # noqa: E402
from genesis_ps.providers.local.cow import SharedKV  # noqa: E402

needs_kernel = pytest.mark.skipif(blockmm.library() is None, reason=f"C kernels: {blockmm.unavailable_reason()}")
HEADS, KV_HEADS, DIM, LAYERS = 6, 2, 32, 2


def cache(lens: tuple[int, ...], group_of: list[int], seed: int, capacity: int = 2,
          dim: int = DIM) -> tuple[SharedKV, list]:  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    prefixes = [[(torch.randn(1, KV_HEADS, n, dim, generator=g), torch.randn(1, KV_HEADS, n, dim, generator=g))
                 for _ in range(LAYERS)] if n else None for n in lens]  # fmt: skip
    return SharedKV(group_of, prefixes, LAYERS, capacity, (KV_HEADS, dim, torch.float32, "cpu")), prefixes


def reference(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: float) -> torch.Tensor:
    """One row, one softmax over all of its keys: q (H, D), keys / values (KVH, T, D)."""
    rep = HEADS // KV_HEADS
    k, v = keys.repeat_interleave(rep, 0), values.repeat_interleave(rep, 0)
    w = torch.softmax((q[:, None, :] * k).sum(-1) * scale, dim=-1)  # (H, T)
    return (w[:, :, None] * v).sum(1)


LAYOUTS = [((9, 4, 0), [0, 0, 1, 2, 1]), ((5,), [0, 0, 0]), ((0,), [0, 0]), ((3, 3), [1, 0])]


@needs_kernel
@pytest.mark.parametrize(("lens", "group_of"), LAYOUTS)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dim", [DIM, 64, 128, 40])  # 64 and 128 keep their sums in registers
def test_kernel_equals_the_batched_path_and_one_softmax(lens: tuple[int, ...], group_of: list[int],
                                                          threads: int, dim: int) -> None:  # fmt: skip
    fast, prefixes = cache(lens, group_of, seed=1, dim=dim)
    slow, _ = cache(lens, group_of, seed=1, dim=dim)
    slow.kernel = None
    assert fast.kernel is not None
    b, scale = len(group_of), 1 / math.sqrt(dim)
    g = torch.Generator().manual_seed(2)
    tails: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in range(LAYERS)]
    for _ in range(5):  # five decode steps: the tails outgrow their capacity of 2
        q = torch.randn(b, HEADS, 1, dim, generator=g)
        k, v = torch.randn(b, KV_HEADS, 1, dim, generator=g), torch.randn(b, KV_HEADS, 1, dim, generator=g)
        for li in range(LAYERS):
            got = fast.attend(li, q, k, v, scale, threads)
            assert torch.allclose(got, slow.attend(li, q, k, v, scale), atol=1e-5)
            tails[li].append((k, v))
            for row in range(b):
                pre = prefixes[group_of[row]]
                pk = [pre[li][0][0]] if pre else []
                pv = [pre[li][1][0]] if pre else []
                keys = torch.cat([*pk, *(t[0][row] for t in tails[li])], dim=1)
                values = torch.cat([*pv, *(t[1][row] for t in tails[li])], dim=1)
                want = reference(q[row, :, 0], keys, values, scale)
                assert torch.allclose(got[row, :, 0], want, atol=1e-5)


@needs_kernel
def test_rows_dropped_mid_run_keep_their_own_keys() -> None:
    fast, _ = cache((6, 2), [0, 1, 0, 1], seed=3)
    slow, _ = cache((6, 2), [0, 1, 0, 1], seed=3)
    slow.kernel = None
    g = torch.Generator().manual_seed(4)
    for step in range(4):
        if step == 2:  # rows 1 and 2 finish: group 1 keeps one row, group 0 one row
            fast.select_rows([0, 3])
            slow.select_rows([0, 3])
        b = len(fast.group_of)
        q = torch.randn(b, HEADS, 1, DIM, generator=g)
        k, v = torch.randn(b, KV_HEADS, 1, DIM, generator=g), torch.randn(b, KV_HEADS, 1, DIM, generator=g)
        for li in range(LAYERS):
            assert torch.allclose(fast.attend(li, q, k, v, 0.2, 2), slow.attend(li, q, k, v, 0.2), atol=1e-5)


@needs_kernel
def test_several_query_positions_take_the_batched_path() -> None:
    """A chunk of s > 1 positions (feeding a row's unstored tokens) is causal within the tail: torch path."""
    fast, _ = cache((4,), [0, 0], seed=5)
    slow, _ = cache((4,), [0, 0], seed=5)
    slow.kernel = None
    g = torch.Generator().manual_seed(6)
    q = torch.randn(2, HEADS, 3, DIM, generator=g)
    k, v = torch.randn(2, KV_HEADS, 3, DIM, generator=g), torch.randn(2, KV_HEADS, 3, DIM, generator=g)
    assert torch.equal(fast.attend(0, q, k, v, 0.2, 2), slow.attend(0, q, k, v, 0.2))


def test_without_the_kernels_every_step_takes_the_batched_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import genesis_ps.providers.local.cow as cow

    monkeypatch.setattr(cow, "library", lambda: None)
    kv, prefixes = cache((3,), [0], seed=7)
    assert kv.kernel is None
    g = torch.Generator().manual_seed(8)
    q = torch.randn(1, HEADS, 1, DIM, generator=g)
    k, v = torch.randn(1, KV_HEADS, 1, DIM, generator=g), torch.randn(1, KV_HEADS, 1, DIM, generator=g)
    got = kv.attend(0, q, k, v, 0.3)
    keys = torch.cat([prefixes[0][0][0][0], k[0]], dim=1)
    values = torch.cat([prefixes[0][0][1][0], v[0]], dim=1)
    assert torch.allclose(got[0, :, 0], reference(q[0, :, 0], keys, values, 0.3), atol=1e-5)


@needs_kernel
def test_a_step_the_kernel_refuses_is_computed_by_the_batched_path() -> None:
    """``cow_attend`` returns non-zero when its scratch memory cannot be had: the step still gets its answer."""
    kv, _ = cache((3,), [0, 0], seed=9)
    ref, _ = cache((3,), [0, 0], seed=9)
    ref.kernel = None

    class Refusing:
        def cow_attend(self, *args: object) -> int:
            return 2

    kv.kernel = Refusing()
    g = torch.Generator().manual_seed(10)
    q = torch.randn(2, HEADS, 1, DIM, generator=g)
    k, v = torch.randn(2, KV_HEADS, 1, DIM, generator=g), torch.randn(2, KV_HEADS, 1, DIM, generator=g)
    assert torch.equal(kv.attend(0, q, k, v, 0.3, 2), ref.attend(0, q, k, v, 0.3))
    assert kv.n == ref.n == 0 and torch.equal(kv.tail_k[0][:, :, :1], k)  # appended once, not twice
