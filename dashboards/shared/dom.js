// Small DOM helpers: build elements without innerHTML (no injection from data such as
// a resident's name or a note), and an inline SVG chart.

const SVG_NS = "http://www.w3.org/2000/svg";

/** h("div", {class: "x", onclick: fn}, child, "text", [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/**
 * A small line chart of one series: points [{t: Date|string, v: number}], the normal
 * band shaded, out-of-band points in red. Width/height in CSS pixels.
 */
export function sparkline(points, { width = 220, height = 56, low = null, high = null,
  label = "" } = {}) {
  const pts = points
    .map((p) => ({ t: new Date(p.t).getTime(), v: Number(p.v) }))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v))
    .sort((a, b) => a.t - b.t);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": label, class: "spark" });
  if (!pts.length) return svg;
  const pad = 4;
  const vals = pts.map((p) => p.v).concat([low, high].filter((x) => x !== null));
  let vmin = Math.min(...vals);
  let vmax = Math.max(...vals);
  if (vmax - vmin < 1e-9) { vmin -= 1; vmax += 1; }
  const margin = (vmax - vmin) * 0.15; // the band never fills the whole chart
  vmin -= margin;
  vmax += margin;
  const t0 = pts[0].t;
  const t1 = pts[pts.length - 1].t === t0 ? t0 + 1 : pts[pts.length - 1].t;
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (width - 2 * pad);
  const y = (v) => height - pad - ((v - vmin) / (vmax - vmin)) * (height - 2 * pad);
  if (low !== null || high !== null) {
    const top = y(high ?? vmax);
    const bottom = y(low ?? vmin);
    svg.append(s("rect", { x: pad, y: top, width: width - 2 * pad,
      height: Math.max(0, bottom - top), class: "spark-band" }));
  }
  const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
  svg.append(s("path", { d: d.join(""), class: "spark-line" }));
  for (const p of pts) {
    const out = (low !== null && p.v < low) || (high !== null && p.v > high);
    if (out) svg.append(s("circle", { cx: x(p.t), cy: y(p.v), r: 2.5, class: "spark-out" }));
  }
  const lastP = pts[pts.length - 1];
  svg.append(s("circle", { cx: x(lastP.t), cy: y(lastP.v), r: 2.5, class: "spark-last" }));
  return svg;
}
