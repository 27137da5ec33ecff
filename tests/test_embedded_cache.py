"""The embedded model's converted-weights cache: made once, reused, and equivalent to the GGUF."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from genesis_ps.providers.local import embedded


def test_cache_is_reused_and_holds_plain_weights() -> None:
    gguf = embedded.locate_embedded()
    first = embedded._converted_cache(gguf)
    assert first is not None and (first / "COMPLETE").is_file()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = embedded._converted_cache(gguf)
    assert again == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # not converted twice
    config = json.loads((first / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"


def test_unwritable_cache_dir_warns_and_returns_none(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GENESIS_PS_CACHE_DIR", str(blocker / "sub"))
    with pytest.warns(UserWarning, match="cannot cache"):
        assert embedded._converted_cache(embedded.locate_embedded()) is None
