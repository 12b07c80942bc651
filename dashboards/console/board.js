// The device health board: gateways offline, devices offline, low batteries and
// devices not tested recently, each with where it is and who it watches over.

import { api } from "../shared/api.js";
import { clear, h } from "../shared/dom.js";
import { t, tx } from "../shared/i18n.js";
import { ago, stamp } from "../shared/time.js";

const REFRESH_MS = 60000;

export class DeviceBoard {
  constructor(root, updated, onCount, onOpen) {
    this.root = root;
    this.updated = updated;
    this.onCount = onCount;
    this.onOpen = onOpen;
    this.data = null;
    this.timer = null;
  }

  async load() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), REFRESH_MS);
    try {
      this.data = await api("/api/v1/console/fleet");
    } catch (err) {
      clear(this.root).append(h("p", { class: "empty" }, t("error.load_devices", { reason: err.message })));
      return;
    }
    const sum = this.data.summary;
    this.onCount(sum.gateways_offline + sum.devices_offline + sum.low_battery);
    this.render();
  }

  render() {
    if (!this.data) return;
    const { gateways, devices, summary } = this.data;
    this.updated.textContent = t("devices.updated", { at: stamp(this.data.generated_at),
      gateways: summary.gateways, devices: summary.devices });
    const has = (d, p) => d.problems.includes(p);
    const offline = devices.filter((d) => has(d, "offline") || has(d, "not_reported"));
    const lowBattery = devices.filter((d) => has(d, "low_battery"));
    const untested = devices.filter((d) => has(d, "not_tested"));
    const gwOffline = gateways.filter((g) => g.online === false && !g.revoked_at);
    const gwRevoked = gateways.filter((g) => g.revoked_at);
    const gwNever = gateways.filter((g) => g.online === null);
    clear(this.root).append(
      this.panel("gateways-offline", t("devices.gateways_offline"), gwOffline.length + gwNever.length,
        [t("devices.col_gateway"), t("devices.col_address"), t("devices.col_last_seen")],
        [...gwOffline, ...gwNever].map((g) => ({
          key: g.id, household: g.household_id,
          cells: [g.label || g.id, g.address || "—",
            g.online === null ? t("devices.never_seen") : `${ago(g.last_seen)}${g.last_will_at ? ` · ${t("devices.will")}` : ""}`],
        }))),
      ...(gwRevoked.length ? [this.panel("gateways-revoked", t("devices.gateways_revoked"), gwRevoked.length,
        [t("devices.col_gateway"), t("devices.col_address"), t("devices.col_revoked")],
        gwRevoked.map((g) => ({ key: g.id, household: g.household_id,
          cells: [g.label || g.id, g.address || "—", stamp(g.revoked_at)] })))] : []),
      this.panel("devices-offline", t("devices.devices_offline"), offline.length,
        [t("devices.col_device"), t("devices.col_resident"), t("devices.col_room"), t("devices.col_last_seen")],
        offline.map((d) => this.row(d, [d.last_seen ? ago(d.last_seen) : t("devices.not_reported")]))),
      this.panel("low-battery", t("devices.low_battery"), lowBattery.length,
        [t("devices.col_device"), t("devices.col_resident"), t("devices.col_room"), t("devices.col_battery")],
        lowBattery.sort((a, b) => a.battery - b.battery).map((d) => this.row(d, [`${Math.round(d.battery)}%`]))),
      this.panel("not-tested", t("devices.not_tested", { days: this.data.tested_within_days }), untested.length,
        [t("devices.col_device"), t("devices.col_resident"), t("devices.col_room"), t("devices.col_last_test")],
        untested.map((d) => this.row(d, [d.last_test_at ? stamp(d.last_test_at) : t("devices.never_tested")]))),
    );
  }

  row(d, extra) {
    return { key: d.id, household: d.household_id, resident: d.resident_id,
      cells: [`${tx("device_type", d.type)} ${d.id}`, d.resident_name || shortAddress(d.address), d.room || "—", ...extra] };
  }

  panel(id, title, count, headers, rows) {
    const table = h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
      h("tbody", {}, rows.slice(0, 200).map((r) => h("tr", { dataset: { key: r.key } },
        r.cells.map((c, i) => h("td", {}, i === 0 && r.resident
          ? h("a", { href: "#queue", onclick: (e) => { e.preventDefault(); this.onOpen(r.resident); } }, c)
          : c))))));
    return h("section", { class: "panel", id: `board-${id}` },
      h("h3", {}, title, h("span", { class: "n" }, String(count))),
      rows.length ? table : h("p", { class: "allgood" }, t("devices.all_good")));
  }
}

function shortAddress(address) {
  return (address || "—").replace(/^.*?[市]/, "").replace(/^.*?[区县]/, "");
}
