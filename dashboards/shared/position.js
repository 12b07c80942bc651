// Where a person was when a GPS watch raised the alert: coordinates to 5 decimals (about a
// metre), how old the fix is, whether the watch had a fix at all, and links to open the
// spot in a map app. No map tiles are loaded here: the console may be offline, and a
// link costs nothing until someone taps it.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { ago } from "./time.js";

/** Amap's URI API takes the watch's WGS-84 coordinates as they are (coordinate=wgs84). */
export function amapUrl(pos) {
  return `https://uri.amap.com/marker?position=${pos.lon.toFixed(5)},${pos.lat.toFixed(5)}`
    + "&coordinate=wgs84&callnative=1";
}

export function osmUrl(pos) {
  const lat = pos.lat.toFixed(5);
  const lon = pos.lon.toFixed(5);
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`;
}

/** "30.27431,120.15507（3 分钟前）" with a note when the fix is not the alarm's own. */
export function positionLine(pos) {
  const coords = `${pos.lat.toFixed(5)},${pos.lon.toFixed(5)}`;
  const note = !pos.valid ? t("position.no_fix")
    : pos.source === "last_known" ? t("position.last_known") : null;
  return t("position.line", { coords, ago: pos.at ? ago(pos.at) : t("position.unknown_time") })
    + (note ? ` · ${note}` : "");
}

/** The block both the console and the phone page show. */
export function positionBlock(pos, id = "position") {
  return h("section", { class: `block position${pos.valid ? "" : " no-fix"}`, id },
    h("div", { class: "label" }, t("position.title")),
    h("div", { class: "big", id: `${id}-text` }, positionLine(pos)),
    h("div", { class: "maplinks" },
      h("a", { class: "maplink", id: `${id}-amap`, href: amapUrl(pos), target: "_blank",
        rel: "noopener" }, t("position.amap")),
      " ",
      h("a", { class: "maplink", id: `${id}-osm`, href: osmUrl(pos), target: "_blank",
        rel: "noopener" }, t("position.osm"))));
}
