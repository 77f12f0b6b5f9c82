// Shared by every page: keyboard shortcuts ("/" focuses the page's main box, arrows walk search
// results), `docshelf.fragment` to fetch a piece of a page, and `docshelf.errorText`, which turns
// an API error response into one readable line.
"use strict";

window.docshelf = {
  // Return the HTML of a UI fragment. A UI path answers a signed-out browser with the login form
  // (a redirect fetch follows silently), so go there rather than show it inside this page.
  async fragment(url, init) {
    const response = await fetch(url, init);
    if (response.redirected && new URL(response.url).pathname === "/login") {
      window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      throw new Error("Signed out: log in again.");
    }
    if (!response.ok) throw new Error(await window.docshelf.errorText(response));
    return response.text();
  },

  // API errors are JSON {error, detail}; FastAPI's validation errors put a list in detail.
  async errorText(response) {
    try {
      const body = await response.json();
      const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      const error = body.error || response.statusText;
      return body.detail ? `${error}: ${detail}` : error;
    } catch {
      return `${response.status} ${response.statusText}`;
    }
  },
};

(() => {
  const typing = (el) => el instanceof HTMLElement &&
    (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "/" && !typing(document.activeElement)) {
      const box = document.querySelector("[data-slash-focus]") || document.getElementById("q");
      if (box) {
        event.preventDefault();
        box.focus();
        if (typeof box.select === "function") box.select();
      } else {
        window.location.assign("/");
      }
      return;
    }
    if (event.key === "ArrowDown" || event.key === "ArrowUp") moveInResults(event);
  });

  // Down from the search box enters the results; up from the first result returns to the box.
  function moveInResults(event) {
    const links = Array.from(document.querySelectorAll(".hit-title a"));
    if (!links.length) return;
    const box = document.getElementById("q");
    const at = links.indexOf(document.activeElement);
    if (at === -1 && document.activeElement !== box) return;
    event.preventDefault();
    const next = at + (event.key === "ArrowDown" ? 1 : -1);
    if (next < 0) box.focus();
    else links[Math.min(next, links.length - 1)].focus();
  }
})();
