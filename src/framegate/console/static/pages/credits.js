// The credits page: the balance (GET /v1/credits) and the ledger (GET /v1/credits/ledger),
// newest first, paged with the API's cursor: Next follows next_cursor, Previous goes back
// through the cursors of the pages already seen.

import { api, badge, credits, h, showError, when } from "../console.js";

const signed = (n) => (n > 0 ? `+${credits(n)}` : n < 0 ? `−${credits(-n)}` : "0");

function creditsPage(root) {
  const alert = root.querySelector("#credits-error");
  const rows = root.querySelector("#ledger-rows");
  const prev = root.querySelector("#ledger-prev");
  const next = root.querySelector("#ledger-next");
  const pageLabel = root.querySelector("#ledger-page");
  const limit = root.querySelector("#ledger-limit");
  let trail = []; // the `after` of every page before this one
  let after = null;
  let nextCursor = null;
  let loading = 0;

  const params = new URLSearchParams(location.search);
  if ([...limit.options].some((o) => o.value === params.get("limit"))) limit.value = params.get("limit");

  api("/v1/credits")
    .then((balance) => {
      for (const [id, amount] of [["#balance-available", balance.available], ["#balance-held", balance.held]]) {
        const element = root.querySelector(id);
        element.textContent = credits(amount);
        element.removeAttribute("aria-busy");
      }
    })
    .catch((error) => showError(alert, error));

  function row(entry) {
    const task = entry.task_id
      ? h("a", { href: `/console/tasks/${encodeURIComponent(entry.task_id)}`, class: "mono" }, entry.task_id)
      : h("span", { class: "muted" }, "—");
    return h(
      "tr",
      { "data-entry-id": entry.id, "data-kind": entry.kind },
      h("td", {}, h("time", { datetime: new Date(entry.created_at * 1000).toISOString() }, when(entry.created_at))),
      h("td", {}, badge(entry.kind)),
      h("td", { class: "description" }, entry.description || ""),
      h("td", {}, task),
      h("td", { class: `num amount ${entry.amount > 0 ? "plus" : entry.amount < 0 ? "minus" : ""}` }, signed(entry.amount)),
      h("td", { class: "num" }, credits(entry.credits)),
      h("td", { class: "num" }, credits(entry.balance_after)),
    );
  }

  async function load(focus) {
    const ticket = ++loading;
    const query = new URLSearchParams({ limit: limit.value });
    if (after) query.set("after", after);
    rows.setAttribute("aria-busy", "true");
    try {
      const page = await api(`/v1/credits/ledger?${query}`);
      if (ticket !== loading) return;
      showError(alert, null);
      rows.replaceChildren(
        ...(page.data.length ? page.data.map(row) : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No entries."))]),
      );
      nextCursor = page.has_more ? page.next_cursor : null;
      next.disabled = !nextCursor;
      prev.disabled = trail.length === 0;
      const number = trail.length + 1;
      pageLabel.textContent = `Page ${number}${page.data.length ? ` · ${page.data.length} entr${page.data.length === 1 ? "y" : "ies"}` : ""}`;
      // Keep the keyboard where it was, or on the other button when this one turned off.
      if (focus?.disabled) (focus === next ? prev : next).focus();
    } catch (error) {
      if (ticket === loading) showError(alert, error);
    } finally {
      if (ticket === loading) rows.removeAttribute("aria-busy");
    }
  }

  const busy = () => rows.hasAttribute("aria-busy");
  next.addEventListener("click", () => {
    if (!nextCursor || busy()) return;
    trail.push(after);
    after = nextCursor;
    load(next);
  });
  prev.addEventListener("click", () => {
    if (!trail.length || busy()) return;
    after = trail.pop();
    load(prev);
  });
  limit.addEventListener("change", () => {
    trail = [];
    after = null;
    const address = new URLSearchParams(location.search);
    address.set("limit", limit.value);
    history.replaceState(null, "", `${location.pathname}?${address}`);
    load();
  });
  load();
}

const root = document.getElementById("credits");
if (root) creditsPage(root);
