"""The local wing: a transformers causal LM as a token model with exact log-probabilities (CPU or CUDA),
its decode engine, lean Llama forward, KV-cache reuse, GGUF block kernel, and the embedded default model.

Importing this package imports neither torch nor transformers; they load with the first model.
"""

from genesis_ps.providers.local.embedded import EMBEDDED_NAME, load_embedded, locate_embedded
from genesis_ps.providers.local.model import LocalModel, resolve_device

__all__ = ["EMBEDDED_NAME", "LocalModel", "load_embedded", "locate_embedded", "resolve_device"]
