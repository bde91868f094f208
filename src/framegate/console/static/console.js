// Shared helpers of the console's pages: calls to framegate's own API with the session's
// CSRF token, small DOM builders, formatting, copy buttons. No third-party code.

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.param = error.param;
  }
}

// Call the JSON API as the signed-in key. `body`: an object (sent as JSON) or FormData.
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrf();
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    window.location.assign(`/console/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, null);
  }
  const text = await response.text();
  const data = text && response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// h("a", {href: "/x", class: "button"}, "text", child...) → element (text is never HTML).
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const credits = (n) => (n ?? 0).toLocaleString("en-US");
export const when = (unix) => (unix ? new Date(unix * 1000).toLocaleString() : "—");
export const day = (unix) => new Date(unix * 1000).toISOString().slice(0, 10);

// A button that copies `text()` and says so.
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "copy" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(typeof text === "function" ? text() : text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}

// Show an error (or clear it) in a role=alert element.
export function showError(target, error) {
  target.replaceChildren();
  if (!error) { target.hidden = true; return; }
  target.hidden = false;
  target.className = "alert error";
  target.setAttribute("role", "alert");
  target.textContent = error.message ?? String(error);
}

export function badge(status) {
  return h("span", { class: `badge ${status}` }, status.replace("_", " "));
}
