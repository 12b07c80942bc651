// The district's service set-up in the console (issue 10): service types, providers and
// their workers, entitlement rules (who is subsidised for what, the monthly voucher and
// the minimum service levels) and the call-back settings; what an administrator did with
// curl before. The forms check what the server checks (the same patterns and bounds as
// services/models.py) before sending, and a refusal the server still sends is shown in
// the reader's language, never as the server's English text.
//
// Shown to the roles the API lets read the set-up (admin, operator, supervisor); the
// forms only to the roles it lets write (types, rules and settings: admin; providers and
// workers: admin and the centre). Hiding a form is a convenience, not the guard: the
// server refuses the others.

import { h } from "../shared/dom.js";
import { has, lang, t, tx } from "../shared/i18n.js";
import { desk, yuan } from "../shared/services-api.js";

export const ADMIN_READERS = ["admin", "operator", "supervisor"];
const CODE = /^[a-z][a-z0-9_]{1,31}$/;
const PHONE = /^\+?[0-9]{3,20}$/;
/** registry.ResidentCategory values plus the derived ones (services/catalogue.py) */
export const CATEGORIES = ["dibao", "dibian", "tekun", "disabled", "semi_disabled",
  "dementia", "empty_nest", "family_planning_special", "age_80", "age_90", "living_alone"];

/** The server's refusal in the reader's language: its Chinese message when it sent one,
 *  else the stable code (or, for a 422, the fields it names) mapped to our own text. */
export function reason(err) {
  if (!err || !err.status) return t("adm.err_network"); // no answer from the server at all
  const body = err.body || {};
  if (lang() === "zh-CN" && body.message_zh) return body.message_zh;
  if (lang() !== "zh-CN" && typeof body.detail === "string" && body.code !== "forbidden") {
    return body.detail;
  }
  if (body.code === "validation" || err.status === 422) {
    const fields = Array.isArray(body.detail)
      ? [...new Set(body.detail.map((d) => fieldName(d.loc)))] : [];
    return fields.length ? t("adm.err_fields", { fields: fields.join(lang() === "zh-CN" ? "、" : ", ") })
      : t("adm.err_invalid");
  }
  const key = `adm_err.${body.code || err.status}`;
  return has(key) ? t(key) : t("adm.err_status", { status: err.status || "" });
}

/** the separator of a list in a table cell */
function list() {
  return lang() === "en" ? ", " : "、";
}

function fieldName(loc) {
  const names = (loc || []).filter((x) => typeof x === "string" && x !== "body");
  const name = names.length ? names[names.length - 1] : "body";
  return has(`adm_field.${name}`) ? t(`adm_field.${name}`) : t("adm_field.body");
}

// -- one form: fields, client-side checks, the server's answer -----------------------------------

function field(label, input, { wide = false } = {}) {
  return h("label", { class: wide ? "adm-field wide" : "adm-field" }, h("span", {}, label), input);
}

function checks(name, options) {
  return h("div", { class: "adm-checks", "data-field": name, role: "group" },
    options.map(([value, label]) => h("label", {},
      h("input", { type: "checkbox", name, value }), h("span", {}, label))));
}

function values(form) {
  const out = {};
  for (const el of form.querySelectorAll("input, select")) {
    if (!el.name) continue;
    if (el.type === "checkbox") {
      if (!(el.name in out)) out[el.name] = [];
      if (el.checked) out[el.name].push(el.value);
    } else out[el.name] = el.value.trim();
  }
  return out;
}

/** A finite number in [lo, hi] (integer when asked), or null: "", "NaN", "1e999" fail. */
function num(text, lo, hi, integer = true) {
  if (text === "" || text === undefined) return null;
  const n = Number(text);
  if (!Number.isFinite(n) || n < lo || n > hi) return null;
  if (integer && !Number.isInteger(n)) return null;
  return n;
}

/** Show the problems next to the form and mark its fields; true when there are none. */
function showProblems(form, problems) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const [name] of problems) {
    const el = form.querySelector(`[name="${name}"], [data-field="${name}"]`);
    if (el) el.setAttribute("aria-invalid", "true");
  }
  form.querySelector(".adm-err").textContent = problems.map(([, text]) => text).join("；");
  return problems.length === 0;
}

export class AdminView {
  /** root: the element to fill; role: the signed-in user's role; say(text, ok) */
  constructor(root, { role, say, active = () => true }) {
    this.root = root;
    this.active = active;
    this.role = role;
    this.say = say;
    this.district = null;
    this.provider = null;
    this.data = { districts: [], communities: [], types: [], providers: [], workers: [],
      rules: [], config: null, accounts: [], users: [] };
  }

  get isAdmin() { return this.role === "admin"; }
  get canProviders() { return ADMIN_READERS.includes(this.role); }

  typeName(id) {
    const tp = this.data.types.find((x) => x.id === id);
    if (!tp) return id;
    return lang() === "en" ? tp.name_en : tp.name_zh;
  }

  async load() {
    const d = this.data;
    try {
      d.districts = await desk("/api/v1/districts");
      if (!this.district || !d.districts.some((x) => x.id === this.district)) {
        this.district = d.districts.length ? d.districts[0].id : null;
      }
      const q = encodeURIComponent(this.district || "");
      const [types, providers, communities, rules, config] = await Promise.all([
        desk("/api/v1/service-types"),
        desk("/api/v1/service-providers"),
        this.district ? desk(`/api/v1/communities?district_id=${q}`) : [],
        this.district ? desk(`/api/v1/districts/${q}/entitlement-rules`) : [],
        this.district ? desk(`/api/v1/districts/${q}/service-config`) : null,
      ]);
      Object.assign(d, { types, communities, rules, config,
        providers: providers.filter((p) => p.district_id === this.district) });
      if (!d.providers.some((p) => p.id === this.provider)) {
        this.provider = d.providers.length ? d.providers[0].id : null;
      }
      d.workers = this.provider
        ? await desk(`/api/v1/service-providers/${encodeURIComponent(this.provider)}/workers`) : [];
      if (this.isAdmin) {
        // accounts are the administrator's: the API refuses both lists to anyone else
        const [accounts, users] = await Promise.all([desk("/api/v1/service-accounts"),
          desk("/api/v1/users")]);
        d.accounts = accounts;
        d.users = users.filter((u) => ["provider", "worker"].includes(u.role) && u.active);
      }
    } catch (err) {
      this.say(reason(err));
    }
    this.render();
  }

  render() {
    if (!this.active()) return; // the user went to another part of the view meanwhile
    const d = this.data;
    this.root.replaceChildren(h("div", { class: "adm", id: "svc-admin" },
      h("div", { class: "adm-head" },
        h("label", {}, h("span", {}, t("adm.district")),
          h("select", { id: "adm-district", onchange: (e) => { this.district = e.target.value; this.load(); } },
            d.districts.map((x) => h("option", { value: x.id, selected: x.id === this.district }, x.name)))),
        h("p", { class: "hint" }, this.isAdmin ? t("adm.hint_admin") : t("adm.hint_centre"))),
      h("div", { class: "adm-grid" },
        this.typesPanel(), this.providersPanel(), this.workersPanel(),
        this.isAdmin ? this.accountsPanel() : null, this.rulesPanel(), this.configPanel())));
  }

  // -- service types ---------------------------------------------------------------------------

  typesPanel() {
    const rows = this.data.types.map((tp) => h("tr", { dataset: { id: tp.id }, tabindex: "0",
      onclick: () => this.fillType(tp) },
      h("td", {}, h("code", {}, tp.id)), h("td", {}, lang() === "en" ? tp.name_en : tp.name_zh),
      h("td", {}, t("svc.minutes", { n: tp.duration_min })), h("td", {}, `¥${yuan(tp.unit_price_cents)}`),
      h("td", {}, t("adm.deadlines", { accept: Math.round(tp.accept_within_s / 60),
        arrive: Math.round(tp.arrive_within_s / 60) })),
      h("td", {}, t("svc.minutes", { n: tp.min_visit_min }))));
    const form = this.isAdmin ? h("form", { class: "adm-form", id: "adm-type-form",
      onsubmit: (e) => { e.preventDefault(); this.saveType(e.target); } },
    field(t("adm_field.id"), h("input", { name: "id", maxlength: "32", placeholder: "cleaning" })),
    field(t("adm_field.name_zh"), h("input", { name: "name_zh", maxlength: "32" })),
    field(t("adm_field.name_en"), h("input", { name: "name_en", maxlength: "64" })),
    field(t("adm.duration_min"), h("input", { name: "duration_min", type: "number", min: "5", max: "1440", value: "60" })),
    field(t("adm.price_yuan"), h("input", { name: "price", type: "number", min: "0", max: "10000", step: "0.01", value: "0" })),
    field(t("adm.accept_min"), h("input", { name: "accept_min", type: "number", min: "1", max: "1440", value: "15" })),
    field(t("adm.arrive_min"), h("input", { name: "arrive_min", type: "number", min: "1", max: "1440", value: "30" })),
    field(t("adm.min_visit_min"), h("input", { name: "min_visit_min", type: "number", min: "0", max: "1440", value: "10" })),
    h("p", { class: "adm-err", role: "alert" }),
    h("button", { class: "primary", type: "submit", id: "adm-type-save" }, t("adm.save_type"))) : null;
    return h("section", { class: "panel adm-panel", id: "adm-types" },
      h("h3", {}, t("adm.types"), h("span", { class: "hint" }, t("adm.upsert_hint"))),
      h("div", { class: "adm-scroll" }, h("table", { class: `svc-table${this.isAdmin ? " adm-pickable" : ""}` },
        h("tr", {}, ["adm_field.id", "adm.name", "adm.duration_min", "adm.price_yuan",
          "adm.deadline", "adm.min_visit_min"].map((k) => h("th", {}, t(k)))), rows)), form);
  }

  /** A type's values into the form: saving with the same code changes it. */
  fillType(tp) {
    const form = this.root.querySelector("#adm-type-form");
    if (!form) return;
    const set = (name, value) => { form.querySelector(`[name=${name}]`).value = String(value); };
    set("id", tp.id);
    set("name_zh", tp.name_zh);
    set("name_en", tp.name_en);
    set("duration_min", tp.duration_min);
    set("price", yuan(tp.unit_price_cents));
    set("accept_min", Math.round(tp.accept_within_s / 60));
    set("arrive_min", Math.round(tp.arrive_within_s / 60));
    set("min_visit_min", tp.min_visit_min);
    form.querySelector("[name=name_zh]").focus();
  }

  async saveType(form) {
    const v = values(form);
    const p = [];
    if (!CODE.test(v.id)) p.push(["id", t("adm.bad_code")]);
    if (!v.name_zh) p.push(["name_zh", t("adm.need_name_zh")]);
    if (!v.name_en) p.push(["name_en", t("adm.need_name_en")]);
    const duration = num(v.duration_min, 5, 1440);
    if (duration === null) p.push(["duration_min", t("adm.bad_range", { what: t("adm.duration_min"), lo: 5, hi: 1440 })]);
    const price = num(v.price, 0, 10000, false);
    if (price === null) p.push(["price", t("adm.bad_range", { what: t("adm.price_yuan"), lo: 0, hi: 10000 })]);
    const accept = num(v.accept_min, 1, 1440);
    if (accept === null) p.push(["accept_min", t("adm.bad_range", { what: t("adm.accept_min"), lo: 1, hi: 1440 })]);
    const arrive = num(v.arrive_min, 1, 1440);
    if (arrive === null) p.push(["arrive_min", t("adm.bad_range", { what: t("adm.arrive_min"), lo: 1, hi: 1440 })]);
    const minVisit = num(v.min_visit_min, 0, 1440);
    if (minVisit === null) p.push(["min_visit_min", t("adm.bad_range", { what: t("adm.min_visit_min"), lo: 0, hi: 1440 })]);
    if (!showProblems(form, p)) return;
    await this.send(form, "/api/v1/service-types", "POST", {
      id: v.id, name_zh: v.name_zh, name_en: v.name_en, duration_min: duration,
      unit_price_cents: Math.round(price * 100), accept_within_s: accept * 60,
      arrive_within_s: arrive * 60, min_visit_min: minVisit });
  }

  // -- providers and workers ---------------------------------------------------------------------

  providersPanel() {
    const d = this.data;
    const rows = d.providers.map((pr) => h("tr", {
      dataset: { id: pr.id }, class: pr.id === this.provider ? "picked" : null, tabindex: "0",
      onclick: () => this.pickProvider(pr.id) },
    h("td", {}, pr.name), h("td", { class: "nowrap" }, tx("svc_provider_kind", pr.kind)),
    h("td", { class: "nowrap" }, pr.phone),
    h("td", {}, pr.communities.map((c) => this.communityName(c)).join(list())),
    h("td", {}, pr.service_types.map((s) => this.typeName(s)).join(list()))));
    const form = this.canProviders ? h("form", { class: "adm-form", id: "adm-provider-form",
      onsubmit: (e) => { e.preventDefault(); this.saveProvider(e.target); } },
    field(t("adm_field.name"), h("input", { name: "name", maxlength: "64" })),
    field(t("adm_field.kind"), h("select", { name: "kind" }, ["provider", "kitchen"].map((k) =>
      h("option", { value: k }, tx("svc_provider_kind", k))))),
    field(t("adm_field.phone"), h("input", { name: "phone", maxlength: "21", inputmode: "tel" })),
    field(t("adm_field.communities"), checks("communities", d.communities.map((c) => [c.id, c.name])), { wide: true }),
    field(t("adm_field.service_types"), checks("service_types", d.types.map((tp) => [tp.id, this.typeName(tp.id)])), { wide: true }),
    h("p", { class: "adm-err", role: "alert" }),
    h("button", { class: "primary", type: "submit", id: "adm-provider-save" }, t("adm.add_provider"))) : null;
    return h("section", { class: "panel adm-panel", id: "adm-providers" },
      h("h3", {}, t("adm.providers"), h("span", { class: "hint" }, t("adm.pick_provider"))),
      h("div", { class: "adm-scroll" }, h("table", { class: "svc-table adm-pickable" },
        h("tr", {}, ["adm_field.name", "adm_field.kind", "adm_field.phone", "adm_field.communities",
          "adm_field.service_types"].map((k) => h("th", {}, t(k)))), rows)), form);
  }

  communityName(id) {
    const c = this.data.communities.find((x) => x.id === id);
    return c ? c.name : id;
  }

  async pickProvider(id) {
    this.provider = id;
    try {
      this.data.workers = await desk(`/api/v1/service-providers/${encodeURIComponent(id)}/workers`);
    } catch (err) {
      this.say(reason(err));
    }
    this.render();
  }

  async saveProvider(form) {
    const v = values(form);
    const p = [];
    if (!v.name || v.name.length > 64) p.push(["name", t("adm.need_name")]);
    if (!PHONE.test(v.phone)) p.push(["phone", t("adm.bad_phone")]);
    if (!v.communities.length) p.push(["communities", t("adm.need_community")]);
    if (!v.service_types.length) p.push(["service_types", t("adm.need_type")]);
    if (!this.district) p.push(["name", t("adm.need_district")]);
    if (!showProblems(form, p)) return;
    const made = await this.send(form, "/api/v1/service-providers", "POST", {
      district_id: this.district, name: v.name, kind: v.kind, phone: v.phone,
      communities: v.communities, service_types: v.service_types });
    if (made) await this.pickProvider(made.id);
  }

  workersPanel() {
    const d = this.data;
    const pr = d.providers.find((x) => x.id === this.provider);
    const rows = d.workers.map((w) => h("tr", { dataset: { id: w.id } },
      h("td", {}, w.name), h("td", { class: "nowrap" }, w.phone), h("td", {}, w.skills.map((s) => this.typeName(s)).join(list()))));
    const form = pr && this.canProviders ? h("form", { class: "adm-form", id: "adm-worker-form",
      onsubmit: (e) => { e.preventDefault(); this.saveWorker(e.target); } },
    field(t("adm_field.name"), h("input", { name: "name", maxlength: "64" })),
    field(t("adm_field.phone"), h("input", { name: "phone", maxlength: "21", inputmode: "tel" })),
    field(t("adm_field.skills"), checks("skills", pr.service_types.map((s) => [s, this.typeName(s)])), { wide: true }),
    h("p", { class: "adm-err", role: "alert" }),
    h("button", { class: "primary", type: "submit", id: "adm-worker-save" }, t("adm.add_worker"))) : null;
    return h("section", { class: "panel adm-panel", id: "adm-workers" },
      h("h3", {}, pr ? t("adm.workers_of", { name: pr.name }) : t("adm.workers")),
      pr ? h("div", { class: "adm-scroll" }, h("table", { class: "svc-table" },
        h("tr", {}, ["adm_field.name", "adm_field.phone", "adm_field.skills"].map((k) => h("th", {}, t(k)))),
        rows)) : h("p", { class: "empty" }, t("adm.no_provider")),
      form);
  }

  async saveWorker(form) {
    const v = values(form);
    const p = [];
    if (!v.name || v.name.length > 64) p.push(["name", t("adm.need_name")]);
    if (!PHONE.test(v.phone)) p.push(["phone", t("adm.bad_phone")]);
    if (!v.skills.length) p.push(["skills", t("adm.need_skill")]);
    if (!showProblems(form, p)) return;
    await this.send(form, `/api/v1/service-providers/${encodeURIComponent(this.provider)}/workers`,
      "POST", { name: v.name, phone: v.phone, skills: v.skills });
  }

  // -- accounts: who signs in as a provider's administrator or as one of its workers ----------

  accountsPanel() {
    const d = this.data;
    const pr = d.providers.find((x) => x.id === this.provider);
    const providerName = (id) => (d.providers.find((x) => x.id === id) || { name: id }).name;
    const workerName = (id) => (id ? (d.workers.find((w) => w.id === id) || { name: id }).name : "—");
    const rows = d.accounts.map((a) => h("tr", { dataset: { user: a.user_id } },
      h("td", {}, a.username), h("td", {}, tx("role", a.role)),
      h("td", {}, providerName(a.provider_id)), h("td", {}, workerName(a.worker_id))));
    const form = pr ? h("form", { class: "adm-form", id: "adm-account-form",
      onsubmit: (e) => { e.preventDefault(); this.saveAccount(e.target); } },
    field(t("adm_field.user_id"), h("select", { name: "user_id" }, h("option", { value: "" }, "—"),
      d.users.map((u) => h("option", { value: u.id }, `${u.username} · ${tx("role", u.role)}`)))),
    field(t("adm_field.worker_id"), h("select", { name: "worker_id" },
      h("option", { value: "" }, t("adm.as_provider_admin")),
      d.workers.map((w) => h("option", { value: w.id }, w.name)))),
    h("p", { class: "adm-err", role: "alert" }),
    h("button", { class: "primary", type: "submit", id: "adm-account-save" },
      t("adm.link_account", { name: pr.name }))) : null;
    return h("section", { class: "panel adm-panel", id: "adm-accounts" },
      h("h3", {}, t("adm.accounts"),
        h("span", { class: "hint" }, t("adm.accounts_hint"))),
      h("div", { class: "adm-scroll" }, h("table", { class: "svc-table" },
        h("tr", {}, ["adm_field.user_id", "adm.role", "adm_field.provider_id", "adm_field.worker_id"]
          .map((k) => h("th", {}, t(k)))), rows)), form);
  }

  async saveAccount(form) {
    const v = values(form);
    const p = [];
    const user = this.data.users.find((u) => u.id === v.user_id);
    if (!user) p.push(["user_id", t("adm.need_user")]);
    else if (user.role === "worker" && !v.worker_id) p.push(["worker_id", t("adm.need_worker")]);
    else if (user.role === "provider" && v.worker_id) p.push(["worker_id", t("adm.provider_no_worker")]);
    if (!showProblems(form, p)) return;
    await this.send(form, "/api/v1/service-accounts", "POST", {
      user_id: v.user_id, provider_id: this.provider, worker_id: v.worker_id || null });
  }

  // -- entitlement rules ------------------------------------------------------------------------

  rulesPanel() {
    const d = this.data;
    const rows = d.rules.map((r) => h("tr", { dataset: { category: r.category } },
      h("td", {}, tx("svc_category", r.category)), h("td", {}, r.label),
      h("td", {}, `¥${yuan(r.monthly_voucher_cents)}`),
      h("td", {}, r.service_types.map((s) => this.typeName(s)).join(list())),
      h("td", {}, r.minimums.map((m) => t("adm.minimum", { type: this.typeName(m.service_type_id),
        times: m.times, hours: +(m.minutes / 60).toFixed(1) })).join("；") || "—")));
    const typeOptions = d.types.map((tp) => [tp.id, this.typeName(tp.id)]);
    const form = this.isAdmin ? h("form", { class: "adm-form", id: "adm-rule-form",
      onsubmit: (e) => { e.preventDefault(); this.saveRule(e.target); } },
    field(t("adm_field.category"), h("select", { name: "category",
      onchange: (e) => this.fillRule(e.target.form) },
    CATEGORIES.map((c) => h("option", { value: c }, tx("svc_category", c))))),
    field(t("adm_field.label"), h("input", { name: "label", maxlength: "64" })),
    field(t("adm.voucher_yuan"), h("input", { name: "voucher", type: "number", min: "0", max: "100000", step: "0.01", value: "0" })),
    field(t("adm_field.service_types"), checks("service_types", typeOptions), { wide: true }),
    field(t("adm.min_type"), h("select", { name: "min_type" }, h("option", { value: "" }, t("adm.no_minimum")),
      typeOptions.map(([id, name]) => h("option", { value: id }, name)))),
    field(t("adm.min_times"), h("input", { name: "min_times", type: "number", min: "0", max: "100", value: "0" })),
    field(t("adm.min_hours"), h("input", { name: "min_hours", type: "number", min: "0", max: "100", step: "0.5", value: "0" })),
    h("p", { class: "adm-err", role: "alert" }),
    h("button", { class: "primary", type: "submit", id: "adm-rule-save" }, t("adm.save_rule"))) : null;
    if (form) this.fillRule(form);
    return h("section", { class: "panel adm-panel wide", id: "adm-rules" },
      h("h3", {}, t("adm.rules"), h("span", { class: "hint" }, t("adm.rule_hint"))),
      h("div", { class: "adm-scroll" }, h("table", { class: "svc-table" },
        h("tr", {}, ["adm_field.category", "adm_field.label", "adm.voucher_yuan", "adm_field.service_types",
          "adm_field.minimums"].map((k) => h("th", {}, t(k)))), rows)), form);
  }

  /** The category's rule as it stands (so saving edits it), or a blank one to add. */
  fillRule(form) {
    const category = form.querySelector("[name=category]").value;
    const rule = this.data.rules.find((r) => r.category === category);
    const set = (name, value) => { form.querySelector(`[name=${name}]`).value = value; };
    set("label", rule ? rule.label : tx("svc_category", category));
    set("voucher", rule ? yuan(rule.monthly_voucher_cents) : "0");
    for (const box of form.querySelectorAll("[name=service_types]")) {
      box.checked = Boolean(rule && rule.service_types.includes(box.value));
    }
    const first = rule && rule.minimums.length ? rule.minimums[0] : null;
    set("min_type", first ? first.service_type_id : "");
    set("min_times", first ? String(first.times) : "0");
    set("min_hours", first ? String(+(first.minutes / 60).toFixed(2)) : "0");
  }

  async saveRule(form) {
    const v = values(form);
    const p = [];
    if (!CODE.test(v.category)) p.push(["category", t("adm.bad_code")]);
    if (!v.label || v.label.length > 64) p.push(["label", t("adm.need_label")]);
    const voucher = num(v.voucher, 0, 100000, false);
    if (voucher === null) p.push(["voucher", t("adm.bad_range", { what: t("adm.voucher_yuan"), lo: 0, hi: 100000 })]);
    if (!v.service_types.length) p.push(["service_types", t("adm.need_type")]);
    // the form edits one minimum; the rule's others stay as they are
    const existing = this.data.rules.find((r) => r.category === v.category);
    const minimums = existing ? existing.minimums.slice(1).filter((m) => m.service_type_id !== v.min_type)
      .map((m) => ({ service_type_id: m.service_type_id, times: m.times, minutes: m.minutes })) : [];
    if (v.min_type) {
      const times = num(v.min_times, 0, 100);
      const hours = num(v.min_hours, 0, 100, false);
      if (times === null) p.push(["min_times", t("adm.bad_range", { what: t("adm.min_times"), lo: 0, hi: 100 })]);
      if (hours === null) p.push(["min_hours", t("adm.bad_range", { what: t("adm.min_hours"), lo: 0, hi: 100 })]);
      if (times !== null && hours !== null) {
        minimums.unshift({ service_type_id: v.min_type, times, minutes: Math.round(hours * 60) });
      }
    }
    if (!this.district) p.push(["category", t("adm.need_district")]);
    if (!showProblems(form, p)) return;
    await this.send(form, "/api/v1/entitlement-rules", "POST", {
      district_id: this.district, category: v.category, label: v.label,
      monthly_voucher_cents: Math.round(voucher * 100), service_types: v.service_types, minimums });
  }

  // -- the district's call-back settings ------------------------------------------------------------

  configPanel() {
    const c = this.data.config;
    const shown = c ? h("dl", { class: "svc-facts", id: "adm-config-now" },
      h("dt", {}, t("adm.callback_share")), h("dd", {}, `${+(c.callback_share * 100).toFixed(1)}%`),
      h("dt", {}, t("adm.new_worker_visits")), h("dd", {}, String(c.new_worker_visits))) : null;
    const form = this.isAdmin && c ? h("form", { class: "adm-form", id: "adm-config-form",
      onsubmit: (e) => { e.preventDefault(); this.saveConfig(e.target); } },
    field(t("adm.callback_share"), h("input", { name: "share", type: "number", min: "0", max: "100", step: "0.1",
      value: String(+(c.callback_share * 100).toFixed(1)) })),
    field(t("adm.new_worker_visits"), h("input", { name: "new_worker_visits", type: "number", min: "0", max: "1000",
      value: String(c.new_worker_visits) })),
    h("p", { class: "adm-err", role: "alert" }),
    h("button", { class: "primary", type: "submit", id: "adm-config-save" }, t("adm.save_config"))) : null;
    return h("section", { class: "panel adm-panel", id: "adm-config" },
      h("h3", {}, t("adm.config"), h("span", { class: "hint" }, t("adm.config_hint"))), shown, form);
  }

  async saveConfig(form) {
    const v = values(form);
    const p = [];
    const share = num(v.share, 0, 100, false);
    if (share === null) p.push(["share", t("adm.bad_range", { what: t("adm.callback_share"), lo: 0, hi: 100 })]);
    const visits = num(v.new_worker_visits, 0, 1000);
    if (visits === null) p.push(["new_worker_visits", t("adm.bad_range", { what: t("adm.new_worker_visits"), lo: 0, hi: 1000 })]);
    if (!showProblems(form, p)) return;
    await this.send(form, `/api/v1/districts/${encodeURIComponent(this.district)}/service-config`,
      "PUT", { callback_share: share / 100, new_worker_visits: visits });
  }

  // -- sending --------------------------------------------------------------------------------------

  /** Send, then reload the lists; a refusal stays on the form, in the reader's language. */
  async send(form, path, method, body) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const result = await desk(path, { method, body });
      this.say(t("svc.saved"), true);
      await this.load();
      return result;
    } catch (err) {
      form.querySelector(".adm-err").textContent = reason(err);
      return null;
    } finally {
      button.disabled = false;
    }
  }
}
