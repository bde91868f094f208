// The playground page: pick a model, set what its capabilities allow, see the price (a
// debounced POST /v1/estimates), generate, follow the task's SSE stream, play the result,
// and read the same request as curl, Python SDK and OpenAI SDK code. Everything goes
// through framegate's own API with the session (see ../console.js).

import { api, h, copyButton, showError, credits } from "../console.js";

const $ = (id) => document.getElementById(id);
const root = $("playground");
const form = $("pg-form");
const modelSelect = $("pg-model");
const promptField = $("pg-prompt");
const negativeField = $("pg-negative");
const controls = $("pg-controls");
const imageBox = $("pg-images");
const estimateOut = $("pg-estimate");
const generateButton = $("pg-generate");
const cancelButton = $("pg-cancel");
const errorBox = $("pg-error");
const progressWrap = $("pg-progress-wrap");
const progressBar = $("pg-progress");
const progressText = $("pg-progress-text");
const statusLine = $("pg-status");
const resultBox = $("pg-result");
const balanceLine = $("pg-balance");

const BASE_URL = (root.dataset.baseUrl || window.location.origin).replace(/\/+$/, "");
const TIERS = { "480p": 480, "720p": 720, "1080p": 1080 };
const ASPECTS = ["16:9", "9:16", "1:1", "4:3", "3:4"];
const MAX_SEED = 4294967295;
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const ESTIMATE_DELAY_MS = 300;

// Which control an API error's `param` points at, and how the page names it.
const FIELDS = {
  model: ["pg-model", "Model"],
  prompt: ["pg-prompt", "Prompt"],
  negative_prompt: ["pg-negative", "Things to avoid"],
  duration: ["pg-duration", "Duration"],
  num_frames: ["pg-duration", "Duration"],
  size: ["pg-size", "Size"],
  resolution: ["pg-size", "Size"],
  aspect_ratio: ["pg-size", "Size"],
  fps: ["pg-fps", "Frame rate"],
  seed: ["pg-seed", "Seed"],
  n: ["pg-n", "Number of images"],
  input_image: ["pg-first", "First frame"],
  last_image: ["pg-last", "Last frame"],
  camera_fixed: ["pg-camera", "Keep the camera still"],
};

const state = {
  models: [],
  unavailable: 0,
  model: null,
  images: { first: null, last: null }, // {id, name, width, height, preview} once uploaded
  uploading: { first: null, last: null }, // the pending upload's token
  estimateTimer: 0,
  estimateSeq: 0,
  task: null, // {id, source, poll}
  busy: false,
};

// -- models -------------------------------------------------------------------------------

function priceText(model) {
  const { unit, credits: table } = model.pricing;
  const per = { second: "/s", clip: "/clip", image: "/image" }[unit] ?? "";
  return Object.entries(table).map(([tier, n]) => `${credits(n)}${per} at ${tier}`).join(", ");
}

function cheapest(model) {
  const { unit, credits: table } = model.pricing;
  const per = { second: " a second", clip: " a clip", image: " an image" }[unit] ?? "";
  const low = Math.min(...Object.values(table));
  return `from ${credits(low)} credit${low === 1 ? "" : "s"}${per}`;
}

function capabilityList(model) {
  const c = model.capabilities;
  const list = [];
  if (model.kind === "image") {
    list.push("text-to-image", `up to ${c.max_images} images`);
  } else {
    if (c.text_to_video) list.push("text-to-video");
    if (c.image_to_video) list.push("image-to-video");
    if (c.first_last_frame) list.push(c.last_image_required ? "first + last frame (required)" : "first + last frame");
    list.push(c.min_duration === c.max_duration ? `${c.min_duration} s` : `${c.min_duration}–${c.max_duration} s`);
    list.push(c.min_fps === c.max_fps ? `${c.min_fps} fps` : `${c.min_fps}–${c.max_fps} fps`);
  }
  list.push(c.sizes ? `${c.sizes.length} size${c.sizes.length === 1 ? "" : "s"}` : `sides ${c.min_side}–${c.max_side} px`);
  return list;
}

function renderModelInfo(model) {
  const info = $("pg-model-info");
  info.replaceChildren();
  if (!model) return;
  const health = model.health?.state && model.health.state !== "closed"
    ? h("span", { class: `badge ${model.health.state}` }, `upstream ${model.health.state.replace("_", " ")}`)
    : null;
  info.append(
    h("ul", { class: "pg-caps", "aria-label": "Capabilities" },
      capabilityList(model).map((text) => h("li", {}, text))),
    h("p", { class: "pg-price" }, h("span", {}, "Price: "), priceText(model), health ? " " : null, health),
    h("p", {}, h("span", {}, "Model id: "), h("code", {}, model.id),
      model.aliases.length ? ` (also ${model.aliases.join(", ")})` : null),
  );
  if (model.description) info.append(h("p", { class: "pg-desc" }, model.description));
  if (state.unavailable > 0) {
    info.append(h("p", { class: "pg-desc" },
      `${state.unavailable} more model${state.unavailable === 1 ? " is" : "s are"} in the catalog but not available here: see `,
      h("a", { href: "/console/models" }, "Models"), "."));
  }
}

async function loadModels() {
  let list;
  try {
    list = await api("/v1/models");
  } catch (error) {
    modelSelect.replaceChildren(h("option", { value: "" }, "No models"));
    showError(errorBox, error);
    return;
  }
  state.models = list.data.filter((m) => m.available);
  modelSelect.replaceChildren();
  if (!state.models.length) {
    modelSelect.append(h("option", { value: "" }, "No model is available here"));
    estimateOut.textContent = "No model is available on this installation.";
    return;
  }
  for (const [kind, label] of [["video", "Video"], ["image", "Image"]]) {
    const models = state.models.filter((m) => m.kind === kind);
    if (!models.length) continue;
    modelSelect.append(h("optgroup", { label },
      models.map((m) => h("option", { value: m.id }, `${m.name} — ${cheapest(m)}`))));
  }
  state.unavailable = list.data.filter((m) => !m.available && (m.kind === "video" || m.kind === "image")).length;
  const wanted = new URLSearchParams(window.location.search).get("model");
  const chosen = state.models.find((m) => m.id === wanted || m.aliases.includes(wanted ?? ""))
    ?? state.models.find((m) => m.kind === "video") ?? state.models[0];
  modelSelect.value = chosen.id;
  modelSelect.disabled = false;
  generateButton.disabled = false;
  selectModel(chosen.id);
}

function selectModel(id) {
  const model = state.models.find((m) => m.id === id) ?? null;
  state.model = model;
  renderModelInfo(model);
  renderControls(model);
  renderImageInputs(model);
  changed();
}

// -- controls -----------------------------------------------------------------------------

function field(id, label, input, hint) {
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("small", { id: hintId, class: "muted" }, hint) : null);
}

function numberInput(id, name, { min, max, value, placeholder } = {}) {
  return h("input", {
    id, name, type: "number", inputmode: "numeric", step: 1, min, max,
    value: value ?? "", placeholder,
  });
}

function sizeOptions(model) {
  const c = model.capabilities;
  if (c.sizes) return c.sizes.map((size) => ({ value: size, label: sizeLabel(size) }));
  const seen = new Set();
  const options = [];
  const add = (w, h_) => {
    const value = `${w}x${h_}`;
    if (seen.has(value)) return;
    const ok = w % c.size_multiple === 0 && h_ % c.size_multiple === 0
      && Math.min(w, h_) >= c.min_side && Math.max(w, h_) <= c.max_side && w * h_ <= c.max_pixels;
    if (!ok) return;
    seen.add(value);
    options.push({ value, label: sizeLabel(value) });
  };
  const [dw, dh] = c.default_size.split("x").map(Number);
  add(dw, dh);
  for (const side of Object.values(TIERS)) {
    for (const aspect of ASPECTS) {
      const [a, b] = aspect.split(":").map(Number);
      // As the API computes resolution + aspect_ratio: the short side rounded down to the
      // size multiple, the long side to the nearest multiple.
      const short = Math.floor(side / c.size_multiple) * c.size_multiple;
      const long = Math.round((short * Math.max(a, b)) / Math.min(a, b) / c.size_multiple) * c.size_multiple;
      if (a >= b) add(long, short); else add(short, long);
    }
  }
  return options;
}

function sizeLabel(size) {
  const [w, h_] = size.split("x").map(Number);
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  const g = gcd(w, h_);
  let ratio = `${w / g}:${h_ / g}`;
  const near = ASPECTS.find((r) => {
    const [a, b] = r.split(":").map(Number);
    return Math.abs(w / h_ - a / b) < 0.01;
  });
  if (near) ratio = near;
  return `${w}×${h_} (${ratio})`;
}

function renderControls(model) {
  controls.replaceChildren();
  if (!model) return;
  const c = model.capabilities;
  const grid = h("div", { class: "pg-grid" });
  if (model.kind === "video") {
    grid.append(field("pg-duration", "Duration (seconds)",
      numberInput("pg-duration", "duration", { min: c.min_duration, max: c.max_duration, value: c.default_duration }),
      c.min_duration === c.max_duration ? `Fixed at ${c.min_duration} s` : `${c.min_duration} to ${c.max_duration} s`));
  } else {
    grid.append(field("pg-n", "Number of images",
      numberInput("pg-n", "n", { min: 1, max: c.max_images, value: 1 }), `1 to ${c.max_images}`));
  }
  const sizes = sizeOptions(model);
  const sizeSelect = h("select", { id: "pg-size", name: "size" },
    sizes.map((o) => h("option", { value: o.value }, o.label)),
    c.sizes ? null : h("option", { value: "custom" }, "Custom size…"));
  sizeSelect.value = sizes.some((o) => o.value === c.default_size) ? c.default_size : (sizes[0]?.value ?? "custom");
  grid.append(field("pg-size", "Size", sizeSelect,
    c.sizes ? "The sizes this model makes" : `Width × height; sides ${c.min_side}–${c.max_side} px, multiples of ${c.size_multiple}`));
  if (model.kind === "video") {
    grid.append(field("pg-fps", "Frame rate (fps)",
      numberInput("pg-fps", "fps", { min: c.min_fps, max: c.max_fps, value: c.default_fps }),
      c.min_fps === c.max_fps ? `Fixed at ${c.min_fps} fps` : `${c.min_fps} to ${c.max_fps} fps`));
  }
  grid.append(field("pg-seed", "Seed",
    numberInput("pg-seed", "seed", { min: 0, max: MAX_SEED, placeholder: "random" }),
    "Optional: the same seed and settings give the same result"));
  controls.append(grid);
  if (!c.sizes) {
    const [dw, dh] = c.default_size.split("x");
    const custom = h("fieldset", { id: "pg-custom", class: "pg-custom" },
      h("legend", {}, "Custom size"),
      h("div", { class: "pg-grid" },
        field("pg-width", "Width (px)", numberInput("pg-width", "width", {
          min: c.min_side, max: c.max_side, value: dw })),
        field("pg-height", "Height (px)", numberInput("pg-height", "height", {
          min: c.min_side, max: c.max_side, value: dh }))));
    for (const input of custom.querySelectorAll("input")) input.setAttribute("step", c.size_multiple);
    custom.hidden = true;
    controls.append(custom);
  }
}

function renderImageInputs(model) {
  imageBox.replaceChildren();
  state.images = { first: null, last: null };
  state.uploading = { first: null, last: null };
  if (!model || model.kind !== "video" || !model.capabilities.image_to_video) return;
  const c = model.capabilities;
  const box = h("fieldset", { class: "pg-imageset" },
    h("legend", {}, c.text_to_video ? "Image-to-video (optional)" : "Image-to-video"),
    imageInput("first", "First frame", c.text_to_video
      ? "PNG, JPEG or WebP; the clip starts from it"
      : "Required: this model animates an image"));
  if (c.first_last_frame) {
    box.append(imageInput("last", "Last frame", c.last_image_required
      ? "Required with a first frame: the clip ends on it"
      : "Optional, with a first frame: the clip ends on it"));
  }
  box.append(h("label", { class: "pg-check", for: "pg-camera" },
    h("input", { id: "pg-camera", name: "camera_fixed", type: "checkbox" }),
    " Keep the camera still"));
  imageBox.append(box);
}

function imageInput(slot, label, hint) {
  const id = slot === "first" ? "pg-first" : "pg-last";
  const input = h("input", {
    id, name: `${slot}_image`, type: "file", accept: "image/png,image/jpeg,image/webp",
    "aria-describedby": `${id}-hint`,
  });
  input.addEventListener("change", () => upload(slot, input));
  const preview = h("div", { id: `${id}-preview`, class: "pg-upload", "aria-live": "polite" });
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    h("small", { id: `${id}-hint`, class: "muted" }, hint), preview);
}

async function upload(slot, input) {
  const id = slot === "first" ? "pg-first" : "pg-last";
  const preview = $(`${id}-preview`);
  const old = state.images[slot];
  if (old?.preview) URL.revokeObjectURL(old.preview);
  state.images[slot] = null;
  state.uploading[slot] = null;
  preview.replaceChildren();
  const file = input.files?.[0];
  if (!file) { changed(); return; }
  const token = Symbol(slot);
  state.uploading[slot] = token;
  preview.append(h("span", { class: "muted" }, `Uploading ${file.name}…`));
  changed();
  const body = new FormData();
  body.append("file", file);
  body.append("purpose", "input_image");
  try {
    const made = await api("/v1/uploads", { method: "POST", body });
    if (state.uploading[slot] !== token) return; // another file was chosen meanwhile
    const url = URL.createObjectURL(file);
    state.images[slot] = { id: made.id, name: file.name, width: made.width, height: made.height, preview: url };
    const remove = h("button", { type: "button", class: "link" }, `Remove ${slot} frame`);
    remove.addEventListener("click", () => {
      input.value = "";
      upload(slot, input);
      input.focus();
    });
    preview.replaceChildren(
      h("img", { src: url, alt: `${slot === "first" ? "First" : "Last"} frame: ${file.name}`, class: "pg-thumb" }),
      h("span", {}, h("code", {}, made.id), ` · ${made.width}×${made.height} `),
      remove);
    input.removeAttribute("aria-invalid");
  } catch (error) {
    if (state.uploading[slot] !== token) return;
    input.value = "";
    preview.replaceChildren();
    showApiError(error.param === "file" ? Object.assign(error, { param: slot === "first" ? "input_image" : "last_image" }) : error);
  } finally {
    if (state.uploading[slot] === token) {
      state.uploading[slot] = null;
      changed();
    }
  }
}

// -- the request ----------------------------------------------------------------------------

function numberValue(id) {
  const input = $(id);
  if (!input) return undefined;
  const raw = input.value.trim();
  if (raw === "") return input.validity?.badInput ? raw : undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : raw;
}

function sizeValue() {
  const select = $("pg-size");
  if (!select) return undefined;
  if (select.value !== "custom") return select.value;
  const w = $("pg-width").value.trim();
  const h_ = $("pg-height").value.trim();
  return `${w}x${h_}`;
}

// The request body as the API takes it, from the form as it is now.
function request() {
  const model = state.model;
  if (!model) return null;
  const body = { model: model.id, prompt: promptField.value };
  const negative = negativeField.value.trim();
  if (model.kind === "video") {
    body.duration = numberValue("pg-duration");
    body.size = sizeValue();
    body.fps = numberValue("pg-fps");
    if (state.images.first) body.input_image = state.images.first.id;
    if (state.images.last) body.last_image = state.images.last.id;
    if (state.images.first && $("pg-camera")?.checked) body.camera_fixed = true;
  } else {
    body.n = numberValue("pg-n");
    body.size = sizeValue();
  }
  if (negative) body.negative_prompt = negative;
  const seed = numberValue("pg-seed");
  if (seed !== undefined) body.seed = seed;
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  return body;
}

function endpoint(model) {
  return model.kind === "image" ? "/v1/images/generations" : "/v1/async/videos/generations";
}

// -- estimate -------------------------------------------------------------------------------

function scheduleEstimate() {
  clearTimeout(state.estimateTimer);
  if (!state.model) return;
  // A newer form makes every estimate asked before it stale.
  const seq = ++state.estimateSeq;
  estimateOut.dataset.state = "pending";
  estimateOut.setAttribute("aria-busy", "true");
  state.estimateTimer = setTimeout(() => estimate(seq), ESTIMATE_DELAY_MS);
}

async function estimate(seq) {
  const body = request();
  if (!body) return;
  if (state.uploading.first || state.uploading.last) return; // the upload's end asks again
  const asked = { ...body };
  delete asked.prompt;
  let answer;
  try {
    answer = await api("/v1/estimates", { method: "POST", body: asked });
  } catch (error) {
    if (seq !== state.estimateSeq) return;
    estimateOut.dataset.state = "error";
    estimateOut.removeAttribute("aria-busy");
    const [, label] = FIELDS[error.param] ?? [null, error.param];
    estimateOut.replaceChildren(
      h("span", { class: "pg-estimate-error" }, "No price yet"),
      h("span", { class: "muted" }, ` — ${label ? `${label}: ` : ""}${error.message}`));
    return;
  }
  if (seq !== state.estimateSeq) return;
  estimateOut.dataset.state = "ready";
  estimateOut.removeAttribute("aria-busy");
  const parts = [`${answer.width}×${answer.height}`];
  if (answer.kind === "video") parts.push(`${answer.duration} s at ${answer.fps} fps (${answer.num_frames} frames)`);
  else parts.push(`${answer.n} image${answer.n === 1 ? "" : "s"}`);
  parts.push(`about ${answer.estimated_seconds} s to make`);
  estimateOut.replaceChildren(
    h("span", { class: "pg-estimate-main" },
      h("span", { id: "pg-estimate-credits", class: "pg-credits" }, credits(answer.credits)),
      ` credit${answer.credits === 1 ? "" : "s"}`),
    h("span", { class: "muted pg-estimate-detail" }, parts.join(" · ")));
}

async function loadBalance() {
  try {
    const balance = await api("/v1/credits");
    balanceLine.textContent = `Balance: ${credits(balance.available)} credits available` +
      (balance.held ? `, ${credits(balance.held)} held by unfinished tasks` : "");
    balanceLine.hidden = false;
  } catch {
    balanceLine.hidden = true; // a key without credits:read: no balance to show
  }
}

// -- code -----------------------------------------------------------------------------------

const json = (value) => JSON.stringify(value);
const shellQuote = (text) => `'${text.replaceAll("'", "'\\''")}'`;

function curlCode(body) {
  const lines = [];
  const model = state.model;
  if (body.input_image || body.last_image) {
    lines.push(
      "# input_image / last_image: uploads of this account, made like this:",
      `#   curl -s ${BASE_URL}/v1/uploads -H "Authorization: Bearer $FRAMEGATE_API_KEY" \\`,
      "#     -F file=@first-frame.png -F purpose=input_image",
    );
  }
  lines.push(
    `curl -s ${BASE_URL}${endpoint(model)} \\`,
    '  -H "Authorization: Bearer $FRAMEGATE_API_KEY" \\',
    '  -H "Content-Type: application/json" \\',
    `  -d ${shellQuote(JSON.stringify(body, null, 2))}`,
  );
  if (model.kind === "video") {
    lines.push(
      "",
      "# Its progress, live (TASK_ID: the id in the answer); the stream ends when it is done:",
      `curl -N ${BASE_URL}/v1/tasks/TASK_ID/events \\`,
      '  -H "Authorization: Bearer $FRAMEGATE_API_KEY"',
      "# The finished task, with the video's URL in result.data[0].url:",
      `curl -s ${BASE_URL}/v1/tasks/TASK_ID \\`,
      '  -H "Authorization: Bearer $FRAMEGATE_API_KEY"',
    );
  }
  return lines.join("\n");
}

function pythonArgs(pairs) {
  return pairs.filter(([, v]) => v !== undefined).map(([k, v]) => `    ${k}=${json(v)},`);
}

function sdkCode(body) {
  const model = state.model;
  const head = [
    "import os",
    "",
    "from framegate_client import Framegate",
    "",
    "client = Framegate(",
    '    api_key=os.environ["FRAMEGATE_API_KEY"],',
    `    base_url=${json(BASE_URL)},`,
    ")",
  ];
  if (model.kind === "image") {
    return [...head,
      "result = client.images.generate(",
      `    ${json(body.model)},`,
      `    ${json(body.prompt)},`,
      ...pythonArgs([["n", body.n], ["size", body.size], ["negative_prompt", body.negative_prompt], ["seed", body.seed]]),
      ")",
      "# A Task comes back instead when the images take longer than the server waits.",
      "for image in result.data:",
      "    print(image.url)",
    ].join("\n");
  }
  const lines = [...head,
    "task = client.videos.create_and_wait(",
    `    ${json(body.model)},`,
    `    ${json(body.prompt)},`,
    ...pythonArgs([
      ["duration", body.duration], ["size", body.size], ["fps", body.fps],
      ["negative_prompt", body.negative_prompt], ["seed", body.seed],
      ["input_image", body.input_image],
    ]),
  ];
  if (body.camera_fixed) lines.push("    camera_fixed=True,");
  lines.push(")");
  if (body.last_image) {
    lines.push(`# last_image (${body.last_image}) is not an argument of videos.create: send it with curl.`);
  }
  lines.push("print(task.status, task.credits_used)", 'task.save("video.mp4")');
  return lines.join("\n");
}

function openaiCode(body) {
  const model = state.model;
  const head = [
    "import os",
    "",
    "from openai import OpenAI",
    "",
    "client = OpenAI(",
    `    base_url=${json(`${BASE_URL}/v1`)},`,
    '    api_key=os.environ["FRAMEGATE_API_KEY"],',
    ")",
  ];
  if (model.kind === "image") {
    const extra = {};
    if (body.negative_prompt !== undefined) extra.negative_prompt = body.negative_prompt;
    if (body.seed !== undefined) extra.seed = body.seed;
    return [...head,
      "result = client.images.generate(",
      ...pythonArgs([["model", body.model], ["prompt", body.prompt], ["n", body.n], ["size", body.size]]),
      Object.keys(extra).length ? `    extra_body=${json(extra)},` : null,
      ")",
      "for image in result.data:",
      "    print(image.url)",
    ].filter((line) => line !== null).join("\n");
  }
  const lines = [...head,
    "video = client.videos.create_and_poll(",
    ...pythonArgs([
      ["model", body.model], ["prompt", body.prompt],
      ["seconds", body.duration === undefined ? undefined : String(body.duration)],
      ["size", body.size],
    ]),
  ];
  if (body.input_image) lines.push(`    input_reference={"file_id": ${json(body.input_image)}},`);
  lines.push(
    ")",
    "print(video.status, video.progress)",
    'client.videos.download_content(video.id).write_to_file("video.mp4")',
  );
  const dropped = ["fps", "negative_prompt", "seed", "last_image", "camera_fixed"]
    .filter((key) => body[key] !== undefined);
  if (dropped.length) {
    lines.push(`# The OpenAI dialect has no ${dropped.join(", ")}: the model's defaults apply there.`);
  }
  return lines.join("\n");
}

const SNIPPETS = [
  { key: "curl", label: "curl", build: curlCode },
  { key: "python", label: "Python SDK", build: sdkCode },
  { key: "openai", label: "OpenAI SDK", build: openaiCode },
];
const code = {};

function renderCodeTabs() {
  const box = $("pg-code");
  const tabs = h("div", { role: "tablist", "aria-label": "Code", class: "pg-tabs" });
  const panels = [];
  SNIPPETS.forEach((snippet, i) => {
    const tab = h("button", {
      type: "button", role: "tab", id: `pg-tab-${snippet.key}`, "aria-controls": `pg-panel-${snippet.key}`,
      "aria-selected": i === 0 ? "true" : "false", tabindex: i === 0 ? "0" : "-1",
    }, snippet.label);
    tab.addEventListener("click", () => selectTab(snippet.key));
    tabs.append(tab);
    const panel = h("div", {
      role: "tabpanel", id: `pg-panel-${snippet.key}`, "aria-labelledby": `pg-tab-${snippet.key}`,
      class: "pg-panel",
    },
    h("pre", { tabindex: "0", "aria-label": `${snippet.label} code` },
      h("code", { id: `pg-code-${snippet.key}`, "data-lang": snippet.key })),
    copyButton(() => code[snippet.key] ?? "", `Copy ${snippet.label}`));
    panel.hidden = i !== 0;
    panels.push(panel);
  });
  tabs.addEventListener("keydown", (event) => {
    const keys = SNIPPETS.map((s) => s.key);
    const current = keys.indexOf(document.activeElement?.id?.replace("pg-tab-", ""));
    if (current < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = (current + 1) % keys.length;
    else if (event.key === "ArrowLeft") next = (current - 1 + keys.length) % keys.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = keys.length - 1;
    if (next === null) return;
    event.preventDefault();
    selectTab(keys[next]);
    $(`pg-tab-${keys[next]}`).focus();
  });
  box.replaceChildren(tabs, ...panels);
}

function selectTab(key) {
  for (const snippet of SNIPPETS) {
    const on = snippet.key === key;
    const tab = $(`pg-tab-${snippet.key}`);
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.setAttribute("tabindex", on ? "0" : "-1");
    $(`pg-panel-${snippet.key}`).hidden = !on;
  }
}

function renderCode() {
  const body = request();
  if (!body) return;
  for (const snippet of SNIPPETS) {
    code[snippet.key] = snippet.build(body);
    $(`pg-code-${snippet.key}`).textContent = code[snippet.key];
  }
}

// -- errors ---------------------------------------------------------------------------------

function clearInvalid() {
  for (const element of form.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
}

// The API's error in the alert, naming the field; the field is marked and focused.
function showApiError(error) {
  clearInvalid();
  showError(errorBox, error);
  const [id, label] = FIELDS[error.param] ?? [null, null];
  const named = label ?? error.param;
  if (named) {
    errorBox.replaceChildren(h("strong", {}, `${named}: `), error.message);
    if (error.param && label === null) errorBox.append(h("span", { class: "muted" }, ` (${error.param})`));
  }
  let target = id ? $(id) : null;
  if (target && id === "pg-size" && target.value === "custom") target = $("pg-width");
  if (target) {
    target.setAttribute("aria-invalid", "true");
    target.focus();
  }
}

// -- running a task -------------------------------------------------------------------------

function setProgress(percent, text) {
  const value = Math.max(0, Math.min(100, Math.round(percent)));
  progressBar.setAttribute("aria-valuenow", String(value));
  progressBar.setAttribute("aria-valuetext", `${value}% — ${text}`);
  progressBar.firstElementChild.style.width = `${value}%`;
  progressText.textContent = `${value}%`;
  // The status line is a live region: it changes with the task's status, not every percent.
  if (statusLine.textContent !== text) statusLine.textContent = text;
}

// While a request runs, Generate is aria-disabled (not disabled, which would drop the
// keyboard focus) and a submission is ignored.
function busy(on) {
  state.busy = on;
  generateButton.setAttribute("aria-disabled", on ? "true" : "false");
  generateButton.setAttribute("aria-busy", on ? "true" : "false");
  cancelButton.hidden = !on || !state.task;
}

function stopFollowing() {
  const task = state.task;
  if (!task) return;
  task.source?.close();
  clearTimeout(task.poll);
  state.task = null;
}

async function generate(event) {
  event.preventDefault();
  const body = request();
  if (!body || generateButton.disabled || state.busy) return;
  if (state.uploading.first || state.uploading.last) {
    showError(errorBox, new Error("Wait for the image upload to finish."));
    return;
  }
  stopFollowing();
  clearInvalid();
  showError(errorBox, null);
  resultBox.hidden = true;
  resultBox.replaceChildren();
  progressWrap.hidden = false;
  delete progressBar.dataset.status;
  setProgress(0, "Submitting…");
  busy(true);
  const model = state.model;
  let answer;
  try {
    answer = await api(endpoint(model), { method: "POST", body });
  } catch (error) {
    progressWrap.hidden = true;
    busy(false);
    showApiError(error);
    return;
  }
  if (answer.object === "task") {
    follow(answer);
  } else {
    // Images answered at once.
    progressBar.dataset.status = "completed";
    setProgress(100, `Completed · ${credits(answer.credits_used)} credit${answer.credits_used === 1 ? "" : "s"}`);
    busy(false);
    showImages(answer.data, answer.task_id);
    loadBalance();
  }
}

function describe(task) {
  const words = { queued: "Queued", processing: "Processing", completed: "Completed", failed: "Failed", cancelled: "Cancelled" };
  return `${words[task.status] ?? task.status} · ${task.id}`;
}

function follow(task) {
  state.task = { id: task.id, source: null, poll: 0 };
  busy(true);
  update(task);
  if (TERMINAL.has(task.status)) return;
  const source = new EventSource(`/v1/tasks/${encodeURIComponent(task.id)}/events`);
  state.task.source = source;
  const onEvent = (message) => {
    if (state.task?.source !== source) return;
    let data;
    try { data = JSON.parse(message.data); } catch { return; }
    update(data);
  };
  source.addEventListener("status", onEvent);
  source.addEventListener("progress", onEvent);
  source.addEventListener("error", () => {
    // Closed for good (an error answer): poll the task instead.
    if (source.readyState === EventSource.CLOSED && state.task?.source === source) {
      state.task.source = null;
      poll(task.id, 1000);
    }
  });
}

function poll(id, delay) {
  if (!state.task || state.task.id !== id) return;
  state.task.poll = setTimeout(async () => {
    if (!state.task || state.task.id !== id) return;
    try {
      update(await api(`/v1/tasks/${encodeURIComponent(id)}`));
      poll(id, Math.min(delay * 1.5, 5000));
    } catch (error) {
      stopFollowing();
      busy(false);
      showError(errorBox, error);
    }
  }, delay);
}

function update(task) {
  if (!state.task || state.task.id !== task.id) return;
  setProgress(task.status === "completed" ? 100 : task.progress ?? 0, describe(task));
  progressBar.dataset.status = task.status;
  if (!TERMINAL.has(task.status)) return;
  stopFollowing();
  busy(false);
  loadBalance();
  if (task.status === "completed") {
    setProgress(100, `Completed · ${credits(task.credits_used)} credit${task.credits_used === 1 ? "" : "s"} · ${task.id}`);
    if (task.type === "image.generation") showImages(task.result?.data ?? [], task.id);
    else showVideo(task);
  } else if (task.status === "failed") {
    const why = task.error ? ` (${task.error.code}): ${task.error.message.replace(/\.?$/, ".")}` : ".";
    showError(errorBox, new Error(`The task failed${why} Its credits were released.`));
  } else {
    statusLine.textContent = `Cancelled · ${task.id} · its credits were released`;
  }
}

function showVideo(task) {
  const output = task.result?.data?.[0];
  if (!output) return;
  const video = h("video", {
    id: "pg-video", controls: true, preload: "auto", playsinline: true,
    src: output.url, poster: output.thumbnail_url, width: output.width, height: output.height,
    "aria-label": `Generated clip: ${task.input?.prompt ?? task.id}`,
  });
  const facts = [`${output.width}×${output.height}`];
  if (output.duration) facts.push(`${output.duration} s`);
  if (output.fps) facts.push(`${output.fps} fps`);
  if (output.num_frames) facts.push(`${output.num_frames} frames`);
  resultBox.replaceChildren(
    h("figure", { class: "pg-clip" }, video, h("figcaption", { class: "muted" }, facts.join(" · "))),
    h("div", { class: "pg-result-actions" },
      h("a", { id: "pg-download", class: "button", href: output.url, download: `${task.id}.mp4` }, "Download MP4")),
  );
  resultBox.dataset.taskId = task.id;
  resultBox.hidden = false;
}

function showImages(images, taskId) {
  resultBox.replaceChildren(
    h("div", { class: "gallery" },
      images.map((image, i) => h("figure", { class: "pg-clip" },
        h("img", { src: image.url, alt: `Generated image ${i + 1} of ${images.length}`, width: image.width, height: image.height, class: "pg-image" }),
        h("figcaption", {},
          h("a", { href: image.url, download: `${taskId}-${i}.png` }, `Download image ${i + 1}`),
          h("span", { class: "muted" }, ` · ${image.width}×${image.height}`))))),
  );
  resultBox.dataset.taskId = taskId;
  resultBox.hidden = false;
}

async function cancel() {
  const task = state.task;
  if (!task) return;
  cancelButton.disabled = true;
  try {
    update(await api(`/v1/tasks/${encodeURIComponent(task.id)}/cancel`, { method: "POST" }));
  } catch (error) {
    showError(errorBox, error);
  } finally {
    cancelButton.disabled = false;
  }
}

// -- wiring ---------------------------------------------------------------------------------

function changed() {
  renderCode();
  scheduleEstimate();
}

form.addEventListener("submit", generate);
form.addEventListener("input", (event) => {
  const target = event.target;
  if (target instanceof HTMLElement && target.id !== "pg-first" && target.id !== "pg-last") {
    target.removeAttribute("aria-invalid");
  }
  if (target === modelSelect) return;
  if (target instanceof HTMLElement && target.type === "file") return;
  changed();
});
form.addEventListener("change", (event) => {
  const target = event.target;
  if (target === modelSelect) {
    selectModel(modelSelect.value);
    const url = new URL(window.location.href);
    url.searchParams.set("model", modelSelect.value);
    history.replaceState(null, "", url);
  } else if (target instanceof HTMLElement && target.id === "pg-size") {
    const custom = $("pg-custom");
    if (custom) custom.hidden = target.value !== "custom";
    changed();
  } else if (target instanceof HTMLInputElement && target.type === "checkbox") {
    changed();
  }
});
// Ctrl/Cmd+Enter in the prompt generates.
promptField.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});
cancelButton.addEventListener("click", cancel);
window.addEventListener("pagehide", stopFollowing);

renderCodeTabs();
loadModels();
loadBalance();
