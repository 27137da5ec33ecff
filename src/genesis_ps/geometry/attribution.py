"""Per-layer attribution of a logit difference: (W_U[a] − W_U[b])ᵀ N(h_l − h_{l−1}).

The logits are ``W_U · norm(h_L) + bias``, and ``h_L = h_0 + Σ_l (h_l − h_{l−1})``. The final norm is
applied *as the model does* — its own weight, eps and kind (RMSNorm ``w·h/rms``, Gemma's ``(1+w)·h/rms``,
LayerNorm ``w·(h−μ)/σ + b``), recognised by reproducing the module's own output — but with its scale
``1/rms(h_L)`` (or ``1/σ``) frozen at the value the model computed for the full ``h_L``. With the scale
frozen, the norm is linear, so the per-layer terms plus the constant (norm bias and unembedding bias) sum
*exactly* to the model's logit difference; :func:`logit_difference` checks that against the model's own
logits and reports the gap.

What the linear picture leaves out: the frozen scale depends on every layer jointly, so a layer's term is
not what removing that layer would change (removing it changes the scale and, through attention and MLPs,
every later layer's input — only the direct path to the logits is measured); and any nonlinearity after
the unembedding (Gemma 2's final logit soft-capping) is outside it: the terms sum to the *pre-cap*
difference, and the capped one is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Attribution", "FrozenNorm", "frozen_norm", "logit_difference"]


@dataclass(frozen=True)
class FrozenNorm:
    """The final norm at one ``h_L`` with its scale frozen: ``y = gain ⊙ P(x) · scale + bias``."""

    kind: str
    """``rms``, ``rms_1p`` (Gemma: gain 1 + w) or ``layer``."""
    gain: Any
    bias: Any
    scale: float
    centred: bool


def _eps(norm: Any) -> float:
    for name in ("eps", "variance_epsilon", "epsilon"):
        value = getattr(norm, name, None)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, tuple) and value and isinstance(value[0], (int, float)):
            return float(value[0])
    return 1e-5


def frozen_norm(norm: Any, h: Any) -> FrozenNorm:
    """Recognise ``norm``'s kind from its own output at ``h`` (a 1-D residual vector) and freeze its scale.

    Raises :class:`TypeError` for a norm none of the known formulas reproduces."""
    import torch

    h64 = h.detach().double()
    d = h64.shape[-1]
    with torch.no_grad():
        ref = norm(h.detach().view(1, 1, -1)).view(-1).double()
    w = getattr(norm, "weight", None)
    b = getattr(norm, "bias", None)
    w64 = w.detach().double() if w is not None else torch.ones(d, dtype=torch.float64, device=h.device)
    b64 = b.detach().double() if b is not None else torch.zeros(d, dtype=torch.float64, device=h.device)
    eps = _eps(norm)
    zero = torch.zeros(d, dtype=torch.float64, device=h.device)
    rms = float(torch.rsqrt((h64**2).mean() + eps))
    centred = h64 - h64.mean()
    sd = float(torch.rsqrt((centred**2).mean() + eps))
    candidates = [
        FrozenNorm("rms", w64, zero, rms, False),
        FrozenNorm("rms_1p", 1.0 + w64, zero, rms, False),
        FrozenNorm("layer", w64, b64, sd, True),
    ]
    if "rms" not in type(norm).__name__.lower():
        candidates = candidates[2:] + candidates[:2]
    tol = 1e-4 * float(ref.abs().max()) + 1e-6
    for cand in candidates:
        x = centred if cand.centred else h64
        if float((cand.gain * x * cand.scale + cand.bias - ref).abs().max()) <= tol:
            return cand
    raise TypeError(f"unrecognised final norm {type(norm).__name__}: none of RMSNorm, (1+w) RMSNorm, LayerNorm fits")


@dataclass
class Attribution:
    """One logit difference split by layer."""

    top1: int
    top2: int
    names: list[str]
    """``embeddings``, ``block 1`` … ``block L``, ``bias`` (norm + unembedding bias)."""
    contributions: list[float]
    total: float
    """Σ contributions: the decomposed (pre-cap) logit difference."""
    model_diff: float
    """The model's own logit difference (after any soft-capping)."""
    precap_diff: float
    """The model's difference before soft-capping (= model_diff when there is none)."""
    gap: float
    """|total − precap_diff|: how far from exact the decomposition is (float rounding only)."""
    norm_kind: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "top1": self.top1, "top2": self.top2, "norm_kind": self.norm_kind, "total": self.total,
            "model_diff": self.model_diff, "precap_diff": self.precap_diff, "gap": self.gap,
            "contributions": dict(zip(self.names, self.contributions, strict=True)),
        }


def logit_difference(model: Any, residual: Sequence[Any], logits: Any, top1: int, top2: int) -> Attribution:
    """Split ``logit[top1] − logit[top2]`` at one position over the residual stream.

    ``residual``: the ``L + 1`` residual vectors at that position (index 0 the embeddings, ``L`` the input
    of the final norm); ``logits``: the model's own logits there (1-D)."""
    import torch

    from genesis_ps.geometry.access import final_norm, text_config

    fn = frozen_norm(final_norm(model), residual[-1])
    head = model.get_output_embeddings()
    w_u = head.weight.detach().double()
    diff = w_u[top1] - w_u[top2]
    v = diff * fn.gain * fn.scale
    if fn.centred:
        v = v - v.mean()  # dᵀ(g ⊙ (x − mean x)) = (d ⊙ g − mean(d ⊙ g))ᵀ x
    hs = [r.detach().double() for r in residual]
    parts = [float(v @ hs[0])] + [float(v @ (hs[i] - hs[i - 1])) for i in range(1, len(hs))]
    const = float(diff @ fn.bias)
    bias = getattr(head, "bias", None)
    if bias is not None:
        const += float(bias[top1].double() - bias[top2].double())
    names = ["embeddings"] + [f"block {i}" for i in range(1, len(hs))] + ["bias"]
    contributions = [*parts, const]
    total = float(torch.tensor(contributions, dtype=torch.float64).sum())
    lg = logits.detach().double()
    model_diff = float(lg[top1] - lg[top2])
    cap = getattr(text_config(model), "final_logit_softcapping", None)
    if cap:
        pre = [float(cap * torch.atanh((lg[t] / cap).clamp(-1 + 1e-12, 1 - 1e-12))) for t in (top1, top2)]
        precap = pre[0] - pre[1]
    else:
        precap = model_diff
    return Attribution(
        top1=int(top1), top2=int(top2), names=names, contributions=contributions, total=total,
        model_diff=model_diff, precap_diff=precap, gap=abs(total - precap), norm_kind=fn.kind,
    )
