"""The public surface is explicit, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import genesis_ps


def test_exported_names_are_the_intended_ones() -> None:
    assert sorted(genesis_ps.__all__) == sorted(
        [
            "Budget",
            "Capabilities",
            "ConfigError",
            "GenerationResult",
            "GenesisError",
            "Prompt",
            "SamplerParams",
            "Segment",
            "Settings",
            "Target",
            "TokenModel",
            "__version__",
            "generate",
            "power_sample",
            "single_shot",
        ]
    )
    for name in genesis_ps.__all__:
        assert hasattr(genesis_ps, name), name


def test_import_does_not_load_torch_or_provider_sdks() -> None:
    code = (
        "import sys, genesis_ps, genesis_ps.cli, genesis_ps.providers.registry;"
        "heavy = [m for m in ('torch', 'transformers', 'openai', 'anthropic', 'google.genai') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_package_ships_type_marker() -> None:
    from importlib.resources import files

    assert files("genesis_ps").joinpath("py.typed").is_file()
