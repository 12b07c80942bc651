// The page a responder's signed link opens: what happened, to whom, where, how long ago,
// who else was asked, and big buttons. The link is the only credential: the token goes
// in a header (not into server logs as a query string) and is never stored.

import { ApiError, api } from "../shared/api.js";
import { clear, h } from "../shared/dom.js";
import { applyI18n, lang, loadLanguages, setLang, t, tx } from "../shared/i18n.js";
import { positionBlock } from "../shared/position.js";
import { full, secondsSince, timer } from "../shared/time.js";

const $ = (id) => document.getElementById(id);
const alertId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const token = new URLSearchParams(location.search).get("token") || "";
const base = `/api/v1/respond/${encodeURIComponent(alertId)}`;
const PATHS = { accept: "accept", decline: "decline", en_route: "en-route", on_scene: "on-scene",
  resolve: "resolve" };
const OUTCOMES = ["helped_at_home", "taken_to_hospital", "ambulance_called", "false_alarm",
  "no_answer_forced_entry", "other"];
const POLL_MS = 10000;

let view = null;
let keySafe = null;
let error = null;
let busy = false;

function call(path = "", { method = "GET", body } = {}) {
  return respondApi(`${base}${path ? `/${path}` : ""}`, method, body);
}

async function respondApi(url, method, body) {
  const headers = { Accept: "application/json", "X-Responder-Token": token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, { method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError(res.status, (data && data.detail) || res.statusText, (data && data.code) || null);
  }
  return data;
}

async function refresh() {
  try {
    view = await call();
    error = null;
    await loadKeySafe();
  } catch (err) {
    error = err;
  }
  render();
}

/** The key-safe code is for the responder who accepted, while the alert is open (each
 *  read is audited on the server, so it is fetched once). */
async function loadKeySafe() {
  const over = view.status === "resolved" || view.status === "closed";
  if (over) keySafe = null;
  else if (view.you_accepted && view.has_key_safe && !keySafe) {
    keySafe = await call("key-safe").catch(() => null);
  }
}

async function act(action, body) {
  if (busy) return;
  busy = true;
  render();
  try {
    view = await call(PATHS[action], { method: "POST", body });
    error = null;
    await loadKeySafe();
  } catch (err) {
    error = err;
  } finally {
    busy = false;
  }
  render();
}

function errorText(err) {
  if (err.status === 401) return t("phone.link_expired");
  if (err.status === 404) return t("phone.not_found");
  if (err.status === 409) return t("phone.conflict", { reason: err.message });
  return t("phone.failed", { reason: err.message });
}

function render() {
  applyI18n();
  document.title = t("phone.title");
  $("lang").textContent = lang() === "en" ? "中文" : "English";
  const main = clear($("main"));
  const bar = clear($("bar"));
  bar.hidden = true;
  if (!view) {
    main.append(error ? h("div", { class: "err", id: "error" }, errorText(error))
      : h("p", {}, t("phone.loading")));
    return;
  }
  const r = view.resident;
  const since = view.raised_at || view.opened_at;
  main.append(
    h("div", { class: `what sev-${view.severity}`, id: "what" },
      h("h1", {}, tx("kind", view.kind)),
      r ? h("div", { class: "big" }, t("phone.who", { name: r.name,
        details: [tx("sex", r.sex), r.age !== null ? t("card.age", { n: r.age }) : null].filter(Boolean).join(t("phone.sep")) })) : null,
      h("div", { class: "ago", id: "ago", dataset: { since } }, t("phone.ago", { ago: timer(secondsSince(since)) })),
      h("div", { class: "hint", style: "color:#fff" }, full(since)),
      h("span", { class: "status", id: "status" }, tx("status", view.status))));
  if (error) main.append(h("div", { class: "err", id: "error" }, errorText(error)));
  if (view.status === "resolved" || view.status === "closed") {
    main.append(h("div", { class: "done", id: "done" }, t("phone.done")));
  } else if (view.you_accepted) {
    main.append(h("div", { class: "notice", id: "you" }, t("phone.you_accepted")));
  } else if (view.you.status === "declined") {
    main.append(h("div", { class: "notice", id: "you" }, t("phone.you_declined")));
  }

  // a GPS watch's alarm: where the person is now matters more than the home address
  if (view.where) main.append(positionBlock(view.where.position));

  if (r) {
    const geo = r.coordinates ? `geo:${r.coordinates.latitude},${r.coordinates.longitude}` : null;
    main.append(h("section", { class: "block", id: "where" },
      h("div", { class: "label" }, t("phone.where")),
      h("div", { class: "big" }, r.address, r.room ? ` · ${r.room}` : ""),
      geo ? h("a", { class: "maplink", href: geo }, t("phone.open_map")) : null,
      keySafe ? h("div", { class: "keysafe", id: "key-safe" },
        h("div", { class: "label" }, t("phone.key_safe")),
        h("div", { class: "code" }, keySafe.code),
        keySafe.location ? h("div", {}, keySafe.location) : null,
        keySafe.notes ? h("div", {}, keySafe.notes) : null) : null));
  }

  if (view.you_accepted && view.medical) {
    const m = view.medical;
    const chips = (items, cls = "") => (items.length
      ? h("div", { class: "chips" }, items.map((x) => h("span", { class: `chip ${cls}` }, x)))
      : h("span", {}, t("card.none_known")));
    main.append(h("section", { class: "block", id: "medical" },
      h("div", { class: "label" }, t("phone.medical")),
      m.phone ? h("a", { class: "tel", href: `tel:${m.phone}` }, t("phone.call_elder", { phone: m.phone })) : null,
      h("div", {}, t("card.conditions"), "：", chips(m.conditions)),
      h("div", {}, t("card.medications"), "：", chips(m.medications)),
      h("div", {}, t("card.allergies"), "：", chips(m.allergies, "allergy")),
      h("div", {}, `${t("card.mobility")}：${tx("mobility", m.mobility)}`,
        m.cognitive_impairment !== "none" ? ` · ${t("card.cognitive_flag", { level: tx("cognitive", m.cognitive_impairment) })}` : "")));
  }

  main.append(h("section", { class: "block", id: "others" },
    h("div", { class: "label" }, t("phone.others")),
    view.accepted_by && !view.you_accepted
      ? h("div", { class: "notice" }, t("phone.accepted_by", { name: view.accepted_by })) : null,
    view.others.length ? h("ul", { class: "people" }, view.others.map((p) => h("li", {},
      h("span", {}, t("phone.person", { name: p.name, relation: tx("relation", p.relation) })),
      h("span", { class: `pst ${p.status}` }, tx("offer", p.status)))))
      : h("div", {}, t("phone.nobody_else"))));

  renderButtons(bar);
}

function renderButtons(bar) {
  const actions = view.actions || [];
  if (!actions.length) return;
  bar.hidden = false;
  const btn = (action, cls, label) => h("button", {
    type: "button", id: `btn-${action}`, class: cls, disabled: busy,
    onclick: () => (action === "resolve" ? openResolve() : act(action)),
  }, label);
  const row1 = h("div", { class: "row" });
  if (actions.includes("accept")) row1.append(btn("accept", "go", t("phone.accept")));
  if (actions.includes("decline")) row1.append(btn("decline", "no", t("phone.decline")));
  if (actions.includes("en_route")) row1.append(btn("en_route", "step", t("phone.en_route")));
  if (actions.includes("on_scene")) row1.append(btn("on_scene", "step", t("phone.on_scene")));
  if (row1.children.length) bar.append(row1);
  if (actions.includes("resolve")) bar.append(h("div", { class: "row" }, btn("resolve", "fin", t("phone.resolve"))));
}

function openResolve() {
  const dlg = $("resolve-dialog");
  const form = $("resolve-form");
  clear($("outcomes")).append(...OUTCOMES.map((code) => h("label", {},
    h("input", { type: "radio", name: "closure_code", value: code, required: true }),
    h("span", {}, tx("closure", code)))));
  $("resolve-error").textContent = "";
  form.reset();
  dlg.showModal();
}

async function start() {
  await loadLanguages();
  $("lang").addEventListener("click", () => {
    setLang(lang() === "en" ? "zh-CN" : "en");
    render();
  });
  $("resolve-cancel").addEventListener("click", () => $("resolve-dialog").close());
  $("resolve-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    if (!data.get("closure_code")) {
      $("resolve-error").textContent = t("resolve.need_code");
      return;
    }
    $("resolve-dialog").close();
    await act("resolve", { closure_code: data.get("closure_code"),
      note: String(data.get("note") || "").trim() });
  });
  if (!token || !alertId) {
    error = new ApiError(401, "no token");
    render();
    return;
  }
  await refresh();
  setInterval(() => { if (!busy && !document.querySelector("dialog[open]")) refresh(); }, POLL_MS);
  setInterval(() => {
    const el = $("ago");
    if (el) el.textContent = t("phone.ago", { ago: timer(secondsSince(el.dataset.since)) });
  }, 1000);
  document.body.dataset.ready = "1";
}

start();

