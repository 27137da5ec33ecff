"""Sampling-geometry diagnostics over a local model's hidden states (``genesis-ps geometry run``).

The latent z of a generation is the strided mean of the residual stream at a layer over the generated
tokens. Six experiments measure it while the model samples — at temperatures and under power sampling:
sampling variance by layer and length, distance to an oracle solution, path sensitivity, per-layer logit
attribution at bifurcations, clustering of correct solutions, and the link between path sensitivity and
MH's accepted cuts. See docs/geometry.md. Importing this package does not import torch.
"""

from genesis_ps.geometry.config import STEPS, GeometryConfig
from genesis_ps.geometry.loading import load_config
from genesis_ps.geometry.pipeline import dry_run_config, run_geometry

__all__ = ["STEPS", "GeometryConfig", "dry_run_config", "load_config", "run_geometry"]
