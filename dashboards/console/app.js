// The operator console: sign in, load the open alerts, follow the live stream, and
// keep the three views (queue + card, care map, device health) current.

import { ApiError, api, follow, login, session } from "../shared/api.js";
import { h } from "../shared/dom.js";
import { applyI18n, lang, loadLanguages, setLang, t, tx } from "../shared/i18n.js";
import { clock } from "../shared/time.js";
import * as alarm from "./alarm.js";
import { DeviceBoard } from "./board.js";
import { DetailPane } from "./detail.js";
import { toast } from "./dialogs.js";
import { HandoverView } from "./handover.js";
import { HistoryView } from "./history.js";
import { CareMap } from "./map.js";
import { isUnacknowledged, renderQueue, tickTimers } from "./queue.js";
import { ReportsView } from "./reports.js";
import { AlertStore, severityOf } from "./store.js";

const $ = (id) => document.getElementById(id);

const state = {
  view: "queue",
  selected: null,
  me: null,
  stream: null,
};
const store = new AlertStore();
const detail = new DetailPane($("detail"), store);
const careMap = new CareMap($("map"), $("map-side"), $("map-filter"), $("map-summary"), store,
  (residentId) => openResident(residentId));
/** the record views (history.js, reports.js): built once the role is known */
const records = { history: null, reports: null, handover: null };
/** roles that work the live queue; a district administrator sees only the record */
const QUEUE_ROLES = ["admin", "operator", "supervisor"];
const VIEWS = ["queue", "map", "devices", "history", "reports", "handover"];
const board = new DeviceBoard($("board"), $("devices-updated"), (n) => setDeviceCount(n),
  (residentId) => openResident(residentId));

// -- sign-in ------------------------------------------------------------------------------

async function ensureLogin() {
  if (session.token) {
    try {
      state.me = await api("/api/v1/auth/me");
      return;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      session.token = null;
    }
  }
  const dlg = $("login");
  const form = $("login-form");
  dlg.showModal();
  await new Promise((resolve) => {
    form.addEventListener("submit", async function onSubmit(event) {
      event.preventDefault();
      // the sign-in click is the gesture browsers want before they play sound: the
      // centre's alarm is on from the moment an operator is in (unless they turned it off)
      if (alarm.soundWanted() && !alarm.soundEnabled()) {
        alarm.enableSound(true).then(showSound, () => {});
      }
      const data = new FormData(form);
      $("login-error").textContent = "";
      try {
        await login(String(data.get("username")), String(data.get("password")),
          String(data.get("totp") || ""));
        state.me = await api("/api/v1/auth/me");
        form.removeEventListener("submit", onSubmit);
        dlg.close();
        form.reset();
        resolve();
      } catch (err) {
        if (err.code === "totp_required" || err.code === "totp_wrong") {
          // two-factor account: the password was right, now the authenticator's code
          $("login-totp").hidden = false;
          $("login-totp").querySelector("input").focus();
        }
        $("login-error").textContent = err.code === "wrong_credentials" || (!err.code && err.status === 401)
          ? t("auth.wrong") : err.message;
      }
    });
    dlg.addEventListener("cancel", (e) => e.preventDefault());
  });
}

// -- rendering ----------------------------------------------------------------------------

function renderAll() {
  const alerts = store.sorted();
  renderQueue($("queue-list"), alerts, store, state.selected, pick);
  $("queue-empty").hidden = alerts.length > 0;
  const count = $("queue-count");
  count.textContent = String(alerts.length);
  count.classList.toggle("zero", alerts.length === 0);
  updateCritical();
}

function setDeviceCount(n) {
  const el = $("device-count");
  el.textContent = String(n);
  el.hidden = !n;
}

/** The banner, the title and the beep stay on while a critical alert is unacknowledged. */
function updateCritical() {
  const waiting = store.sorted().filter((a) => severityOf(a) === "critical" && isUnacknowledged(a));
  const banner = $("critical");
  if (!waiting.length) {
    banner.hidden = true;
    alarm.stopRepeating();
    alarm.stopTitle();
    return;
  }
  const first = waiting[0];
  $("critical-text").textContent = t("critical.text", {
    n: waiting.length, kind: tx("kind", first.kind), name: first.resident_name || first.gateway_id || "",
    address: first.address || "" });
  banner.dataset.alert = first.id;
  if (banner.hidden) {
    banner.hidden = false;
    alarm.flashTitle(t("critical.title"));
    alarm.startRepeating();
  }
}

function pick(id, focusDetail = false) {
  state.selected = id;
  if (state.view !== "queue") showView("queue");
  renderAll();
  detail.showAlert(id);
  const li = $("queue-list").querySelector(`[data-id="${CSS.escape(id)}"]`);
  if (li) li.focus({ preventScroll: false });
  if (focusDetail) {
    const first = $("detail").querySelector(".actions button:not([disabled])");
    if (first) first.focus();
  }
}

function openResident(residentId) {
  showView("queue");
  const open = store.sorted().find((a) => a.resident_id === residentId);
  if (open) {
    pick(open.id);
    return;
  }
  state.selected = null;
  renderAll();
  detail.showResident(residentId);
}

function moveSelection(step) {
  const alerts = store.sorted();
  if (!alerts.length) return;
  let i = alerts.findIndex((a) => a.id === state.selected);
  i = i < 0 ? 0 : Math.min(alerts.length - 1, Math.max(0, i + step));
  pick(alerts[i].id);
}

function showView(view) {
  if ($(`tab-${view}`).hidden) return;
  state.view = view;
  for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
    tab.setAttribute("aria-selected", tab.dataset.view === view ? "true" : "false");
  }
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  if (view === "map") careMap.load();
  if (view === "devices") board.load();
  if (view === "history" && records.history) records.history.load();
  if (view === "reports" && records.reports) records.reports.load();
  if (view === "handover" && records.handover) records.handover.load();
  history.replaceState(null, "", `#${view}`);
}

function applyLanguage() {
  applyI18n();
  document.title = t("app.page_title");
  $("lang").textContent = lang() === "en" ? "中文" : "EN";
  $("sound").textContent = alarm.soundEnabled() ? t("sound.on") : t("sound.off");
  $("who").textContent = state.me ? `${state.me.display_name || state.me.username} · ${tx("role", state.me.role)}` : "";
  $("conn").textContent = t(`conn.${$("conn").dataset.state}`);
  renderKeys();
  renderAll();
  detail.render();
  if (state.view === "map") careMap.render();
  if (state.view === "devices") board.render();
}

function renderKeys() {
  const list = $("keys-list");
  list.replaceChildren(...[
    ["↑ ↓ / J K", "keys.move"], ["Enter", "keys.open"], ["A", "keys.ack"], ["D", "keys.dispatch"],
    ["E", "keys.call120"], ["N", "keys.note"], ["T", "keys.takeover"], ["R", "keys.resolve"],
    ["1–6", "keys.views"], ["M", "keys.sound"], ["L", "keys.lang"], ["?", "keys.help"],
  ].flatMap(([k, label]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, t(label))]));
}

// -- keyboard -----------------------------------------------------------------------------

function onKey(event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (document.querySelector("dialog[open]")) return;
  const tag = (event.target.tagName || "").toLowerCase();
  if (["input", "textarea", "select"].includes(tag)) return;
  const key = event.key;
  if (key === "Enter" && !$("critical").hidden && document.activeElement === document.body) {
    event.preventDefault();
    pick($("critical").dataset.alert, true);
    return;
  }
  const handlers = {
    1: () => showView("queue"), 2: () => showView("map"), 3: () => showView("devices"),
    4: () => showView("history"), 5: () => showView("reports"), 6: () => showView("handover"),
    j: () => moveSelection(1), k: () => moveSelection(-1),
    ArrowDown: () => state.view === "queue" && moveSelection(1),
    ArrowUp: () => state.view === "queue" && moveSelection(-1),
    a: () => detail.acknowledge(), d: () => detail.dispatch(), e: () => detail.call120(),
    n: () => detail.note(), t: () => detail.takeover(), r: () => detail.resolve(),
    m: () => toggleSound(), l: () => switchLanguage(), "?": () => $("help").showModal(),
  };
  const fn = handlers[key] || handlers[key.toLowerCase && key.toLowerCase()];
  if (!fn) return;
  if (["a", "d", "e", "n", "t", "r"].includes(key.toLowerCase()) && !detail.alert) return;
  event.preventDefault();
  fn();
}

async function toggleSound() {
  await alarm.enableSound(!alarm.soundEnabled());
  showSound();
}

function showSound() {
  $("sound").classList.toggle("hint-on", alarm.soundWanted() && !alarm.soundEnabled());
  $("sound").setAttribute("aria-pressed", alarm.soundEnabled() ? "true" : "false");
  $("sound").textContent = alarm.soundEnabled() ? t("sound.on") : t("sound.off");
  if (alarm.soundEnabled() && !$("critical").hidden) alarm.startRepeating();
}

function switchLanguage() {
  setLang(lang() === "en" ? "zh-CN" : "en");
  applyLanguage();
}

// -- live stream --------------------------------------------------------------------------

function onStreamEvent(type, data) {
  if (typeof type === "string" && type.startsWith("service.")) {
    // the service desk's requests and orders: its own view (services.js) follows them
    document.dispatchEvent(new CustomEvent("service-stream", { detail: { type, data } }));
    return null;
  }
  const id = store.apply(type, data);
  if (type === "account.locked" && data) {
    toast(t("toast.account_locked", { name: data.username || "" }), true);
  }
  if (type === "alert.supervisor" && data && data.alert) {
    // nobody answered in time: loud for everyone on shift, and the supervisor's to take
    toast(t("toast.supervisor", { name: data.alert.resident_name || data.alert.gateway_id || "",
      n: data.waited_s ?? "" }), true);
    alarm.startRepeating();
  }
  if (type === "task" && data && data.task === "call_120") {
    toast(t("toast.task_120", { name: (data.alert && data.alert.resident_name) || "" }), true);
  }
  if (state.view === "map" && id) careMap.scheduleReload();
  return id;
}

function setConn(s) {
  const el = $("conn");
  el.dataset.state = s;
  el.textContent = t(`conn.${s}`);
  if (s === "unauthorized") {
    session.token = null;
    location.reload();
  }
}

async function start() {
  await loadLanguages();
  applyLanguage();
  $("lang").addEventListener("click", switchLanguage);
  $("sound").addEventListener("click", toggleSound);
  $("logout").addEventListener("click", async () => {
    // revoke the token on the server first: a copy of it is useless from now on
    await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
    session.token = null;
    location.reload();
  });
  $("critical-open").addEventListener("click", () => pick($("critical").dataset.alert, true));
  for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  $("devices-refresh").addEventListener("click", () => board.load());
  document.addEventListener("keydown", onKey);
  setInterval(() => {
    $("now").textContent = clock(new Date());
    tickTimers(document, store);
  }, 1000);
  $("now").textContent = clock(new Date());

  await ensureLogin();
  $("logout").hidden = false;
  applyLanguage();
  const role = state.me.role;
  records.history = new HistoryView($("view-history"), { me: state.me,
    canReview: QUEUE_ROLES.includes(role) });
  records.reports = new ReportsView($("view-reports"), {
    canExport: ["admin", "district_admin"].includes(role) });
  records.handover = new HandoverView($("view-handover"), { onOpen: (id) => {
    if (store.get(id)) { pick(id); return; }
    showView("history");
    records.history.open(id);
  } });
  if (!QUEUE_ROLES.includes(role)) {
    // the record only: no live queue, no stream (the server refuses it to this role)
    for (const name of ["queue", "map", "devices", "handover"]) $(`tab-${name}`).hidden = true;
    $("conn").hidden = true;
    showView(location.hash === "#history" ? "history" : "reports");
    document.body.dataset.ready = "1";
    return;
  }

  store.addEventListener("change", (e) => { renderAll(); detail.update(e.detail); });
  store.addEventListener("opened", (e) => {
    if (severityOf(e.detail) === "critical") toast(t("toast.new_critical"), true);
    if (!state.selected) pick(e.detail.id);
  });
  // connect the stream first (it starts from "now"), then load the queue: whatever
  // happens in between arrives as events and is applied after the load
  let buffered = [];
  let loaded = false;
  let live;
  const connected = new Promise((resolve) => { live = resolve; });
  state.stream = follow("/api/v1/stream", {
    onEvent: (type, data) => (loaded ? onStreamEvent(type, data) : buffered.push([type, data])),
    onState: (s) => {
      setConn(s);
      document.dispatchEvent(new CustomEvent("stream-state", { detail: s }));
      if (s === "live") live();
    },
  });
  await Promise.race([connected, new Promise((r) => setTimeout(r, 5000))]);
  await store.load();
  loaded = true;
  for (const [type, data] of buffered) onStreamEvent(type, data);
  buffered = [];
  const first = store.sorted()[0];
  if (first) pick(first.id);
  board.load().catch(() => {});
  const view = location.hash.replace("#", "");
  if (["map", "devices", "history", "reports", "handover"].includes(view)) showView(view);
  // the operator had sound on: the browser needs one click again after a reload
  if (alarm.soundWanted() && !alarm.soundEnabled()) {
    $("sound").classList.add("hint-on");
    alarm.armOnFirstGesture(showSound);
  }
  document.body.dataset.ready = "1";
}

start().catch((err) => {
  console.error(err);
  toast(t("error.start", { reason: err.message || String(err) }), true);
});
