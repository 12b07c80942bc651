// A family member's view of their elder: did anything move lately, are the devices all
// right, is anything happening now. Kept current by the live stream (scoped by the
// server to their own elder).

import { ApiError, api, follow, login, session } from "../shared/api.js";
import { clear, h } from "../shared/dom.js";
import { applyI18n, lang, loadLanguages, setLang, t, tx } from "../shared/i18n.js";
import { ago, full } from "../shared/time.js";

const $ = (id) => document.getElementById(id);
let me = null;
let statuses = [];

async function load() {
  statuses = await Promise.all(me.resident_ids.map((id) =>
    api(`/api/v1/console/residents/${encodeURIComponent(id)}/status`)));
  render();
}

function render() {
  applyI18n();
  document.title = t("family.title");
  $("lang").textContent = lang() === "en" ? "中文" : "English";
  const root = clear($("elders"));
  if (!me) return;
  for (const s of statuses) {
    const alerts = s.open_alerts;
    root.append(h("section", { class: "elder", dataset: { resident: s.resident_id } },
      h("h2", {}, s.name),
      h("div", { class: "hint" }, s.address),
      h("p", {}, h("span", { class: "label" }, t("card.last_activity"), "："),
        s.last_activity_at ? h("b", {}, `${ago(s.last_activity_at)}（${full(s.last_activity_at)}）`)
          : t("card.activity_unknown")),
      h("p", {}, h("span", { class: "label" }, t("card.devices"), "："),
        s.devices_ok ? h("span", { class: "ok" }, t("family.devices_ok"))
          : h("span", { class: "bad" }, t("family.devices_bad", { n: s.device_problems.length }))),
      s.device_problems.length ? h("ul", {}, s.device_problems.map((d) => h("li", {},
        `${tx("device_type", d.type)}${d.room ? `（${d.room}）` : ""}：`,
        d.problems.filter((p) => p !== "not_tested").map((p) => tx("problem", p)).join("、")))) : null,
      h("p", {}, h("span", { class: "label" }, t("family.alerts"), "："),
        alerts.length ? h("span", { class: "bad" }, t("family.alerts_open", { n: alerts.length }))
          : h("span", { class: "ok" }, t("family.no_alerts"))),
      alerts.length ? h("ul", { class: "people" }, alerts.map((a) => h("li", {},
        h("span", {}, `${tx("kind", a.kind)} · ${ago(a.opened_at)}`),
        h("span", { class: "pst" }, tx("status", a.status))))) : null));
  }
}

async function signIn() {
  const form = $("signin");
  form.hidden = false;
  await new Promise((resolve) => {
    form.addEventListener("submit", async function onSubmit(event) {
      event.preventDefault();
      const data = new FormData(form);
      try {
        await login(String(data.get("username")), String(data.get("password")));
        me = await api("/api/v1/auth/me");
        form.removeEventListener("submit", onSubmit);
        form.hidden = true;
        resolve();
      } catch (err) {
        $("signin-error").textContent = err.status === 401 ? t("auth.wrong") : err.message;
      }
    });
  });
}

async function start() {
  await loadLanguages();
  $("lang").addEventListener("click", () => { setLang(lang() === "en" ? "zh-CN" : "en"); render(); });
  render();
  if (session.token) {
    try { me = await api("/api/v1/auth/me"); } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      session.token = null;
    }
  }
  if (!me) await signIn();
  await load();
  let pending = null;
  follow("/api/v1/stream", {
    onEvent: () => {
      clearTimeout(pending);
      pending = setTimeout(() => load().catch(() => {}), 500);
    },
  });
  setInterval(() => load().catch(() => {}), 60000);
  document.body.dataset.ready = "1";
}

start().catch((err) => {
  clear($("elders")).append(h("div", { class: "err" }, t("phone.failed", { reason: err.message })));
});
