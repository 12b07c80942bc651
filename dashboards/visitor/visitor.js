// The care visitor's phone page (issue 11), 360 px first. The signed link (/visit/?token=…)
// is the credential, as for responders: the visitor's open visits and calls, "arrived"
// (the shared visit opens; the home's door and motion corroborate it), the record with
// what was found and the follow-ups, and the visitor's time-bank hours.

import { h } from "../shared/dom.js";
import { applyI18n, lang, loadLanguages, setLang, t, tx } from "../shared/i18n.js";
import { full } from "../shared/time.js";

const $ = (id) => document.getElementById(id);
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const HEADS = ["health", "mood", "food", "money", "home_safety", "needs"];
let serviceTypes = [];

class VisitError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

async function call(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json", "X-Visit-Token": TOKEN };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    let message = t("cv.failed");
    if (data && typeof data === "object") {
      if (lang() === "zh-CN" && data.message_zh) message = data.message_zh;
      else if (lang() === "en" && data.detail && !Array.isArray(data.detail)) message = String(data.detail);
    }
    throw new VisitError(res.status, message, data && data.code);
  }
  return data;
}

function say(text, ok = false) {
  const el = $("v-msg");
  el.textContent = text;
  el.classList.toggle("ok", ok);
}

function finding(key) {
  return h("div", { class: "finding" },
    h("label", { for: `f-${key}` }, t(`cv.f_${key}`)),
    h("select", { id: `f-${key}`, name: key },
      h("option", { value: "ok" }, t("cv.level_ok")),
      h("option", { value: "attention" }, t("cv.level_attention"))),
    h("span", {}),
    h("input", { type: "text", id: `fn-${key}`, maxlength: "200", placeholder: t("cv.f_note") }));
}

function recordForm(task) {
  const inPerson = task.mode === "in_person";
  const arrived = task.visit_status === "in_progress";
  const minutes = h("select", { id: "v-minutes" },
    ...[10, 15, 30, 45, 60, 90].map((m) => h("option", { value: String(m),
      selected: m === (inPerson ? 30 : 10) }, t("cv.minutes", { n: m }))));
  const types = h("select", { id: "v-order-type" }, h("option", { value: "" }, t("cv.no_order")),
    ...serviceTypes.map((st) => h("option", { value: st.id },
      lang() === "en" ? st.name_en : st.name_zh)));
  const form = h("form", { class: "record", id: "v-form" },
    h("fieldset", {}, h("legend", {}, t("cv.mode")),
      h("label", {}, h("input", { type: "radio", name: "mode", value: "in_person",
        checked: inPerson }), " ", tx("cv_mode", "in_person")),
      " ",
      inPerson ? null : h("label", {}, h("input", { type: "radio", name: "mode", value: "phone",
        checked: true }), " ", tx("cv_mode", "phone"))),
    arrived ? h("p", {}, t("cv.arrived_hint")) : h("label", {}, t("cv.how_long"), minutes),
    h("fieldset", {}, h("legend", {}, t("cv.findings")), ...HEADS.map(finding)),
    h("label", {}, t("cv.note"), h("textarea", { id: "v-note", rows: "2", maxlength: "1000" })),
    h("fieldset", {}, h("legend", {}, t("cv.followups")),
      h("label", {}, t("cv.concern"), h("textarea", { id: "v-concern", rows: "2",
        maxlength: "1000", placeholder: t("cv.concern_hint") })),
      h("label", {}, t("cv.order"), types),
      h("label", {}, t("cv.record_note"), h("input", { type: "text", id: "v-record-note",
        maxlength: "1000" }))),
    h("button", { type: "submit", class: "primary", id: "v-submit" }, t("cv.submit")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const now = new Date();
    const body = { mode: String(data.get("mode") || task.mode), note: $("v-note").value,
      findings: {}, followups: { record_note: $("v-record-note").value } };
    for (const key of HEADS) {
      body.findings[key] = { level: $(`f-${key}`).value, note: $(`fn-${key}`).value };
    }
    if (!arrived) {
      body.ended_at = now.toISOString();
      body.started_at = new Date(now.getTime() - Number(minutes.value) * 60000).toISOString();
    }
    if ($("v-concern").value.trim()) body.followups.concern = $("v-concern").value.trim();
    if (types.value) {
      const start = new Date(now.getTime() + 24 * 3600000);
      body.followups.service_order = { service_type_id: types.value,
        window_start: start.toISOString(),
        window_end: new Date(start.getTime() + 2 * 3600000).toISOString() };
    }
    try {
      const entry = await call(`/api/v1/visit/tasks/${encodeURIComponent(task.id)}/record`,
        { method: "POST", body });
      say(t("cv.saved", { v: tx("cv_verification", entry.verification) }), true);
      document.body.dataset.saved = entry.id;
    } catch (err) {
      say(err.message);
      return;
    }
    await refresh();
  });
  return form;
}

function card(task) {
  const late = task.overdue;
  const buttons = [];
  if (task.status === "open") {
    if (task.mode === "in_person" && !task.visit_status) {
      buttons.push(h("button", { type: "button", class: "ghost", id: `v-arrive-${task.id}`,
        onclick: () => arrive(task) }, t("cv.arrive")));
    }
    buttons.push(h("button", { type: "button", class: "primary", id: `v-open-${task.id}`,
      onclick: (ev) => {
        ev.target.closest("article").append(recordForm(task));
        ev.target.remove();
      } }, t("cv.record")));
  }
  return h("article", { class: `task${late ? " overdue" : ""}`, dataset: { id: task.id,
    status: task.status } },
    h("div", { class: "who" }, task.resident_name),
    h("p", {}, h("span", { class: "st" }, tx("cv_mode", task.mode)),
      late ? h("span", { class: "st late" }, t("cv.overdue")) : null,
      task.status === "done" ? h("span", { class: "st" }, t("cv.done")) : null),
    h("p", {}, t("cv.due", { date: task.due_date })),
    h("p", {}, task.address),
    task.reason.startsWith("concern:") ? h("p", {}, t("cv.from_concern")) : null,
    task.reason.startsWith("alert:") ? h("p", {}, t("cv.from_alert")) : null,
    task.visit_status ? h("p", {}, tx("cv_visit_status", task.visit_status)) : null,
    h("div", { class: "row" }, buttons));
}

async function arrive(task) {
  try {
    await call(`/api/v1/visit/tasks/${encodeURIComponent(task.id)}/arrive`,
      { method: "POST", body: {} });
    say(t("cv.arrived"), true);
  } catch (err) {
    say(err.message);
  }
  await refresh();
}

async function refresh() {
  try {
    const view = await call("/api/v1/visit");
    serviceTypes = view.service_types || [];
    const open = view.tasks.filter((x) => x.status === "open");
    $("tasks").replaceChildren(h("h1", {}, t("cv.hello", { name: view.name, n: open.length })),
      ...(view.tasks.length ? view.tasks.map(card) : [h("p", {}, t("cv.none"))]));
    $("hours").replaceChildren(h("h2", {}, t("cv.hours")),
      h("p", { id: "v-hours" }, t("cv.hours_line", {
        credited: (view.hours.credited_min / 60).toFixed(1),
        balance: (view.hours.balance_min / 60).toFixed(1) })),
      ...view.hours.rows.slice(-5).map((r) => h("p", {}, full(r.ts), " · ",
        tx("cv_bank", r.kind), " ", t("cv.minutes", { n: r.minutes }))));
  } catch (err) {
    $("tasks").replaceChildren(h("p", { class: "err", id: "v-error" },
      err.status === 401 ? t("cv.link_invalid") : err.message));
  }
}

async function main() {
  await loadLanguages();
  applyI18n();
  const flip = () => { $("lang").textContent = lang() === "en" ? "中文" : "English"; };
  flip();
  $("lang").addEventListener("click", () => {
    setLang(lang() === "en" ? "zh-CN" : "en");
    applyI18n();
    flip();
    refresh();
  });
  await refresh();
  document.body.dataset.ready = "1";
}

main();
