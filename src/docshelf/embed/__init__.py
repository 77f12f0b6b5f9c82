"""Text embedders: the bundled local model and any OpenAI-compatible server, chosen by name.

Importing this package is cheap: onnxruntime and httpx load only when an
embedder that needs them is built and used.
"""

from docshelf.embed.base import Embedder
from docshelf.embed.registry import DEFAULT_EMBEDDER, get_embedder

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "get_embedder"]
