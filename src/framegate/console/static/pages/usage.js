// The usage page: a range and a grouping, the spend plot (SVG drawn by the console's own
// route from the same service as GET /v1/usage), the numbers from GET /v1/usage as a table,
// and the CSV export. Also exports loadChart, which the overview uses for its plot.

import { api, credits, h, showError } from "../console.js";

const DAY_MS = 86_400_000;
const MAX_DAYS = 366;
const TAG = /^[A-Za-z0-9_.:-]{1,64}$/;

// "2026-01-05" of a Date, in UTC (the days of the usage figures are UTC days).
export const isoDay = (date) => date.toISOString().slice(0, 10);
export const addDays = (day, n) => isoDay(new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS));
export const todayUtc = () => isoDay(new Date());

// The query of /v1/usage, the plot and the CSV for inclusive UTC days [first, last].
export function usageQuery(groupBy, first, last) {
  return new URLSearchParams({ group_by: groupBy, from: first, to: addDays(last, 1) });
}

// Draw the spend plot of `query` into `target`, sized to it: the console's route answers
// an SVG document, inlined here so its <title> and <desc> reach assistive technology.
export async function loadChart(target, query, { kind = "bar", ident = "spend" } = {}) {
  const width = Math.max(300, Math.round(target.clientWidth || 960));
  const height = width < 560 ? 240 : 300;
  const params = new URLSearchParams(query);
  params.set("kind", kind);
  params.set("width", String(width));
  params.set("height", String(height));
  params.set("ident", ident);
  target.setAttribute("aria-busy", "true");
  const response = await fetch(`/console/usage/chart.svg?${params}`, {
    credentials: "same-origin",
    headers: { Accept: "image/svg+xml" },
  });
  const type = response.headers.get("content-type") ?? "";
  const text = await response.text();
  if (response.redirected && new URL(response.url).pathname === "/console/sign-in") {
    window.location.assign(`/console/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
    return;
  }
  if (!response.ok || !type.includes("svg")) {
    // The console answers errors as a page; its alert says what went wrong.
    const page = new DOMParser().parseFromString(text, "text/html");
    const message = page.querySelector("[role=alert]")?.textContent?.trim();
    throw new Error(message || `The plot could not be drawn (HTTP ${response.status}).`);
  }
  const svg = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
  if (svg.localName !== "svg") throw new Error("The plot could not be drawn.");
  target.replaceChildren(document.importNode(svg, true));
  target.dataset.width = String(width);
  target.removeAttribute("aria-busy");
}

// Redraw a plot when its box changes width noticeably (a rotated phone, a resized window).
export function redrawOnResize(target, draw) {
  let timer;
  new ResizeObserver(() => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const drawn = Number(target.dataset.width || 0);
      if (drawn && Math.abs(target.clientWidth - drawn) > 40) draw();
    }, 250);
  }).observe(target);
}

const GROUP_HEADINGS = { day: "Day", model: "Model", key: "API key" };
const seconds = (n) => (Number.isInteger(n) ? credits(n) : n.toLocaleString("en-US", { maximumFractionDigits: 1 }));

function usagePage(root) {
  const form = root.querySelector("#usage-form");
  const group = form.querySelector("#usage-group");
  const tag = form.querySelector("#usage-tag");
  const tagField = form.querySelector("#usage-tag-field");
  const from = form.querySelector("#usage-from");
  const to = form.querySelector("#usage-to");
  const kind = form.querySelector("#usage-kind");
  const alert = root.querySelector("#usage-error");
  const chart = root.querySelector("#usage-chart");
  const csv = root.querySelector("#usage-csv");
  const rows = root.querySelector("#usage-rows");
  const total = root.querySelector("#usage-total");
  const caption = root.querySelector("#usage-caption");
  const groupHeading = root.querySelector("#usage-group-heading");

  // The state lives in the address, so a view can be bookmarked, shared and reloaded.
  function readAddress() {
    const params = new URLSearchParams(location.search);
    const today = todayUtc();
    const groupBy = params.get("group_by") ?? "day";
    if (groupBy.startsWith("metadata.")) {
      group.value = "metadata";
      tag.value = groupBy.slice("metadata.".length);
    } else {
      group.value = ["day", "model", "key"].includes(groupBy) ? groupBy : "day";
    }
    to.value = params.get("to") ?? today;
    from.value = params.get("from") ?? addDays(to.value, -29);
    kind.value = params.get("kind") === "line" ? "line" : "bar";
    tagField.hidden = group.value !== "metadata";
  }

  function chosen() {
    if (group.value === "metadata") {
      const name = tag.value.trim();
      if (!TAG.test(name)) {
        tag.setAttribute("aria-invalid", "true");
        throw new Error("Name the metadata tag to group by: 1 to 64 letters, digits or _ . : -");
      }
      tag.removeAttribute("aria-invalid");
      return { groupBy: `metadata.${name}`, label: `Tag '${name}'` };
    }
    return { groupBy: group.value, label: GROUP_HEADINGS[group.value] };
  }

  function range() {
    const first = from.value;
    const last = to.value;
    if (!first || !last) throw new Error("Choose the first and the last day of the range.");
    const days = (Date.parse(last) - Date.parse(first)) / DAY_MS + 1;
    if (days < 1) throw new Error("The last day must not come before the first.");
    if (days > MAX_DAYS) throw new Error(`The range can span at most ${MAX_DAYS} days; it spans ${days}.`);
    return { first, last };
  }

  let drawing = 0;
  async function show() {
    showError(alert, null);
    let choice;
    let span;
    try {
      choice = chosen();
      span = range();
    } catch (error) {
      showError(alert, error);
      return;
    }
    const query = usageQuery(choice.groupBy, span.first, span.last);
    const address = new URLSearchParams({ group_by: choice.groupBy, from: span.first, to: span.last });
    if (kind.value === "line") address.set("kind", "line");
    history.replaceState(null, "", `${location.pathname}?${address}`);
    csv.href = `/console/usage.csv?${query}`;
    const ticket = ++drawing;
    rows.setAttribute("aria-busy", "true");
    try {
      const usage = await api(`/v1/usage?${query}`);
      if (ticket !== drawing) return;
      fillTable(usage, choice.label, span);
      await loadChart(chart, query, { kind: kind.value, ident: "usage" });
    } catch (error) {
      if (ticket === drawing) showError(alert, error);
    } finally {
      rows.removeAttribute("aria-busy");
    }
  }

  function fillTable(usage, label, span) {
    groupHeading.textContent = label;
    caption.textContent = `Completed tasks and credits spent from ${span.first} to ${span.last} (UTC days), by ${label.toLowerCase()}.`;
    const cells = (row) => [
      h("td", { class: "num" }, credits(row.tasks)),
      h("td", { class: "num" }, seconds(row.video_seconds)),
      h("td", { class: "num" }, credits(row.images)),
      h("td", { class: "num" }, credits(row.credits)),
    ];
    rows.replaceChildren(
      ...(usage.data.length
        ? usage.data.map((row) => h("tr", {}, h("th", { scope: "row" }, h("span", { class: "mono" }, row.group)), cells(row)))
        : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No completed tasks in this range."))]),
    );
    total.replaceChildren(h("tr", { class: "total" }, h("th", { scope: "row" }, "Total"), cells(usage.total)));
  }

  group.addEventListener("change", () => {
    tagField.hidden = group.value !== "metadata";
    if (!tagField.hidden) tag.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  for (const preset of form.querySelectorAll("[data-days]")) {
    preset.addEventListener("click", () => {
      to.value = todayUtc();
      from.value = addDays(to.value, 1 - Number(preset.dataset.days));
      show();
    });
  }
  redrawOnResize(chart, () => {
    try {
      const choice = chosen();
      const span = range();
      loadChart(chart, usageQuery(choice.groupBy, span.first, span.last), { kind: kind.value, ident: "usage" }).catch(
        (error) => showError(alert, error),
      );
    } catch {
      // The form is being edited; the next Show draws it.
    }
  });
  readAddress();
  show();
}

const root = document.getElementById("usage");
if (root) usagePage(root);
