// The family page's services (issue 10): what was delivered to their elder, with the
// visit's check-in/out; a rating and comment for each completed visit; and a request for
// help (the centre calls back). Waits for family.js to sign in, then reads the same
// session.

import { api } from "../shared/api.js";
import { h } from "../shared/dom.js";
import { lang, t, tx } from "../shared/i18n.js";
import { desk } from "../shared/services-api.js";
import { full } from "../shared/time.js";

const $ = (id) => document.getElementById(id);

async function render() {
  const me = await api("/api/v1/auth/me");
  if (me.role !== "family") return;
  const root = $("family-services");
  const blocks = [];
  for (const residentId of me.resident_ids) {
    const orders = await desk(`/api/v1/residents/${encodeURIComponent(residentId)}/services`);
    blocks.push(h("section", { class: "block", dataset: { resident: residentId } },
      h("h2", {}, t("fam.services")),
      orders.length ? h("ul", { class: "people" }, orders.map((o) => h("li", { dataset: { order: o.id } },
        h("span", {}, `${lang() === "en" ? o.service_name_en : o.service_name_zh} · ${full(o.window_start)}`,
          o.worker_name ? ` · ${o.worker_name}` : "",
          o.visit && o.visit.check_out_at ? h("div", { class: "label" },
            t("fam.visit_times", { start: full(o.visit.check_in_at), end: full(o.visit.check_out_at) })) : null,
          o.ratings.filter((r) => r.source === "family").map((r) =>
            h("div", { class: "label" }, `${t("fam.your_rating")}: ${tx("svc_score", r.score)}${r.comment ? ` — ${r.comment}` : ""}`))),
        h("span", { class: "pst" }, tx("svc_order_status", o.status)),
        o.status === "completed" && !o.ratings.some((r) => r.source === "family")
          ? rateForm(o) : null)))
        : h("p", {}, t("fam.no_services")),
      h("h2", {}, t("fam.request")),
      h("textarea", { id: `fam-note-${residentId}`, rows: "2", maxlength: "500",
        placeholder: t("fam.request_hint") }),
      h("button", { type: "button", class: "primary", onclick: () => request(residentId) },
        t("fam.request_send")),
      h("p", { class: "notice", id: `fam-msg-${residentId}`, hidden: true })));
  }
  root.replaceChildren(...blocks);
}

function rateForm(order) {
  const form = h("div", { class: "rate", dataset: { order: order.id } },
    ["satisfied", "basic", "unsatisfied"].map((score) => h("label", {},
      h("input", { type: "radio", name: `score-${order.id}`, value: score }), tx("svc_score", score))),
    h("input", { type: "text", maxlength: "500", placeholder: t("fam.comment"), "data-field": "comment" }),
    h("button", { type: "button", onclick: () => rate(order.id, form) }, t("fam.rate")));
  return form;
}

async function rate(orderId, form) {
  const picked = form.querySelector("input[type=radio]:checked");
  if (!picked) return;
  const comment = form.querySelector("[data-field=comment]").value;
  await desk(`/api/v1/service-orders/${encodeURIComponent(orderId)}/ratings`,
    { method: "POST", body: { score: picked.value, comment } });
  await render();
}

async function request(residentId) {
  const note = $(`fam-note-${residentId}`).value;
  const msg = $(`fam-msg-${residentId}`);
  try {
    await desk("/api/v1/service-requests", { method: "POST", body: { resident_id: residentId, note } });
    msg.textContent = t("fam.request_sent");
  } catch (err) {
    msg.textContent = err.message;
  }
  msg.hidden = false;
}

const wait = setInterval(() => {
  if (document.body.dataset.ready === "1") {
    clearInterval(wait);
    render().catch(() => {});
  }
}, 200);
