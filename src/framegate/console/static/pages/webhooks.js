// The webhooks page: the account's endpoints from /v1/webhooks — add (the secret shown
// once), edit URL/description/event filters/enabled, rotate the secret (shown once), delete,
// send a test event, and each endpoint's deliveries; the task-webhook secret.

import { api, h, copyButton, showError, badge, when } from "../console.js";
import { fieldError, openDialog, showSecretOnce, uid } from "../forms.js";

const root = document.getElementById("webhooks");
const list = document.getElementById("webhook-list");
const listError = document.getElementById("webhook-list-error");
const secretBox = document.getElementById("webhook-secret");
const form = document.getElementById("create-webhook");
const formError = document.getElementById("create-webhook-error");
const defaultGrace = Number(root.dataset.defaultGrace);
const maxGrace = Number(root.dataset.maxGrace);

// The events an endpoint can subscribe to, as the page's form lists them.
const EVENTS = [...form.querySelectorAll('input[name="events"]')].map((box) => ({
  name: box.value,
  help: box.labels[0]?.querySelector(".muted")?.textContent ?? "",
}));

const enc = encodeURIComponent;

// A signing secret just issued: shown here once, with a copy button.
function showSecret(title, secret, ...notes) {
  return showSecretOnce(secretBox, {
    title, secret, notes, codeId: "new-webhook-secret",
    warning: "Copy this signing secret now: you will not see it again. ",
    hint: "If it is lost, rotate the endpoint's secret for a new one.",
    done: () => document.getElementById("webhook-list-title").focus(),
  });
}

function eventChecks(prefix, checked) {
  return h("fieldset", {},
    h("legend", {}, "Events"),
    h("div", { class: "checks" }, EVENTS.map((event, index) => {
      const id = `${prefix}-${index}`;
      return h("div", { class: "check" },
        h("input", { type: "checkbox", id, name: "events", value: event.name, checked: checked.includes(event.name) }),
        h("label", { for: id }, h("code", {}, event.name), " ", h("span", { class: "muted" }, event.help)));
    })));
}

const checkedEvents = (container) =>
  [...container.querySelectorAll('input[name="events"]:checked')].map((box) => box.value);

// -- endpoints ------------------------------------------------------------------------------

const open = new Set(); // endpoints whose deliveries are shown

function deliveryStatus(delivery) {
  if (delivery.status === "succeeded") return badge("delivered");
  if (delivery.status === "pending") return badge(delivery.attempts ? "retrying" : "pending");
  return badge(delivery.status);
}

function deliveryRow(delivery) {
  const response = delivery.last_status_code
    ? `HTTP ${delivery.last_status_code}${delivery.last_error && !delivery.last_error.startsWith("HTTP") ? ` · ${delivery.last_error}` : ""}`
    : delivery.last_error ?? "—";
  const cell = (label, ...content) => h("td", { "data-label": label }, h("span", { class: "cell" }, ...content));
  return h("tr", { "data-delivery-id": delivery.id },
    cell("Event", h("code", {}, delivery.event_type),
      delivery.task_id ? h("div", { class: "muted small" }, "task ", h("code", {}, delivery.task_id)) : null),
    cell("Status", deliveryStatus(delivery)),
    h("td", { class: "num", "data-label": "Attempts" }, String(delivery.attempts)),
    cell("Last response", response),
    cell("Created", when(delivery.created_at)),
    cell(delivery.status === "pending" ? "Next attempt" : "Delivered",
      delivery.status === "pending" ? when(delivery.next_attempt_at) : when(delivery.delivered_at)),
    cell("Webhook id", h("code", { class: "small" }, delivery.id)),
  );
}

async function loadDeliveries(endpoint, panel, after = null) {
  panel.setAttribute("aria-busy", "true");
  const error = panel.querySelector(".deliveries-error");
  try {
    const page = await api(`/v1/webhooks/${enc(endpoint.id)}/deliveries?limit=20${after ? `&after=${enc(after)}` : ""}`);
    showError(error, null);
    let tbody = panel.querySelector("tbody");
    if (!after || !tbody) {
      tbody = h("tbody", {});
      const table = page.data.length
        ? h("table", { class: "stacked" },
          h("caption", { class: "visually-hidden" }, `Deliveries to ${endpoint.url}`),
          h("thead", {}, h("tr", {}, ...["Event", "Status", "Attempts", "Last response", "Created", "Delivered / next", "Webhook id"]
            .map((text, i) => h("th", { scope: "col", class: i === 2 ? "num" : undefined }, text)))),
          tbody)
        : h("p", { class: "muted" }, "No deliveries yet. Send a test event to see one.");
      panel.querySelector(".deliveries-body").replaceChildren(table);
    }
    tbody.append(...page.data.map(deliveryRow));
    const more = panel.querySelector(".deliveries-more");
    more.hidden = !page.has_more;
    more.onclick = () => loadDeliveries(endpoint, panel, page.next_cursor);
  } catch (failure) {
    showError(error, failure);
  } finally {
    panel.setAttribute("aria-busy", "false");
  }
}

function endpointCard(endpoint) {
  const headingId = `endpoint-${endpoint.id}`;
  const panelId = `deliveries-${endpoint.id}`;
  const result = h("div", { class: "test-result", "aria-live": "polite" });
  const panel = h("div", { id: panelId, class: "deliveries", hidden: !open.has(endpoint.id) },
    h("div", { class: "deliveries-head" },
      h("h4", {}, "Deliveries"),
      h("button", { type: "button", class: "link", "aria-describedby": headingId, onclick: () => loadDeliveries(endpoint, panel) }, "Refresh")),
    h("p", { class: "deliveries-error", hidden: true }),
    h("div", { class: "table-wrap deliveries-body" }),
    h("button", { type: "button", class: "deliveries-more", hidden: true }, "Load more"));
  const toggle = h("button", { type: "button", "aria-expanded": String(open.has(endpoint.id)), "aria-controls": panelId, "aria-describedby": headingId }, "Deliveries");
  toggle.addEventListener("click", () => {
    const show = panel.hidden;
    panel.hidden = !show;
    toggle.setAttribute("aria-expanded", String(show));
    if (show) {
      open.add(endpoint.id);
      loadDeliveries(endpoint, panel);
    } else {
      open.delete(endpoint.id);
    }
  });
  const test = h("button", { type: "button", class: "primary", "aria-describedby": headingId }, "Send test event");
  test.addEventListener("click", async () => {
    test.disabled = true;
    result.replaceChildren(h("p", { class: "muted status-line", role: "status" }, "Sending a webhook.test event…"));
    try {
      const outcome = await api(`/v1/webhooks/${enc(endpoint.id)}/test`, { method: "POST" });
      if (outcome.succeeded) {
        result.replaceChildren(h("p", { class: "alert ok", role: "status" },
          `Test event delivered: the endpoint answered HTTP ${outcome.status_code}. Webhook id ${outcome.delivery.id}.`));
      } else {
        result.replaceChildren(h("p", { class: "alert error", role: "alert" },
          `Test event not delivered: ${outcome.status_code ? `the endpoint answered HTTP ${outcome.status_code}.` : outcome.error ?? "no answer."}`));
      }
      open.add(endpoint.id);
      panel.hidden = false;
      toggle.setAttribute("aria-expanded", "true");
      await loadDeliveries(endpoint, panel);
    } catch (failure) {
      const box = h("p", {});
      showError(box, failure);
      result.replaceChildren(box);
    } finally {
      test.disabled = false;
    }
  });
  const card = h("article", { class: "card endpoint", "aria-labelledby": headingId, "data-endpoint-id": endpoint.id, "data-ref": endpoint.id },
    h("header", { class: "endpoint-head" },
      h("h3", { id: headingId, class: "wrap-anywhere" }, endpoint.url),
      h("span", { class: `badge ${endpoint.enabled ? "enabled" : "disabled"}` }, endpoint.enabled ? "enabled" : "disabled")),
    endpoint.description ? h("p", { class: "muted" }, endpoint.description) : null,
    !endpoint.enabled && endpoint.disabled_reason ? h("p", { class: "alert warn" }, `Disabled: ${endpoint.disabled_reason}`) : null,
    h("dl", { class: "facts" },
      h("dt", {}, "Events"), h("dd", {}, h("span", { class: "chips" }, ...endpoint.events.map((e) => h("code", {}, e)))),
      h("dt", {}, "Id"), h("dd", {}, h("code", {}, endpoint.id)),
      h("dt", {}, "Created"), h("dd", {}, when(endpoint.created_at)),
      endpoint.previous_secret_expires_at
        ? [h("dt", {}, "Previous secret"), h("dd", {}, `also signs until ${when(endpoint.previous_secret_expires_at)}`)]
        : null),
    h("div", { class: "actions" },
      test,
      toggle,
      h("button", { type: "button", "aria-describedby": headingId, onclick: () => edit(endpoint) }, "Edit…"),
      h("button", { type: "button", "aria-describedby": headingId, onclick: () => rotate(endpoint) }, "Rotate secret…"),
      h("button", { type: "button", class: "danger", "aria-describedby": headingId, onclick: () => remove(endpoint) }, "Delete…")),
    result,
    panel,
  );
  if (open.has(endpoint.id)) loadDeliveries(endpoint, panel);
  return card;
}

async function load() {
  list.setAttribute("aria-busy", "true");
  try {
    const endpoints = await api("/v1/webhooks");
    showError(listError, null);
    list.replaceChildren(...(endpoints.data.length
      ? endpoints.data.map(endpointCard)
      : [h("p", { class: "muted" }, "No endpoints yet.")]));
  } catch (error) {
    showError(listError, error);
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = form.querySelector('button[type="submit"]');
  const body = {
    url: form.elements.url.value.trim(),
    description: form.elements.description.value.trim(),
    events: checkedEvents(form),
  };
  submit.disabled = true;
  try {
    const created = await api("/v1/webhooks", { method: "POST", body });
    fieldError(formError, null);
    form.reset();
    showSecret(`Signing secret for ${created.url}`, created.secret,
      `Events: ${created.events.join(", ")}. Send a test event to check the receiver.`);
    await load();
  } catch (error) {
    fieldError(formError, error, {
      url: { label: "URL", element: form.elements.url },
      description: { label: "Description", element: form.elements.description },
      events: { label: "Events", element: form.querySelector('input[name="events"]') },
    });
  } finally {
    submit.disabled = false;
  }
});

function edit(endpoint) {
  const prefix = uid("edit");
  const url = h("input", { id: `${prefix}-url`, name: "url", type: "url", value: endpoint.url, maxlength: 2000, autocomplete: "off" });
  const description = h("input", { id: `${prefix}-description`, name: "description", value: endpoint.description, maxlength: 300, autocomplete: "off" });
  const events = eventChecks(`${prefix}-event`, endpoint.events);
  const enabled = h("input", { type: "checkbox", id: `${prefix}-enabled`, name: "enabled", checked: endpoint.enabled });
  openDialog({
    title: "Edit endpoint",
    body: [
      h("label", { for: url.id }, "URL"), url,
      h("label", { for: description.id }, "Description"), description,
      events,
      h("div", { class: "check" }, enabled, h("label", { for: enabled.id }, "Enabled (receives events)")),
    ],
    confirmLabel: "Save",
    fields: () => ({
      url: { label: "URL", element: url },
      description: { label: "Description", element: description },
      events: { label: "Events", element: events.querySelector("input") },
      enabled: { label: "Enabled", element: enabled },
    }),
    onConfirm: async () => {
      // Only what changed: an unchanged URL is not checked again.
      const body = {};
      if (url.value.trim() !== endpoint.url) body.url = url.value.trim();
      if (description.value.trim() !== endpoint.description) body.description = description.value.trim();
      const chosen = checkedEvents(events);
      if (chosen.join() !== endpoint.events.join()) body.events = chosen;
      if (enabled.checked !== endpoint.enabled) body.enabled = enabled.checked;
      if (Object.keys(body).length) await api(`/v1/webhooks/${enc(endpoint.id)}`, { method: "PATCH", body });
      await load();
    },
  });
}

function graceChoices() {
  const hours = (n) => `${n} hour${n === 1 ? "" : "s"}`;
  const choices = [[defaultGrace, `Keeps signing for ${hours(defaultGrace / 3600)} (default)`], [3600, "Keeps signing for 1 hour"],
    [maxGrace, `Keeps signing for ${hours(maxGrace / 3600)}`], [0, "Stops at once (for a leaked secret)"]];
  const seen = new Set();
  return choices.filter(([seconds]) => !seen.has(seconds) && seen.add(seconds));
}

function rotate(endpoint) {
  const id = uid("grace");
  const select = h("select", { id, name: "grace_period_seconds" },
    ...graceChoices().map(([seconds, text]) => h("option", { value: seconds }, text)));
  openDialog({
    title: "Rotate the signing secret",
    body: [
      h("p", {}, "A new secret signs every delivery from now on. So that your receiver can switch without rejecting events, the old one can keep signing beside it for a while."),
      h("p", { class: "muted wrap-anywhere" }, endpoint.url),
      h("label", { for: id }, "The old secret"),
      select,
    ],
    confirmLabel: "Rotate secret",
    fields: () => ({ grace_period_seconds: { label: "Grace period", element: select } }),
    onConfirm: async () => {
      const grace = Number(select.value);
      const rotated = await api(`/v1/webhooks/${enc(endpoint.id)}/rotate-secret`, { method: "POST", body: { grace_period_seconds: grace } });
      await load();
      return showSecret(`New signing secret for ${rotated.url}`, rotated.secret,
        rotated.previous_secret_expires_at
          ? `The old secret also signs until ${when(rotated.previous_secret_expires_at)}.`
          : "The old secret no longer signs.");
    },
  });
}

function remove(endpoint) {
  openDialog({
    title: "Delete this endpoint?",
    body: [
      h("p", { class: "wrap-anywhere" }, h("code", {}, endpoint.url)),
      h("p", {}, "Its delivery history goes with it, and pending deliveries are not sent. This cannot be undone."),
    ],
    confirmLabel: "Delete endpoint",
    danger: true,
    onConfirm: async () => {
      await api(`/v1/webhooks/${enc(endpoint.id)}`, { method: "DELETE" });
      open.delete(endpoint.id);
      await load();
      return document.getElementById("webhook-list-title");
    },
  });
}

// -- the task-webhook secret ------------------------------------------------------------------

const taskValue = document.getElementById("task-secret-value");
const taskError = document.getElementById("task-secret-error");
const taskShow = document.getElementById("task-secret-show");

function showTaskSecret(secret) {
  taskValue.replaceChildren(h("div", { class: "secret" }, h("code", { id: "task-secret" }, secret), copyButton(secret, "Copy secret")));
  taskShow.textContent = "Hide secret";
  taskShow.setAttribute("aria-expanded", "true");
}

taskShow.addEventListener("click", async () => {
  if (taskShow.getAttribute("aria-expanded") === "true") {
    taskValue.replaceChildren();
    taskShow.textContent = "Show secret";
    taskShow.setAttribute("aria-expanded", "false");
    return;
  }
  try {
    const answer = await api("/v1/webhooks/task-secret");
    showError(taskError, null);
    showTaskSecret(answer.secret);
  } catch (error) {
    showError(taskError, error);
  }
});

document.getElementById("task-secret-rotate").addEventListener("click", () => {
  openDialog({
    title: "Rotate the task-webhook secret?",
    body: [h("p", {}, "Every later delivery to a task's own webhook_url is signed with the new secret only; receivers still checking the old one will reject them.")],
    confirmLabel: "Rotate secret",
    danger: true,
    onConfirm: async () => {
      const answer = await api("/v1/webhooks/task-secret/rotate", { method: "POST" });
      showError(taskError, null);
      showTaskSecret(answer.secret);
    },
  });
});

load();
