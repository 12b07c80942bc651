// The right-hand pane: the selected alert (header, actions, escalation, timeline) and
// the resident's card (who, where, conditions, who to call, devices, vitals).

import { api } from "../shared/api.js";
import { clear, h, sparkline } from "../shared/dom.js";
import { t, tx } from "../shared/i18n.js";
import { age, ago, clock, full, secondsSince, timer } from "../shared/time.js";
import { choices, openModal, textarea, toast } from "./dialogs.js";
import { assignedName, isOverdue, offerSummary, stepLabel } from "./queue.js";
import { condense, lineText } from "./timeline.js";
import { positionBlock } from "../shared/position.js";
import { severityOf } from "./store.js";

export const CLOSURE_CODES = ["false_alarm", "helped_at_home", "taken_to_hospital",
  "ambulance_called", "no_answer_forced_entry", "device_fault", "other"];
const CALL_OUTCOMES = ["will_go", "cannot_go", "no_answer", "wrong_number", "advised", "other"];
/** vitals shown on the card, with the catalogue's normal range */
const VITALS = [
  ["heart_rate", 50, 120], ["respiration_rate", 10, 28], ["spo2", 90, null],
  ["systolic", 90, 180], ["diastolic", 50, 110], ["body_temperature", 35.5, 38.5],
];
const LOW_BATTERY = 20;
/** each read of a card is audited, so it is re-read every two minutes, not continuously */
const CARD_REFRESH_MS = 120000;

const enc = encodeURIComponent;

export class DetailPane {
  constructor(root, store) {
    this.root = root;
    this.store = store;
    this.alertId = null;
    this.residentId = null;
    this.card = null;
    this.cardFor = null;
    // device states, vitals and last activity move on: re-read the shown card now and then
    setInterval(() => {
      if (this.residentId && !document.hidden) this.loadCard(true).catch(() => {});
    }, CARD_REFRESH_MS);
  }

  get alert() { return this.alertId ? this.store.get(this.alertId) : null; }
  get detail() { return this.alertId ? this.store.details.get(this.alertId) : null; }

  async showAlert(alertId) {
    this.alertId = alertId;
    const alert = this.alert;
    this.residentId = alert ? alert.resident_id : null;
    this.render();
    await this.loadCard();
  }

  async showResident(residentId) {
    const open = this.store.sorted().find((a) => a.resident_id === residentId);
    if (open) return this.showAlert(open.id);
    this.alertId = null;
    this.residentId = residentId;
    this.render();
    return this.loadCard();
  }

  async loadCard(force = false) {
    const rid = this.residentId;
    if (!rid) { this.card = null; this.cardFor = null; return; }
    if (!force && this.cardFor === rid && this.card) return;
    const reason = this.alertId ? `alert ${this.alertId}` : "care map";
    try {
      const [card, status, watch] = await Promise.all([
        api(`/api/v1/residents/${enc(rid)}/card?hours=24&reason=${enc(reason)}`),
        api(`/api/v1/console/residents/${enc(rid)}/status`).catch(() => null),
        api(`/api/v1/residents/${enc(rid)}/watch-profile`).catch(() => null),
      ]);
      if (this.residentId !== rid) return;
      this.card = { ...card, last_activity_at: status ? status.last_activity_at : null,
        watch_profile: watch };
      this.cardFor = rid;
    } catch (err) {
      this.card = null;
      this.cardFor = null;
      toast(t("error.load_card", { reason: err.message }), true);
    }
    this.render();
  }

  /** Re-render after a stream change that concerns the shown alert. */
  update(id) {
    if (id === null || id === this.alertId) {
      if (this.alertId && !this.alert) {
        // resolved or closed: it left the queue
        this.alertId = null;
      }
      this.render();
    }
  }

  render() {
    // keep the keyboard where it was: a stream update must not steal the operator's focus
    const focused = this.root.contains(document.activeElement) ? document.activeElement.id : null;
    this.renderPane();
    if (focused) {
      const again = document.getElementById(focused);
      if (again) again.focus({ preventScroll: true });
    }
  }

  renderPane() {
    const root = clear(this.root);
    const alert = this.alert;
    if (!alert && !this.residentId) {
      root.append(h("div", { class: "placeholder" }, h("p", {}, t("detail.pick")),
        h("p", { class: "keys" }, t("keys.summary"))));
      return;
    }
    if (alert) {
      root.append(this.alertHeader(alert));
      if (alert.position) root.append(positionBlock(alert.position, "alert-position"));
      root.append(this.actions(alert));
    }
    const card = this.cardFor === this.residentId ? this.card : null;
    const grid = h("div", { class: "grid" });
    grid.append(h("div", { class: "col" }, this.whoPanel(card, alert), this.contactsPanel(card, alert)),
      h("div", { class: "col" }, alert ? this.ladderPanel(alert) : null,
        this.devicesPanel(card), this.vitalsPanel(card)));
    root.append(grid);
  }

  alertHeader(alert) {
    const sev = severityOf(alert);
    return h("div", { class: "alert-head", dataset: { id: alert.id } },
      h("span", { class: `badge sev-${sev}` }, tx("severity", sev)),
      h("h2", { id: "alert-title" }, tx("kind", alert.kind), " · ",
        alert.resident_name || alert.gateway_id || "—"),
      h("span", { class: `badge st st-${alert.status}`, id: "alert-status" }, tx("status", alert.status)),
      assignedName(alert, this.detail)
        ? h("span", { class: "assignee", id: "alert-assignee" },
          t("queue.assigned_to", { name: assignedName(alert, this.detail) })) : null,
      h("span", { class: "hint" }, t("detail.raised", {
        at: full(alert.raised_at || alert.opened_at) })),
      h("span", { class: `timer${isOverdue(alert) ? " overdue" : ""}`,
        dataset: { since: alert.opened_at } }, timer(secondsSince(alert.opened_at))));
  }

  actions(alert) {
    const unacked = !alert.acknowledged_at;
    const btn = (id, key, label, handler, cls = "", disabled = false) => h("button", {
      id: `act-${id}`, class: cls, onclick: handler, disabled, "aria-keyshortcuts": key,
    }, label, h("kbd", {}, key.toUpperCase()));
    return h("div", { class: "actions", role: "toolbar", "aria-label": t("detail.actions") },
      btn("ack", "a", t("action.acknowledge"), () => this.acknowledge(), unacked ? "primary" : "", !unacked),
      btn("dispatch", "d", t("action.dispatch"), () => this.dispatch(), "", !dispatchable(alert)),
      btn("call120", "e", t("action.call120"), () => this.call120(), "danger"),
      btn("note", "n", t("action.note"), () => this.note()),
      btn("takeover", "t", t("action.takeover"), () => this.takeover(), "", Boolean(alert.taken_over_by)),
      btn("resolve", "r", t("action.resolve"), () => this.resolve()));
  }

  // -- actions -----------------------------------------------------------------------------

  async post(path, body) {
    const alert = this.alert;
    if (!alert) return null;
    const updated = await api(`/api/v1/alerts/${enc(alert.id)}/${path}`, { method: "POST", body });
    if (updated) this.store.upsert(updated);
    this.store.refresh(alert.id).catch(() => {});
    return updated;
  }

  async acknowledge() {
    if (!this.alert || this.alert.acknowledged_at) return;
    try {
      await this.post("acknowledge");
      toast(t("toast.acknowledged"));
    } catch (err) {
      toast(t("error.action_failed", { reason: err.message }), true);
    }
  }

  async dispatch(contactId = null) {
    const alert = this.alert;
    if (!alert || !dispatchable(alert)) return;
    await this.loadCard();
    const contacts = (this.card && this.card.contacts) || [];
    const offers = new Map(((this.detail && this.detail.offers) || []).map((o) => [o.contact_id, o]));
    const sorted = [...contacts].sort((a, b) => relationRank(a) - relationRank(b) || a.priority - b.priority);
    if (!sorted.length) {
      toast(t("dispatch.no_contacts"), true);
      return;
    }
    const options = sorted.map((c) => {
      const offer = offers.get(c.id);
      return { value: c.id, label: `${c.name}（${tx("relation", c.relation)}）${c.phone}`,
        hint: offer ? tx("offer", offer.status) : tx("channel", c.preferred_channel),
        disabled: offer && offer.status === "declined" };
    });
    let checked = Math.max(0, sorted.findIndex((c) => c.id === contactId));
    if (contactId === null) {
      const firstFree = options.findIndex((o) => !o.disabled && !offers.has(o.value));
      checked = firstFree >= 0 ? firstFree : 0;
    }
    const body = h("div", {}, h("p", { class: "hint" }, t("dispatch.explain")),
      choices("contact_id", options, { checked }),
      textarea("note", t("dispatch.note"), { rows: 2, maxlength: 500 }));
    const ok = await openModal({
      title: t("dispatch.title", { name: alert.resident_name || "" }), ok: t("dispatch.send"),
      body, submit: async (form) => {
        const note = String(form.get("note") || "").trim();
        const updated = await api(`/api/v1/console/alerts/${enc(alert.id)}/dispatch`, {
          method: "POST", body: { contact_id: form.get("contact_id"), note } });
        this.store.upsert(updated);
        await this.store.refresh(alert.id).catch(() => {});
      },
    });
    if (ok) toast(t("toast.dispatched"));
  }

  async call120() {
    const alert = this.alert;
    if (!alert) return;
    await this.loadCard();
    const card = this.card;
    const r = card ? card.resident : null;
    const hh = card ? card.household : null;
    const accepted = offerSummary(this.detail).accepted;
    const unknown = t("call120.ask_on_scene");
    const rows = [
      ["call120.address", [alert.address || (hh && hh.address) || "—",
        alert.room ? ` · ${alert.room}` : ""].join("")],
      ["call120.landmark", (hh && hh.notes) || unknown],
      ["call120.patient", r ? [r.name, tx("sex", r.sex), r.birth_date ? t("card.age", { n: age(r.birth_date) }) : ""]
        .filter(Boolean).join(" · ") : (alert.resident_name || "—")],
      ["call120.what", `${tx("kind", alert.kind)} · ${full(alert.raised_at || alert.opened_at)}`],
      ["call120.conscious", unknown],
      ["call120.history", r && r.conditions.length ? r.conditions.join("、") : t("card.none_known")],
      ["call120.medications", r && r.medications.length ? r.medications.join("、") : t("card.none_known")],
      ["call120.allergies", r && r.allergies.length ? r.allergies.join("、") : t("card.none_known")],
      ["call120.mobility", r ? `${tx("mobility", r.mobility)} · ${tx("cognitive", r.cognitive_impairment)}` : "—"],
      ["call120.callback", r && r.phone ? r.phone : "—"],
      ["call120.on_scene", accepted ? `${accepted.name}（${tx("relation", accepted.relation)}）` : t("call120.nobody_yet")],
      ["call120.access", hh && hh.has_key_safe ? t("call120.key_safe") : t("call120.no_key_safe")],
      ["call120.meet", t("call120.meet_hint")],
    ];
    const body = h("div", {},
      h("p", {}, h("span", { class: "call120" }, "120"), " ",
        h("a", { href: "tel:120", class: "tel" }, t("call120.dial"))),
      h("p", { class: "hint" }, t("call120.explain")),
      h("dl", { class: "checklist", id: "call120-list" },
        rows.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
      textarea("note", t("call120.note_label"), { rows: 2, maxlength: 1800 }));
    const ok = await openModal({
      title: t("call120.title"), ok: t("call120.record"), danger: true, body, wide: true,
      submit: async (form) => {
        const extra = String(form.get("note") || "").trim();
        await this.post("notes", { text: t("call120.note_text") + (extra ? `：${extra}` : "") });
      },
    });
    if (ok) toast(t("toast.noted"));
  }

  async note() {
    if (!this.alert) return;
    const ok = await openModal({
      title: t("note.title"), ok: t("note.save"),
      body: textarea("text", t("note.label"), { required: true, rows: 4 }),
      submit: (form) => this.post("notes", { text: String(form.get("text")).trim() }),
    });
    if (ok) toast(t("toast.noted"));
  }

  async takeover() {
    if (!this.alert) return;
    const ok = await openModal({
      title: t("takeover.title"), ok: t("takeover.confirm"),
      body: h("div", {}, h("p", {}, t("takeover.explain")), textarea("note", t("note.label"))),
      submit: (form) => this.post("takeover", { note: String(form.get("note") || "").trim() }),
    });
    if (ok) toast(t("toast.taken_over"));
  }

  async resolve() {
    const alert = this.alert;
    if (!alert) return;
    const ok = await openModal({
      title: t("resolve.title"), ok: t("resolve.confirm"),
      body: h("div", {}, h("p", { class: "hint" }, t("resolve.explain")),
        choices("closure_code", CLOSURE_CODES.map((c) => ({ value: c, label: tx("closure", c) })),
          { checked: -1 }),
        textarea("note", t("resolve.note"))),
      submit: (form) => {
        if (!form.get("closure_code")) throw new Error(t("resolve.need_code"));
        return this.post("resolve", { closure_code: form.get("closure_code"),
          note: String(form.get("note") || "").trim() });
      },
    });
    if (ok) toast(t("toast.resolved"));
  }

  async callOutcome(contact) {
    const alert = this.alert;
    const ok = await openModal({
      title: t("call.title", { name: contact.name }), ok: t("call.save"),
      body: h("div", {},
        h("p", {}, h("a", { class: "tel", href: `tel:${contact.phone}` }, `${t("call.dial")} ${contact.phone}`)),
        choices("outcome", CALL_OUTCOMES.map((o) => ({ value: o, label: tx("call_outcome", o) })),
          { checked: -1 }),
        textarea("note", t("note.label"), { rows: 2, maxlength: 1800 })),
      submit: async (form) => {
        const outcome = form.get("outcome");
        if (!outcome) throw new Error(t("call.need_outcome"));
        const extra = String(form.get("note") || "").trim();
        const text = t("call.note_text", { name: contact.name,
          relation: tx("relation", contact.relation), phone: contact.phone,
          outcome: tx("call_outcome", outcome) }) + (extra ? `：${extra}` : "");
        if (alert) await this.post("notes", { text });
        return outcome;
      },
    });
    if (ok === "will_go" && alert) await this.dispatch(contact.id);
    else if (ok) toast(t("toast.noted"));
  }

  // -- card panels -------------------------------------------------------------------------

  whoPanel(card, alert) {
    if (!card) {
      return h("section", { class: "panel" }, h("h3", {}, t("card.resident")),
        h("p", { class: "hint" }, this.residentId ? t("card.loading") : t("card.no_resident")),
        alert && alert.address ? h("p", {}, alert.address) : null);
    }
    const r = card.resident;
    const hh = card.household;
    const years = age(r.birth_date);
    const flags = [];
    if (r.cognitive_impairment && r.cognitive_impairment !== "none") {
      flags.push(h("span", { class: "flag", id: "flag-cognitive" }, t("card.cognitive_flag", {
        level: tx("cognitive", r.cognitive_impairment) })));
    }
    if (r.wandering_risk) flags.push(h("span", { class: "flag" }, t("card.wandering")));
    if (r.allergies.length) flags.push(h("span", { class: "flag allergy" }, t("card.has_allergies")));
    const chips = (items, cls = "") => (items.length
      ? h("span", { class: "chips" }, items.map((x) => h("span", { class: `chip ${cls}` }, x)))
      : h("span", { class: "hint" }, t("card.none_known")));
    return h("section", { class: "panel", id: "resident-card" },
      h("h3", {}, t("card.resident"),
        h("button", { class: "ghost hint", onclick: () => this.loadCard(true) }, t("card.refresh"))),
      h("div", { class: "who-line" }, r.name, " ",
        h("span", { class: "hint" }, [tx("sex", r.sex), years !== null ? t("card.age", { n: years }) : null]
          .filter(Boolean).join(" · "))),
      flags.length ? h("div", {}, flags) : null,
      h("dl", { class: "facts" },
        h("dt", {}, t("card.address")), h("dd", {}, hh.address, alert && alert.room ? ` · ${alert.room}` : ""),
        h("dt", {}, t("card.living")), h("dd", {}, tx("living", r.living_situation)),
        h("dt", {}, t("card.mobility")), h("dd", {}, tx("mobility", r.mobility)),
        h("dt", {}, t("card.phone")), h("dd", {}, r.phone ? h("a", { href: `tel:${r.phone}` }, r.phone) : "—"),
        h("dt", {}, t("card.language")), h("dd", {}, r.language),
        h("dt", {}, t("card.conditions")), h("dd", {}, chips(r.conditions)),
        h("dt", {}, t("card.medications")), h("dd", {}, chips(r.medications)),
        h("dt", {}, t("card.allergies")), h("dd", {}, chips(r.allergies, "allergy")),
        h("dt", {}, t("card.last_activity")), h("dd", { id: "last-activity" }, lastActivity(card)),
        h("dt", {}, t("card.key_safe")), h("dd", {}, hh.has_key_safe ? t("card.key_safe_yes") : t("card.key_safe_no")),
        hh.notes ? [h("dt", {}, t("card.notes")), h("dd", {}, hh.notes)] : null,
        r.notes ? [h("dt", {}, t("card.resident_notes")), h("dd", {}, r.notes)] : null),
      this.watchProfile(card));
  }

  /** The resident's GPS-watch profile: the safe area around home, strap removal, risk. */
  watchProfile(card) {
    const w = card.watch_profile;
    if (!w) return null;
    const fence = w.home
      ? t("watch.fence", { lat: w.home.latitude.toFixed(5), lon: w.home.longitude.toFixed(5),
        radius: Math.round(w.radius_m) })
      : t("watch.no_fence");
    return h("div", { class: "watch-profile", id: "watch-profile" },
      h("h4", {}, t("watch.title"),
        h("button", { class: "ghost", id: "watch-edit", onclick: () => this.editWatch(card) },
          t("watch.edit"))),
      h("div", { id: "watch-fence" }, fence),
      h("div", { id: "watch-strap" }, w.strap_alert ? t("watch.strap_on") : t("watch.strap_off")),
      w.effective_high_risk ? h("div", { class: "flag", id: "watch-risk" }, t("watch.high_risk")) : null);
  }

  async editWatch(card) {
    const w = card.watch_profile || {};
    const coords = card.household.coordinates;
    const home = w.home || (coords ? { latitude: coords.latitude, longitude: coords.longitude } : null);
    const num = (name, label, value, min, max, step) => h("label", {}, h("span", {}, label),
      h("input", { type: "number", name, id: `watch-${name}`, min, max, step,
        value: value === null || value === undefined ? "" : String(value) }));
    const box = (name, label, checked) => h("label", { class: "check" },
      h("input", { type: "checkbox", name, id: `watch-${name}`, checked }), h("span", {}, label));
    const body = h("div", { class: "watch-form" },
      h("p", { class: "hint" }, t("watch.form_hint")),
      num("lat", t("watch.lat"), home ? home.latitude : null, -90, 90, "any"),
      num("lon", t("watch.lon"), home ? home.longitude : null, -180, 180, "any"),
      num("radius", t("watch.radius"), w.radius_m ?? (home ? 300 : null), 1, 50000, "any"),
      box("strap_alert", t("watch.strap_alert"), w.strap_alert !== false),
      box("high_risk", t("watch.high_risk_flag"), Boolean(w.high_risk)));
    const saved = await openModal({
      title: t("watch.title"), ok: t("watch.save"), body,
      submit: async (data) => {
        const fields = ["lat", "lon", "radius"].map((k) => String(data.get(k) || "").trim());
        const filled = fields.filter(Boolean).length;
        if (filled !== 0 && filled !== 3) throw new Error(t("watch.need_all"));
        const [lat, lon, radius] = fields.map(Number);
        const payload = {
          home: filled ? { latitude: lat, longitude: lon } : null,
          radius_m: filled ? radius : null,
          strap_alert: data.get("strap_alert") === "on",
          high_risk: data.get("high_risk") === "on",
        };
        try {
          return await api(`/api/v1/residents/${enc(card.resident.id)}/watch-profile`,
            { method: "PUT", body: payload });
        } catch (err) {
          // the API's reason is English; say it in the operator's language
          if (err.status === 422) throw new Error(t("watch.invalid"));
          throw err;
        }
      },
    });
    if (!saved) return;
    toast(t("watch.saved"));
    if (this.card === card) this.card = { ...card, watch_profile: saved };
    this.render();
  }

  contactsPanel(card, alert) {
    const panel = h("section", { class: "panel", id: "contacts" }, h("h3", {}, t("card.contacts"),
      h("span", { class: "hint" }, t("card.contacts_hint"))));
    if (!card) return panel;
    const offers = new Map(((this.detail && this.detail.offers) || []).map((o) => [o.contact_id, o]));
    const list = h("ul", { class: "contacts" });
    const sorted = [...card.contacts].sort((a, b) => relationRank(a) - relationRank(b) || a.priority - b.priority);
    for (const c of sorted) {
      const offer = offers.get(c.id);
      list.append(h("li", { dataset: { contact: c.id } },
        h("div", {}, h("span", { class: "cname" }, c.name), " ",
          h("span", { class: "cmeta" }, tx("relation", c.relation)),
          offer ? h("span", { class: `offer-st offer-${offer.status}` }, tx("offer", offer.status)) : null),
        h("div", { class: "cbtns" },
          h("a", { class: "tel", href: `tel:${c.phone}`, title: t("call.dial") }, c.phone),
          alert ? h("button", { onclick: () => this.callOutcome(c), class: "call-outcome" }, t("call.called")) : null,
          alert && dispatchable(alert)
            ? h("button", { onclick: () => this.dispatch(c.id), class: "dispatch-one" }, t("action.dispatch_short")) : null),
        h("div", { class: "cmeta" }, tx("channel", c.preferred_channel),
          c.notes ? ` · ${c.notes}` : "")));
    }
    if (!sorted.length) list.append(h("li", { class: "hint" }, t("card.no_contacts")));
    panel.append(list);
    return panel;
  }

  ladderPanel(alert) {
    const detail = this.detail;
    const panel = h("section", { class: "panel", id: "ladder" }, h("h3", {}, t("ladder.title")));
    const run = detail && detail.ladder;
    if (run) {
      panel.append(h("ol", { class: "ladder-steps" }, run.steps.map((s, i) => h("li", {
        class: i === run.step_index && run.status === "running" ? "current" : i < run.step_index ? "done" : "",
      }, `${i + 1}. ${stepLabel(s)}`))));
      const line = [tx("ladder_status", run.status)];
      if (run.status === "running" && run.due_at) {
        line.push(t("ladder.next_at", { at: clock(run.due_at) }));
      }
      if (run.stop_reason) line.push(tx("stop_reason", run.stop_reason));
      panel.append(h("p", { class: "hint" }, line.join(" · ")));
    } else if (detail) {
      panel.append(h("p", { class: "hint" }, t("ladder.none")));
    }
    const sum = offerSummary(detail);
    if (detail && detail.offers.length) {
      panel.append(h("p", {}, t("ladder.notified", { names: detail.offers.map((o) => o.name).join("、") }),
        sum.declined.length ? h("span", {}, " · ", t("ladder.declined", { names: sum.declined.map((o) => o.name).join("、") })) : null,
        sum.silent.length ? h("span", {}, " · ", t("ladder.silent", { names: sum.silent.map((o) => o.name).join("、") })) : null));
    }
    const tl = h("ol", { class: "timeline", id: "timeline" });
    // one line per ladder step, not per contact or message (timeline.js)
    for (const e of condense((detail && detail.timeline) || []).reverse()) {
      tl.append(h("li", { dataset: { action: e.action } }, h("time", { datetime: e.ts }, clock(e.ts)),
        h("span", {}, e.action === "severity" ? timelineText(e) : lineText(e))));
    }
    panel.append(h("h3", {}, t("timeline.title")), tl);
    return panel;
  }

  devicesPanel(card) {
    const panel = h("section", { class: "panel", id: "devices-panel" }, h("h3", {}, t("card.devices"),
      card && card.gateway_online !== null ? h("span", { class: card.gateway_online ? "on" : "off" },
        card.gateway_online ? t("device.gateway_online") : t("device.gateway_offline")) : null));
    if (!card) return panel;
    const table = h("table", { class: "devices" }, h("thead", {}, h("tr", {},
      h("th", {}, t("device.type")), h("th", {}, t("device.room")), h("th", {}, t("device.state")),
      h("th", {}, t("device.battery")), h("th", {}, t("device.last_seen")))));
    const body = h("tbody");
    for (const d of card.devices) {
      const lowBattery = d.battery !== null && d.battery < LOW_BATTERY;
      body.append(h("tr", { dataset: { device: d.device.id } },
        h("td", {}, tx("device_type", d.device.type)),
        h("td", {}, d.device.room || "—"),
        h("td", {}, d.online === null ? h("span", { class: "hint" }, t("device.unknown"))
          : h("span", { class: d.online ? "on" : "off" }, d.online ? t("device.online") : t("device.offline"))),
        h("td", { class: lowBattery ? "lowbat" : "" }, d.battery === null ? "—" : `${Math.round(d.battery)}%`),
        h("td", {}, d.last_seen ? ago(d.last_seen) : "—")));
    }
    if (!card.devices.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "hint" }, t("device.none"))));
    table.append(body);
    panel.append(table);
    return panel;
  }

  vitalsPanel(card) {
    const panel = h("section", { class: "panel", id: "vitals" }, h("h3", {}, t("card.vitals"),
      h("span", { class: "hint" }, t("card.vitals_window"))));
    if (!card) return panel;
    const series = {};
    for (const p of card.vitals) {
      for (const [name, value] of Object.entries(p.values)) {
        (series[name] ||= []).push({ t: p.ts, v: value });
      }
    }
    const grid = h("div", { class: "vitals" });
    for (const [name, low, high] of VITALS) {
      const pts = series[name];
      if (!pts || !pts.length) continue;
      const last = pts.reduce((a, b) => (new Date(a.t) > new Date(b.t) ? a : b));
      const out = (low !== null && last.v < low) || (high !== null && last.v > high);
      grid.append(h("div", { class: "vital", dataset: { vital: name } },
        h("div", { class: "vname" }, tx("vital", name)),
        h("div", { class: `vval${out ? " off" : ""}` }, `${fmtNum(last.v)} ${t(`unit.${name}`)}`,
          h("span", { class: "hint" }, ` · ${ago(last.t)}`)),
        sparkline(pts, { low, high, label: tx("vital", name) })));
    }
    if (!grid.children.length) grid.append(h("p", { class: "hint" }, t("card.no_vitals")));
    panel.append(grid);
    return panel;
  }
}

/** Someone can still be sent: nobody has accepted yet (the server answers 409 otherwise). */
function dispatchable(alert) {
  return ["open", "acknowledged", "cancel_requested"].includes(alert.status) && !alert.assigned_contact_id;
}

function fmtNum(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function relationRank(contact) {
  return ["family", "neighbour", "volunteer", "grid_worker", "doctor"].indexOf(contact.relation);
}

/** The last time the home showed a person moving: the newest activity the card knows of. */
function lastActivity(card) {
  const ts = card.last_activity_at || null;
  return ts ? `${ago(ts)}（${full(ts)}）` : t("card.activity_unknown");
}

function timelineText(e) {
  const who = e.actor === "system" ? "" : `${e.actor_name}：`;
  const d = e.detail || {};
  switch (e.action) {
    case "note": return `${who}${d.text || ""}`;
    case "offered": return t("timeline.offered", { name: d.name || "", channel: tx("channel", d.channel) });
    case "declined": return t("timeline.declined", { name: e.actor_name });
    case "accepted": return t("timeline.accepted", { name: e.actor_name });
    case "ladder_step": return t("timeline.step", { n: (d.step_index ?? 0) + 1 });
    case "ladder_stopped": return t("timeline.stopped", { reason: tx("stop_reason", d.reason) });
    case "ladder_exhausted": return t("timeline.exhausted");
    case "task": return tx("task", d.task);
    case "repeat": return t("timeline.repeat");
    case "opened": return t("timeline.opened", { kind: tx("kind", d.kind) || "" });
    case "notification": return t("timeline.notification", { channel: tx("channel", d.channel),
      status: tx("delivery", d.status) }) + (d.error ? `（${d.error}）` : "");
    case "dispatched": return `${who}${t("timeline.dispatched", { name: d.name || "" })}${d.note ? `：${d.note}` : ""}`;
    case "takeover": return `${who}${t("timeline.takeover")}${d.note ? `：${d.note}` : ""}`;
    case "severity": return `${who}${t("timeline.severity", { to: tx("severity", d.to) })}`;
    default:
      if (e.to_status) {
        const code = d.closure_code ? `（${tx("closure", d.closure_code)}）` : "";
        return `${who}${tx("status", e.to_status)}${code}${d.note ? `：${d.note}` : ""}`;
      }
      return `${who}${tx("timeline_action", e.action)}`;
  }
}
