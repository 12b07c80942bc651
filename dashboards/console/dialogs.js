// One modal for every action that needs more than a click (dispatch, 120, note,
// resolve, take over, call outcome). Native <dialog>: focus is trapped, Escape cancels,
// and the server's reason for a refusal is shown in the dialog, which stays open.

import { clear, h } from "../shared/dom.js";
import { t } from "../shared/i18n.js";

const dialog = () => document.getElementById("modal");

/**
 * openModal({title, ok, danger, body, submit}) → resolves with submit's result, or null
 * when cancelled. `body` is a Node (form fields); `submit(formData)` may throw to keep
 * the dialog open with the error shown.
 */
export function openModal({ title, ok, danger = false, body, submit, wide = false }) {
  const dlg = dialog();
  const form = document.getElementById("modal-form");
  const okBtn = document.getElementById("modal-ok");
  const cancelBtn = document.getElementById("modal-cancel");
  const error = document.getElementById("modal-error");
  document.getElementById("modal-title").textContent = title;
  clear(document.getElementById("modal-body")).append(body);
  okBtn.textContent = ok;
  okBtn.className = danger ? "danger" : "primary";
  okBtn.disabled = false;
  error.textContent = "";
  dlg.classList.toggle("wide", wide);

  return new Promise((resolve) => {
    let busy = false;
    const done = (value) => {
      form.removeEventListener("submit", onSubmit);
      cancelBtn.removeEventListener("click", onCancel);
      dlg.removeEventListener("cancel", onEscape);
      if (dlg.open) dlg.close();
      resolve(value);
    };
    async function onSubmit(event) {
      event.preventDefault();
      if (busy) return;
      if (!form.reportValidity()) return;
      busy = true;
      okBtn.disabled = true;
      error.textContent = "";
      try {
        const result = await submit(new FormData(form));
        done(result === undefined ? true : result);
      } catch (err) {
        error.textContent = t("error.action_failed", { reason: err.message || String(err) });
        okBtn.disabled = false;
        busy = false;
      }
    }
    const onCancel = () => done(null);
    const onEscape = (e) => { e.preventDefault(); done(null); };
    form.addEventListener("submit", onSubmit);
    cancelBtn.addEventListener("click", onCancel);
    dlg.addEventListener("cancel", onEscape);
    dlg.showModal();
    const first = dlg.querySelector("#modal-body input, #modal-body select, #modal-body textarea");
    (first || okBtn).focus();
  });
}

/** A radio list: [{value, label, hint}] → fieldset with the first checked. */
export function choices(name, options, { required = true, checked = 0 } = {}) {
  return h("div", { class: "choices", role: "radiogroup" },
    options.map((o, i) => h("label", { class: "choice" },
      h("input", { type: "radio", name, value: o.value, required, checked: i === checked,
        disabled: o.disabled }),
      h("span", {}, o.label, o.hint ? h("span", { class: "hint" }, ` ${o.hint}`) : null))));
}

/** maxlength is the API's limit for the field (2000 for notes; less where the page adds a
 *  prefix of its own, or where the API allows less, e.g. a dispatch note's 500). */
export function textarea(name, label, { required = false, placeholder = "", rows = 3,
  maxlength = 2000 } = {}) {
  return h("label", {}, h("span", {}, label),
    h("textarea", { name, rows, required, placeholder, maxlength }));
}

let toastTimer = null;
export function toast(text, bad = false) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.classList.toggle("bad", bad);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, bad ? 6000 : 3000);
}
