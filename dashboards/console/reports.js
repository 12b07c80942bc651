// Statistics (统计): response-time KPIs against the telecare standard, by hour, community
// and operator, as inline SVG charts (no build step, no chart library), and the monthly
// report for the civil-affairs bureau as XLSX and PDF (administrators only; audited).

import { ApiError, api, session } from "../shared/api.js";
import { clear, h, s } from "../shared/dom.js";
import { t } from "../shared/i18n.js";
import { TIME_ZONE, full } from "../shared/time.js";
import { toast } from "./dialogs.js";

function thisMonth() {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: TIME_ZONE, year: "numeric",
    month: "2-digit" }).formatToParts(new Date());
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}`;
}

function num(v, unit = "") {
  return v === null || v === undefined ? "—" : `${Number(v).toLocaleString("zh-CN")}${unit}`;
}

/** Vertical bars with value labels; `mark` draws a horizontal target line. */
export function barChart(items, { width = 640, height = 180, label = "", mark = null,
  max = null, id = null } = {}) {
  const pad = { l: 34, r: 8, t: 12, b: 28 };
  const top = Math.max(1, max ?? 0, ...items.map((i) => i.value || 0), mark ?? 0);
  const w = (width - pad.l - pad.r) / Math.max(1, items.length);
  const y = (v) => pad.t + (height - pad.t - pad.b) * (1 - v / top);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": label, id });
  svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y(0), y2: y(0), class: "axis" }));
  svg.append(s("text", { x: pad.l - 4, y: y(top) + 4, class: "tick", "text-anchor": "end" }, String(top)));
  items.forEach((item, i) => {
    const v = item.value || 0;
    const x = pad.l + i * w;
    svg.append(s("rect", { x: x + w * 0.15, y: y(v), width: w * 0.7, height: y(0) - y(v),
      class: item.bad ? "bar bad" : "bar", dataset: { key: item.key } },
    s("title", {}, `${item.label}: ${v}`)));
    if (v) svg.append(s("text", { x: x + w / 2, y: y(v) - 2, class: "val", "text-anchor": "middle" }, String(v)));
    svg.append(s("text", { x: x + w / 2, y: height - pad.b + 14, class: "tick", "text-anchor": "middle" },
      item.short ?? item.label));
  });
  if (mark !== null) {
    svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y(mark), y2: y(mark), class: "target" }));
  }
  return svg;
}

export class ReportsView {
  constructor(root, { canExport }) {
    this.root = root;
    this.canExport = canExport;
    this.report = null;
    this.built = false;
  }

  async load() {
    if (!this.built) this.build();
    await this.fetch();
  }

  build() {
    this.built = true;
    this.month = h("input", { type: "month", id: "report-month", value: thisMonth() });
    this.month.addEventListener("change", () => this.fetch());
    const bar = h("div", { class: "board-bar" }, h("h2", {}, t("reports.title")),
      h("label", {}, h("span", {}, t("reports.month")), this.month),
      this.canExport ? [
        h("button", { class: "ghost", id: "report-xlsx", onclick: () => this.download("xlsx") }, t("reports.xlsx")),
        h("button", { class: "ghost", id: "report-pdf", onclick: () => this.download("pdf") }, t("reports.pdf")),
      ] : null);
    this.body = h("div", { class: "reports", id: "reports-body" });
    clear(this.root).append(bar, this.body);
  }

  async fetch() {
    try {
      this.report = await api(`/api/v1/records/kpis?from_month=${encodeURIComponent(this.month.value)}`);
    } catch (err) {
      toast(t("error.load_reports", { reason: err.message }), true);
      return;
    }
    this.render();
  }

  render() {
    const r = this.report;
    const body = clear(this.body);
    if (!r) return;
    const f = r.overall;
    const std = r.standard;
    const meets = f.meets_standard;
    const card = (id, label, value, hint = "", cls = "") => h("div", { class: `kpi ${cls}`, id },
      h("div", { class: "kname" }, label), h("div", { class: "kval" }, value),
      hint ? h("div", { class: "hint" }, hint) : null);
    body.append(...[
      h("p", { class: "hint" }, t("reports.period", { from: full(r.period_start), to: full(r.period_end) })),
      h("div", { class: "kpis" },
        card("kpi-alerts", t("reports.alerts"), num(f.alerts), t("reports.alarm_calls", { n: f.alarm_calls })),
        card("kpi-ack60", t("reports.ack60"), num(f.ack_within_60s_pct, "%"),
          t("reports.standard", { n: std.ack_within_60s_pct }),
          f.ack_within_60s_pct === null ? "" : f.ack_within_60s_pct >= std.ack_within_60s_pct ? "good" : "bad"),
        card("kpi-ack180", t("reports.ack180"), num(f.ack_within_180s_pct, "%"),
          t("reports.standard", { n: std.ack_within_180s_pct }),
          f.ack_within_180s_pct === null ? "" : f.ack_within_180s_pct >= std.ack_within_180s_pct ? "good" : "bad"),
        card("kpi-meets", t("reports.meets"), meets === null ? "—" : meets ? t("reports.yes") : t("reports.no"),
          "", meets === null ? "" : meets ? "good" : "bad"),
        card("kpi-ack-median", t("reports.ack_median"), num(f.ack_median_s, t("reports.s")),
          t("reports.p90", { v: num(f.ack_p90_s, t("reports.s")) })),
        card("kpi-accept", t("reports.accept_median"), num(f.accept_median_s, t("reports.s")),
          t("reports.p90", { v: num(f.accept_p90_s, t("reports.s")) })),
        card("kpi-scene", t("reports.scene_median"), num(f.on_scene_median_s, t("reports.s")),
          t("reports.p90", { v: num(f.on_scene_p90_s, t("reports.s")) })),
        card("kpi-false", t("reports.false_rate"), num(f.false_alarm_rate_pct, "%")),
        card("kpi-cancel", t("reports.cancel_rate"), num(f.cancel_rate_pct, "%")),
        card("kpi-per100", t("reports.per100"), num(f.alerts_per_100_residents),
          t("reports.residents", { n: num(f.residents) })),
        card("kpi-offline", t("reports.offline_min"), num(f.device_offline_minutes)),
        card("kpi-battery", t("reports.batteries"), num(f.battery_replacements))),
      this.green(r, card),
      h("h3", {}, t("reports.by_hour")),
      barChart(r.by_hour.map((g) => ({ key: g.key, label: g.label, short: Number(g.key) % 3 ? "" : g.key,
        value: g.figures.alerts })), { label: t("reports.by_hour"), id: "chart-hour" }),
      h("h3", {}, t("reports.ack_by_hour")),
      barChart(r.by_hour.map((g) => ({ key: g.key, label: g.label, short: Number(g.key) % 3 ? "" : g.key,
        value: g.figures.ack_within_60s_pct ?? 0,
        bad: g.figures.ack_within_60s_pct !== null && g.figures.ack_within_60s_pct < std.ack_within_60s_pct })),
      { label: t("reports.ack_by_hour"), max: 100, mark: std.ack_within_60s_pct, id: "chart-ack-hour" }),
      h("h3", {}, t("reports.steps")),
      barChart(Object.entries(f.accepted_at_step).map(([k, v]) => ({ key: k, label: t("reports.step", { n: k }),
        value: v })), { label: t("reports.steps"), width: 320, id: "chart-steps" }),
      this.table(t("reports.by_community"), r.by_community, "table-community"),
      this.table(t("reports.by_operator"), r.by_operator, "table-operator"),
      r.by_district.length > 1 ? this.table(t("reports.by_district"), r.by_district, "table-district") : null,
      r.by_month.length > 1 ? this.table(t("reports.by_month"), r.by_month, "table-month") : null,
    ].filter(Boolean));
  }

  /** The service desk's and the care visits' figures (absent fields: nothing shown). */
  green(r, card) {
    const sv = r.services;
    const cv = r.care_visits;
    if (!sv && !cv) return null;
    const rated = sv ? sv.ratings : {};
    return h("section", { class: "panel", id: "reports-green" },
      sv ? h("h3", {}, t("reports.services")) : null,
      sv ? h("div", { class: "kpis" },
        card("kpi-orders", t("reports.orders"), num(sv.orders),
          t("reports.orders_hint", { done: sv.completed, cancelled: sv.cancelled })),
        card("kpi-ontime", t("reports.on_time"), num(sv.on_time_pct, "%"),
          t("reports.arrived", { n: sv.arrived })),
        card("kpi-evv", t("reports.evv"), num(sv.verified_pct, "%"),
          t("reports.evv_standard", { n: sv.evv_standard_pct }),
          sv.meets_evv_standard === null ? "" : sv.meets_evv_standard ? "good" : "bad"),
        card("kpi-flagged", t("reports.flagged"), num(sv.flagged),
          t("reports.flagged_open", { n: sv.flagged_open })),
        card("kpi-ratings", t("reports.ratings"),
          `${num(rated.satisfied)} / ${num(rated.basic)} / ${num(rated.unsatisfied)}`,
          t("reports.ratings_hint")),
        card("kpi-complaints", t("reports.complaints"), num(sv.complaints),
          t("reports.complaints_closed", { n: sv.complaints_closed })),
        card("kpi-levels", t("reports.levels"), num(sv.levels_met_pct, "%"),
          t("reports.levels_hint", { met: sv.levels_met, n: sv.entitled_residents })),
        card("kpi-vouchers", t("reports.vouchers"), num(sv.voucher_debited_cents / 100))) : null,
      cv ? h("h3", {}, t("reports.care_visits")) : null,
      cv ? h("div", { class: "kpis" },
        card("kpi-coverage", t("reports.coverage"), num(cv.coverage_pct, "%"),
          t("reports.coverage_hint", { on_time: cv.on_time, late: cv.late, missed: cv.missed })),
        card("kpi-concerns", t("reports.concerns"), num(cv.concerns_raised),
          t("reports.concerns_answered", { n: cv.concerns_answered }))) : null);
  }

  table(title, groups, id) {
    const heads = ["reports.group", "reports.alerts", "reports.ack60", "reports.ack_median",
      "reports.accept_median", "reports.false_rate", "reports.per100"];
    return h("section", { class: "panel" }, h("h3", {}, title),
      h("table", { class: "history", id }, h("thead", {}, h("tr", {}, heads.map((k) => h("th", {}, t(k))))),
        h("tbody", {}, groups.map((g) => h("tr", { dataset: { key: g.key } },
          h("td", {}, g.label), h("td", {}, num(g.figures.alerts)),
          h("td", {}, num(g.figures.ack_within_60s_pct, "%")),
          h("td", {}, num(g.figures.ack_median_s)), h("td", {}, num(g.figures.accept_median_s)),
          h("td", {}, num(g.figures.false_alarm_rate_pct, "%")),
          h("td", {}, num(g.figures.alerts_per_100_residents)))))));
  }

  /** A file download with the bearer token (a plain link cannot carry it). */
  async download(kind) {
    const month = this.month.value;
    try {
      const res = await fetch(`/api/v1/records/reports/monthly.${kind}?month=${encodeURIComponent(month)}`,
        { headers: { Authorization: `Bearer ${session.token}` }, cache: "no-store" });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new ApiError(res.status, body.detail || res.statusText, body.code || null);
      }
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: `report-${month}.${kind}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      toast(t("toast.exported"));
    } catch (err) {
      toast(t("error.export", { reason: err.message }), true);
    }
  }
}
