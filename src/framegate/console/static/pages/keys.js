// The keys page: the account's API keys from /v1/keys — create (scopes, spend cap), rotate
// (optional grace), revoke. A new secret is shown once, in this page only, never stored.

import { api, h, copyButton, showError, badge, credits, when } from "../console.js";
import { fieldError, openDialog, showSecretOnce, uid } from "../forms.js";

const root = document.getElementById("keys");
const sessionKey = root.dataset.sessionKey;
const list = document.getElementById("key-list");
const listError = document.getElementById("key-list-error");
const secretBox = document.getElementById("key-secret");
const form = document.getElementById("create-key");
const formError = document.getElementById("create-key-error");

const GRACE_CHOICES = [
  [0, "Stops working at once"],
  [3600, "Keeps working for 1 hour"],
  [86400, "Keeps working for 24 hours"],
  [7 * 86400, "Keeps working for 7 days"],
];


// The secret of a key just created or rotated: shown here once, with a copy button.
function showSecret(title, secret, ...notes) {
  return showSecretOnce(secretBox, {
    title, secret, notes, codeId: "new-key-secret",
    warning: "Copy this secret now: you will not see it again. ",
    hint: "framegate keeps only a hash of it; if it is lost, rotate the key for a new one.",
    done: () => form.querySelector("input")?.focus(),
  });
}

function keyStatus(key) {
  if (!key.revoked_at) return { name: "active", text: "active" };
  if (key.revoked_at * 1000 > Date.now()) return { name: "expiring", text: `works until ${when(key.revoked_at)}` };
  return { name: "revoked", text: "revoked" };
}

const label = (key) => key.name || key.display;

function cell(title, ...content) {
  return h("td", { "data-label": title }, h("span", { class: "cell" }, ...content));
}

function render(keys) {
  if (!keys.length) {
    list.replaceChildren(h("p", { class: "muted" }, "No keys yet."));
    return;
  }
  const order = { active: 0, expiring: 1, revoked: 2 };
  const sorted = [...keys].sort((a, b) =>
    order[keyStatus(a).name] - order[keyStatus(b).name] || b.created_at - a.created_at);
  const rows = sorted.map((key) => {
    const status = keyStatus(key);
    const mine = key.id === sessionKey;
    const actions = [];
    if (status.name !== "revoked") {
      actions.push(
        h("button", { type: "button", "aria-label": `Rotate key ${label(key)}`, onclick: () => rotate(key) }, "Rotate"),
        h("button", { type: "button", class: "danger", "aria-label": `Revoke key ${label(key)}`, onclick: () => revoke(key) }, "Revoke"),
      );
    }
    return h("tr", { "data-key-id": key.id, "data-ref": key.id, class: status.name === "revoked" ? "gone" : undefined },
      cell("Name", key.name || h("span", { class: "muted" }, "(no name)"),
        mine ? h("span", { class: "badge session", title: "This console session signed in with this key" }, "this session") : null),
      cell("Key", h("code", {}, key.display)),
      cell("Scopes", h("span", { class: "chips" }, ...key.scopes.map((scope) => h("code", {}, scope)))),
      cell("Spend cap", key.spend_cap === null ? h("span", { class: "muted" }, "none") : `${credits(key.spend_cap)} credits`),
      cell("Last used", when(key.last_used_at)),
      cell("Created", when(key.created_at)),
      cell("Status", h("span", { class: `badge ${status.name}` }, status.text)),
      h("td", { class: "row-actions", "data-label": "Actions" }, ...actions),
    );
  });
  list.replaceChildren(h("table", { class: "stacked" },
    h("caption", { class: "visually-hidden" }, "API keys of this account"),
    h("thead", {}, h("tr", {}, ...["Name", "Key", "Scopes", "Spend cap", "Last used", "Created", "Status"].map((t) => h("th", { scope: "col" }, t)),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    h("tbody", {}, rows)));
}

async function load() {
  list.setAttribute("aria-busy", "true");
  try {
    const keys = await api("/v1/keys");
    showError(listError, null);
    render(keys.data);
  } catch (error) {
    showError(listError, error);
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = form.querySelector('button[type="submit"]');
  const capText = form.elements.spend_cap.value.trim();
  const body = {
    name: form.elements.name.value.trim(),
    scopes: [...form.querySelectorAll('input[name="scopes"]:checked')].map((box) => box.value),
    // Anything but a whole number is sent as typed: the API's answer says what is wrong.
    spend_cap: capText === "" ? null : Number.isFinite(Number(capText)) ? Number(capText) : capText,
  };
  submit.disabled = true;
  try {
    const created = await api("/v1/keys", { method: "POST", body });
    fieldError(formError, null);
    form.reset();
    showSecret(`New key “${label(created)}”`, created.secret,
      `Scopes: ${created.scopes.join(", ")}${created.spend_cap === null ? "" : ` · spend cap ${credits(created.spend_cap)} credits`}.`);
    await load();
  } catch (error) {
    fieldError(formError, error, {
      name: { label: "Name", element: form.elements.name },
      spend_cap: { label: "Spend cap", element: form.elements.spend_cap },
      scopes: { label: "Scopes", element: form.querySelector('input[name="scopes"]') },
    });
  } finally {
    submit.disabled = false;
  }
});

function rotate(key) {
  const mine = key.id === sessionKey;
  const selectId = uid("grace");
  const select = h("select", { id: selectId, name: "grace_seconds" },
    ...GRACE_CHOICES.map(([seconds, text]) => h("option", { value: seconds }, text)));
  openDialog({
    title: `Rotate key “${label(key)}”`,
    body: [
      h("p", {}, "A new secret with the same name, scopes and spend cap replaces this one."),
      h("label", { for: selectId }, "The old secret"),
      select,
      mine ? h("p", { class: "alert warn" }, "This console session signed in with this key: it ends when the old secret stops working.") : null,
    ],
    confirmLabel: "Rotate",
    fields: () => ({ grace_seconds: { label: "Grace period", element: select } }),
    onConfirm: async () => {
      const grace = Number(select.value);
      const created = await api(`/v1/keys/${encodeURIComponent(key.id)}/rotate`, { method: "POST", body: { grace_seconds: grace } });
      const old = grace ? `The old secret keeps working until ${when(Math.floor(Date.now() / 1000) + grace)}.` : "The old secret no longer works.";
      if (mine && grace === 0) {
        list.replaceChildren();
        return showSecret(`New secret for “${label(created)}”`, created.secret, old,
          h("span", {}, "This console session has ended with the old secret: ", h("a", { href: "/console/sign-in?next=/console/keys" }, "sign in again"), " with the new one."));
      }
      await load();
      return showSecret(`New secret for “${label(created)}”`, created.secret, old);
    },
  });
}

function revoke(key) {
  const mine = key.id === sessionKey;
  openDialog({
    title: `Revoke key “${label(key)}”?`,
    body: [
      h("p", {}, "It stops working at once: every request with it answers 401, and console sessions signed in with it end. This cannot be undone."),
      mine ? h("p", { class: "alert warn" }, "This console session signed in with this key: you will be signed out.") : null,
    ],
    confirmLabel: "Revoke key",
    danger: true,
    onConfirm: async () => {
      await api(`/v1/keys/${encodeURIComponent(key.id)}/revoke`, { method: "POST" });
      await load();
      return document.getElementById("key-list-title");
    },
  });
}

load();
