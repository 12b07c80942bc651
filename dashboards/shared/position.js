// Where a person was when a GPS watch raised the alert: coordinates to 5 decimals (about a
// metre), how old the fix is, whether the watch had a fix at all, and links to open the
// spot in a map app (the server gives them: no page names another origin). No map tiles
// are loaded: the console may be offline, and a link costs nothing until someone taps it.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { ago } from "./time.js";

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
      h("a", { class: "maplink", id: `${id}-amap`, href: pos.amap_url, target: "_blank",
        rel: "noopener" }, t("position.amap")),
      " ",
      h("a", { class: "maplink", id: `${id}-osm`, href: pos.osm_url, target: "_blank",
        rel: "noopener" }, t("position.osm"))));
}
