// 关爱地图: every household at its coordinates on a schematic map drawn here (no tile
// server: the centre may be offline), coloured by state: open alert, device problem,
// all well. A filter by community zooms to it; a click opens the resident's card.
// Residents wearing a GPS watch are drawn as diamonds where the watch last reported.

import { api } from "../shared/api.js";
import { clear, h, s } from "../shared/dom.js";
import { t, tx } from "../shared/i18n.js";
import { positionLine } from "../shared/position.js";
import { ago } from "../shared/time.js";

const W = 1000;
const H = 640;
const PAD = 70;
const STATE_RANK = { alert: 0, device: 1, ok: 2 };

export class CareMap {
  constructor(root, side, filter, summary, store, onOpen) {
    this.root = root;
    this.side = side;
    this.filter = filter;
    this.summary = summary;
    this.store = store;
    this.onOpen = onOpen;
    this.data = null;
    this.community = "";
    this.timer = null;
    filter.addEventListener("change", () => { this.community = filter.value; this.render(); });
  }

  async load() {
    try {
      this.data = await api("/api/v1/console/map");
    } catch (err) {
      clear(this.root).append(h("p", { class: "empty" }, t("error.load_map", { reason: err.message })));
      return;
    }
    this.render();
  }

  /** Alert changes arrive in bursts; reload the map at most once a second. */
  scheduleReload() {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.load(); }, 1000);
  }

  render() {
    if (!this.data) return;
    const { communities, households } = this.data;
    this.renderFilter(communities);
    const visible = households.filter((hh) => !this.community || hh.community_id === this.community);
    const placed = visible.filter((hh) => hh.coordinates);
    const counts = { alert: 0, device: 0, ok: 0 };
    for (const hh of visible) counts[hh.state] += 1;
    this.summary.textContent = t("map.summary", { n: visible.length, alert: counts.alert,
      device: counts.device, ok: counts.ok });

    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "group", "aria-label": t("map.title"),
      preserveAspectRatio: "xMidYMid meet", id: "care-map" });
    const watches = (this.data.watches || [])
      .filter((w) => !this.community || w.community_id === this.community);
    const watchPoints = watches.map((w) => ({
      coordinates: { latitude: w.position.lat, longitude: w.position.lon } }));
    // the watches are in the box too: someone out walking may be beyond the homes
    const project = projector([...(placed.length ? placed : households.filter((hh) => hh.coordinates)),
      ...watchPoints]);
    for (let x = 0; x <= W; x += 50) svg.append(s("line", { x1: x, y1: 0, x2: x, y2: H, class: "gridline" }));
    for (let y = 0; y <= H; y += 50) svg.append(s("line", { x1: 0, y1: y, x2: W, y2: y, class: "gridline" }));

    // community areas: the padded box around their households, named
    const byCommunity = new Map();
    for (const hh of households.filter((x) => x.coordinates)) {
      if (!byCommunity.has(hh.community_id)) byCommunity.set(hh.community_id, []);
      byCommunity.get(hh.community_id).push(project(hh.coordinates));
    }
    for (const c of communities) {
      const pts = byCommunity.get(c.id);
      if (!pts) continue;
      const xs = pts.map((p) => p[0]);
      const ys = pts.map((p) => p[1]);
      const x0 = Math.min(...xs) - 45;
      const y0 = Math.min(...ys) - 45;
      const x1 = Math.max(...xs) + 115; // room for the names to the right of the dots
      const y1 = Math.max(...ys) + 40;
      const dim = this.community && this.community !== c.id;
      svg.append(s("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 24,
        class: `area${dim ? " dim" : ""}`, dataset: { community: c.id } }));
      svg.append(s("text", { x: x0 + 12, y: y0 + 20, class: "area-label" }, c.name));
    }

    for (const hh of [...households].sort((a, b) => STATE_RANK[b.state] - STATE_RANK[a.state])) {
      if (!hh.coordinates) continue;
      const [x, y] = project(hh.coordinates);
      const dim = this.community && this.community !== hh.community_id;
      const names = hh.residents.map((r) => r.name).join("、");
      const label = `${names} · ${hh.address} · ${tx("map_state", hh.state)}`;
      const g = s("g", { class: "hh-group" });
      if (hh.state === "alert" && !dim) g.append(s("circle", { cx: x, cy: y, r: 8, class: "ring" }));
      g.append(s("circle", {
        cx: x, cy: y, r: hh.state === "ok" ? 8 : 10, class: `hh state-${hh.state}${dim ? " dim" : ""}`,
        tabindex: dim ? "-1" : "0", role: "button", "aria-label": label,
        dataset: { household: hh.id, state: hh.state },
        onclick: () => this.open(hh),
        onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.open(hh); } },
      }, s("title", {}, label)));
      if (!dim) g.append(s("text", { x: x + 13, y: y + 4, class: "hh-label" }, names));
      svg.append(g);
    }
    watches.forEach((w, i) => svg.append(this.watchMarker(w, project(watchPoints[i].coordinates))));
    clear(this.root).append(svg);
    this.renderSide(visible, watches);
  }

  watchMarker(w, [x, y]) {
    const name = w.resident_name || w.device_id;
    const label = `${name} · ${t("map.watch")} · ${positionLine(w.position)}`;
    const g = s("g", { class: "watch-group" });
    g.append(s("path", {
      d: `M ${x} ${y - 10} L ${x + 10} ${y} L ${x} ${y + 10} L ${x - 10} ${y} Z`,
      class: "watch", tabindex: "0", role: "button", "aria-label": label,
      dataset: { device: w.device_id, resident: w.resident_id || "" },
      onclick: () => this.openWatch(w),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.openWatch(w); } },
    }, s("title", {}, label)));
    g.append(s("text", { x: x + 13, y: y + 4, class: "watch-label" }, t("map.watch_label", { name })));
    return g;
  }

  openWatch(w) {
    if (w.resident_id) this.onOpen(w.resident_id);
  }

  renderFilter(communities) {
    const current = this.community;
    clear(this.filter).append(h("option", { value: "" }, t("map.all_communities")),
      ...communities.map((c) => h("option", { value: c.id, selected: c.id === current }, c.name)));
    this.filter.value = current;
  }

  renderSide(visible, watches) {
    const side = clear(this.side);
    if (watches.length) {
      side.append(h("h3", {}, h("span", { class: "dot watch" }), " ", t("map.watches"),
        ` (${watches.length})`));
      side.append(h("ul", {}, watches.map((w) => h("li", {}, h("button", {
        onclick: () => this.openWatch(w), dataset: { device: w.device_id },
      }, h("span", {}, h("b", {}, w.resident_name || w.device_id), h("br"),
        h("span", { class: "hint watch-position" }, positionLine(w.position))))))));
    }
    const sorted = [...visible].sort((a, b) => STATE_RANK[a.state] - STATE_RANK[b.state]
      || a.address.localeCompare(b.address));
    for (const state of ["alert", "device", "ok"]) {
      const items = sorted.filter((hh) => hh.state === state);
      if (!items.length) continue;
      side.append(h("h3", {}, h("span", { class: `dot ${state === "alert" ? "alert" : state}` }), " ",
        tx("map_state", state), ` (${items.length})`));
      side.append(h("ul", {}, items.map((hh) => h("li", {}, h("button", {
        onclick: () => this.open(hh), dataset: { household: hh.id },
      }, h("span", {}, h("b", {}, hh.residents.map((r) => r.name).join("、") || "—"), h("br"),
        h("span", { class: "hint" }, shortAddress(hh.address)),
        h("br"), h("span", { class: "hint" }, hh.open_alerts ? t("map.open_alerts", { n: hh.open_alerts })
          : hh.device_problems ? t("map.device_problems", { n: hh.device_problems })
            : t("map.last_activity", { ago: ago(hh.last_activity_at) }))))))));
    }
  }

  open(hh) {
    const withAlert = hh.alert_ids.map((id) => this.store.get(id)).find(Boolean);
    const residentId = (withAlert && withAlert.resident_id) || (hh.residents[0] && hh.residents[0].id);
    if (residentId) this.onOpen(residentId);
  }
}

/** Equirectangular projection of the households' box into the view, aspect kept. */
function projector(households) {
  const lats = households.map((hh) => hh.coordinates.latitude);
  const lons = households.map((hh) => hh.coordinates.longitude);
  if (!lats.length) return () => [W / 2, H / 2];
  const lat0 = (Math.min(...lats) + Math.max(...lats)) / 2;
  const k = Math.cos((lat0 * Math.PI) / 180);
  const xs = lons.map((l) => l * k);
  const minX = Math.min(...xs);
  const maxX = Math.max(...xs);
  const minY = Math.min(...lats);
  const maxY = Math.max(...lats);
  const spanX = Math.max(maxX - minX, 1e-4);
  const spanY = Math.max(maxY - minY, 1e-4);
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
  const offX = (W - spanX * scale) / 2;
  const offY = (H - spanY * scale) / 2;
  return (c) => [offX + (c.longitude * k - minX) * scale, H - (offY + (c.latitude - minY) * scale)];
}

function shortAddress(address) {
  return address.replace(/^.*?[市]/, "").replace(/^.*?[区县]/, "");
}
