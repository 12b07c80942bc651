// The service worker's phone page (issue 10), 360 px first. Two ways in: a signed link
// (/job/{order}?token=…, the link is the credential, as for responders) or the worker's
// own account (/job/: today's orders). Accept or decline, the address with a route
// link, check in and out (with the phone's position when the worker allows it), notes.

import { login, session } from "../shared/api.js";
import { h } from "../shared/dom.js";
import { applyI18n, lang, loadLanguages, setLang, t, tx } from "../shared/i18n.js";
import { desk, shanghaiNow } from "../shared/services-api.js";
import { full, stamp } from "../shared/time.js";

const $ = (id) => document.getElementById(id);
const path = location.pathname.replace(/\/+$/, "").split("/");
const LINK_ORDER = path.length >= 3 && path[2] ? decodeURIComponent(path[2]) : null;
const LINK_TOKEN = new URLSearchParams(location.search).get("token");

function say(text, ok = false) {
  const el = $("w-msg");
  el.textContent = text;
  el.classList.toggle("ok", ok);
}

/** The phone's position if the worker allows it within 5 s; never blocks the check-in. */
function position() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) { resolve({}); return; }
    const done = (value) => resolve(value);
    const timer = setTimeout(() => done({}), 5000);
    navigator.geolocation.getCurrentPosition(
      (pos) => { clearTimeout(timer); done({ latitude: pos.coords.latitude, longitude: pos.coords.longitude }); },
      () => { clearTimeout(timer); done({}); }, { timeout: 4000, maximumAge: 60000 });
  });
}

async function act(order, action) {
  let body;
  if (action === "check-in") body = await position();
  if (action === "check-out") body = { note: $(`note-${order.id}`).value };
  if (action === "decline") body = { reason: $(`note-${order.id}`).value };
  const base = LINK_TOKEN ? `/api/v1/jobs/${encodeURIComponent(order.id)}`
    : `/api/v1/service-orders/${encodeURIComponent(order.id)}`;
  try {
    await desk(`${base}/${action}`, { method: "POST", body, linkToken: LINK_TOKEN });
    say(t(`wk.done_${action.replace("-", "_")}`), true);
  } catch (err) {
    say(err.message);
  }
  await refresh();
}

function card(order, visit, routeUrl, phone) {
  const buttons = [];
  const b = (action, cls) => h("button", { type: "button", class: cls, id: `w-${action}`,
    onclick: () => act(order, action) }, t(`wk.${action.replace("-", "_")}`));
  if (order.status === "dispatched") buttons.push(b("accept", "primary"), b("decline", "ghost"));
  if (order.status === "accepted") buttons.push(b("check-in", "primary"));
  if (order.status === "in_progress") buttons.push(b("check-out", "primary"));
  return h("article", { class: "order", dataset: { id: order.id, status: order.status } },
    h("div", { class: "svc" }, lang() === "en" ? order.service_name_en : order.service_name_zh),
    h("span", { class: "st", id: "w-status" }, tx("svc_order_status", order.status)),
    h("p", {}, h("span", { class: "label" }, t("wk.when")), " ",
      `${stamp(order.window_start)}–${stamp(order.window_end)}`),
    h("p", {}, h("span", { class: "label" }, t("wk.who")), " ", order.resident_name,
      phone ? [" · ", h("a", { class: "tel", href: `tel:${phone}` }, phone)] : null),
    h("p", {}, h("span", { class: "label" }, t("wk.where")), " ", order.address, " ",
      h("a", { class: "maplink", id: "w-route", href: routeUrl, target: "_blank",
        rel: "noopener noreferrer" }, t("wk.route"))),
    visit ? h("p", {}, t("wk.checked_in_at", { time: full(visit.check_in_at) }),
      visit.check_out_at ? [" · ", t("wk.checked_out_at", { time: full(visit.check_out_at) })] : null,
      visit.flags && visit.flags.length ? h("span", {}, " ", visit.flags.map((f) =>
        h("span", { class: "flag" }, tx("svc_flag", f)))) : null) : null,
    order.status === "completed" ? h("p", { class: "done" }, t("wk.completed")) : null,
    buttons.length ? h("textarea", { id: `note-${order.id}`, rows: "2", maxlength: "500",
      placeholder: t("wk.note") }) : null,
    h("div", { class: "row" }, buttons));
}

async function refresh() {
  const root = $("orders");
  if (LINK_ORDER) {
    try {
      const view = await desk(`/api/v1/jobs/${encodeURIComponent(LINK_ORDER)}`,
        { linkToken: LINK_TOKEN || "missing" });
      root.replaceChildren(card(view.order, view.visit, view.route_url, view.resident_phone));
    } catch (err) {
      root.replaceChildren(h("p", { class: "err", id: "w-error" }, err.status === 401
        ? t("wk.link_invalid") : err.message));
    }
    return;
  }
  const today = shanghaiNow().date;
  const orders = await desk(`/api/v1/service-orders?day=${today}`);
  // the detail carries the visit and the route link the server builds
  const details = await Promise.all(orders.map((o) =>
    desk(`/api/v1/service-orders/${encodeURIComponent(o.id)}`)));
  root.replaceChildren(h("h1", {}, t("wk.today", { n: orders.length })),
    details.length ? details.map((o) => card(o, o.visit, o.route_url, null))
      : h("p", {}, t("wk.none")));
}

async function main() {
  await loadLanguages();
  applyI18n();
  $("lang").textContent = lang() === "en" ? "中文" : "English";
  $("lang").addEventListener("click", () => {
    setLang(lang() === "en" ? "zh-CN" : "en");
    applyI18n();
    $("lang").textContent = lang() === "en" ? "中文" : "English";
    refresh();
  });
  if (!LINK_ORDER && !session.token) {
    const form = $("signin");
    form.hidden = false;
    await new Promise((resolve) => {
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const data = new FormData(form);
        try {
          await login(String(data.get("username")), String(data.get("password")));
          form.hidden = true;
          resolve();
        } catch {
          $("signin-error").textContent = t("auth.wrong");
        }
      });
    });
  }
  await refresh();
  document.body.dataset.ready = "1";
}

main();
