// The tasks page (a gallery filtered and paged through GET /v1/tasks) and a task's own page
// (GET /v1/tasks/{id}, cancelled through POST /v1/tasks/{id}/cancel). Also exports the
// task card the overview shows.

import { api, badge, copyButton, credits, h, showError, when } from "../console.js";

const UNFINISHED = new Set(["queued", "processing"]);
const POLL_MS = 2000;
const KINDS = { "video.generation": "Video", "image.generation": "Image" };

export const isUnfinished = (task) => UNFINISHED.has(task.status);
const output = (task) => task.result?.data?.[0];

function clip(text, limit) {
  const value = String(text ?? "");
  return value.length > limit ? `${value.slice(0, limit - 1)}…` : value;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toLocaleString("en-US", { maximumFractionDigits: 1 })} s`;
}

// What a task costs, as its card says it.
function cost(task) {
  if (task.status === "completed") return `${credits(task.credits_used)} credits`;
  if (isUnfinished(task)) return `${credits(task.credits_reserved)} credits held`;
  return "refunded";
}

// A compact card of a task: its thumbnail (or its state), status, model and prompt, all one
// link to its page.
export function taskCard(task) {
  const first = output(task);
  const picture = first?.thumbnail_url
    ? h("img", {
        class: "thumb",
        src: first.thumbnail_url,
        alt: "",
        width: first.width,
        height: first.height,
        loading: "lazy",
        decoding: "async",
      })
    : h("span", { class: `thumb placeholder ${task.status}`, "aria-hidden": "true" }, task.status === "failed" ? "!" : "");
  const prompt = clip(task.input?.prompt || task.id, 90);
  const card = h(
    "li",
    { class: "task-card", "data-task-id": task.id, "data-status": task.status },
    h(
      "a",
      { href: `/console/tasks/${encodeURIComponent(task.id)}`, class: "task-link" },
      h("span", { class: "thumb-box" }, picture),
      h("span", { class: "task-prompt" }, prompt),
    ),
    h(
      "p",
      { class: "task-meta" },
      badge(task.status),
      h("span", { class: "task-model mono" }, task.model),
      isUnfinished(task) && task.status === "processing" ? h("span", { class: "muted" }, `${task.progress}%`) : null,
    ),
    h(
      "p",
      { class: "task-when muted" },
      h("time", { datetime: new Date(task.created_at * 1000).toISOString() }, when(task.created_at)),
      ` · ${cost(task)}`,
    ),
  );
  return card;
}

// Replace the cards of `list` by those of `tasks`, keeping cards whose task did not change
// (their images are not fetched again) and the keyboard focus.
export function renderCards(list, tasks) {
  const old = new Map([...list.children].map((li) => [li.dataset.taskId, li]));
  const focusedId = document.activeElement?.closest?.(".task-card")?.dataset.taskId;
  const cards = tasks.map((task) => {
    const previous = old.get(task.id);
    const signature = `${task.status}:${task.progress}`;
    if (previous && previous.dataset.signature === signature) return previous;
    const card = taskCard(task);
    card.dataset.signature = signature;
    return card;
  });
  list.replaceChildren(...cards);
  if (focusedId) list.querySelector(`[data-task-id="${CSS.escape(focusedId)}"] a`)?.focus();
}

// -- the list ------------------------------------------------------------------------------

function listPage(root) {
  const form = root.querySelector("#task-filters");
  const fields = {
    status: form.querySelector("#filter-status"),
    model: form.querySelector("#filter-model"),
    type: form.querySelector("#filter-type"),
    limit: form.querySelector("#filter-limit"),
  };
  const alert = root.querySelector("#tasks-error");
  const status = root.querySelector("#tasks-status");
  const list = root.querySelector("#task-list");
  const prev = root.querySelector("#tasks-prev");
  const next = root.querySelector("#tasks-next");
  const pageLabel = root.querySelector("#tasks-page");
  // `after` cursors of the pages before this one: Previous goes back through them.
  let state = { after: null, trail: [] };
  let nextCursor = null;
  let timer = null;
  let loading = 0;

  function filters() {
    const chosen = {};
    for (const [name, field] of Object.entries(fields)) {
      const value = field.value.trim();
      if (value && !(name === "limit" && value === "24")) chosen[name] = value;
    }
    return chosen;
  }

  function address() {
    const params = new URLSearchParams(filters());
    if (state.after) params.set("after", state.after);
    const query = params.toString();
    return query ? `${location.pathname}?${query}` : location.pathname;
  }

  function readAddress(historyState) {
    const params = new URLSearchParams(location.search);
    for (const [name, field] of Object.entries(fields)) {
      const value = params.get(name) ?? (name === "limit" ? "24" : "");
      const known = field.tagName !== "SELECT" || [...field.options].some((o) => o.value === value);
      // Any page size the API takes (1 to 100) may come in the address.
      if (!known && name === "limit" && /^[1-9][0-9]?$|^100$/.test(value)) field.append(h("option", { value }, value));
      else if (!known) continue;
      field.value = value;
    }
    const after = params.get("after");
    state = { after, trail: historyState?.trail ?? (after ? [null] : []) };
  }

  async function load({ quiet = false } = {}) {
    clearTimeout(timer);
    const ticket = ++loading;
    const params = new URLSearchParams(filters());
    if (!params.has("limit")) params.set("limit", "24");
    if (state.after) params.set("after", state.after);
    if (!quiet) list.setAttribute("aria-busy", "true");
    try {
      const page = await api(`/v1/tasks?${params}`);
      if (ticket !== loading) return;
      if (!quiet) showError(alert, null);
      renderCards(list, page.data);
      nextCursor = page.has_more ? page.next_cursor : null;
      const focused = document.activeElement;
      next.disabled = !nextCursor;
      prev.disabled = state.trail.length === 0;
      // A pager button that just turned off hands the keyboard to the other one.
      if (focused === next && next.disabled) prev.focus();
      if (focused === prev && prev.disabled) next.focus();
      const number = state.trail.length + 1;
      pageLabel.textContent = `Page ${number}`;
      const filtered = Object.keys(filters()).some((name) => name !== "limit");
      if (!quiet) {
        status.textContent = page.data.length
          ? `Page ${number}: ${page.data.length} task${page.data.length === 1 ? "" : "s"}${filtered ? " matching the filters" : ""}.`
          : filtered
            ? "No tasks match these filters."
            : "No tasks yet.";
      }
      // Unfinished tasks on the page: look again shortly.
      if (page.data.some(isUnfinished)) timer = setTimeout(() => load({ quiet: true }), POLL_MS);
    } catch (error) {
      if (ticket === loading) showError(alert, error);
    } finally {
      if (ticket === loading) list.removeAttribute("aria-busy");
    }
  }

  function go(after, trail) {
    state = { after, trail };
    history.pushState({ trail }, "", address());
    load();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(null, []);
  });
  form.addEventListener("reset", () => {
    // After the form has reset its fields.
    setTimeout(() => go(null, []), 0);
  });
  next.addEventListener("click", () => {
    if (nextCursor) go(nextCursor, [...state.trail, state.after]);
  });
  prev.addEventListener("click", () => {
    const trail = state.trail.slice(0, -1);
    go(state.trail.at(-1) ?? null, trail);
  });
  window.addEventListener("popstate", (event) => {
    readAddress(event.state);
    load();
  });

  // Model names for the filter's suggestions (the public catalog).
  api("/v1/models")
    .then((models) => {
      root.querySelector("#model-options").replaceChildren(...models.data.map((m) => h("option", { value: m.id }, m.name || m.id)));
    })
    .catch(() => {});

  readAddress(history.state);
  history.replaceState({ trail: state.trail }, "", address());
  load();
}

// -- one task ------------------------------------------------------------------------------

function shown(value) {
  if (value === null || value === undefined || value === "") return "—";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function facts(target, entries) {
  const items = entries.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, shown(value))]);
  target.replaceChildren(...(items.length ? items : [h("dd", { class: "muted empty" }, "None")]));
}

function detailPage(root) {
  const id = root.dataset.taskId;
  const alert = root.querySelector("#task-error");
  const announce = root.querySelector("#task-status-message");
  const cancel = root.querySelector("#cancel-task");
  const canCancel = {
    "video.generation": root.dataset.cancelVideo === "yes",
    "image.generation": root.dataset.cancelImage === "yes",
  };
  const $ = (selector) => root.querySelector(selector);
  let timer = null;
  let shown = null; // what the output section shows (so a poll does not reload the video)

  const copy = document.getElementById("copy-task-id");
  if (copy) {
    const button = copyButton(id, "Copy id");
    button.id = copy.id;
    button.setAttribute("aria-label", "Copy the task id");
    copy.replaceWith(button);
  }

  function render(task) {
    document.title = `Task ${task.id} · framegate`;
    $("#task-status").replaceChildren(badge(task.status));
    $("#task-model").textContent = `${KINDS[task.type] ?? task.type} · ${task.model}`;
    cancel.hidden = !isUnfinished(task) || !canCancel[task.type];

    const progress = $("#task-progress");
    progress.hidden = !isUnfinished(task);
    if (isUnfinished(task)) {
      progress.replaceChildren(
        h(
          "div",
          { class: "progress", role: "progressbar", "aria-label": "Progress", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": task.progress },
          h("span"),
        ),
        h("p", { class: "muted" }, task.status === "queued" ? "Waiting for a worker…" : `${task.progress}% done`),
      );
      // Through the CSSOM: the CSP allows no style attributes in markup.
      progress.querySelector(".progress > span").style.width = `${task.progress}%`;
    }

    renderOutput(task);

    const failure = $("#failure-section");
    failure.hidden = !task.error;
    $("#error-code").textContent = task.error?.code ?? "";
    $("#error-message").textContent = task.error?.message ?? "";

    $("#credits-held").textContent = credits(task.credits_reserved);
    $("#credits-captured").textContent = credits(task.credits_used);
    $("#credits-refunded").textContent = credits(task.credits_refunded);

    $("#time-created").textContent = when(task.created_at);
    $("#time-started").textContent = when(task.started_at);
    $("#time-completed").textContent = when(task.completed_at);
    $("#time-processing").textContent = duration(task.processing_ms);
    $("#time-estimated").textContent = `${credits(task.estimated_seconds)} s`;
    $("#time-expires").textContent = when(task.expires_at);

    $("#task-type").textContent = KINDS[task.type] ?? task.type;
    $("#model-asked").textContent = task.model;
    $("#served-by").textContent = task.served_by ?? "—";
    $("#attempts").textContent = credits(task.attempts);

    facts($("#task-params"), Object.entries(task.input ?? {}).sort(([a], [b]) => a.localeCompare(b)));
    facts($("#task-metadata"), Object.entries(task.metadata ?? {}));
  }

  function renderOutput(task) {
    const section = $("#output-section");
    const outputs = task.result?.data ?? [];
    section.hidden = outputs.length === 0;
    const signature = outputs.map((o) => o.url.split("?")[0]).join(" ");
    if (signature === shown) return;
    shown = signature;
    const items = outputs.map((item, index) => {
      const isVideo = item.content_type.startsWith("video/");
      const name = outputs.length > 1 ? `${isVideo ? "Video" : "Image"} ${index + 1} of ${outputs.length}` : isVideo ? "The video" : "The image";
      const media = isVideo
        ? h("video", {
            controls: true,
            preload: "metadata",
            playsinline: true,
            src: item.url,
            poster: item.thumbnail_url,
            width: item.width,
            height: item.height,
            "aria-label": `${name} of task ${task.id}`,
          })
        : h("img", { src: item.url, alt: `${name} made for: ${clip(task.input?.prompt, 200)}`, width: item.width, height: item.height, class: "output-image" });
      const details = [`${item.width}×${item.height}`];
      if (item.duration) details.push(`${item.duration} s`);
      if (item.fps) details.push(`${item.fps} fps`);
      if (item.num_frames) details.push(`${item.num_frames} frames`);
      return h(
        "figure",
        { class: "output-item" },
        media,
        h(
          "figcaption",
          {},
          h("span", { class: "muted" }, `${item.content_type} · ${details.join(" · ")}`),
          " ",
          h("a", { href: item.url, download: "", class: "button" }, `Download ${isVideo ? "video" : "image"}`),
        ),
      );
    });
    $("#task-output").replaceChildren(...items);
  }

  async function load() {
    clearTimeout(timer);
    try {
      const task = await api(`/v1/tasks/${encodeURIComponent(id)}`);
      showError(alert, null);
      render(task);
      if (isUnfinished(task)) timer = setTimeout(load, POLL_MS / 2);
      return task;
    } catch (error) {
      showError(alert, error);
      if (error.status === 404) {
        root.querySelectorAll("section").forEach((section) => {
          section.hidden = true;
        });
      } else if (!error.status || error.status >= 500) {
        timer = setTimeout(load, POLL_MS * 2);
      }
    }
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      const task = await api(`/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      showError(alert, null);
      render(task);
      announce.textContent = `The task was cancelled; ${credits(task.credits_refunded)} held credits were released.`;
      $("#task-status").setAttribute("tabindex", "-1");
      $("#task-status").focus();
    } catch (error) {
      showError(alert, error);
      load();
    } finally {
      cancel.disabled = false;
    }
  });

  load();
}

const listRoot = document.getElementById("tasks");
if (listRoot) listPage(listRoot);
const taskRoot = document.getElementById("task");
if (taskRoot) detailPage(taskRoot);
