"""Error translation details, key redaction, and the top-k log q approximation's guarantees."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_ps.errors import ConfigError, MalformedResponseError, ProviderTimeoutError
from genesis_ps.providers.keys import env_key, key_present, redact
from genesis_ps.providers.normalize import normalize_errors, parse_retry_after, translate
from genesis_ps.providers.topk import approx_logq, logsumexp


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_our_timeouts_and_bad_json_are_translated_and_programmer_errors_are_not() -> None:
    assert isinstance(translate(TimeoutError(), "p"), ProviderTimeoutError)
    assert isinstance(translate(json.JSONDecodeError("x", "{", 0), "p"), MalformedResponseError)
    err = ValueError("mine")
    assert translate(err, "p") is err
    with pytest.raises(KeyError), normalize_errors("p"):
        raise KeyError("mine")


def test_redaction_of_registered_and_key_shaped_secrets() -> None:
    key = env_key(["MY_KEY"], {"MY_KEY": "custom-secret-value-42"})
    assert key is not None and "custom-secret" not in repr(key) and "custom-secret" not in str(key)
    text = "key custom-secret-value-42 and sk-proj-abcdef123456 and AIzaSyAbcdefghijklmnop and Bearer tok.en-123456"
    out = redact(text)
    for secret in ("custom-secret-value-42", "sk-proj-abcdef123456", "AIzaSyAbcdefghijklmnop", "tok.en-123456"):
        assert secret not in out
    assert key_present("anthropic", {"ANTHROPIC_API_KEY": "x"}) and not key_present("anthropic", {})


def _exact_logq(logp: np.ndarray, tau: float) -> np.ndarray:
    z = logp / tau
    return z - np.logaddexp.reduce(z)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 12), tau=st.sampled_from([0.25, 0.5, 0.8]))
def test_renorm_and_bound_bracket_the_exact_value(seed: int, k: int, tau: float) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=40)
    logp = logits - np.logaddexp.reduce(logits)
    exact = _exact_logq(logp, tau)
    order = np.argsort(-logp)
    top = order[:k]
    for y in (order[0], order[min(k, 39)], order[-1]):
        in_top = y in top
        hi = approx_logq(float(logp[y]), logp[top].tolist(), tau, sampled_in_top=in_top, mode="renorm")
        lo = approx_logq(float(logp[y]), logp[top].tolist(), tau, sampled_in_top=in_top, mode="bound")
        mid = approx_logq(float(logp[y]), logp[top].tolist(), tau, sampled_in_top=in_top, mode="mid")
        assert lo - 1e-9 <= exact[y] <= hi + 1e-9
        assert lo - 1e-9 <= mid <= hi + 1e-9


def test_full_vocabulary_and_unit_temperature_are_exact() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=10)
    logp = logits - np.logaddexp.reduce(logits)
    exact = _exact_logq(logp, 0.5)
    for mode in ("renorm", "bound", "mid"):
        got = approx_logq(float(logp[3]), logp.tolist(), 0.5, sampled_in_top=True, mode=mode)
        assert got == pytest.approx(exact[3])
    assert approx_logq(-2.5, [-0.1, -3.0], 1.0, sampled_in_top=False) == -2.5


def test_approx_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError) as info:
        approx_logq(-1.0, [-0.5], 0.0, sampled_in_top=False)
    assert info.value.param == "temperature"
    with pytest.raises(ConfigError):
        approx_logq(-1.0, [-0.5], 0.5, sampled_in_top=False, mode="guess")  # type: ignore[arg-type]
    assert logsumexp([]) == -math.inf
