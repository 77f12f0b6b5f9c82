"""Which chat model answers questions: resolved from --model, DOCSHELF_LLM_MODEL and DOCSHELF_LLM_BASE_URL.

No model configured is a normal state (`resolve_model` returns None and
`ask` answers with passages), never an error. Retries of 429/5xx/timeouts
are the provider SDK's own (the OpenAI, Anthropic and Groq clients back off
exponentially and honour Retry-After); for OpenAI and OpenAI-compatible
servers docshelf builds the client itself so DOCSHELF_LLM_MAX_RETRIES and
DOCSHELF_LLM_TIMEOUT apply.

Pydantic AI is imported inside the functions: `docshelf --help` must not load it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docshelf import config
from docshelf.errors import ConfigError, DocshelfError

if TYPE_CHECKING:
    from pydantic_ai.models import Model


class LLMError(DocshelfError):
    """The model provider failed (after retries) or misbehaved; the message is one line for the user."""


@dataclass(frozen=True)
class ResolvedModel:
    """A chat model ready for the agent, and the name to show for it."""

    model: Model
    label: str


def int_setting(name: str) -> int:
    """Return an integer setting, or raise ConfigError naming the variable."""
    value = config.setting(name)
    try:
        return int(value or "")
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number") from None


def resolve_model(name: str | None = None) -> ResolvedModel | None:
    """Return the configured chat model, or None when none is configured.

    Args:
        name: the --model flag; overrides DOCSHELF_LLM_MODEL.

    Raises:
        ConfigError: the model string is unknown, its package is missing, or its API key is not set.
    """
    name = name or config.setting("DOCSHELF_LLM_MODEL")
    base_url = config.setting("DOCSHELF_LLM_BASE_URL")
    if base_url:
        if not name:
            raise ConfigError("DOCSHELF_LLM_BASE_URL is set but no model: set DOCSHELF_LLM_MODEL (or --model) "
                              "to the model's name on that server, e.g. llama3.1")
        model_name = name.removeprefix("openai:")
        api_key = config.setting("DOCSHELF_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "not-needed"
        return ResolvedModel(_openai_model(model_name, base_url=base_url, api_key=api_key),
                             f"{model_name} @ {base_url}")
    if not name:
        return None
    if name.startswith("openai:"):
        api_key = config.setting("DOCSHELF_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ConfigError(f"--model {name} needs an API key: set OPENAI_API_KEY (or DOCSHELF_LLM_API_KEY)")
        return ResolvedModel(_openai_model(name.removeprefix("openai:"), base_url=None, api_key=api_key), name)
    return ResolvedModel(_inferred_model(name), name)


def _openai_model(model_name: str, *, base_url: str | None, api_key: str) -> Model:
    """Return an OpenAI chat model on a client with docshelf's retry and timeout settings."""
    try:
        from openai import AsyncOpenAI
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider
    except ImportError as exc:
        raise ConfigError(f"the OpenAI client is not installed: pip install 'pydantic-ai-slim[openai]' ({exc})") from exc
    client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=int_setting("DOCSHELF_LLM_MAX_RETRIES"),
                         timeout=float(int_setting("DOCSHELF_LLM_TIMEOUT")))
    return OpenAIChatModel(model_name, provider=OpenAIProvider(openai_client=client))


def _inferred_model(name: str) -> Model:
    """Return the model Pydantic AI builds for a `provider:name` string, with config problems as ConfigError."""
    from pydantic_ai.exceptions import UserError
    from pydantic_ai.models import infer_model

    try:
        return infer_model(name)
    except ImportError as exc:
        provider = name.split(":", 1)[0]
        raise ConfigError(f"--model {name}: the {provider} client is not installed: "
                          f"pip install 'pydantic-ai-slim[{provider}]'") from exc
    except (UserError, ValueError) as exc:
        raise ConfigError(f"--model {name}: {_first_line(str(exc))}") from exc


def describe_model_error(exc: BaseException) -> str:
    """Return one line saying what went wrong with the model provider."""
    from pydantic_ai.exceptions import (
        ModelAPIError,
        ModelHTTPError,
        UnexpectedModelBehavior,
        UsageLimitExceeded,
    )

    if isinstance(exc, ModelHTTPError):
        return (f"the model provider answered HTTP {exc.status_code} for {exc.model_name} "
                f"(after retries): {_first_line(_body_message(exc.body) or str(exc))}")
    if isinstance(exc, ModelAPIError):
        return f"the model provider failed for {exc.model_name}: {_first_line(str(exc))}"
    if isinstance(exc, UsageLimitExceeded):
        return f"the model used up its budget before answering ({_first_line(str(exc))}); raise DOCSHELF_ASK_TOOL_CALLS"
    if isinstance(exc, UnexpectedModelBehavior):
        return f"the model misbehaved: {_first_line(str(exc))}"
    return f"the model run failed: {_first_line(str(exc)) or type(exc).__name__}"


def _body_message(body: object) -> str | None:
    """Return the `error.message` of an OpenAI-style error body, when there is one."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return None


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
