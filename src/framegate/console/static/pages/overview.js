// The overview: the balance (GET /v1/credits), tasks submitted today and the latest tasks
// (GET /v1/tasks), and the last 30 days' spend (the usage page's server-drawn plot, with
// its total from GET /v1/usage).

import { api, credits, showError } from "../console.js";
import { isUnfinished, renderCards } from "./tasks.js";
import { addDays, loadChart, redrawOnResize, todayUtc, usageQuery } from "./usage.js";

const RECENT = 6;
const TODAY_PAGES = 5; // counted up to 500 tasks; more shows as "500+"

function value(element, text) {
  element.textContent = text;
  element.removeAttribute("aria-busy");
}

function overview(root) {
  const alert = root.querySelector("#overview-error");
  const fail = (error) => showError(alert, error);
  const canReadTasks = root.dataset.tasks === "yes";

  api("/v1/credits")
    .then((balance) => {
      value(root.querySelector("#credits-available"), credits(balance.available));
      value(root.querySelector("#credits-held"), credits(balance.held));
    })
    .catch(fail);

  const last = todayUtc();
  const query = usageQuery("day", addDays(last, -29), last);
  api(`/v1/usage?${query}`)
    .then((usage) => value(root.querySelector("#spent-30d"), credits(usage.total.credits)))
    .catch(fail);
  const chart = root.querySelector("#spend-chart");
  const draw = () => loadChart(chart, query, { ident: "spend" }).catch(fail);
  draw();
  redrawOnResize(chart, draw);

  if (!canReadTasks) return;
  countToday().catch(fail);
  recent().catch(fail);
}

// Tasks submitted since 00:00 UTC: the list is newest first, so read until an older one.
async function countToday() {
  const midnight = Date.parse(`${todayUtc()}T00:00:00Z`) / 1000;
  let count = 0;
  let after = null;
  for (let page = 0; page < TODAY_PAGES; page += 1) {
    const params = new URLSearchParams({ limit: "100" });
    if (after) params.set("after", after);
    const tasks = await api(`/v1/tasks?${params}`);
    const today = tasks.data.filter((task) => task.created_at >= midnight);
    count += today.length;
    if (today.length < tasks.data.length || !tasks.has_more) {
      value(document.getElementById("tasks-today"), credits(count));
      return;
    }
    after = tasks.next_cursor;
  }
  value(document.getElementById("tasks-today"), `${credits(count)}+`);
}

async function recent() {
  const list = document.getElementById("recent-tasks");
  const tasks = await api(`/v1/tasks?limit=${RECENT}`);
  renderCards(list, tasks.data);
  list.removeAttribute("aria-busy");
  document.getElementById("recent-empty").hidden = tasks.data.length > 0;
  if (tasks.data.some(isUnfinished)) setTimeout(() => recent().catch(() => {}), 3000);
}

const root = document.getElementById("overview");
if (root) overview(root);
