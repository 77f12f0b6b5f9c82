// The ask chat: POST /api/ask, show the answer text as it streams, then swap in the rendered answer.
//
// The stream is server-sent events over a POST, which EventSource cannot send, so it is read with
// fetch and parsed here. Streamed text is only ever set as textContent; the finished answer is
// rendered and sanitised by the server (POST /ask/render) before it becomes HTML.
"use strict";

(() => {
  const form = document.getElementById("ask-form");
  const question = document.getElementById("question");
  const source = document.getElementById("ask-source");
  const conversation = document.getElementById("conversation");
  const template = document.getElementById("turn-template");
  const button = form.querySelector("button[type=submit]");

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (text && !button.disabled) ask(text, source.value ? [source.value] : []);  // one answer at a time
  });

  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  async function ask(text, sources) {
    const turn = template.content.firstElementChild.cloneNode(true);
    turn.querySelector(".question").textContent = text;
    conversation.append(turn);
    const view = answerView(turn.querySelector(".answer"));
    button.disabled = true;
    question.value = "";
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ question: text, sources }),
      });
      if (!response.ok) throw new Error(await window.docshelf.errorText(response));
      await readEvents(response.body, view.event);
      if (!view.finished) view.fail("The answer stopped before it was finished.");
    } catch (error) {
      view.fail(error.message || String(error));
    } finally {
      button.disabled = false;
      question.focus();
    }
  }

  // One answer being written: raw text while streaming, rendered HTML once done.
  function answerView(element) {
    const status = element.querySelector(".status");
    const streaming = element.querySelector(".streaming");
    const state = { text: "", citations: [], finished: false };
    const view = {
      get finished() { return state.finished; },
      // Events of POST /api/ask: delta, tool_call, citations, usage, then done (or error).
      event(name, data) {
        if (name === "delta") {
          // A new part supersedes the text before it (a model thinking aloud before a tool call).
          state.text = data.new_part ? data.text : state.text + data.text;
          streaming.textContent = state.text;
          status.textContent = "Writing…";
        } else if (name === "tool_call") {
          state.text = "";
          streaming.textContent = "";
          status.textContent = toolStatus(data);
        } else if (name === "citations") {
          state.citations = data.citations || [];
        } else if (name === "error") {
          state.finished = true;
          view.fail(data.detail ? `${data.error}: ${data.detail}` : (data.error || "The answer failed."));
        } else if (name === "done") {
          // `done` carries the whole answer: the final word on its text and citations.
          state.finished = true;
          state.text = data.answer ?? state.text;
          state.citations = data.citations ?? state.citations;
          finish();
        }
      },
      fail(message) {
        status.textContent = message;
        status.className = "status error";
        status.setAttribute("role", "alert");
        element.setAttribute("aria-busy", "false");
      },
    };

    async function finish() {
      status.textContent = "Formatting…";
      try {
        const html = await window.docshelf.fragment("/ask/render", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text: state.text, citations: state.citations }),
        });
        // Server-rendered through the sanitiser (render.py); never the raw streamed text.
        element.innerHTML = html;
        element.setAttribute("aria-busy", "false");
      } catch (error) {
        view.fail(`The answer is shown unformatted: ${error.message}`);
      }
    }
    return view;
  }

  function toolStatus(call) {
    const args = call.args || {};
    if (call.name === "search_docs" && args.query) return `Searching for “${args.query}”…`;
    if (call.name === "read_page" && args.url) return `Reading ${args.url}…`;
    return `Using ${call.name}…`;
  }

  // Read a text/event-stream body, calling onEvent(name, parsedData) for each event.
  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const blocks = buffer.split(/\r?\n\r?\n/);
      buffer = blocks.pop();
      blocks.forEach((block) => dispatch(block, onEvent));
    }
    if (buffer.trim()) dispatch(buffer, onEvent);
  }

  function dispatch(block, onEvent) {
    let name = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length && name === "message") return;
    const raw = data.join("\n");
    let parsed = raw;
    try { parsed = raw ? JSON.parse(raw) : {}; } catch { /* plain-text data stays a string */ }
    onEvent(name, parsed);
  }

  if (question.value) question.focus();
})();
