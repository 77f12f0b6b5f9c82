"""Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint: OpenAI, Ollama, vLLM, TEI, LM Studio.

Model identity: `model_id` is `openai:<model>` for OpenAI's own embedding
models, whichever server answers (api.openai.com, Azure OpenAI, a LiteLLM or
company gateway: they serve that one model under that name, so a shelf built
with `openai:text-embedding-3-small`, like the origin's, is searchable through
any of them). Any other name is `openai:<model>@<host[:port]>`: off OpenAI a
name says little (TEI ignores the `model` field and serves whatever it
loaded; Ollama and vLLM may serve one name at different quantisations), so a
shelf built against one server refuses vectors from another with a clear
error instead of silently mixing two vector spaces.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from docshelf.embed.tokenizer import count_tokens as _count_wordpiece_tokens
from docshelf.errors import ConfigError, EmbedError

OPENAI_BASE_URL = "https://api.openai.com/v1"

OPENAI_EMBEDDING_MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
                           "text-embedding-ada-002": 1536}
"""Names that denote one fixed model on every OpenAI-compatible server, with their vector size."""

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 60.0
"""Longest wait we honour from a Retry-After header, in seconds."""


class OpenAICompatibleEmbedder:
    """An embedder that posts batches of texts to an OpenAI-compatible `/embeddings` endpoint.

    Vectors come back L2-normalised float32, whatever the server returns.
    `count_tokens` is an estimate: it counts the bundled WordPiece tokens,
    which is close to (not equal to) what a server's own tokenizer counts for
    English prose; it only sizes chunks, the server does the real counting.

    Args:
        model: The model name the server knows, e.g. `text-embedding-3-small`, `nomic-embed-text`.
        base_url: The API root that `/embeddings` hangs off, e.g. `http://localhost:11434/v1`.
        api_key: Sent as a Bearer token when given; local servers usually need none.
        dim: The vector size, if known; otherwise learnt from the first response.
        batch_size: Texts per request.
        max_tokens: Tokens the model reads (8191 for OpenAI's models).
        timeout: Seconds to wait for one response (when docshelf makes the client).
        max_retries: Retries after a 429, a 5xx or a network error, before giving up.
        backoff: First wait between retries, in seconds; it doubles on each retry.
        client: An `httpx.Client` to send requests with; its timeouts apply, and
            `close()` leaves it open.
    """

    def __init__(
        self,
        model: str,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        dim: int | None = None,
        *,
        batch_size: int = 64,
        max_tokens: int = 8191,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        client: httpx.Client | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.model_id = _model_id(model, self.base_url)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff = backoff
        self._dim = dim or OPENAI_EMBEDDING_MODELS.get(model)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0))

    @property
    def url(self) -> str:
        """Return the embeddings endpoint's URL."""
        return f"{self.base_url}/embeddings"

    @property
    def dim(self) -> int:
        """Return the vector size, asking the server once (one probe text) if nobody said it."""
        if self._dim is None:
            self.embed_query("dimension probe")
        assert self._dim is not None
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), one unit vector per text, in input order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = [
            self._embed_batch(list(texts[start : start + self.batch_size]))
            for start in range(0, len(texts), self.batch_size)
        ]
        return np.concatenate(batches)

    def embed_query(self, text: str) -> np.ndarray:
        """Return the unit vector of a search query, shape (dim,)."""
        return self._embed_batch([text])[0]

    def count_tokens(self, text: str) -> int:
        """Return an estimate of the tokens in `text`: its bundled WordPiece token count."""
        return _count_wordpiece_tokens(text)

    def close(self) -> None:
        """Close the HTTP client, unless it was passed in (its owner closes it)."""
        if self._owns_client:
            self._client.close()

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """Return the unit vectors of one request's worth of texts."""
        response = self._post({"model": self.model, "input": texts})
        vectors = _parse_vectors(response, len(texts), self.url)
        if self._dim is None:
            self._dim = vectors.shape[1]
        elif vectors.shape[1] != self._dim:
            raise EmbedError(
                f"{self.url} returned {vectors.shape[1]}-dimensional vectors for {self.model!r}, "
                f"expected {self._dim}"
            )
        return _normalise(vectors)

    def _post(self, payload: dict[str, Any]) -> httpx.Response:
        """Return the first successful response, retrying 429s, 5xxs and network errors with backoff."""
        attempt = 0
        while True:
            try:
                response = self._client.post(self.url, json=payload, headers=self._headers)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise EmbedError(
                        f"could not reach {self.url} after {attempt + 1} attempts: {exc!r}"
                    ) from exc
                delay = self._backoff_delay(attempt)
            else:
                if response.is_success:
                    return response
                if response.status_code not in _RETRY_STATUSES or attempt >= self.max_retries:
                    raise _status_error(response, attempt + 1)
                asked = _retry_after(response)
                delay = self._backoff_delay(attempt) if asked is None else asked
            time.sleep(delay)
            attempt += 1

    def _backoff_delay(self, attempt: int) -> float:
        """Return the wait before retry `attempt + 1`: exponential, with jitter so clients spread out."""
        return self.backoff * 2**attempt * random.uniform(0.5, 1.0)


def _model_id(model: str, base_url: str) -> str:
    """Return `openai:<model>` for OpenAI's models or server, else `openai:<model>@<host[:port]>`."""
    if base_url == OPENAI_BASE_URL or model in OPENAI_EMBEDDING_MODELS:
        return f"openai:{model}"
    return f"openai:{model}@{urlsplit(base_url).netloc}"


def _retry_after(response: httpx.Response) -> float | None:
    """Return the wait a Retry-After header asks for, in seconds (capped), or None if there is none."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def _status_error(response: httpx.Response, attempts: int) -> ConfigError | EmbedError:
    """Return the error for a failed response: ConfigError when the user's settings are at fault."""
    status = response.status_code
    where = f"{response.request.url} answered {status}"
    detail = _error_detail(response)
    if status in (401, 403):
        return ConfigError(f"{where}: the API key was refused; check DOCSHELF_EMBED_API_KEY. {detail}")
    if status == 404:
        return ConfigError(
            f"{where}: check DOCSHELF_EMBED_BASE_URL (the API root, e.g. http://localhost:11434/v1) "
            f"and the model name. {detail}"
        )
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    return EmbedError(f"{where}{tried}. {detail}")


def _error_detail(response: httpx.Response) -> str:
    """Return the server's error message, or the start of its body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "message" in error:
        return str(error["message"])
    return str(error or body)[:300]


def _parse_vectors(response: httpx.Response, expected: int, url: str) -> np.ndarray:
    """Return the response's vectors as a float32 array, in the order of the inputs."""
    try:
        data = response.json()["data"]
        rows = sorted(data, key=lambda item: item["index"])
        vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbedError(f"{url} returned a body that is not an embeddings response: {exc!r}") from exc
    if vectors.ndim != 2 or len(vectors) != expected:
        raise EmbedError(f"{url} returned {len(vectors)} vectors for {expected} texts")
    return vectors


def _normalise(vectors: np.ndarray) -> np.ndarray:
    """Return `vectors` scaled to unit length (a zero vector stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)
