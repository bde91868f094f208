// The models page: the catalog from GET /v1/models — prices, capabilities, availability
// (and the likely reason when a route is not available) and health.

import { api, h, showError, credits } from "../console.js";

const list = document.getElementById("model-list");
const count = document.getElementById("model-count");
const errorBox = document.getElementById("model-error");
const filter = document.getElementById("model-filter");

const UNITS = { second: "second", clip: "clip", image: "image" };
const VENDORS = {
  veo: "Google Veo", runway: "Runway", luma: "Luma", pixverse: "PixVerse", kling: "Kling",
  fal: "fal", replicate: "Replicate", framegate: "an upstream framegate",
};
let models = [];

const plural = (n, word) => `${credits(n)} ${word}${n === 1 ? "" : "s"}`;

// GET /v1/models says whether a route is available, not why; this is what it depends on.
function whyUnavailable(model) {
  if (model.engine === "diffusers") {
    return ["Open-weight model: it takes tasks once its weights are on a machine with its GPU (",
      h("code", {}, `framegate models pull ${model.id}`), ")."];
  }
  if (VENDORS[model.engine]) {
    return [`Served by ${VENDORS[model.engine]}: it takes tasks once the operator configures that vendor's API key.`];
  }
  return ["No engine or worker of this installation serves it now."];
}

function health(model) {
  const { state, consecutive_failures: failures, retry_after: retry } = model.health;
  if (state === "closed") {
    return [h("span", { class: "badge closed" }, "healthy"),
      ` breaker closed${failures ? `, ${plural(failures, "recent failure")}` : ""}`];
  }
  if (state === "open") {
    return [h("span", { class: "badge open" }, "failing"),
      ` breaker open: ${plural(failures, "failure")} in a row; tasks go to fallbacks${retry ? `; a trial task in ${retry} s` : ""}`];
  }
  return [h("span", { class: "badge half_open" }, "recovering"), " breaker half open: the next task is a trial"];
}

function range(min, max, unit, fallback) {
  const span = min === max ? `${min}${unit}` : `${min}–${max}${unit}`;
  return `${span}${fallback !== undefined && min !== max ? ` (default ${fallback}${unit})` : ""}`;
}

function capabilities(model) {
  const c = model.capabilities;
  const modes = [];
  if (c.text_to_video) modes.push("text → video");
  if (c.image_to_video) modes.push("image → video");
  if (c.first_last_frame) modes.push(c.last_image_required ? "first + last frame (required)" : "first + last frame");
  if (c.text_to_image) modes.push("text → image");
  const rows = [["Modes", modes.join(", ") || "—"]];
  if (model.kind === "video") {
    rows.push(["Duration", range(c.min_duration, c.max_duration, " s", c.default_duration)]);
    rows.push(["Frame rate", `${range(c.min_fps, c.max_fps, " fps", c.default_fps)}${c.max_frames ? `, at most ${c.max_frames} frames` : ""}`]);
  } else {
    rows.push(["Images per request", `up to ${c.max_images}`]);
  }
  rows.push(["Sizes", c.sizes?.length
    ? c.sizes.join(", ")
    : `${c.min_side}–${c.max_side} px a side, up to ${(c.max_pixels / 1e6).toFixed(2)} MP (default ${c.default_size})`]);
  if (model.fallbacks.length) rows.push(["Fallbacks", model.fallbacks.join(", ")]);
  return h("dl", { class: "facts" }, rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function prices(model) {
  const unit = UNITS[model.pricing.unit] ?? model.pricing.unit;
  return h("dl", { class: "prices", "aria-label": `Prices of ${model.name}` },
    Object.entries(model.pricing.credits).flatMap(([tier, amount]) => [
      h("dt", {}, tier), h("dd", {}, `${plural(amount, "credit")} / ${unit}`),
    ]));
}

function card(model) {
  const headingId = `model-${model.id.replace(/[^a-z0-9-]/gi, "-")}`;
  return h("article", { class: `card model${model.available ? "" : " off"}`, "aria-labelledby": headingId, "data-model": model.id },
    h("header", {},
      h("h2", { id: headingId }, model.name),
      h("div", { class: "chips" }, h("code", {}, model.id), ...model.aliases.map((alias) => h("code", { title: "alias" }, alias))),
    ),
    h("p", { class: "tags" },
      h("span", { class: "badge" }, model.kind), " ",
      h("span", { class: "badge" }, model.engine), " ",
      h("span", { class: `badge ${model.available ? "available" : "unavailable"}` }, model.available ? "available" : "not available")),
    model.available ? null : h("p", { class: "why small" }, ...whyUnavailable(model)),
    model.description ? h("p", { class: "muted small description" }, model.description) : null,
    h("h3", {}, "Price"),
    prices(model),
    h("h3", {}, "Capabilities"),
    capabilities(model),
    h("p", { class: "health small" }, h("span", { class: "term" }, "Health: "), ...health(model)),
  );
}

function render() {
  const q = filter.elements.q.value.trim().toLowerCase();
  const kind = filter.elements.kind.value;
  const onlyAvailable = filter.elements.available.checked;
  const shown = models.filter((m) =>
    (!kind || m.kind === kind)
    && (!onlyAvailable || m.available)
    && (!q || [m.id, m.name, m.engine, ...m.aliases].some((text) => text.toLowerCase().includes(q))));
  const available = models.filter((m) => m.available).length;
  count.textContent = `${shown.length} of ${models.length} models shown · ${available} available here`;
  list.replaceChildren(...(shown.length ? shown.map(card) : [h("p", { class: "muted" }, "No model matches.")]));
}

async function load() {
  try {
    const answer = await api("/v1/models");
    // Available routes first, the catalog's order otherwise.
    models = [...answer.data].sort((a, b) => Number(b.available) - Number(a.available));
    showError(errorBox, null);
    render();
  } catch (error) {
    showError(errorBox, error);
    list.replaceChildren();
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

filter.addEventListener("input", render);
filter.addEventListener("submit", (event) => event.preventDefault());
load();
