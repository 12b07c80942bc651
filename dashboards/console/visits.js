// Care visits in the console (issue 11): plans by risk tier with the rule that decided it,
// overdue visits on their ladder, the ledger (台账) per community and month with search
// and CSV export, coverage, and concerns with the learned baseline against today.
// Self-contained like services.js: it adds its own tab and view and follows the
// console's tab selection, so app.js needs no changes.

import { session } from "../shared/api.js";
import { h } from "../shared/dom.js";
import { t, tx } from "../shared/i18n.js";
import { desk, shanghaiNow } from "../shared/services-api.js";
import { full } from "../shared/time.js";

const $ = (id) => document.getElementById(id);
const SUBS = ["plans", "overdue", "ledger", "concerns", "coverage"];
const state = { sub: "plans", gen: 0, district: null, communities: [], month: null, q: "", community: "" };

function say(text, ok = false) {
  const el = $("cv-msg");
  el.textContent = text;
  el.classList.toggle("ok", ok);
}

function hm(minutes) {
  if (minutes === null || minutes === undefined) return "-";
  const m = Math.round(minutes);
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

function table(heads, rows) {
  return h("table", { class: "cv-table" },
    h("thead", {}, h("tr", {}, ...heads.map((x) => h("th", {}, x)))),
    h("tbody", {}, ...rows));
}

async function districtId() {
  if (!state.district) {
    const districts = await desk("/api/v1/districts");
    state.district = districts.length ? districts[0].id : null;
    state.communities = await desk(`/api/v1/communities?district_id=${encodeURIComponent(state.district)}`);
  }
  return state.district;
}

// -- the sub-views ---------------------------------------------------------------------

async function plans() {
  const district = await districtId();
  const rows = await desk(`/api/v1/care-plans?district_id=${encodeURIComponent(district)}`);
  return [
    h("button", { type: "button", id: "cv-generate", class: "primary", onclick: async () => {
      try {
        await desk(`/api/v1/districts/${encodeURIComponent(district)}/care-plans`, { method: "POST" });
        say(t("cvc.generated"), true);
      } catch (err) { say(err.message); }
      render();
    } }, t("cvc.generate")),
    table([t("cvc.resident"), t("cvc.tier"), t("cvc.rule"), t("cvc.frequency"), t("cvc.visitor"),
      t("cvc.backup"), ""], rows.map((p) => h("tr", { dataset: { resident: p.resident_id, tier: p.tier } },
      h("td", {}, p.resident_name),
      h("td", {}, h("span", { class: `cv-tier cv-tier-${p.tier}` }, tx("cv_tier", p.tier))),
      h("td", { class: "cv-rule" }, p.rule ? tx("cv_rule", p.rule) : "-",
        p.matched.length > 1 ? h("span", { class: "hint" }, ` (+${p.matched.slice(1).map((m) => tx("cv_rule", m)).join("、")})`) : null),
      h("td", {}, t("cvc.every", { v: p.visit_every_days, c: p.call_every_days })),
      h("td", {}, p.visitor_name || p.visitor_contact_id || "-", p.paired ? ` ${t("cvc.paired")}` : ""),
      h("td", {}, p.backup_name || p.backup_contact_id || "-"),
      h("td", {}, p.visitor_contact_id ? h("button", { type: "button", class: "ghost",
        "data-link": p.visitor_contact_id, onclick: (ev) => visitorLink(ev.target, p.visitor_contact_id) },
      t("cvc.link")) : null)))),
  ];
}

async function visitorLink(button, contactId) {
  try {
    const link = await desk(`/api/v1/care-visitors/${encodeURIComponent(contactId)}/link`);
    const input = h("input", { type: "text", readonly: true, class: "cv-link", value: link.url,
      onclick: (ev) => ev.target.select() });
    button.replaceWith(input);
    input.select();
  } catch (err) { say(err.message); }
}

async function overdue() {
  const district = await districtId();
  const rows = await desk(`/api/v1/care-tasks?overdue=true&district_id=${encodeURIComponent(district)}`);
  if (!rows.length) return [h("p", { class: "placeholder" }, t("cvc.no_overdue"))];
  return [table([t("cvc.resident"), t("cvc.mode"), t("cvc.due"), t("cvc.step"), t("cvc.assignee")],
    rows.map((x) => h("tr", { class: "cv-overdue", dataset: { id: x.id, step: String(x.step) } },
      h("td", {}, x.resident_name), h("td", {}, tx("cv_mode", x.mode)), h("td", {}, x.due_date),
      h("td", {}, tx("cvc_step", String(x.step))), h("td", {}, x.assignee_contact_id || "-"))))];
}

function findingText(f) {
  if (!f) return "";
  return `${f.level === "ok" ? t("cv.level_ok") : t("cv.level_attention")}${f.note ? ` ${f.note}` : ""}`;
}

async function downloadCsv() {
  const district = await districtId();
  const params = new URLSearchParams({ month: state.month });
  if (state.community) params.set("community_id", state.community);
  const res = await fetch(`/api/v1/districts/${encodeURIComponent(district)}/care-ledger.csv?${params}`,
    { headers: { Authorization: `Bearer ${session.token}` } });
  if (!res.ok) { say(t("cv.failed")); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = h("a", { href: url, download: `care-ledger-${district}-${state.month}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

async function ledger() {
  const district = await districtId();
  const params = new URLSearchParams({ district_id: district, month: state.month });
  if (state.community) params.set("community_id", state.community);
  if (state.q) params.set("q", state.q);
  const rows = await desk(`/api/v1/care-ledger?${params}`);
  const month = h("input", { type: "month", id: "cv-month", value: state.month });
  const community = h("select", { id: "cv-community" }, h("option", { value: "" }, t("cvc.all")),
    ...state.communities.map((c) => h("option", { value: c.id, selected: c.id === state.community }, c.name)));
  const q = h("input", { type: "search", id: "cv-q", value: state.q, placeholder: t("cvc.search") });
  const apply = () => { state.month = month.value || state.month; state.community = community.value; state.q = q.value; render(); };
  return [
    h("div", { class: "cv-filters" }, month, community, q,
      h("button", { type: "button", id: "cv-apply", onclick: apply }, t("cvc.apply")),
      h("button", { type: "button", id: "cv-export", onclick: downloadCsv }, t("cvc.export"))),
    table([t("cvc.when"), t("cvc.resident"), t("cvc.visitor"), t("cvc.mode"), t("cvc.verification"),
      t("cv.f_health"), t("cv.f_needs"), t("cv.note")],
    rows.map((e) => h("tr", { class: "cv-entry", dataset: { id: e.id, verification: e.verification } },
      h("td", {}, full(e.started_at)), h("td", {}, e.resident_name), h("td", {}, e.visitor_name),
      h("td", {}, tx("cv_mode", e.mode)), h("td", {}, tx("cv_verification", e.verification)),
      h("td", {}, findingText(e.findings.health)), h("td", {}, findingText(e.findings.needs)),
      h("td", {}, e.note)))),
  ];
}

function evidence(c) {
  const b = (c.evidence && c.evidence.baseline) || {};
  const now = (c.evidence && c.evidence.today) || {};
  if (c.kind === "no_morning_activity") {
    return t("cvc.ev_morning", { usual: hm(b.first_median_min), late: hm(b.late_after_min), days: b.days });
  }
  if (c.kind === "night_activity") {
    return t("cvc.ev_night", { n: now.night_events, limit: b.night_limit, mean: b.night_mean });
  }
  if (c.kind === "activity_decline") {
    return t("cvc.ev_decline", { now: now.events_mean_7d, usual: b.events_mean });
  }
  if (c.kind === "vital_drift") {
    return t("cvc.ev_vital", { metric: tx("vital", b.metric), now: now.mean, usual: b.mean,
      band: b.band, days: b.days });
  }
  return c.rule; // what the visitor or operator wrote
}

async function concerns() {
  const rows = await desk("/api/v1/care-concerns");
  if (!rows.length) return [h("p", { class: "placeholder" }, t("cvc.no_concerns"))];
  return [h("ul", { class: "cv-concerns" }, ...rows.map((c) => {
    const note = h("input", { type: "text", maxlength: "500", placeholder: t("cvc.resolution") });
    return h("li", { class: "cv-concern", dataset: { id: c.id, kind: c.kind } },
      h("strong", {}, c.resident_name), " · ", tx("cv_concern", c.kind), " · ", full(c.opened_at),
      h("p", { class: "cv-evidence" }, evidence(c)),
      h("div", { class: "row" }, note, h("button", { type: "button", onclick: async () => {
        try {
          await desk(`/api/v1/care-concerns/${encodeURIComponent(c.id)}/close`, { method: "POST",
            body: { resolution: note.value || t("cvc.closed_default") } });
          say(t("cvc.closed"), true);
        } catch (err) { say(err.message); }
        render();
      } }, t("cvc.close"))));
  }))];
}

async function coverage() {
  const district = await districtId();
  const cov = await desk(`/api/v1/districts/${encodeURIComponent(district)}/care-coverage?month=${state.month}`);
  const rows = (list) => list.map((r) => h("tr", {}, h("td", {}, r.name), h("td", {}, String(r.due)),
    h("td", {}, String(r.on_time)), h("td", {}, String(r.late)), h("td", {}, String(r.missed)),
    h("td", {}, r.share_on_time === null ? "-" : `${Math.round(r.share_on_time * 100)}%`)));
  const heads = [t("cvc.who"), t("cvc.due_n"), t("cvc.on_time"), t("cvc.late"), t("cvc.missed"), t("cvc.share")];
  return [h("h3", {}, t("cvc.by_community")), table(heads, rows(cov.by_community)),
    h("h3", {}, t("cvc.by_visitor")), table(heads, rows(cov.by_visitor))];
}

const VIEWS = { plans, overdue, ledger, concerns, coverage };

async function render() {
  // a slower, older render (e.g. after "generate") must not replace a newer one
  const gen = ++state.gen;
  for (const btn of document.querySelectorAll("#view-visits [data-sub]")) {
    btn.setAttribute("aria-pressed", btn.dataset.sub === state.sub ? "true" : "false");
  }
  try {
    const body = await VIEWS[state.sub]();
    if (gen !== state.gen) return;
    $("cv-main").replaceChildren(...body);
    $("cv-main").dataset.sub = state.sub;
    $("cv-main").dataset.q = state.q;
  } catch (err) {
    say(err.message);
  }
}

// -- wiring --------------------------------------------------------------------------------

function build() {
  const tab = h("button", { role: "tab", id: "tab-visits", "data-view": "visits",
    "aria-controls": "view-visits", "aria-selected": "false" }, h("span", { "data-i18n": "cvc.tab" }, t("cvc.tab")));
  document.querySelector(".tabs").append(tab);
  const view = h("section", { id: "view-visits", class: "view view-visits", role: "tabpanel",
    "aria-labelledby": "tab-visits", hidden: true },
  h("div", { class: "svc-bar" }, h("h2", { "data-i18n": "cvc.title" }, t("cvc.title")),
    ...SUBS.map((sub) => h("button", { type: "button", "data-sub": sub, "data-i18n": `cvc.sub_${sub}`,
      onclick: () => { state.sub = sub; render(); } }, t(`cvc.sub_${sub}`))),
    h("p", { id: "cv-msg", class: "svc-msg", role: "status", "aria-live": "polite" })),
  h("div", { id: "cv-main", class: "cv-main" }));
  document.querySelector("main").append(view);
  const others = ["queue", "map", "devices", "services"];
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tabs [role=tab]")) {
      other.setAttribute("aria-selected", other === tab ? "true" : "false");
    }
    for (const name of others) { const el = $(`view-${name}`); if (el) el.hidden = true; }
    view.hidden = false;
    render();
  });
  // another tab selected (by app.js or services.js): hide ours
  new MutationObserver(() => {
    if (tab.getAttribute("aria-selected") !== "true") view.hidden = true;
  }).observe(tab, { attributes: true, attributeFilter: ["aria-selected"] });
}

function init() {
  state.month = shanghaiNow().date.slice(0, 7);
  const wait = setInterval(() => {
    if (document.body.dataset.ready === "1") {
      clearInterval(wait);
      build();
      if (location.hash === "#visits") $("tab-visits").click();
    }
  }, 100);
}

init();
