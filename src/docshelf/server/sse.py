"""Event streams the API sends as server-sent events (and the web UI may reuse): an answer, a crawl job.

An answer (`ask_events`), in order:

- `delta` {text, new_part}: answer text as the model writes it. Append `text` to what is shown, or
  replace it when `new_part` is true. Without a model, the passages answer arrives as one delta.
- `tool_call` {name, args}: the model searched or read a page; text shown so far was the model
  thinking aloud, so a client clears it (as `docshelf ask` does in a terminal).
- `citations` {citations: [{url, title, chunk_number}], unverified_urls}: the validated citations.
- `usage` {usage, model}: requests, tool calls and tokens; `model` is null for the passages answer.
- `done`: the whole answer, the object `docshelf ask --json` prints.
- `error` {error, detail} instead of the last three when the model provider fails.

A crawl job (`job_events`): `progress` with the job's snapshot each time it changes, then `end` with
the final snapshot (status done or failed), after which the stream closes. A browser's EventSource
reconnects to a closed stream, so a client should close it on `end`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from docshelf.answer import Answer, answer_with_passages
from docshelf.jobs import CrawlJobs, Job
from docshelf.server.state import ServerState

JOB_POLL_SECONDS = 0.25
"""How often a job stream looks at the job; progress is a counter, not worth a notification channel."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name and its JSON data."""

    name: str
    data: dict[str, Any]


def job_snapshot(job: Job) -> dict[str, Any]:
    """Return the job as JSON data, with the chunks stored so far, safe to read while the job runs."""
    data = job.to_json()
    # The worker thread adds keys to this dict as pages finish: serialise a copy.
    data["pages_by_status"] = dict(job.pages_by_status)
    data["chunks"] = job.chunks_waiting
    return data


async def job_events(jobs: CrawlJobs, job_id: str) -> AsyncIterator[Event]:
    """Yield a job's progress until it has finished (see the module docstring).

    Raises:
        JobNotFoundError: no such job (raised before the first event).
    """
    last: dict[str, Any] | None = None
    while True:
        job = jobs.get(job_id)
        snapshot = job_snapshot(job)
        if job.finished:
            yield Event("end", snapshot)
            return
        if snapshot != last:
            yield Event("progress", snapshot)
            last = snapshot
        await asyncio.sleep(JOB_POLL_SECONDS)


async def ask_events(
    state: ServerState, question: str, sources: tuple[str, ...], k: int
) -> AsyncIterator[Event]:
    """Yield the answer to `question` as it is written, then its citations and usage (see the module doc).

    Args:
        state: the server (its tools, and its model: None answers with passages).
        question: the user's question.
        sources: sources to answer from (all when empty); the caller has checked they exist.
        k: passages per search for the passages answer (a model picks its own).
    """
    if state.model is None:
        answer = await run_in_threadpool(answer_with_passages, state.tools, question, sources, k)
        yield Event("delta", {"text": answer.answer, "new_part": True})
    else:
        answer = None
        async for item in _agent_events(state, question, sources):
            if isinstance(item, Answer):
                answer = item
            else:
                yield item
        if answer is None:
            return  # the stream ended with an error event
    yield Event(
        "citations",
        {"citations": [c.to_json() for c in answer.citations], "unverified_urls": answer.unverified},
    )
    yield Event("usage", {"usage": answer.usage, "model": answer.model})
    yield Event("done", answer.to_json())


class _QueueSink:
    """The agent's StreamSink, turning text deltas and tool calls into queued events."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def text(self, delta: str, *, new_part: bool) -> None:
        self.queue.put_nowait(Event("delta", {"text": delta, "new_part": new_part}))

    def tool_call(self, name: str, args: dict[str, Any]) -> None:
        self.queue.put_nowait(Event("tool_call", {"name": name, "args": args}))


async def _agent_events(
    state: ServerState, question: str, sources: tuple[str, ...]
) -> AsyncIterator[Event | Answer]:
    """Yield the agent's deltas and tool calls as they happen, then its Answer (or an `error` event)."""
    from pydantic_ai.exceptions import AgentRunError

    from docshelf.agent import AskDeps, run_agent
    from docshelf.llm import describe_model_error, int_setting

    assert state.model is not None
    sink = _QueueSink()
    run = asyncio.ensure_future(
        run_agent(
            question,
            AskDeps(state.tools, sources),
            state.model.model,
            label=state.model.label,
            sink=sink,
            tool_calls_limit=int_setting("DOCSHELF_ASK_TOOL_CALLS"),
        )
    )
    run.add_done_callback(lambda _: sink.queue.put_nowait(None))
    try:
        while (event := await sink.queue.get()) is not None:
            yield event
        yield run.result().answer
    except AgentRunError as exc:
        yield Event("error", {"error": "model_error", "detail": describe_model_error(exc)})
    except Exception:
        log.exception("ask failed: %r", question)
        yield Event(
            "error", {"error": "server_error", "detail": "the answer failed; the server log has the details"}
        )
    finally:
        run.cancel()  # the client went away: stop spending the model's tokens
