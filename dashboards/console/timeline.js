// The alert timeline as people read it: one line per ladder step (who was asked, how
// many messages were delivered, failed channels summarised), one line per person's action.
// The live card (detail.js) folds the raw timeline here; the case history gets it folded
// by the server (records.service.condense) and reads it with the same lineText().

import { t, tx } from "../shared/i18n.js";

const DELIVERED = new Set(["sent", "delivered"]);

/** Fold per-contact offers and per-message deliveries into their ladder step's line. */
export function condense(entries) {
  const steps = new Set(entries.filter((e) => e.action === "ladder_step")
    .map((e) => (e.detail || {}).step_index));
  const asked = new Map();
  const contactStep = new Map();
  for (const e of entries) {
    const d = e.detail || {};
    if (e.action === "offered" && steps.has(d.step_index)) {
      if (!asked.has(d.step_index)) asked.set(d.step_index, []);
      asked.get(d.step_index).push(d.name || d.contact_id);
      contactStep.set(d.contact_id, d.step_index);
    }
  }
  const lines = [];
  const stepLine = new Map();
  const contactLine = new Map();
  let loose = null;
  for (const e of entries) {
    const d = { ...(e.detail || {}) };
    if (e.action === "ladder_step") {
      if (stepLine.has(d.step_index)) continue;
      Object.assign(d, { offered: asked.get(d.step_index) || [], delivered: 0, failed: {} });
      stepLine.set(d.step_index, lines.length);
      lines.push({ ...e, detail: d });
    } else if (e.action === "offered" && steps.has(d.step_index)) {
      continue;
    } else if (e.action === "notification") {
      let idx = contactLine.get(d.contact_id);
      if (idx === undefined && contactStep.has(d.contact_id)) idx = stepLine.get(contactStep.get(d.contact_id));
      if (idx === undefined) {
        if (DELIVERED.has(d.status)) continue;
        if (loose === null) {
          loose = lines.length;
          lines.push({ ...e, action: "notifications_failed", detail: { failed: {} } });
        }
        idx = loose;
      }
      const target = lines[idx].detail;
      if (DELIVERED.has(d.status)) target.delivered = (target.delivered || 0) + 1;
      else {
        target.failed = target.failed || {};
        target.failed[d.channel] = (target.failed[d.channel] || 0) + 1;
      }
    } else {
      if (e.action === "dispatched") {
        Object.assign(d, { delivered: 0, failed: {} });
        contactLine.set(d.contact_id, lines.length);
      }
      lines.push({ ...e, detail: d });
    }
  }
  return lines;
}

/** One condensed timeline line: who, what, and for a ladder step who was asked and
 *  which channels failed (one line per step, not per contact or message). */
export function lineText(e) {
  const who = e.actor === "system" ? "" : `${e.actor_name}：`;
  const d = e.detail || {};
  switch (e.action) {
    case "ladder_step": {
      const parts = [t("timeline.step", { n: (d.step_index ?? 0) + 1 })];
      if (d.offered && d.offered.length) parts.push(t("history.asked", { names: d.offered.join("、") }));
      if (d.delivered) parts.push(t("history.delivered", { n: d.delivered }));
      const failed = Object.entries(d.failed || {});
      if (failed.length) {
        parts.push(t("history.failed", { list: failed.map(([ch, n]) => `${tx("channel", ch)}×${n}`).join("、") }));
      }
      return parts.join(" · ");
    }
    case "notifications_failed":
      return t("history.failed", { list: Object.entries(d.failed || {})
        .map(([ch, n]) => `${tx("channel", ch)}×${n}`).join("、") });
    case "reviewed": {
      const code = d.closure_code ? tx("closure", d.closure_code) : "";
      return `${who}${t("review.line", { code })}${d.note ? `：${d.note}` : ""}`;
    }
    case "note": return `${who}${d.text || ""}`;
    case "accepted": return t("timeline.accepted", { name: e.actor_name });
    case "declined": return t("timeline.declined", { name: e.actor_name });
    case "dispatched": {
      const failed = Object.entries(d.failed || {});
      return `${who}${t("timeline.dispatched", { name: d.name || "" })}${d.note ? `：${d.note}` : ""}`
        + (failed.length ? ` · ${t("history.failed", { list: failed.map(([ch, n]) => `${tx("channel", ch)}×${n}`).join("、") })}` : "");
    }
    case "takeover": return `${who}${t("timeline.takeover")}${d.note ? `：${d.note}` : ""}`;
    case "ladder_stopped": return t("timeline.stopped", { reason: tx("stop_reason", d.reason) });
    case "ladder_exhausted": return t("timeline.exhausted");
    case "task": return tx("task", d.task);
    case "repeat": return t("timeline.repeat");
    case "opened": return t("timeline.opened", { kind: tx("kind", d.kind) || "" });
    default:
      if (e.to_status === "resolved") {
        return `${who}${t("history.resolved_line", { code: tx("closure", d.closure_code) })}${d.note ? `：${d.note}` : ""}`;
      }
      if (e.to_status) {
        const code = d.closure_code ? `（${tx("closure", d.closure_code)}）` : "";
        return `${who}${tx("status", e.to_status)}${code}${d.note ? `：${d.note}` : ""}`;
      }
      return `${who}${tx("timeline_action", e.action)}`;
  }
}
