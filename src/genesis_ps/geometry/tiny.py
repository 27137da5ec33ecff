"""A tiny randomly initialised Llama and a byte-level tokenizer, built in memory in well under a second.

``genesis-ps geometry run --dry-run`` and the tests run the whole pipeline on it: nothing is read from
disk or the network. Its numbers mean nothing about language; they exercise every code path.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TINY_CONTEXT", "TINY_LAYERS", "build_tiny"]

TINY_LAYERS = 2
"""Decoder blocks of the tiny model (residual-stream indices 0..2)."""
TINY_CONTEXT = 512
"""Its context length in tokens (one token per byte of text)."""

_EOS = "<|endoftext|>"
_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _byte_tokenizer() -> Any:
    """A byte-level BPE with no merges: 256 byte tokens plus the EOS token (id 256)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab[_EOS] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast: Any = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call, unused-ignore]
        tokenizer_object=tok, eos_token=_EOS, pad_token=_EOS
    )
    fast.chat_template = _TEMPLATE
    return fast


def build_tiny(seed: int = 0, *, device: str = "cpu") -> Any:
    """A :class:`~genesis_ps.providers.local.LocalModel` over a 2-block Llama (hidden size 32) with random
    weights drawn from ``seed``, and the byte tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from genesis_ps.providers.local import LocalModel

    tok = _byte_tokenizer()
    eos = int(tok.convert_tokens_to_ids(_EOS))
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=TINY_LAYERS,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=TINY_CONTEXT,
        eos_token_id=eos, bos_token_id=None, pad_token_id=eos, tie_word_embeddings=False,
    )
    gen = torch.random.fork_rng(devices=[])
    with gen:
        torch.manual_seed(seed)
        model: Any = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = eos
    model.to(device)
    return LocalModel(model, tok, name="tiny-random-llama", provider="tiny", cache_bytes=0)
