// Shift handover (交接班): what is open, what changed during the shift, and what the
// next shift must follow up (unsigned resolutions, unanswered alerts, failed messages).

import { api } from "../shared/api.js";
import { clear, h } from "../shared/dom.js";
import { t, tx } from "../shared/i18n.js";
import { full } from "../shared/time.js";
import { toast } from "./dialogs.js";

export class HandoverView {
  constructor(root, { onOpen }) {
    this.root = root;
    this.onOpen = onOpen;
    this.report = null;
    this.hours = null;
  }

  async load() {
    if (!this.hours) {
      this.hours = h("select", { id: "handover-hours" },
        [8, 12, 24].map((n) => h("option", { value: n }, t("handover.hours", { n }))));
      this.hours.addEventListener("change", () => this.load());
      this.body = h("div", { class: "reports", id: "handover-body" });
      clear(this.root).append(h("div", { class: "board-bar" }, h("h2", {}, t("handover.title")),
        h("label", {}, h("span", {}, t("handover.period")), this.hours),
        h("button", { class: "ghost", onclick: () => this.load() }, t("devices.refresh"))), this.body);
    }
    try {
      this.report = await api(`/api/v1/records/handover?hours=${this.hours.value}`);
    } catch (err) {
      toast(t("error.load_history", { reason: err.message }), true);
      return;
    }
    this.render();
  }

  render() {
    const r = this.report;
    const body = clear(this.body);
    body.append(h("p", { class: "hint" }, t("handover.since", { since: full(r.since), now: full(r.generated_at) })));
    const section = (id, title, items, what) => h("section", { class: "panel", id },
      h("h3", {}, title, " ", h("span", { class: "count" }, String(items.length))),
      items.length ? h("ul", { class: "handover" }, items.map((i) => h("li", {
        dataset: { id: i.case.id }, tabindex: 0, onclick: () => this.onOpen(i.case.id),
        onkeydown: (e) => { if (e.key === "Enter") this.onOpen(i.case.id); },
      },
      h("span", { class: `badge st st-${i.case.status}` }, tx("status", i.case.status)), " ",
      h("b", {}, tx("kind", i.case.kind)), " · ", i.case.resident_name || "—", " ",
      h("span", { class: "hint" }, full(i.case.opened_at)), " ", what(i))))
        : h("p", { class: "hint" }, t("handover.none")));
    body.append(
      section("handover-follow", t("handover.follow_up"), r.follow_up, (i) => h("span", { class: "todo" },
        i.follow_up.map((f) => tx("follow_up", f)).join("、"))),
      section("handover-open", t("handover.open"), r.open, (i) => h("span", { class: "hint" },
        i.case.responder_name ? t("queue.assigned_to", { name: i.case.responder_name }) : "")),
      section("handover-changed", t("handover.changed"), r.changed, (i) => h("span", { class: "hint" },
        i.changes.map((c) => tx("timeline_action", c)).join(" → "))));
  }
}
