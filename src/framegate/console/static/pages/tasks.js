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

const DAY_MS = 86_400_000;
const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;
const LABELS = { status: "Status", model: "Model", type: "Kind", metadata: "Tag", from: "From", to: "To", limit: "Per page" };

// The page's To is the last UTC day shown; the API's `to` is the first instant left out: the
// start of the next day. A value this cannot read goes as it is, for the API to name.
function dayAfter(day) {
  const next = new Date(Date.parse(`${day}T00:00:00Z`) + DAY_MS);
  if (Number.isNaN(next.getTime())) return day;
  const iso = next.toISOString();
  return ISO_DAY.test(iso.slice(0, 10)) ? iso.slice(0, 10) : iso;
}

// A filter the page itself refuses, named like the API's errors name their parameter.
class FilterError extends Error {
  constructor(message, param) {
    super(message);
    this.param = param;
  }
}

function listPage(root) {
  const form = root.querySelector("#task-filters");
  const fields = {
    status: form.querySelector("#filter-status"),
    model: form.querySelector("#filter-model"),
    type: form.querySelector("#filter-type"),
    metadata: form.querySelector("#filter-metadata"),
    from: form.querySelector("#filter-from"),
    to: form.querySelector("#filter-to"),
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

  // The filters as the address keeps them (To the last day included). A tag's value is
  // matched exactly, so the Tag field is not trimmed; only a blank one is no filter.
  function filters() {
    const chosen = {};
    for (const [name, field] of Object.entries(fields)) {
      const value = name === "metadata" ? field.value : field.value.trim();
      if (value.trim() && !(name === "limit" && value === "24")) chosen[name] = value;
    }
    return chosen;
  }

  // The query of GET /v1/tasks for the filters and the page.
  function query() {
    const params = new URLSearchParams(filters());
    if (params.has("to")) params.set("to", dayAfter(params.get("to")));
    if (!params.has("limit")) params.set("limit", "24");
    if (state.after) params.set("after", state.after);
    return params;
  }

  // What the page can tell about the range before asking: a half-typed date (which reads
  // as empty), a day out of the API's range, or a To before From.
  function checkRange(chosen) {
    for (const name of ["from", "to"]) {
      const { validity, min, max } = fields[name];
      if (validity.badInput) throw new FilterError(`${LABELS[name]}: enter a whole date (day, month and year).`, name);
      if (validity.rangeUnderflow || validity.rangeOverflow) {
        throw new FilterError(`${LABELS[name]}: choose a day from ${min} to ${max}.`, name);
      }
    }
    if (ISO_DAY.test(chosen.from ?? "") && ISO_DAY.test(chosen.to ?? "") && chosen.to < chosen.from) {
      throw new FilterError("To: the last day must not come before From.", "to");
    }
  }

  // Mark the field an error names (or none) as invalid, described by the alert.
  function flag(name) {
    for (const [key, field] of Object.entries(fields)) {
      const described = (field.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => id && id !== alert.id);
      if (key === name) {
        field.setAttribute("aria-invalid", "true");
        described.push(alert.id);
      } else {
        field.removeAttribute("aria-invalid");
      }
      if (described.length) field.setAttribute("aria-describedby", described.join(" "));
      else field.removeAttribute("aria-describedby");
    }
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
      // A date field keeps only a whole date (YYYY-MM-DD); anything else in the address
      // leaves it empty, as an unknown choice leaves a list as it was.
      field.value = value;
    }
    const after = params.get("after");
    state = { after, trail: historyState?.trail ?? (after ? [null] : []) };
  }

  async function load({ quiet = false } = {}) {
    clearTimeout(timer);
    const ticket = ++loading;
    if (!quiet) list.setAttribute("aria-busy", "true");
    try {
      checkRange(filters());
      const page = await api(`/v1/tasks?${query()}`);
      if (ticket !== loading) return;
      if (!quiet) {
        showError(alert, null);
        flag(null);
      }
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
      if (ticket !== loading) return;
      showError(alert, error);
      // A filter refused (by the API's 422 naming it, or by the page): the field says so,
      // and no list stands for filters that were not applied.
      if (!quiet && Object.hasOwn(fields, error.param ?? "")) {
        flag(error.param);
        list.replaceChildren();
        nextCursor = null;
        next.disabled = true;
        prev.disabled = state.trail.length === 0;
        status.textContent = `No tasks shown: correct the ${LABELS[error.param]} filter.`;
      }
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

function facts(target, entries, describe = (name, value) => shown(value)) {
  const items = entries.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, describe(name, value))]);
  target.replaceChildren(...(items.length ? items : [h("dd", { class: "muted empty" }, "None")]));
}

// A metadata tag's value, linked to the tasks list filtered by that tag and value. The
// filter (metadata=tag:value) splits at the first colon, so a tag with a colon in its name
// cannot be asked for: it stays plain text.
function taggedLink(tag, value) {
  if (tag.includes(":") || typeof value !== "string") return shown(value);
  const filter = `${tag}:${value}`;
  return h(
    "a",
    { href: `/console/tasks?${new URLSearchParams({ metadata: filter })}`, class: "tag-link" },
    shown(value),
    h("span", { class: "visually-hidden" }, ` (the tasks tagged ${filter})`),
  );
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
    // Metadata never changes: drawn once, so a poll does not take the focus off its links.
    const metadata = $("#task-metadata");
    if (!metadata.dataset.drawn) {
      facts(metadata, Object.entries(task.metadata ?? {}), taggedLink);
      metadata.dataset.drawn = "yes";
    }
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
