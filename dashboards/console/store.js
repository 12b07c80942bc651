// The console's picture of the open alerts, kept current by the live stream.
//
// The queue is loaded once (GET /alerts?open_only=true) and then every stream event
// carries the alert as it now is; details (offers, ladder, timeline) are refetched for
// the alert an event names. Events are applied in stream order, so a stale read that
// lands late never overwrites a newer state (updated_at decides).

import { api } from "../shared/api.js";

const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
export const CLOSED = new Set(["resolved", "closed"]);

export function severityOf(alert) {
  return alert.severity_override || alert.severity;
}

/** Severity first, then the oldest first: the one waiting longest at the top. */
export function compareAlerts(a, b) {
  const s = SEVERITY_RANK[severityOf(a)] - SEVERITY_RANK[severityOf(b)];
  if (s) return s;
  return new Date(a.opened_at) - new Date(b.opened_at);
}

export class AlertStore extends EventTarget {
  constructor() {
    super();
    this.alerts = new Map(); // id -> AlertPublic (or AlertDetail)
    this.details = new Map(); // id -> AlertDetail
    this.fresh = new Set(); // ids opened while the console was watching
  }

  sorted() {
    return [...this.alerts.values()].filter((a) => !CLOSED.has(a.status)).sort(compareAlerts);
  }

  get(id) { return this.alerts.get(id); }

  async load() {
    const list = await api("/api/v1/alerts?open_only=true&limit=500");
    this.alerts = new Map(list.map((a) => [a.id, a]));
    this.changed(null);
    await Promise.all(list.map((a) => this.refresh(a.id)));
  }

  /** Refetch the detail of one alert (offers, ladder, timeline). */
  async refresh(id) {
    try {
      const detail = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
      this.details.set(id, detail);
      this.upsert(detail, false);
      this.changed(id);
      return detail;
    } catch (err) {
      if (err.status === 404) {
        this.alerts.delete(id);
        this.details.delete(id);
        this.changed(id);
      }
      throw err;
    }
  }

  upsert(alert, announce = true) {
    const known = this.alerts.get(alert.id);
    if (known && new Date(known.updated_at) > new Date(alert.updated_at)) return false;
    if (CLOSED.has(alert.status)) {
      this.alerts.delete(alert.id);
      this.fresh.delete(alert.id);
    } else {
      this.alerts.set(alert.id, alert);
    }
    if (announce) this.changed(alert.id);
    return true;
  }

  /** Apply one stream event; returns the alert it was about, if any. */
  apply(type, data) {
    const alert = data && data.alert;
    const id = (alert && alert.id) || (data && data.alert_id) || null;
    if (alert) {
      const isNew = type === "alert.opened" && !this.alerts.has(alert.id);
      this.upsert(alert);
      if (isNew) {
        this.fresh.add(alert.id);
        this.dispatchEvent(new CustomEvent("opened", { detail: alert }));
      }
    }
    if (id && this.alerts.has(id)) this.refresh(id).catch(() => {});
    return id;
  }

  changed(id) { this.dispatchEvent(new CustomEvent("change", { detail: id })); }
}
