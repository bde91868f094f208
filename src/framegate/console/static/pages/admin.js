// The admin page (admin keys only): accounts from /v1/admin/accounts — create (the first key
// shown once), grant credits, rename, change plan, enable/disable — and plans from
// /v1/admin/plans (list, create or replace).

import { api, h, copyButton, showError, credits, when } from "../console.js";
import { fieldError, openDialog, showSecretOnce, uid } from "../forms.js";

const root = document.getElementById("admin");
const sessionAccount = root.dataset.accountId;
const accountList = document.getElementById("account-list");
const accountError = document.getElementById("account-list-error");
const planList = document.getElementById("plan-list");
const planError = document.getElementById("plan-list-error");
const secretBox = document.getElementById("admin-secret");
const statusBox = document.getElementById("admin-status");
const createForm = document.getElementById("create-account");
const createError = document.getElementById("create-account-error");
const planForm = document.getElementById("put-plan");
const planFormError = document.getElementById("put-plan-error");

let accounts = [];
let plans = { data: [], default: null };
const enc = encodeURIComponent;

// A whole number as a number; anything else as typed, so that the API's answer says why.
const numberOrText = (text) => (text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text.trim() || null);

function say(message) {
  statusBox.replaceChildren(h("p", { class: "alert ok" }, message));
}

function showSecret(title, secret, ...notes) {
  return showSecretOnce(secretBox, {
    title, secret, notes, codeId: "new-account-key", copyLabel: "Copy key",
    doneLabel: "Done — I have handed it over",
    warning: "Copy this API key now: you will not see it again. ",
    hint: "framegate keeps only a hash of it; the account's owner can rotate it.",
    done: () => document.getElementById("accounts-title").focus(),
  });
}

// -- accounts -------------------------------------------------------------------------------

function planNames() {
  const names = new Set(["default", ...plans.data.map((plan) => plan.name), ...accounts.map((a) => a.plan)]);
  return [...names].sort();
}

function planSelect(id, current) {
  return h("select", { id, name: "plan" },
    ...planNames().map((name) => h("option", { value: name, selected: name === current }, name)));
}

function fillPlanChoices() {
  const select = createForm.elements.plan;
  const current = select.value;
  select.replaceChildren(...planNames().map((name) => h("option", { value: name, selected: name === current }, name)));
}

const cell = (label, ...content) => h("td", { "data-label": label }, h("span", { class: "cell" }, ...content));

function renderAccounts() {
  if (!accounts.length) {
    accountList.replaceChildren(h("p", { class: "muted" }, "No accounts."));
    return;
  }
  // GET /v1/admin/accounts may not say whether an account is enabled; the column shows when it does.
  const knowsStatus = accounts.some((account) => typeof account.is_active === "boolean");
  const heads = ["Name", "Id", "Plan", "Credits", ...(knowsStatus ? ["Status"] : []), "Created"];
  const rows = accounts.map((account) => {
    const name = account.name || account.id;
    return h("tr", { "data-account-id": account.id, "data-ref": account.id },
      cell("Name", account.name,
        account.id === sessionAccount ? h("span", { class: "badge session", title: "The account of this console session" }, "you") : null),
      cell("Id", h("code", { class: "small" }, account.id)),
      cell("Plan", account.plan),
      h("td", { class: "num balance", "data-label": "Credits" }, credits(account.credit_balance)),
      knowsStatus ? cell("Status", h("span", { class: `badge ${account.is_active ? "enabled" : "disabled"}` }, account.is_active ? "active" : "disabled")) : null,
      cell("Created", when(account.created_at)),
      h("td", { class: "row-actions", "data-label": "Actions" },
        h("button", { type: "button", "aria-label": `Grant credits to ${name}`, onclick: () => grant(account) }, "Grant credits…"),
        h("button", { type: "button", "aria-label": `Edit account ${name}`, onclick: () => editAccount(account) }, "Edit…")),
    );
  });
  accountList.replaceChildren(h("table", { class: "stacked" },
    h("caption", { class: "visually-hidden" }, "Accounts of this installation"),
    h("thead", {}, h("tr", {}, ...heads.map((text) => h("th", { scope: "col", class: text === "Credits" ? "num" : undefined }, text)),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    h("tbody", {}, rows)));
}

async function loadAccounts() {
  accountList.setAttribute("aria-busy", "true");
  try {
    accounts = (await api("/v1/admin/accounts")).data;
    showError(accountError, null);
    renderAccounts();
    fillPlanChoices();
    renderPlans();
  } catch (error) {
    showError(accountError, error);
  } finally {
    accountList.setAttribute("aria-busy", "false");
  }
}

createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = createForm.querySelector('button[type="submit"]');
  const body = {
    name: createForm.elements.name.value,
    credits: numberOrText(createForm.elements.credits.value) ?? 0,
    plan: createForm.elements.plan.value,
  };
  submit.disabled = true;
  try {
    const created = await api("/v1/admin/accounts", { method: "POST", body });
    fieldError(createError, null);
    createForm.reset();
    showSecret(`First API key of “${created.name}”`, created.api_key,
      `Account ${created.id}, plan ${created.plan}, ${credits(created.credit_balance)} credits. The key has every scope but admin.`);
    await loadAccounts();
  } catch (error) {
    fieldError(createError, error, {
      name: { label: "Name", element: createForm.elements.name },
      credits: { label: "Opening credits", element: createForm.elements.credits },
      plan: { label: "Plan", element: createForm.elements.plan },
    });
  } finally {
    submit.disabled = false;
  }
});

function grant(account) {
  const prefix = uid("grant");
  const amount = h("input", { id: `${prefix}-credits`, name: "credits", type: "number", min: 1, step: 1, inputmode: "numeric", required: true });
  const description = h("input", { id: `${prefix}-description`, name: "description", maxlength: 300, autocomplete: "off" });
  openDialog({
    title: `Grant credits to “${account.name || account.id}”`,
    body: [
      h("p", { class: "muted" }, `Balance now: ${credits(account.credit_balance)} credits. A grant is a ledger entry the account sees.`),
      h("label", { for: amount.id }, "Credits"), amount,
      h("label", { for: description.id }, "Description (optional, in the account's ledger)"), description,
    ],
    confirmLabel: "Grant credits",
    fields: () => ({
      credits: { label: "Credits", element: amount },
      description: { label: "Description", element: description },
    }),
    onConfirm: async () => {
      const granted = numberOrText(amount.value);
      const updated = await api(`/v1/admin/accounts/${enc(account.id)}/credits`, {
        method: "POST",
        body: { credits: granted, description: description.value.trim() },
      });
      await loadAccounts();
      say(`Granted ${credits(granted)} credits to ${updated.name || updated.id}: the balance is now ${credits(updated.credit_balance)}.`);
    },
  });
}

function editAccount(account) {
  const prefix = uid("account");
  const name = h("input", { id: `${prefix}-name`, name: "name", value: account.name, maxlength: 200, autocomplete: "off" });
  const plan = planSelect(`${prefix}-plan`, account.plan);
  const known = typeof account.is_active === "boolean";
  const status = h("select", { id: `${prefix}-status`, name: "is_active" },
    known ? null : h("option", { value: "" }, "Leave as it is"),
    h("option", { value: "true", selected: known && account.is_active }, "Active"),
    h("option", { value: "false", selected: known && !account.is_active }, "Disabled — its keys answer 401"));
  const mine = account.id === sessionAccount;
  openDialog({
    title: `Edit account “${account.name || account.id}”`,
    body: [
      h("label", { for: name.id }, "Name"), name,
      h("label", { for: plan.id }, "Plan"), plan,
      h("label", { for: status.id }, "Status"), status,
      mine ? h("p", { class: "alert warn" }, "This is the account of your session: disabling it signs you out.") : null,
    ],
    confirmLabel: "Save",
    fields: () => ({
      name: { label: "Name", element: name },
      plan: { label: "Plan", element: plan },
      is_active: { label: "Status", element: status },
    }),
    onConfirm: async () => {
      const body = {};
      if (name.value.trim() !== account.name) body.name = name.value;
      if (plan.value !== account.plan) body.plan = plan.value;
      if (status.value !== "" && (!known || String(account.is_active) !== status.value)) body.is_active = status.value === "true";
      if (!Object.keys(body).length) return;
      const updated = await api(`/v1/admin/accounts/${enc(account.id)}`, { method: "PATCH", body });
      await loadAccounts();
      const change = body.is_active === undefined ? "saved" : body.is_active ? "saved and enabled" : "saved and disabled: its keys answer 401";
      say(`Account ${updated.name || updated.id} ${change}.`);
    },
  });
}

// -- plans ----------------------------------------------------------------------------------

function renderPlans() {
  if (!plans.default) return;
  const onPlan = (name) => accounts.filter((account) => account.plan === name).length;
  const row = (plan, isDefault) => h("tr", { "data-plan": plan.name },
    cell("Plan", plan.name, isDefault ? h("div", { class: "muted small" }, "settings: for accounts whose plan has no row") : null),
    h("td", { class: "num", "data-label": "Concurrent videos" }, credits(plan.max_concurrent_videos)),
    h("td", { class: "num", "data-label": "Concurrent images" }, credits(plan.max_concurrent_images)),
    h("td", { class: "num", "data-label": "Requests / minute" }, credits(plan.requests_per_minute)),
    h("td", { class: "num", "data-label": "Accounts" }, String(isDefault ? onPlan(plan.name) || "—" : onPlan(plan.name))),
    h("td", { class: "row-actions", "data-label": "Actions" },
      h("button", { type: "button", "aria-label": `Edit plan ${plan.name}`, onclick: () => editPlan(plan) }, "Edit")));
  const named = new Set(plans.data.map((plan) => plan.name));
  planList.replaceChildren(h("table", { class: "stacked" },
    h("caption", { class: "visually-hidden" }, "Plans"),
    h("thead", {}, h("tr", {}, ...["Plan", "Concurrent videos", "Concurrent images", "Requests / minute", "Accounts"]
      .map((text, i) => h("th", { scope: "col", class: i ? "num" : undefined }, text)),
    h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
    h("tbody", {}, ...plans.data.map((plan) => row(plan, false)),
      named.has(plans.default.name) ? null : row(plans.default, true))));
}

async function loadPlans() {
  planList.setAttribute("aria-busy", "true");
  try {
    plans = await api("/v1/admin/plans");
    showError(planError, null);
    renderPlans();
    fillPlanChoices();
  } catch (error) {
    showError(planError, error);
  } finally {
    planList.setAttribute("aria-busy", "false");
  }
}

function editPlan(plan) {
  planForm.elements.name.value = plan.name;
  planForm.elements.max_concurrent_videos.value = plan.max_concurrent_videos;
  planForm.elements.max_concurrent_images.value = plan.max_concurrent_images;
  planForm.elements.requests_per_minute.value = plan.requests_per_minute;
  planForm.elements.max_concurrent_videos.focus();
}

planForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = planForm.querySelector('button[type="submit"]');
  const name = planForm.elements.name.value.trim();
  const fields = {
    name: { label: "Plan name", element: planForm.elements.name },
    max_concurrent_videos: { label: "Concurrent videos", element: planForm.elements.max_concurrent_videos },
    max_concurrent_images: { label: "Concurrent images", element: planForm.elements.max_concurrent_images },
    requests_per_minute: { label: "Requests per minute", element: planForm.elements.requests_per_minute },
  };
  if (!name) {
    fieldError(planFormError, { message: "Name the plan.", param: "name" }, fields);
    return;
  }
  const body = {
    max_concurrent_videos: numberOrText(planForm.elements.max_concurrent_videos.value),
    max_concurrent_images: numberOrText(planForm.elements.max_concurrent_images.value),
    requests_per_minute: numberOrText(planForm.elements.requests_per_minute.value),
  };
  submit.disabled = true;
  try {
    const saved = await api(`/v1/admin/plans/${enc(name)}`, { method: "PUT", body });
    fieldError(planFormError, null);
    planForm.reset();
    await loadPlans();
    say(`Plan ${saved.name} saved: ${saved.max_concurrent_videos} concurrent videos, ${saved.max_concurrent_images} concurrent images, ${saved.requests_per_minute} requests per minute.`);
  } catch (error) {
    fieldError(planFormError, error, fields);
  } finally {
    submit.disabled = false;
  }
});

loadAccounts();
loadPlans();
