"""A tiny Llama with a character tokenizer, built in memory, for ``--dry-run`` and the tests.

:func:`tiny_lm` makes a randomly initialised two-layer Llama (hidden size 64) over a character vocabulary
(digits, letters, punctuation, space) and, when ``train_steps > 0``, trains it for a few seconds on
arithmetic pairs written as ``"a+b=?{a+b}</s>"`` (it learns the format: digits and EOS follow ``=?``, so
a real-token question carries information about its answer and the full-context baseline beats the random
one) mixed with copies ``"S|S</s>"`` (so the model can reproduce a string its context holds, which a soft
prompt can then use; a randomly initialised tiny model is near-uniform and barely steerable). 800 steps
take ~15 s on two CPU cores. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import string
from typing import Any

__all__ = ["CHARS", "tiny_lm", "tiny_tokenizer"]

CHARS = string.digits + string.ascii_letters + string.punctuation + " "
_SPECIAL = ("<pad>", "<s>", "</s>", "<unk>")


def tiny_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` mapping each character of :data:`CHARS` to one token (EOS ``</s>``)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(_SPECIAL)}
    for ch in CHARS:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def _arith_batch(rng: Any, tok: Any, n: int, torch: Any) -> Any:
    """``n`` rows, half ``"a+b=?{a+b}</s>"`` and half ``"S|S</s>"`` (S a question or a random string),
    right-padded with EOS."""
    rows = []
    for i in range(n):
        a, b = int(rng.integers(0, 100)), int(rng.integers(0, 100))
        if i % 2 == 0:
            text = f"{a}+{b}=?{a + b}"
        else:
            s = f"{a}+{b}=?" if i % 4 == 1 else "".join(rng.choice(list(CHARS[:62]), size=int(rng.integers(2, 9))))
            text = f"{s}|{s}"
        rows.append([*tok.encode(text, add_special_tokens=False), tok.eos_token_id])
    width = max(len(r) for r in rows)
    ids = torch.full((n, width), tok.eos_token_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    return ids


@functools.lru_cache(maxsize=4)
def tiny_lm(*, seed: int = 0, train_steps: int = 0, context: int = 160, hidden: int = 64) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a tiny Llama in eval mode (fp32, CPU), optionally trained on arithmetic.
    Built once per process per arguments (the same objects are returned again)."""
    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=context, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    if train_steps > 0:
        rng = np.random.default_rng(seed)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # matrices this small gain nothing from threads and lose much to contention
        try:
            for _ in range(train_steps):
                ids = _arith_batch(rng, tok, 32, torch)
                loss = model(input_ids=ids, labels=ids, use_cache=False).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            torch.set_num_threads(threads)
        model.zero_grad(set_to_none=True)
    model.eval()  # type: ignore[no-untyped-call]
    return model, tok
