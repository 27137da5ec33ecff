"""GGUF block matrices (Q4_1 / Q8_0) on the embedded model: the kernel's dequantisation against gguf's own
numpy reader, products against fp32 ``x @ W.T`` at every row count and thread count, the proof that
each matched matrix equals the model's weight, the fallbacks when the kernel cannot be built, and the
float64 inverse-CDF token sampler."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

from genesis_ps.providers.local import blockmm  # noqa: E402
from genesis_ps.providers.local.embedded import load_embedded, locate_embedded  # noqa: E402
from genesis_ps.providers.local.engine import sample  # noqa: E402
from genesis_ps.providers.local.model import LocalModel  # noqa: E402
from genesis_ps.sampling.protocol import Prompt  # noqa: E402

needs_kernel = pytest.mark.skipif(blockmm.library() is None, reason=f"block kernel: {blockmm.unavailable_reason()}")


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return load_embedded()


@pytest.fixture(scope="module")
def reader() -> object:
    return gguf.GGUFReader(str(locate_embedded()))


def tensor(reader: object, name: str) -> object:
    return next(t for t in reader.tensors if t.name == name)  # type: ignore[attr-defined]


@needs_kernel
@pytest.mark.parametrize("name", ["blk.0.ffn_down.weight", "blk.7.attn_v.weight", "token_embd.weight"])
def test_kernel_dequantises_exactly_like_the_gguf_reader(reader: object, name: str) -> None:
    t = tensor(reader, name)
    expect = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).copy())  # type: ignore[attr-defined]
    bm = blockmm.BlockMatrix(torch.from_numpy(t.data.copy()), t.tensor_type.name, int(expect.shape[1]))  # type: ignore[attr-defined]
    assert torch.equal(bm.dequantize(), expect)


@needs_kernel
@pytest.mark.parametrize("rows", [1, 2, 7, 8, 9, 33])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_products_match_fp32(reader: object, rows: int, threads: int) -> None:
    for name in ("blk.3.ffn_gate.weight", "blk.3.ffn_down.weight", "token_embd.weight"):
        t = tensor(reader, name)
        k = int(t.shape[0])  # type: ignore[attr-defined]  (GGUF lists dims innermost first)
        bm = blockmm.BlockMatrix(torch.from_numpy(t.data.copy()), t.tensor_type.name, k)  # type: ignore[attr-defined]
        x = torch.randn(rows, k, generator=torch.Generator().manual_seed(rows))
        want = x @ bm.dequantize().T
        got = bm(x, threads)
        assert got.shape == (rows, bm.n)
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-4), (got - want).abs().max()
        assert torch.equal(bm(x.view(1, rows, k), threads), got.view(1, rows, bm.n))  # leading dims kept


@needs_kernel
@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 577])
def test_eight_rows_by_column_pairs_cover_every_column_count(reader: object, n: int) -> None:
    """Eight rows go two output columns at a time; an odd column count ends on the one-column loop."""
    t = tensor(reader, "token_embd.weight")
    k = int(t.shape[0])  # type: ignore[attr-defined]
    bm = blockmm.BlockMatrix(torch.from_numpy(t.data[:n].copy()), t.tensor_type.name, k)  # type: ignore[attr-defined]
    x = torch.randn(8, k, generator=torch.Generator().manual_seed(n))
    want = x @ bm.dequantize().T
    for threads in (1, 2):
        got = bm(x, threads)
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-4), (got - want).abs().max()
        for r in range(8):  # each row's sums run in one order whatever the batch holds beside it
            assert torch.equal(bm(torch.cat([x[r : r + 1], x[:7]]), threads)[0], got[r])


@needs_kernel
@pytest.mark.parametrize("name", ["blk.3.ffn_down.weight", "blk.0.attn_q.weight", "token_embd.weight"])
def test_a_row_gets_the_same_bits_alone_and_in_a_small_batch(reader: object, name: str) -> None:
    """Batches of up to five rows (three without AVX-512VL) sum each row in the one-row order, so a
    sequence decoded beside others (multiple tries, block tries, small SMC) gets the logits it gets alone."""
    t = tensor(reader, name)
    k = int(t.shape[0])  # type: ignore[attr-defined]
    bm = blockmm.BlockMatrix(torch.from_numpy(t.data.copy()), t.tensor_type.name, k)  # type: ignore[attr-defined]
    x = torch.randn(7, k, generator=torch.Generator().manual_seed(7))
    alone = torch.cat([bm(x[r : r + 1]) for r in range(7)])
    top = 5 if "-mavx512vl" in blockmm._flags() else 3
    for rows in range(2, top + 1):
        for threads in (1, 2):
            assert torch.equal(bm(x[:rows], threads), alone[:rows]), rows


@needs_kernel
def test_concurrent_callers_get_their_own_results(reader: object) -> None:
    t = tensor(reader, "blk.5.ffn_up.weight")
    bm = blockmm.BlockMatrix(torch.from_numpy(t.data.copy()), t.tensor_type.name, 576)
    w = bm.dequantize()
    errors: list[float] = []

    def work(seed: int) -> None:
        for i in range(30):
            x = torch.randn(1 + (seed + i) % 5, 576, generator=torch.Generator().manual_seed(seed * 100 + i))
            errors.append(float((bm(x, 2) - x @ w.T).abs().max()))

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(errors) == 120 and max(errors) < 1e-4


@needs_kernel
def test_every_linear_weight_of_the_embedded_model_is_matched_and_equal(model: LocalModel) -> None:
    found, why = blockmm.match_gguf(model.hf_model, locate_embedded())
    assert why is None
    linear = [n for n, m in model.hf_model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert sorted(found) == sorted(linear) and len(linear) == 30 * 7 + 1
    mods = dict(model.hf_model.named_modules())
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.29.self_attn.k_proj", "lm_head"):
        assert torch.equal(found[name].dequantize(), mods[name].weight.detach())  # q/k rows were permuted
    assert model._engine.fast is not None and model._engine.fast.blocks_used == len(linear)
    assert "GGUF blocks of 211 weight matrices" in model.capabilities.notes


@needs_kernel
def test_a_weight_that_differs_is_not_matched(model: LocalModel) -> None:
    w = model.hf_model.model.layers[2].mlp.up_proj.weight
    with torch.no_grad():
        old = float(w[3, 5])
        w[3, 5] = old + 1e-3
        try:
            found, _ = blockmm.match_gguf(model.hf_model, locate_embedded())
        finally:
            w[3, 5] = old
    assert "model.layers.2.mlp.up_proj" not in found
    assert "model.layers.2.mlp.down_proj" in found


async def test_without_the_kernel_the_fp32_path_gives_the_same_tokens(
    model: LocalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blockmm, "_state", {})
    monkeypatch.setenv("GENESIS_PS_BLOCK_KERNELS", "0")
    plain = LocalModel(model.hf_model, model.tokenizer, gguf_weights=locate_embedded())
    assert blockmm.library() is None and "GENESIS_PS_BLOCK_KERNELS" in (blockmm.unavailable_reason() or "")
    assert plain._engine.fast is not None and plain._engine.fast.blocks_used == 0
    assert plain.block_weights_note == blockmm.unavailable_reason()
    assert "GGUF blocks" not in plain.capabilities.notes
    prompt = Prompt.user("Name three colours.")
    a = (await plain.extend(prompt, [()], 12, 0.7, seed=4))[0]
    b = (await model.extend(prompt, [()], 12, 0.7, seed=4))[0]
    assert a.tokens == b.tokens
    assert max(abs(x - y) for x, y in zip(a.logp, b.logp, strict=True)) < 1e-4


def test_a_failed_compile_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr(blockmm, "_state", {})
    monkeypatch.setenv("GENESIS_PS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.delenv("GENESIS_PS_BLOCK_KERNELS", raising=False)
    assert blockmm.library() is None
    why = blockmm.unavailable_reason() or ""
    assert "compil" in why or "CPU" in why or "x86-64" in why
    with pytest.raises(RuntimeError, match="block kernels unavailable"):
        blockmm.BlockMatrix(torch.zeros((1, 20), dtype=torch.uint8), "Q4_1", 32)


def test_block_matrix_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="unsupported block type"):
        blockmm.BlockMatrix(torch.zeros((1, 18), dtype=torch.uint8), "Q4_0", 32)
    with pytest.raises(ValueError, match="do not hold Q4_1 rows"):
        blockmm.BlockMatrix(torch.zeros((1, 21), dtype=torch.uint8), "Q4_1", 32)


def test_sampler_draws_from_exp_logq() -> None:
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0, 0.0])
    logq = probs.log().view(1, -1).repeat(40000, 1)
    logq[:, 4] = -200.0  # far below fp32's smallest normal once exponentiated: mass ~1e-87, never drawn
    toks = sample(logq, torch.Generator().manual_seed(0)).view(-1)
    freq = torch.bincount(toks, minlength=5).double() / toks.numel()
    assert freq[3] == 0 and freq[4] == 0  # zero mass (truncated) is never drawn
    assert torch.allclose(freq[:3], probs[:3].double(), atol=0.01)


def test_sampler_rows_are_independent_and_seeded() -> None:
    logq = torch.log_softmax(torch.randn(6, 1000, generator=torch.Generator().manual_seed(1)) * 4, -1)
    a = sample(logq, torch.Generator().manual_seed(7))
    b = sample(logq, torch.Generator().manual_seed(7))
    assert a.shape == (6, 1) and torch.equal(a, b)
    assert bool((logq.gather(-1, a) > -30).all())  # drawn tokens carry real probability


@needs_kernel
def test_a_forked_child_gets_a_pool_of_its_own(reader: object) -> None:
    import os
    import signal
    import time

    t = tensor(reader, "blk.1.ffn_gate.weight")
    bm = blockmm.BlockMatrix(torch.from_numpy(t.data.copy()), t.tensor_type.name, 576)
    x = torch.randn(3, 576, generator=torch.Generator().manual_seed(0))
    want = bm(x, 2)  # the parent's pool now has a worker; the child inherits none
    pid = os.fork()
    if pid == 0:  # child: the product must finish (not wait forever for the parent's worker) and agree
        ok = torch.equal(bm(x, 2), want)
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's product hung")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_status_says_what_library_would_do_without_building(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("GENESIS_PS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("GENESIS_PS_BLOCK_KERNELS", raising=False)
    before = blockmm.status()
    assert not list(tmp_path.iterdir())  # type: ignore[attr-defined]  (nothing compiled by asking)
    if before["usable"]:
        assert "on first use" in before["detail"]
        monkeypatch.setattr(blockmm, "_state", {})
        assert blockmm.library() is not None
        assert blockmm.status() == {"usable": True, "detail": f"compiled: {blockmm._target()}"}
    monkeypatch.setenv("GENESIS_PS_BLOCK_KERNELS", "off")
    assert blockmm.status() == {"usable": False, "detail": "turned off by GENESIS_PS_BLOCK_KERNELS"}


@needs_kernel
async def test_decoding_from_blocks_runs_torch_on_one_thread_and_restores_it(
    model: LocalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = model._engine.fast
    assert fast is not None and fast.blocks_used
    seen: list[tuple[int, int | None]] = []
    forward = type(fast).__call__

    def spy(self: object, *a: object) -> object:
        seen.append((torch.get_num_threads(), fast.threads))
        return forward(self, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(type(fast), "__call__", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        await model.extend(Prompt.user("Count to three."), [()], 4, 1.0, seed=2)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    assert seen and all(s == (1, 2) for s in seen)  # torch on one thread, the kernel on torch's count


def test_avx512vl_is_built_in_only_where_the_cpu_has_it_and_names_its_own_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("GENESIS_PS_CACHE_DIR", str(tmp_path))
    base = frozenset({"avx2", "fma", "f16c"})
    monkeypatch.setattr(blockmm, "_cpu_flags", lambda: base)
    narrow, narrow_lib = blockmm._flags(), blockmm._target()
    assert "-mavx2" in narrow and "-mavx512vl" not in narrow
    monkeypatch.setattr(blockmm, "_cpu_flags", lambda: base | {"avx512f"})  # F without VL: not enough
    assert blockmm._flags() == narrow
    monkeypatch.setattr(blockmm, "_cpu_flags", lambda: base | {"avx512f", "avx512vl"})
    wide = blockmm._flags()
    assert {"-mavx512f", "-mavx512vl"} <= set(wide) and set(narrow) <= set(wide)
    assert blockmm._target() != narrow_lib  # a cache shared by two CPUs keeps one library for each
