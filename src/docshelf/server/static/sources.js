// The sources page: add a site or folder, refresh or remove a source, and follow each crawl's progress.
//
// Crawls run as jobs on the server; a job's snapshots arrive as server-sent events
// (GET /api/jobs/{id}/events: `progress` on each change, then `end`) and drive its progress bar.
"use strict";

(() => {
  const form = document.getElementById("add-form");
  const addError = document.getElementById("add-error");
  const jobs = document.getElementById("jobs");
  const noJobs = document.getElementById("no-jobs");
  const jobTemplate = document.getElementById("job-template");
  const table = document.getElementById("sources-table");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    addError.hidden = true;
    try {
      const job = await startJob("/api/sources", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(addRequest(data.get("url").trim(), data.get("source").trim())),
      });
      form.reset();
      follow(jobElement(job), job.id);
    } catch (error) {
      addError.textContent = error.message;
      addError.hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  // A pack is added in the request itself (no crawl job): verified, then its source added or replaced.
  const packForm = document.getElementById("pack-form");
  const packResult = document.getElementById("pack-result");
  const packError = document.getElementById("pack-error");
  packForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = packForm.querySelector("button[type=submit]");
    button.disabled = true;
    packError.hidden = true;
    packResult.hidden = true;
    try {
      const response = await fetch("/api/packs", { method: "POST", body: new FormData(packForm) });
      if (!response.ok) throw new Error(await window.docshelf.errorText(response));
      const added = await response.json();
      packResult.textContent = `${added.replaced ? "Replaced" : "Added"} ${added.source}: ${added.pages} pages, ` +
        `${added.chunks} chunks (${added.vectors_used} vectors as packed, ${added.embedded} embedded here).`;
      packResult.hidden = false;
      packForm.reset();
      await reloadTable();
    } catch (error) {
      packError.textContent = error.message;
      packError.hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  // Refresh and remove buttons live in the table, which is replaced after every change.
  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-refresh], button[data-remove]");
    if (!button) return;
    button.disabled = true;
    try {
      if (button.dataset.refresh) {
        const name = button.dataset.refresh;
        const job = await startJob(`/api/sources/${encodeURIComponent(name)}/refresh`, { method: "POST" });
        follow(jobElement(job), job.id);
      } else {
        await removeSource(button.dataset.remove, button.dataset.pages);
      }
    } catch (error) {
      window.alert(error.message);
    } finally {
      button.disabled = false;
    }
  });

  // A website is crawled by URL; anything else is a folder or file on the server's disk.
  function addRequest(root, source) {
    const where = /^https?:\/\//i.test(root) ? { url: root } : { path: root };
    return { ...where, source: source || null };
  }

  // Start a crawl; the API answers at once with the job's first snapshot.
  async function startJob(url, init) {
    const response = await fetch(url, init);
    if (!response.ok) throw new Error(await window.docshelf.errorText(response));
    return response.json();
  }

  async function removeSource(name, pages) {
    if (!window.confirm(`Remove ${name} and its ${pages} pages from the shelf?`)) return;
    const response = await fetch(`/api/sources/${encodeURIComponent(name)}`, { method: "DELETE" });
    if (!response.ok) throw new Error(await window.docshelf.errorText(response));
    await reloadTable();
  }

  function jobElement(job) {
    const existing = jobs.querySelector(`[data-job-id="${CSS.escape(job.id)}"]`);
    if (existing) return existing;
    const element = jobTemplate.content.firstElementChild.cloneNode(true);
    element.dataset.jobId = job.id;
    element.querySelector(".job-kind").textContent = job.kind;
    element.querySelector(".job-source").textContent = job.source;
    element.querySelector(".job-root").textContent = job.root;
    jobs.prepend(element);
    noJobs.hidden = true;
    show(element, job);
    return element;
  }

  function follow(element, id) {
    if (element.dataset.following) return;
    element.dataset.following = "1";
    const events = new EventSource(`/api/jobs/${encodeURIComponent(id)}/events`);
    events.addEventListener("progress", (event) => show(element, JSON.parse(event.data)));
    // The server closes the stream after `end`; closing here stops EventSource from reconnecting.
    events.addEventListener("end", (event) => {
      events.close();
      show(element, JSON.parse(event.data));
      reloadTable().catch((error) => {
        element.querySelector(".job-status").textContent += ` (${error.message})`;
      });
    });
    events.addEventListener("error", () => {
      // EventSource retries on its own; CLOSED means the server refused the stream (unknown job, signed out).
      if (events.readyState === EventSource.CLOSED) {
        element.querySelector(".job-status").textContent = "Lost track of this crawl; reload the page.";
      }
    });
  }

  // How many pages a crawl will find is unknown until it ends, so the bar shows chunks embedded
  // out of chunks stored so far, and is indeterminate until the first page has been stored.
  function show(element, job) {
    const bar = element.querySelector(".job-progress");
    const status = element.querySelector(".job-status");
    element.dataset.status = job.status;
    if (job.status === "done" || job.status === "failed" || job.status === "interrupted") {
      bar.max = 1;
      bar.value = 1;
    } else if (job.chunks > 0) {
      bar.max = job.chunks;
      bar.value = job.embedded;
    } else {
      bar.removeAttribute("value");
    }
    status.textContent = describe(job);
  }

  function describe(job) {
    const counts = Object.entries(job.pages_by_status || {}).map(([s, n]) => `${n} ${s}`).join(", ");
    const progress = `${job.pages_done} pages${counts ? ` (${counts})` : ""}, ` +
      `${job.embedded} of ${job.chunks ?? "?"} chunks embedded`;
    if (job.status === "queued") return "queued: waiting for the crawl before it";
    if (job.status === "running") return `running: ${progress}`;
    if (job.status === "failed") return `failed: ${job.error || "unknown error"}`;
    if (job.status === "interrupted") return `interrupted: ${job.error || "the server stopped during this crawl"}`;
    const s = job.summary;
    if (!s) return `done: ${progress}`;
    return `done: ${s.pages_ok} pages stored, ${s.pages_unchanged} unchanged, ${s.pages_failed} failed, ` +
      `${s.chunks} chunks in ${s.seconds.toFixed(1)} s`;
  }

  async function reloadTable() {
    table.innerHTML = await window.docshelf.fragment("/sources/table");
  }

  jobs.querySelectorAll("[data-job-id]").forEach((element) => follow(element, element.dataset.jobId));
})();
