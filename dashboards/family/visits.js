// The family page's care visits (issue 11): the visits and calls their elder received,
// with how each was verified and what the visitor found. Waits for family.js to sign
// in, then reads the same session (GET /care-ledger is scoped to the family's elders).

import { api } from "../shared/api.js";
import { h } from "../shared/dom.js";
import { t, tx } from "../shared/i18n.js";
import { desk } from "../shared/services-api.js";
import { full } from "../shared/time.js";

const HEADS = ["health", "mood", "food", "money", "home_safety", "needs"];

async function render() {
  const me = await api("/api/v1/auth/me");
  if (me.role !== "family") return;
  const entries = await desk("/api/v1/care-ledger");
  const root = document.getElementById("family-visits");
  root.replaceChildren(h("section", { class: "block" },
    h("h2", {}, t("famcv.title")),
    entries.length ? h("ul", { class: "people" }, ...entries.slice(0, 20).map((e) => {
      const attention = HEADS.filter((k) => e.findings[k] && e.findings[k].level === "attention");
      return h("li", { class: "cv-visit", dataset: { id: e.id, verification: e.verification } },
        h("span", {}, `${tx("cv_mode", e.mode)} · ${full(e.started_at)} · ${e.visitor_name}`,
          h("div", { class: "label" }, tx("cv_verification", e.verification)),
          attention.length ? h("div", { class: "label" }, t("famcv.attention", {
            what: attention.map((k) => t(`cv.f_${k}`)).join("、") })) : null,
          e.note ? h("div", { class: "label" }, e.note) : null));
    })) : h("p", {}, t("famcv.none"))));
}

const wait = setInterval(() => {
  if (document.body.dataset.ready === "1") {
    clearInterval(wait);
    render().catch(() => {});
  }
}, 200);
