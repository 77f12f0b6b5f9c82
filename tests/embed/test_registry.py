"""Choosing an embedder by name."""

from __future__ import annotations

import pytest

from docshelf.embed import DEFAULT_EMBEDDER, get_embedder
from docshelf.embed.local import LocalMiniLM
from docshelf.embed.openai import OpenAICompatibleEmbedder
from docshelf.errors import ConfigError


@pytest.mark.parametrize("name", [None, "local:all-MiniLM-L6-v2", "local", "minilm"])
def test_default_and_aliases_give_the_bundled_model(name: str | None) -> None:
    embedder = get_embedder(name)
    assert isinstance(embedder, LocalMiniLM)
    assert embedder.model_id == DEFAULT_EMBEDDER == "local:all-MiniLM-L6-v2"


def test_options_reach_the_embedder() -> None:
    embedder = get_embedder("local", threads=1, batch_tokens=256)
    assert isinstance(embedder, LocalMiniLM)
    assert (embedder.threads, embedder.batch_tokens) == (1, 256)


def test_openai_name_with_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCSHELF_EMBED_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    embedder = get_embedder("openai:text-embedding-3-small", dim=1536)
    assert isinstance(embedder, OpenAICompatibleEmbedder)
    assert embedder.model_id == "openai:text-embedding-3-small"
    assert embedder.url == "https://api.openai.com/v1/embeddings"
    embedder.close()


def test_explicit_options_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSHELF_EMBED_BASE_URL", "http://127.0.0.1:9/v1")
    embedder = get_embedder("openai:nomic-embed-text", base_url="http://localhost:11434/v1/", dim=768)
    assert isinstance(embedder, OpenAICompatibleEmbedder)
    assert embedder.url == "http://localhost:11434/v1/embeddings"
    assert embedder.model_id == "openai:nomic-embed-text@localhost:11434"
    embedder.close()


@pytest.mark.parametrize("name", ["bert", "local:all-mpnet-base-v2", "openai", "openai:", "cohere:embed-v3"])
def test_unknown_name_lists_the_known_ones(name: str) -> None:
    with pytest.raises(
        ConfigError, match=r"known: local:all-MiniLM-L6-v2 \(aliases: local, minilm\), openai:<model>"
    ):
        get_embedder(name)


def test_unknown_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"bad option for embedder 'local:all-MiniLM-L6-v2'.*colour"):
        get_embedder("local", colour="blue")


@pytest.mark.parametrize(
    ("name", "options"), [("local", {}), ("openai:nomic-embed-text:latest", {"dim": 768})]
)
def test_a_model_id_is_a_name_that_gives_the_embedder_back(
    name: str, options: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCSHELF_EMBED_BASE_URL", "http://localhost:11434/v1")
    model_id = get_embedder(name, **options).model_id
    assert get_embedder(model_id, **options).model_id == model_id


def test_model_id_of_another_server_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSHELF_EMBED_BASE_URL", "http://127.0.0.1:8080/v1")
    with pytest.raises(ConfigError, match=r"served from localhost:11434.*http://localhost:11434/v1"):
        get_embedder("openai:nomic-embed-text@localhost:11434")


def test_openai_without_a_key_fails_at_once_with_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DOCSHELF_EMBED_API_KEY", "OPENAI_API_KEY", "DOCSHELF_EMBED_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="needs an API key.*--mode bm25"):
        get_embedder("openai:text-embedding-3-small")
