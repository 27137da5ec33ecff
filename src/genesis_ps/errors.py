"""One error root for the package.

Every error genesis_ps raises on purpose derives from :class:`GenesisError`. Invalid parameters are
also :class:`ValueError` (they are programmer errors and must never be retried); provider failures are
normalised into :class:`ProviderError` subclasses that know whether a retry can help.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CapabilityError",
    "CircuitOpenError",
    "ConfigError",
    "DAGValidationError",
    "EvaluationError",
    "GenesisError",
    "LogprobsUnsupportedError",
    "MalformedResponseError",
    "ModelNotAvailableError",
    "PlanningError",
    "PromptTooLongError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderServerError",
    "ProviderTimeoutError",
    "RateLimitError",
]


class GenesisError(Exception):
    """Root of every error genesis_ps raises deliberately."""


class ConfigError(GenesisError, ValueError):
    """An invalid parameter or setting. ``param`` names it (``alpha``, ``POWER_SAMPLING_ALPHA``, ...)."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(f"{param}: {message}")


class PromptTooLongError(ConfigError):
    """The prompt (plus the requested new tokens) does not fit the model's context."""


class CapabilityError(GenesisError):
    """The model or provider cannot do what was asked (for example, it returns no log-probs)."""


class LogprobsUnsupportedError(CapabilityError):
    """The provider or model refuses to return token log-probabilities."""


class ModelNotAvailableError(GenesisError):
    """A model (such as the embedded default) is not installed; the message says how to install it."""


class ProviderError(GenesisError):
    """A failure reported by (or on the way to) a model provider.

    ``retryable`` says whether the same request may succeed if repeated; ``retry_after`` is the delay in
    seconds the provider asked for, when it asked.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable


class RateLimitError(ProviderError):
    """HTTP 429 or the provider's equivalent."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """The call exceeded its timeout (ours or the server's 408)."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The connection failed or was reset."""

    retryable = True


class ProviderServerError(ProviderError):
    """HTTP 5xx, or 409 conflicts the provider asks to retry."""

    retryable = True


class BadRequestError(ProviderError):
    """HTTP 4xx other than 408/409/429: repeating it cannot help."""

    retryable = False


class AuthenticationError(BadRequestError):
    """HTTP 401/403: missing or rejected credentials. The key itself is never included."""


class MalformedResponseError(ProviderError):
    """The provider answered, but not in the documented shape (bad JSON, missing fields)."""

    retryable = True


class CircuitOpenError(ProviderError):
    """The circuit breaker for this provider and model is open; the call was not attempted. The message
    and ``last_error`` say which failure opened it ("connection refused to 127.0.0.1:8000", "HTTP 503")."""

    retryable = False
    last_error: str | None = None


class BudgetExceededError(GenesisError):
    """A token or request budget was spent before the work could finish."""


class PlanningError(GenesisError):
    """Task decomposition failed (after repair and retries)."""


class DAGValidationError(PlanningError, ValueError):
    """A task graph is structurally invalid: the message lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid task graph")


class EvaluationError(GenesisError):
    """An evaluator failed to produce a score (recorded as a failed evaluation, never as 0)."""
