// Shared pieces of the console's forms: API errors shown by the field they name, modal
// dialogs with a form, and a secret shown once. No third-party code.

import { h, copyButton, showError } from "./console.js";

let counter = 0;
export const uid = (prefix) => `${prefix}-${++counter}`;

// An API error in a role=alert element, naming the field it is about (and marking it).
export function fieldError(target, error, fields = {}) {
  for (const element of document.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
  showError(target, error);
  if (!error) return;
  const field = error.param ? fields[error.param] : undefined;
  if (error.param) {
    const label = field?.label ?? error.param;
    const message = String(error.message ?? error).replace(`${error.param}: `, "");
    target.replaceChildren(h("strong", {}, `${label}: `), message);
  }
  const element = field?.element;
  if (element) {
    element.setAttribute("aria-invalid", "true");
    element.focus();
  }
}

// The element that opened a dialog, or its twin once the list it was in is drawn again.
export function refocus(opener) {
  if (!opener || opener.isConnected) return opener?.focus();
  const holder = opener.closest("[data-ref]");
  const twin = holder && [...document.querySelectorAll(`[data-ref="${CSS.escape(holder.dataset.ref)}"] button`)]
    .find((button) => button.textContent === opener.textContent);
  (twin ?? document.querySelector("h1"))?.focus();
}

// A modal dialog with a form; `onConfirm(form)` runs on submit (its error stays in the
// dialog) and may return the element to focus once the dialog has closed.
export function openDialog({ title, body = [], confirmLabel, danger = false, fields = () => ({}), onConfirm }) {
  const opener = document.activeElement;
  const titleId = uid("dialog-title");
  const error = h("p", { hidden: true });
  const submit = h("button", { type: "submit", class: danger ? "danger" : "primary" }, confirmLabel);
  const cancel = h("button", { type: "button", autofocus: danger }, "Cancel");
  const dialogForm = h("form", { class: "stack", novalidate: true },
    h("h2", { id: titleId }, title), ...body, error, h("div", { class: "actions" }, submit, cancel));
  const dialog = h("dialog", { "aria-labelledby": titleId, class: "console-dialog" }, dialogForm);
  cancel.addEventListener("click", () => dialog.close());
  dialogForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const target = await onConfirm(dialogForm);
      dialog.close();
      if (target instanceof HTMLElement) target.focus();
      else refocus(opener);
    } catch (failure) {
      fieldError(error, failure, fields(dialogForm));
    } finally {
      submit.disabled = false;
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

// A secret just issued (an API key, a signing secret), shown once in ``box`` with a copy
// button and a warning; ``done()`` runs when the person says they have stored it.
export function showSecretOnce(box, { title, secret, warning, hint, codeId, copyLabel = "Copy secret",
  doneLabel = "Done — I have stored it", notes = [], done }) {
  const heading = h("h2", { tabindex: "-1" }, title);
  const finished = h("button", { type: "button" }, doneLabel);
  finished.addEventListener("click", () => {
    box.hidden = true;
    box.replaceChildren();
    done?.();
  });
  box.replaceChildren(
    heading,
    h("p", { class: "alert warn" }, h("strong", {}, warning), hint),
    h("div", { class: "secret" }, h("code", { id: codeId }, secret), copyButton(secret, copyLabel)),
    ...notes.map((note) => h("p", {}, note)),
    finished,
  );
  box.hidden = false;
  heading.focus();
  return heading;
}
