"""Sampler parameters and environment settings are validated at the edge, naming what is wrong."""

from __future__ import annotations

import math
import os

import pytest

from genesis_ps.errors import ConfigError
from genesis_ps.sampling import Budget, SamplerParams, Target
from genesis_ps.settings import LAYER_DEFAULTS, LAYERS, Settings, known_env_names


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "gibbs"),
        ("alpha", 0),
        ("alpha", -2.0),
        ("alpha", math.inf),
        ("alpha", math.nan),
        ("alpha", True),
        ("alpha", "4"),
        ("n_mcmc", 0),
        ("n_mcmc", 2.5),
        ("block_size", 0),
        ("max_new_tokens", 0),
        ("n_particles", 0),
        ("anneal_steps", -1),
        ("proposal_temperature", 0.0),
        ("temperature", -1.0),
        ("temperature", math.inf),
        ("ess_threshold", 0.0),
        ("ess_threshold", 1.5),
        ("selection", "best"),
        ("seed", -1),
        ("seed", 1.5),
        ("seed", True),
    ],
)
def test_every_bad_sampler_value_names_its_parameter(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        SamplerParams(**{field: value})  # type: ignore[arg-type]
    assert e.value.param == field
    assert isinstance(e.value, ValueError)


def test_sampler_defaults_and_tau() -> None:
    p = SamplerParams()
    assert (p.method, p.alpha, p.n_mcmc, p.selection) == ("mh", 4.0, 10, "last")
    assert p.tau == pytest.approx(1 / 3)  # the rule: max(1/alpha, 1/3)
    assert p.with_(alpha=2.0).tau == pytest.approx(0.5)
    assert p.with_(alpha=16.0).tau == pytest.approx(1 / 3)
    assert p.with_(proposal_temperature=0.7).tau == 0.7
    with pytest.raises(ConfigError) as e:
        p.with_(block_size=-3)
    assert e.value.param == "block_size"


@pytest.mark.parametrize(("field", "value"), [("max_tokens", 0), ("max_requests", 0), ("max_tokens", 1.5)])
def test_bad_budget(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        Budget(**{field: value})  # type: ignore[arg-type]
    assert e.value.param == field


def test_target_validation_and_tilt() -> None:
    with pytest.raises(ConfigError) as e:
        Target(0.0)
    assert e.value.param == "alpha"
    with pytest.raises(ConfigError) as e:
        Target(2.0, lam=-1.0)
    assert e.value.param == "lam"
    with pytest.raises(ConfigError) as e:
        Target(2.0, lam=1.0)
    assert e.value.param == "reward"
    t = Target(2.0, reward=lambda s: float(len(s)), lam=0.5)
    assert t.tilted and t.log_density(-3.0, "abcd") == pytest.approx(-6.0 + 2.0)
    assert not Target(2.0, reward=lambda s: 1.0).tilted
    with pytest.raises(ValueError):
        Target(2.0, reward=lambda s: math.nan, lam=1.0).reward_term("x")


def test_defaults_from_an_empty_environment() -> None:
    s = Settings.from_env({})
    assert not s.enabled and s.provider == "embedded"
    for layer in LAYERS:
        ls = s.layer(layer)
        assert not ls.enabled
        for key, value in LAYER_DEFAULTS[layer].items():
            assert getattr(ls.params, key) == value
    assert s.layer("htdag").params.alpha == 2.0 and s.layer("sica").params.n_mcmc == 20


def test_overrides_global_and_per_layer() -> None:
    env = {
        "POWER_SAMPLING_ENABLED": "yes",
        "POWER_SAMPLING_SICA_ENABLED": "1",
        "POWER_SAMPLING_METHOD": "smc",
        "POWER_SAMPLING_SEED": "17",
        "POWER_SAMPLING_N_PARTICLES": "12",
        "POWER_SAMPLING_SICA_ALPHA": "5.5",
        "POWER_SAMPLING_HTDAG_N_MCMC": "3",
        "POWER_SAMPLING_ROLLOUT_PERCENT": "25",
        "POWER_SAMPLING_TIMEOUT_S": "9.5",
        "POWER_SAMPLING_BUDGET_TOKENS": "1000",
        "OTHER_VARIABLE": "ignored",
    }
    s = Settings.from_env(env)
    assert s.enabled and s.sampler.method == "smc" and s.sampler.seed == 17
    sica = s.layer("sica")
    assert sica.enabled and sica.params.alpha == 5.5 and sica.params.n_mcmc == 20
    assert sica.params.method == "smc" and sica.params.n_particles == 12 and sica.params.seed == 17
    htdag = s.layer("htdag")
    assert not htdag.enabled and htdag.params.n_mcmc == 3 and htdag.params.alpha == 2.0
    assert (s.rollout_percent, s.timeout_s, s.budget_tokens) == (25.0, 9.5, 1000)
    assert s.flags()["sica_enabled"] is True and s.flags()["htdag_enabled"] is False


def test_layer_flags_need_the_master_switch() -> None:
    s = Settings.from_env({"POWER_SAMPLING_SE_DARWIN_ENABLED": "true"})
    assert not s.layer("se_darwin").enabled
    with pytest.raises(ConfigError) as e:
        s.layer("planner")
    assert e.value.param == "layer"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POWER_SAMPLING_ENABLED", "maybe"),
        ("POWER_SAMPLING_ALPHA", "four"),
        ("POWER_SAMPLING_ALPHA", "-1"),
        ("POWER_SAMPLING_ALPHA", "inf"),
        ("POWER_SAMPLING_N_MCMC", "2.5"),
        ("POWER_SAMPLING_N_MCMC", "0"),
        ("POWER_SAMPLING_METHOD", "beam"),
        ("POWER_SAMPLING_METHOD", "  "),
        ("POWER_SAMPLING_SEED", "-3"),
        ("POWER_SAMPLING_HTDAG_BLOCK_SIZE", "0"),
        ("POWER_SAMPLING_SICA_METHOD", "beam"),
        ("POWER_SAMPLING_SE_DARWIN_ALPHA", "0"),
        ("POWER_SAMPLING_ROLLOUT_PERCENT", "120"),
        ("POWER_SAMPLING_TIMEOUT_S", "0"),
        ("POWER_SAMPLING_BREAKER_RESET_S", "-1"),
        ("POWER_SAMPLING_MAX_RETRIES", "-1"),
        ("POWER_SAMPLING_BREAKER_FAIL_MAX", "0"),
        ("POWER_SAMPLING_MAX_CONCURRENCY", "0"),
        ("POWER_SAMPLING_BUDGET_TOKENS", "0"),
        ("POWER_SAMPLING_BUDGET_REQUESTS", "x"),
        ("POWER_SAMPLING_PROVIDER", ""),
    ],
)
def test_every_bad_env_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({name: value})
    assert e.value.param == name


@pytest.mark.parametrize("name", ["POWER_SAMPLING_ALPHAA", "POWER_SAMPLING_HTDAG_SEED", "POWER_SAMPLING_FOO"])
def test_unknown_power_sampling_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({name: "1"})
    assert e.value.param == name
    assert name not in known_env_names()


def test_temperature_zero_means_greedy_single_shot() -> None:
    assert SamplerParams(method="single", temperature=0).temperature == 0


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path, monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith("POWER_SAMPLING_"):
            monkeypatch.delenv(name)
    env_file = tmp_path / ".env"
    env_file.write_text("POWER_SAMPLING_ENABLED=true\nPOWER_SAMPLING_ALPHA=6\n# a comment\n", encoding="utf-8")
    monkeypatch.setenv("POWER_SAMPLING_ALPHA", "3")
    s = Settings.from_env(env_file=env_file)
    assert s.enabled and s.sampler.alpha == 3.0
    monkeypatch.chdir(tmp_path)  # the default file is ./.env
    assert Settings.from_env().enabled
    assert not Settings.from_env(env_file=None).enabled


@pytest.mark.parametrize(("line", "name"), [("POWER_SAMPLING_ALPHAA=2", "POWER_SAMPLING_ALPHAA"),
                                             ("POWER_SAMPLING_N_MCMC=zero", "POWER_SAMPLING_N_MCMC")])
def test_dotenv_file_errors_name_the_variable(tmp_path, monkeypatch, line: str, name: str) -> None:
    for var in list(os.environ):
        if var.startswith("POWER_SAMPLING_"):
            monkeypatch.delenv(var)
    env_file = tmp_path / "settings.env"
    env_file.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        Settings.from_env(env_file=env_file)
    assert e.value.param == name
