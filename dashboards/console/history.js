// Case history (记录): resolved and closed cases stay on the record. Search and filters,
// each case's condensed timeline to the second with its actors, and the operator's
// sign-off of a case a responder resolved (待复核 → 已结案).

import { api } from "../shared/api.js";
import { clear, h } from "../shared/dom.js";
import { t, tx } from "../shared/i18n.js";
import { full } from "../shared/time.js";
import { CLOSURE_CODES } from "./detail.js";
import { choices, openModal, textarea, toast } from "./dialogs.js";
import { lineText } from "./timeline.js";

const enc = encodeURIComponent;
const KINDS = ["sos", "fall", "gas_alarm", "smoke_alarm", "vitals_alarm", "inactivity",
  "night_wandering", "door_left_open", "geofence_exit", "strap_removed", "welfare_check",
  "battery_low", "tamper", "device_offline", "gateway_offline", "gateway_id_conflict"];
const PAGE = 50;

function secs(s) {
  if (s === null || s === undefined) return "—";
  return s < 120 ? t("history.seconds", { n: Math.round(s) })
    : t("history.minutes", { n: (s / 60).toFixed(1) });
}

function option(value, label, selected = false) {
  return h("option", { value, selected }, label);
}

export class HistoryView {
  constructor(root, { me, canReview }) {
    this.root = root;
    this.me = me;
    this.canReview = canReview;
    this.page = null;
    this.offset = 0;
    this.selected = null;
    this.record = null;
    this.communities = [];
    this.districts = [];
    this.ready = null;
  }

  async load() {
    this.ready ||= this.build();
    await this.ready;
    await this.search();
  }

  async build() {
    try {
      [this.communities, this.districts] = await Promise.all([api("/api/v1/communities"),
        api("/api/v1/districts")]);
    } catch {
      this.communities = [];
      this.districts = [];
    }
    const form = h("form", { class: "history-filters", id: "history-form" },
      h("label", {}, h("span", {}, t("history.q")),
        h("input", { name: "q", type: "search", maxlength: 64, placeholder: t("history.q_hint") })),
      h("label", {}, h("span", {}, t("history.state")), h("select", { name: "state" },
        option("", t("history.any")), option("pending_review", t("review.pending")),
        option("closed", t("review.closed")))),
      h("label", {}, h("span", {}, t("history.kind")), h("select", { name: "kind" },
        option("", t("history.any")), KINDS.map((k) => option(k, tx("kind", k))))),
      this.districts.length > 1 ? h("label", {}, h("span", {}, t("history.district")),
        h("select", { name: "district_id" }, option("", t("history.any")),
          this.districts.map((d) => option(d.id, d.name)))) : null,
      h("label", {}, h("span", {}, t("history.community")), h("select", { name: "community_id" },
        option("", t("history.any")), this.communities.map((c) => option(c.id, c.name)))),
      h("label", {}, h("span", {}, t("history.closure")), h("select", { name: "closure_code" },
        option("", t("history.any")), CLOSURE_CODES.map((c) => option(c, tx("closure", c))))),
      h("label", {}, h("span", {}, t("history.responder")),
        h("input", { name: "responder", type: "search", maxlength: 64, size: 8 })),
      h("label", {}, h("span", {}, t("history.operators")),
        h("input", { name: "operator", type: "search", maxlength: 64, size: 8 })),
      h("label", {}, h("span", {}, t("history.since")), h("input", { name: "since", type: "date" })),
      h("label", {}, h("span", {}, t("history.until")), h("input", { name: "until", type: "date" })),
      h("label", { class: "check" }, h("input", { name: "mine", type: "checkbox", value: "1" }),
        h("span", {}, t("history.mine"))),
      h("button", { type: "submit", class: "primary" }, t("history.search")));
    form.addEventListener("submit", (e) => { e.preventDefault(); this.offset = 0; this.search(); });
    this.form = form;
    this.list = h("div", { class: "history-list", id: "history-list" });
    this.side = h("aside", { class: "history-case", id: "history-case" },
      h("p", { class: "hint" }, t("history.pick")));
    clear(this.root).append(form, h("div", { class: "history-body" }, this.list, this.side));
  }

  query() {
    const data = new FormData(this.form);
    const params = new URLSearchParams();
    for (const key of ["q", "state", "kind", "district_id", "community_id", "closure_code", "responder",
      "operator", "since", "until"]) {
      const v = String(data.get(key) || "").trim();
      if (v) params.set(key, v);
    }
    if (data.get("mine") && this.me) params.set("operator_id", this.me.id);
    params.set("limit", String(PAGE));
    params.set("offset", String(this.offset));
    return params;
  }

  async search() {
    try {
      this.page = await api(`/api/v1/records/history?${this.query()}`);
    } catch (err) {
      toast(t("error.load_history", { reason: err.message }), true);
      return;
    }
    this.renderList();
  }

  renderList() {
    const page = this.page;
    const list = clear(this.list);
    if (!page) return;
    list.append(h("p", { class: "hint", id: "history-total" }, t("history.total", { n: page.total })));
    const table = h("table", { class: "history" }, h("thead", {}, h("tr", {},
      ["history.opened", "history.kind", "history.resident", "history.community",
        "history.state", "history.closure", "history.ack", "history.responder",
        "history.operators"].map((k) => h("th", {}, t(k))))));
    const body = h("tbody");
    for (const c of page.items) {
      body.append(h("tr", {
        class: c.id === this.selected ? "selected" : "", tabindex: 0,
        dataset: { id: c.id, state: c.review_state },
        onclick: () => this.open(c.id),
        onkeydown: (e) => { if (e.key === "Enter") this.open(c.id); },
      },
      h("td", {}, full(c.opened_at)), h("td", {}, tx("kind", c.kind)),
      h("td", {}, c.resident_name || "—"), h("td", {}, c.community_name || "—"),
      h("td", {}, h("span", { class: `badge review-${c.review_state}` },
        c.review_state === "closed" ? t("review.closed") : t("review.pending"))),
      h("td", {}, tx("closure", c.closure_code) || "—"), h("td", {}, secs(c.ack_s)),
      h("td", {}, c.responder_name || "—"), h("td", {}, c.operators.join("、") || "—")));
    }
    if (!page.items.length) {
      body.append(h("tr", {}, h("td", { colspan: 9, class: "hint" }, t("history.none"))));
    }
    table.append(body);
    list.append(table);
    const nav = h("div", { class: "pager" });
    if (this.offset > 0) {
      nav.append(h("button", { class: "ghost", onclick: () => { this.offset -= PAGE; this.search(); } },
        t("history.prev")));
    }
    if (this.offset + PAGE < page.total) {
      nav.append(h("button", { class: "ghost", onclick: () => { this.offset += PAGE; this.search(); } },
        t("history.next")));
    }
    list.append(nav);
  }

  async open(id) {
    this.ready ||= this.build();
    await this.ready;
    this.selected = id;
    this.renderList();
    try {
      this.record = await api(`/api/v1/records/cases/${enc(id)}`);
    } catch (err) {
      toast(t("error.load_history", { reason: err.message }), true);
      return;
    }
    this.renderCase();
  }

  renderCase() {
    const rec = this.record;
    const side = clear(this.side);
    if (!rec) return;
    const c = rec.case;
    const pending = c.review_state === "pending_review";
    side.append(...[
      h("h3", { id: "case-title" }, tx("kind", c.kind), " · ", c.resident_name || "—"),
      h("p", {}, h("span", { class: `badge review-${c.review_state}`, id: "case-state" },
        pending ? t("review.pending") : t("review.closed")),
      " ", tx("closure", c.closure_code) || ""),
      h("dl", { class: "facts" },
        h("dt", {}, t("history.opened")), h("dd", {}, full(c.opened_at)),
        h("dt", {}, t("history.ack")), h("dd", {}, secs(c.ack_s)),
        h("dt", {}, t("history.accept")), h("dd", {}, secs(c.accept_s),
          c.accepted_step ? ` · ${t("history.at_step", { n: c.accepted_step })}` : ""),
        h("dt", {}, t("history.on_scene")), h("dd", {}, secs(c.on_scene_s)),
        h("dt", {}, t("history.responder")), h("dd", {}, c.responder_name || "—"),
        h("dt", {}, t("history.address")), h("dd", {}, c.address || "—")),
      pending && this.canReview
        ? h("button", { class: "primary", id: "case-review", onclick: () => this.review(c) },
          t("review.action")) : null,
      h("h3", {}, t("timeline.title")),
      h("ol", { class: "timeline full", id: "case-timeline" }, rec.timeline.map((e) =>
        h("li", { dataset: { action: e.action } }, h("time", { datetime: e.ts }, full(e.ts)),
          h("span", {}, lineText(e)))))].filter(Boolean));
  }

  async review(c) {
    const checked = Math.max(0, CLOSURE_CODES.indexOf(c.closure_code));
    const ok = await openModal({
      title: t("review.title", { name: c.resident_name || "" }), ok: t("review.confirm"),
      body: h("div", {}, h("p", { class: "hint" }, t("review.explain")),
        choices("closure_code", CLOSURE_CODES.map((x) => ({ value: x, label: tx("closure", x) })),
          { checked }),
        textarea("note", t("review.note"))),
      submit: (form) => api(`/api/v1/alerts/${enc(c.id)}/review`, { method: "POST", body: {
        closure_code: form.get("closure_code"), note: String(form.get("note") || "").trim() } }),
    });
    if (!ok) return;
    toast(t("toast.reviewed"));
    await this.search();
    await this.open(c.id);
  }
}
