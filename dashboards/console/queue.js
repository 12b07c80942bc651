// The live alert queue: severity then age, a running timer per alert that turns red
// past the answer target while nobody has acknowledged, and where the ladder is.

import { h, clear } from "../shared/dom.js";
import { t, tx } from "../shared/i18n.js";
import { secondsSince, timer } from "../shared/time.js";
import { severityOf } from "./store.js";

/** The monitoring standard's answer target: an alert unacknowledged after this is late. */
export const ANSWER_TARGET_S = 60;

export function isUnacknowledged(alert) {
  return alert.status === "open" && !alert.acknowledged_at;
}

export function isOverdue(alert, now = Date.now()) {
  return isUnacknowledged(alert) && secondsSince(alert.opened_at, now) > ANSWER_TARGET_S;
}

/** "family", "neighbour+volunteer", "monitoring centre", "120" for one ladder step. */
export function stepLabel(step) {
  if (!step) return "";
  if (step.kind === "monitoring_centre") return t("ladder.centre");
  if (step.kind === "emergency_services") return t("ladder.emergency");
  if (step.relations && step.relations.length) {
    return step.relations.map((r) => tx("relation", r)).join(" / ");
  }
  return t("ladder.named_contacts");
}

/** Who was asked, who declined, who is silent, who accepted, from the detail's offers. */
export function offerSummary(detail) {
  const offers = (detail && detail.offers) || [];
  return {
    notified: offers.length,
    declined: offers.filter((o) => o.status === "declined"),
    silent: offers.filter((o) => o.status === "offered" || o.status === "no_answer"),
    accepted: offers.find((o) => o.status === "accepted") || null,
  };
}

export function assignedName(alert, detail) {
  if (!alert.assigned_contact_id) return null;
  const offer = ((detail && detail.offers) || []).find(
    (o) => o.contact_id === alert.assigned_contact_id);
  return offer ? offer.name : alert.assigned_contact_id;
}

/** One line about the escalation: step n/N and its people, or who is on it. */
export function ladderLine(alert, detail) {
  const parts = [];
  const name = assignedName(alert, detail);
  if (name) {
    parts.push(h("b", { class: "assignee" }, t("queue.assigned_to", { name })));
  } else if (alert.taken_over_by) {
    parts.push(h("b", {}, t("queue.taken_over")));
  }
  const run = detail && detail.ladder;
  if (run && !name) {
    if (run.status === "running" && run.step_index >= 0) {
      parts.push(h("span", {}, t("queue.step", { n: run.step_index + 1, total: run.steps.length,
        who: stepLabel(run.steps[run.step_index]) })));
    } else if (run.status === "exhausted") {
      parts.push(h("b", {}, t("queue.ladder_exhausted")));
    }
  }
  const sum = offerSummary(detail);
  if (sum.notified) {
    parts.push(h("span", {}, t("queue.offers", { notified: sum.notified,
      declined: sum.declined.length, silent: sum.silent.length })));
  }
  return parts.length ? parts.reduce((acc, p, i) => (i ? [...acc, " · ", p] : [p]), []) : null;
}

export function renderQueue(list, alerts, store, selectedId, onPick) {
  clear(list);
  const now = Date.now();
  for (const alert of alerts) {
    const detail = store.details.get(alert.id);
    const sev = severityOf(alert);
    const overdue = isOverdue(alert, now);
    const li = h("li", {
      class: `qi sev-${sev}-row${store.fresh.has(alert.id) && isUnacknowledged(alert) ? " new" : ""}`,
      role: "option", tabindex: alert.id === selectedId ? "0" : "-1",
      "aria-selected": alert.id === selectedId ? "true" : "false",
      dataset: { id: alert.id, status: alert.status, severity: sev },
      onclick: () => onPick(alert.id),
      onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); onPick(alert.id, true); } },
    },
    h("span", { class: "bar", "aria-hidden": "true" }),
    h("div", { class: "body" },
      h("div", { class: "line1" },
        h("span", { class: `badge sev-${sev}` }, tx("severity", sev)),
        h("span", { class: "kind" }, tx("kind", alert.kind)),
        alert.repeat_count > 0 ? h("span", { class: "tag" }, t("queue.repeats", { n: alert.repeat_count })) : null,
        alert.supervisor_escalated_at && isUnacknowledged(alert)
          ? h("span", { class: "tag supervisor" }, t("queue.supervisor")) : null),
      h("div", { class: "name" }, alert.resident_name || alert.gateway_id || alert.device_id || "—",
        alert.room ? h("span", { class: "hint" }, ` · ${alert.room}`) : null),
      h("div", { class: "addr", title: alert.address || "" }, alert.address || ""),
      h("div", { class: "ladder" }, ladderLine(alert, detail))),
    h("div", { class: "side" },
      h("span", { class: `timer${overdue ? " overdue" : ""}`, dataset: { since: alert.opened_at },
        title: t("queue.timer_hint") }, timer(secondsSince(alert.opened_at, now))),
      h("span", { class: `badge st st-${alert.status}` }, tx("status", alert.status))));
    list.append(li);
  }
}

/** Once a second: move the timers without re-rendering the list. */
export function tickTimers(root, store) {
  const now = Date.now();
  for (const el of root.querySelectorAll(".timer[data-since]")) {
    const item = el.closest("[data-id]");
    const alert = item ? store.get(item.dataset.id) : null;
    el.textContent = timer(secondsSince(el.dataset.since, now));
    el.classList.toggle("overdue", Boolean(alert && isOverdue(alert, now)));
  }
}
