// The service desk in the console (issue 10): green-button requests in a queue of their
// own (never mixed with alerts), call-back outcomes, orders, an order board by state,
// order detail with dispatch, the worker's link, the visit's facts and ratings, and the
// providers, workers and recurring plans, and the district's service set-up
// (services-admin.js). Self-contained: it follows the console's tab clicks, and the live
// stream's service.* events that app.js hands on as DOM events ("service-stream").

import { h } from "../shared/dom.js";
import { t, tx } from "../shared/i18n.js";
import { desk, localIso, shanghaiNow, yuan } from "../shared/services-api.js";
import { full, stamp } from "../shared/time.js";
import { ADMIN_READERS, AdminView, reason } from "./services-admin.js";

const $ = (id) => document.getElementById(id);
const BOARD = ["created", "unassigned", "dispatched", "accepted", "in_progress", "completed"];
/** requests and orders arrive on the live stream; this slow poll only covers a stream
 *  that is down (and anything the stream could not say) */
const POLL_MS = 60000;
/** several events of one change (a request ordered, the order dispatched) → one reload */
const SETTLE_MS = 150;

const state = {
  sub: "queue",
  requests: [],
  orders: [],
  types: [],
  selected: null, // {kind: "request"|"order", id}
  timer: null,
  role: null,
  admin: null,
  settle: null,
  reopen: null, // the open order changed on the stream: redraw its pane after the reload
};

function typeName(id) {
  const tp = state.types.find((x) => x.id === id);
  if (!tp) return id;
  return document.documentElement.lang === "en" ? tp.name_en : tp.name_zh;
}

function say(text, ok = false) {
  const el = $("svc-msg");
  if (!el) return;
  el.textContent = text;
  el.classList.toggle("ok", ok);
}

async function attempt(fn, okText) {
  try {
    const result = await fn();
    if (okText) say(okText, true);
    return result;
  } catch (err) {
    say(reason(err)); // the server's Chinese reason, or its code mapped: never its English
    return null;
  }
}

// -- loading ----------------------------------------------------------------------------

/** quiet (the poll, the stream): redraw only the live lists, never a sub-view with a form
 *  someone may be typing in (providers, plans, the set-up) */
async function load({ quiet = false } = {}) {
  if (!state.types.length) state.types = await desk("/api/v1/service-types");
  const [requests, orders] = await Promise.all([
    desk("/api/v1/service-requests"),
    desk("/api/v1/service-orders"),
  ]);
  state.requests = requests;
  state.orders = orders;
  const count = $("svc-count");
  count.textContent = String(requests.length);
  count.classList.toggle("zero", requests.length === 0);
  if (!quiet || ["queue", "board"].includes(state.sub)) render();
}

function render() {
  for (const btn of document.querySelectorAll("#view-services [data-sub]")) {
    btn.setAttribute("aria-pressed", btn.dataset.sub === state.sub ? "true" : "false");
  }
  $("view-services").dataset.sub = state.sub;
  const main = $("svc-main");
  if (state.sub === "admin") {
    // the set-up screens load their own data; a service event does not wipe a form
    if (state.admin && !main.querySelector("#svc-admin")) {
      main.replaceChildren();
      state.admin.load();
    }
    return;
  }
  main.replaceChildren();
  if (state.sub === "queue") main.append(renderQueue());
  else if (state.sub === "board") main.append(renderBoard());
  else if (state.sub === "providers") renderProviders(main);
  else if (state.sub === "plans") renderPlans(main);
}

// -- the service queue --------------------------------------------------------------------

function renderQueue() {
  const phone = h("div", { class: "svc-form", id: "svc-phone-form" },
    h("label", { for: "svc-phone-resident" }, t("svc.phone_call")),
    h("input", { id: "svc-phone-resident", placeholder: t("svc.resident_id") }),
    h("button", { type: "button", class: "full", onclick: phoneRequest }, t("svc.phone_request")));
  if (!state.requests.length) return h("div", {}, phone, h("p", { class: "empty" }, t("svc.queue_empty")));
  return h("div", {}, phone, h("ol", { class: "svc-list", id: "svc-requests" }, state.requests.map((r) =>
    h("li", {
      class: "svc-request", dataset: { id: r.id }, tabindex: "0",
      "aria-selected": state.selected && state.selected.id === r.id ? "true" : "false",
      onclick: () => openRequest(r.id),
    },
    h("span", { class: "who" }, r.resident_name),
    h("span", { class: "meta" }, stamp(r.opened_at)),
    h("span", { class: "addr" }, r.address),
    h("span", { class: "meta" }, t("svc.presses", { n: r.presses }), " · ",
      tx("svc_status", r.status), r.last_outcome ? ` · ${tx("svc_outcome", r.last_outcome)}` : "")))));
}

/** A phone call to the centre: a request taken by the operator, then the same flow. */
async function phoneRequest() {
  const residentId = $("svc-phone-resident").value.trim();
  if (!residentId) return;
  const r = await attempt(() => desk("/api/v1/service-requests",
    { method: "POST", body: { resident_id: residentId } }));
  if (r) {
    await load();
    await openRequest(r.id);
    say(t("svc.saved"), true);
  }
}

async function openRequest(id) {
  state.selected = { kind: "request", id };
  const r = await attempt(() => desk(`/api/v1/service-requests/${encodeURIComponent(id)}`));
  if (!r) return;
  const pane = $("svc-pane");
  const now = shanghaiNow();
  const start = now.hour >= 20 ? "09:00" : `${String(now.hour + 1).padStart(2, "0")}:00`;
  const end = now.hour >= 20 ? "11:00" : `${String(Math.min(now.hour + 3, 23)).padStart(2, "0")}:${now.hour + 3 > 23 ? "59" : "00"}`;
  pane.replaceChildren(
    h("h2", {}, t("svc.request_title"), " ", r.resident_name),
    h("dl", { class: "svc-facts" },
      h("dt", {}, t("svc.address")), h("dd", {}, r.address),
      h("dt", {}, t("svc.opened")), h("dd", {}, full(r.opened_at)),
      h("dt", {}, t("svc.source")), h("dd", {}, tx("svc_source", r.source)),
      h("dt", {}, t("svc.presses_label")), h("dd", {}, String(r.presses))),
    h("h3", {}, t("svc.callback")),
    h("div", { class: "svc-form" },
      h("label", { for: "svc-outcome" }, t("svc.outcome_label")),
      h("select", { id: "svc-outcome" }, ["asked", "no_answer", "call_again"].map((o) =>
        h("option", { value: o }, tx("svc_outcome", o)))),
      h("label", { for: "svc-note" }, t("svc.note")),
      h("input", { id: "svc-note", maxlength: "500" }),
      h("button", { id: "svc-callback", class: "full", type: "button", onclick: () => callback(r.id) },
        t("svc.save_callback"))),
    h("h3", {}, t("svc.new_order")),
    h("div", { class: "svc-form" },
      h("label", { for: "svc-type" }, t("svc.type")),
      h("select", { id: "svc-type" }, state.types.map((tp) =>
        h("option", { value: tp.id }, `${typeName(tp.id)} · ¥${yuan(tp.unit_price_cents)}`))),
      h("label", { for: "svc-date" }, t("svc.date")),
      h("input", { id: "svc-date", type: "date", value: now.hour >= 20 ? "" : now.date }),
      h("label", { for: "svc-start" }, t("svc.start")),
      h("input", { id: "svc-start", type: "time", value: start }),
      h("label", { for: "svc-end" }, t("svc.end")),
      h("input", { id: "svc-end", type: "time", value: end }),
      h("label", { for: "svc-payment" }, t("svc.payment")),
      h("select", { id: "svc-payment" }, ["voucher", "self"].map((p) =>
        h("option", { value: p }, tx("svc_payment", p)))),
      h("button", { id: "svc-order", class: "primary full", type: "button",
        onclick: () => createOrder(r) }, t("svc.create_order")),
      h("button", { id: "svc-close", class: "ghost full", type: "button",
        onclick: () => closeRequest(r.id) }, t("svc.close_request"))),
    timeline(r.timeline));
  render();
}

async function callback(id) {
  const body = { outcome: $("svc-outcome").value, note: $("svc-note").value };
  if (await attempt(() => desk(`/api/v1/service-requests/${encodeURIComponent(id)}/callback`,
    { method: "POST", body }))) {
    await load();
    await openRequest(id);
    say(t("svc.saved"), true); // after the pane is redrawn, so what follows uses the new form
  }
}

async function closeRequest(id) {
  const note = $("svc-note").value || t("svc.closed_note");
  if (await attempt(() => desk(`/api/v1/service-requests/${encodeURIComponent(id)}/close`,
    { method: "POST", body: { note } }), t("svc.saved"))) {
    state.selected = null;
    $("svc-pane").replaceChildren(h("p", { class: "placeholder" }, t("svc.pick")));
    await load();
  }
}

async function createOrder(r) {
  const date = $("svc-date").value;
  const body = {
    resident_id: r.resident_id, service_type_id: $("svc-type").value,
    window_start: localIso(date, $("svc-start").value),
    window_end: localIso(date, $("svc-end").value),
    request_id: r.id, source: r.source === "button" ? "button" : "phone",
    payment: $("svc-payment").value,
  };
  const order = await attempt(() => desk("/api/v1/service-orders", { method: "POST", body }));
  if (order) {
    state.sub = "board";
    await load();
    await openOrder(order.id);
    say(t("svc.order_created"), true);
  }
}

// -- the order board ------------------------------------------------------------------------

function renderBoard() {
  return h("div", { class: "svc-board", id: "svc-board" }, BOARD.map((status) =>
    h("section", { class: "svc-col", dataset: { status } },
      h("h3", {}, tx("svc_order_status", status), " ",
        String(state.orders.filter((o) => o.status === status).length)),
      state.orders.filter((o) => o.status === status).map((o) =>
        h("article", { class: "svc-card", dataset: { id: o.id }, tabindex: "0",
          onclick: () => openOrder(o.id) },
        h("div", {}, h("b", {}, o.resident_name), " · ", typeName(o.service_type_id)),
        h("div", {}, stamp(o.window_start), "–", stamp(o.window_end)),
        o.worker_name ? h("div", {}, o.worker_name) : null,
        o.attention ? h("div", { class: "attn" }, tx("svc_attention", o.attention)) : null,
        o.callback_due ? h("div", { class: "attn" }, t("svc.callback_due")) : null)))));
}

async function openOrder(id) {
  state.selected = { kind: "order", id };
  const o = await attempt(() => desk(`/api/v1/service-orders/${encodeURIComponent(id)}`));
  if (!o) return;
  const pane = $("svc-pane");
  const actions = h("div", { class: "svc-form" });
  if (["created", "unassigned", "dispatched"].includes(o.status)) {
    const sugg = await attempt(() => desk(`/api/v1/service-orders/${encodeURIComponent(id)}/suggestions`)) || [];
    actions.append(
      h("label", { for: "svc-worker" }, t("svc.worker")),
      h("select", { id: "svc-worker" }, sugg.map((s) => h("option", { value: s.worker_id },
        `${s.worker_name} · ${s.provider_name} · ${t("svc.load", { n: s.load_today })}`))),
      h("button", { id: "svc-dispatch", class: "primary full", type: "button",
        onclick: () => dispatch(id) }, t("svc.dispatch")));
  }
  if (o.worker_id && ["dispatched", "accepted", "in_progress"].includes(o.status)) {
    actions.append(h("button", { id: "svc-link", class: "full", type: "button",
      onclick: () => showLink(id) }, t("svc.work_link")),
    h("input", { id: "svc-link-url", class: "svc-link full", readonly: true, hidden: true }));
  }
  if (o.status === "completed") {
    actions.append(h("span", { class: "full" }, t("svc.rate_callback")),
      h("div", { class: "full" }, ["satisfied", "basic", "unsatisfied"].map((score) =>
        h("button", { type: "button", dataset: { score }, onclick: () => rate(id, score) },
          tx("svc_score", score)))));
  }
  if (!["completed", "cancelled", "in_progress"].includes(o.status)) {
    actions.append(h("button", { id: "svc-cancel", class: "ghost full", type: "button",
      onclick: () => cancel(id) }, t("svc.cancel_order")));
  }
  const visit = o.visit;
  pane.replaceChildren(
    h("h2", {}, typeName(o.service_type_id), " · ", o.resident_name),
    h("p", {}, h("b", { id: "svc-order-status", dataset: { status: o.status } },
      tx("svc_order_status", o.status)),
    o.attention ? h("span", { class: "svc-attn" }, " · ", tx("svc_attention", o.attention)) : ""),
    h("dl", { class: "svc-facts" },
      h("dt", {}, t("svc.order_id")), h("dd", {}, o.id),
      h("dt", {}, t("svc.address")), h("dd", {}, o.address),
      h("dt", {}, t("svc.window")), h("dd", {}, `${full(o.window_start)} – ${stamp(o.window_end)}`),
      h("dt", {}, t("svc.worker")), h("dd", {}, o.worker_name || "—"),
      h("dt", {}, t("svc.price")), h("dd", {}, `¥${yuan(o.price_cents)} · ${tx("svc_payment", o.payment)}`)),
    actions,
    visit ? h("section", { id: "svc-visit" },
      h("h3", {}, t("svc.visit")),
      h("dl", { class: "svc-facts" },
        h("dt", {}, t("svc.check_in")), h("dd", {}, full(visit.check_in_at), " · ", tx("svc_method", visit.check_in_method)),
        h("dt", {}, t("svc.check_out")), h("dd", {}, visit.check_out_at ? `${full(visit.check_out_at)} · ${tx("svc_method", visit.check_out_method)}` : "—"),
        h("dt", {}, t("svc.duration")), h("dd", {}, visit.duration_min === null ? "—" : t("svc.minutes", { n: visit.duration_min })),
        h("dt", {}, t("svc.evidence")), h("dd", {}, t("svc.evidence_counts", { door: visit.door_events, motion: visit.motion_events })),
        h("dt", {}, t("svc.verified")), h("dd", { id: "svc-visit-status" },
          visit.flags.map((f) => h("span", { class: "svc-flag" }, tx("svc_flag", f))),
          visit.status === "flagged" ? null
            : h("span", { class: "svc-ok" }, tx("svc_visit_status", visit.status))))) : null,
    visit && visit.status === "flagged" ? h("div", { class: "svc-form" },
      h("span", { class: "full" }, t("svc.review")),
      h("button", { type: "button", id: "svc-review-accept", onclick: () => review(visit.id, true, id) },
        t("svc.review_accept")),
      h("button", { type: "button", id: "svc-review-reject", onclick: () => review(visit.id, false, id) },
        t("svc.review_reject"))) : null,
    o.ratings.length ? h("section", {}, h("h3", {}, t("svc.ratings")),
      h("ul", { id: "svc-ratings" }, o.ratings.map((r) => h("li", {},
        `${tx("svc_rating_source", r.source)}: ${tx("svc_score", r.score)}${r.comment ? ` — ${r.comment}` : ""}`)))) : null,
    timeline(o.timeline));
  render();
}

function timeline(entries) {
  return h("section", {}, h("h3", {}, t("svc.timeline")),
    h("ol", { class: "svc-timeline", id: "svc-timeline" }, entries.map((e) =>
      h("li", { dataset: { action: e.action } }, h("time", {}, full(e.ts)),
        tx("svc_action", e.action), " · ", e.actor_name))));
}

async function dispatch(id) {
  const worker = $("svc-worker").value || null;
  if (await attempt(() => desk(`/api/v1/service-orders/${encodeURIComponent(id)}/dispatch`,
    { method: "POST", body: { worker_id: worker } }))) {
    await load();
    await openOrder(id);
    say(t("svc.dispatched"), true);
  }
}

async function showLink(id) {
  const link = await attempt(() => desk(`/api/v1/service-orders/${encodeURIComponent(id)}/work-link`));
  if (!link) return;
  const input = $("svc-link-url");
  input.hidden = false;
  input.value = link.url;
  input.select();
}

async function rate(id, score) {
  if (await attempt(() => desk(`/api/v1/service-orders/${encodeURIComponent(id)}/ratings`,
    { method: "POST", body: { score, source: "callback" } }))) {
    await load();
    await openOrder(id);
    say(t("svc.saved"), true);
  }
}

async function review(visitId, accept, orderId) {
  if (await attempt(() => desk(`/api/v1/service-visits/${encodeURIComponent(visitId)}/review`,
    { method: "POST", body: { accept, note: "" } }))) {
    await load();
    await openOrder(orderId);
    say(t("svc.saved"), true);
  }
}

async function cancel(id) {
  const reason = window.prompt(t("svc.cancel_reason"));
  if (!reason) return;
  if (await attempt(() => desk(`/api/v1/service-orders/${encodeURIComponent(id)}/cancel`,
    { method: "POST", body: { reason } }), t("svc.saved"))) {
    await load();
    await openOrder(id);
  }
}

// -- providers, workers and plans --------------------------------------------------------------

async function renderProviders(main) {
  const providers = await attempt(() => desk("/api/v1/service-providers")) || [];
  const rows = [];
  for (const p of providers) {
    const workers = await attempt(() => desk(`/api/v1/service-providers/${encodeURIComponent(p.id)}/workers`)) || [];
    rows.push(h("section", { class: "panel", dataset: { provider: p.id } },
      h("h3", {}, `${p.name} · ${tx("svc_provider_kind", p.kind)} · ${p.phone}`),
      h("p", {}, p.service_types.map(typeName).join("、")),
      h("table", { class: "svc-table" },
        h("tr", {}, h("th", {}, t("svc.worker")), h("th", {}, t("svc.phone")), h("th", {}, t("svc.skills"))),
        workers.map((w) => h("tr", {}, h("td", {}, w.name), h("td", {}, w.phone),
          h("td", {}, w.skills.map(typeName).join("、"))))),
      h("div", { class: "svc-form" },
        h("input", { placeholder: t("svc.worker_name"), "data-field": "name" }),
        h("input", { placeholder: t("svc.phone"), "data-field": "phone" }),
        h("select", { "data-field": "skill" }, p.service_types.map((s) => h("option", { value: s }, typeName(s)))),
        h("button", { type: "button", onclick: (ev) => addWorker(p.id, ev.target.parentElement) },
          t("svc.add_worker")))));
  }
  main.replaceChildren(h("div", {}, rows));
}

async function addWorker(providerId, form) {
  const get = (f) => form.querySelector(`[data-field=${f}]`).value;
  if (await attempt(() => desk(`/api/v1/service-providers/${encodeURIComponent(providerId)}/workers`,
    { method: "POST", body: { name: get("name"), phone: get("phone"), skills: [get("skill")] } }),
  t("svc.saved"))) render();
}

async function renderPlans(main) {
  const plans = await attempt(() => desk("/api/v1/service-plans")) || [];
  main.replaceChildren(h("table", { class: "svc-table", id: "svc-plans" },
    h("tr", {}, h("th", {}, t("svc.resident")), h("th", {}, t("svc.type")),
      h("th", {}, t("svc.every_days")), h("th", {}, t("svc.window")), h("th", {}, "")),
    plans.map((p) => h("tr", {}, h("td", {}, p.resident_id), h("td", {}, typeName(p.service_type_id)),
      h("td", {}, t("svc.every_n_days", { n: p.every_days })),
      h("td", {}, `${p.first_date} ${p.start_time.slice(0, 5)}–${p.end_time.slice(0, 5)}`),
      h("td", {}, p.active ? h("button", { type: "button", onclick: () => stopPlan(p.id) }, t("svc.stop_plan"))
        : t("svc.stopped"))))),
  h("h3", {}, t("svc.new_plan")),
  h("div", { class: "svc-form", id: "svc-plan-form" },
    h("label", {}, t("svc.resident_id")), h("input", { "data-field": "resident" }),
    h("label", {}, t("svc.type")), h("select", { "data-field": "type" }, state.types.map((tp) =>
      h("option", { value: tp.id }, typeName(tp.id)))),
    h("label", {}, t("svc.every_days")), h("input", { "data-field": "every", type: "number", min: "1", value: "14" }),
    h("label", {}, t("svc.date")), h("input", { "data-field": "first", type: "date" }),
    h("label", {}, t("svc.start")), h("input", { "data-field": "start", type: "time", value: "09:00" }),
    h("label", {}, t("svc.end")), h("input", { "data-field": "end", type: "time", value: "11:00" }),
    h("button", { class: "primary full", type: "button", onclick: addPlan }, t("svc.create_plan"))));
}

async function addPlan() {
  const form = $("svc-plan-form");
  const get = (f) => form.querySelector(`[data-field=${f}]`).value;
  const body = { resident_id: get("resident"), service_type_id: get("type"),
    every_days: Number(get("every")), first_date: get("first"), start_time: get("start"),
    end_time: get("end") };
  if (await attempt(() => desk("/api/v1/service-plans", { method: "POST", body }), t("svc.saved"))) render();
}

async function stopPlan(id) {
  if (await attempt(() => desk(`/api/v1/service-plans/${encodeURIComponent(id)}/stop`,
    { method: "POST" }), t("svc.saved"))) render();
}

// -- wiring --------------------------------------------------------------------------------

function show(visible) {
  $("view-services").hidden = !visible;
  if (visible) {
    load().catch((err) => say(reason(err)));
    if (!state.timer) state.timer = setInterval(() => load({ quiet: true }).catch(() => {}), POLL_MS);
  } else if (state.timer) {
    clearInterval(state.timer);
    state.timer = null;
  }
}

/** What others do to an order (the worker, the elder's button, the engine's deadlines):
 *  the open order's pane is redrawn for these; the operator's own actions redraw it already. */
const OTHERS_ACTIONS = ["accepted", "declined", "checked_in", "checked_out", "accept_expired",
  "arrival_overdue", "rated", "followup_opened", "dispatched", "unassigned", "cancelled"];

/** A service.* event from the stream: reload the lists (or, with the view hidden, only
 *  the tab's count), once for a burst of events; and the open order, if it changed. */
function onServiceEvent(e) {
  const data = (e.detail && e.detail.data) || {};
  const sel = state.selected;
  if (sel && sel.kind === "order" && data.order_id === sel.id && OTHERS_ACTIONS.includes(data.action)) {
    state.reopen = sel.id;
  }
  clearTimeout(state.settle);
  state.settle = setTimeout(async () => {
    if ($("view-services").hidden) {
      loadCount().catch(() => {});
      return;
    }
    await load({ quiet: true }).catch(() => {});
    const id = state.reopen;
    state.reopen = null;
    if (id && state.selected && state.selected.id === id) await openOrder(id);
  }, SETTLE_MS);
}

async function loadCount() {
  const requests = await desk("/api/v1/service-requests");
  const count = $("svc-count");
  count.textContent = String(requests.length);
  count.classList.toggle("zero", requests.length === 0);
}

/** Once the console has signed in: who this is decides whether the set-up shows. */
async function whenReady() {
  try {
    const me = await desk("/api/v1/auth/me");
    state.role = me.role;
  } catch {
    return;
  }
  if (ADMIN_READERS.includes(state.role)) {
    state.admin = new AdminView($("svc-main"), { role: state.role, say,
      active: () => state.sub === "admin" && !$("view-services").hidden });
    $("svc-sub-admin").hidden = false;
  }
}

function init() {
  document.addEventListener("service-stream", onServiceEvent);
  // the language button (app.js) sets <html lang>: redraw in the new language now, not at
  // the next event or poll
  new MutationObserver(() => {
    if ($("view-services").hidden) return;
    say(""); // a message in the old language
    if (state.sub === "admin" && state.admin) state.admin.render();
    else render();
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  document.addEventListener("stream-state", (e) => {
    // back after a drop: the stream resumes where it stopped, but reload once anyway
    if (e.detail === "live" && !$("view-services").hidden) load({ quiet: true }).catch(() => {});
  });
  // app.js selects tabs (by click, key or code); follow its aria-selected on our tab
  const tab = $("tab-services");
  new MutationObserver(() => show(tab.getAttribute("aria-selected") === "true"))
    .observe(tab, { attributes: true, attributeFilter: ["aria-selected"] });
  for (const btn of document.querySelectorAll("#view-services [data-sub]")) {
    btn.addEventListener("click", () => { state.sub = btn.dataset.sub; render(); });
  }
  const wait = setInterval(() => {
    if (document.body.dataset.ready === "1") {
      clearInterval(wait);
      whenReady().then(() => {
        if (location.hash === "#services") $("tab-services").click();
      });
    }
  }, 100);
}

init();
