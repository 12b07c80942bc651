// Times as people in the district read them: in the local zone (Asia/Shanghai by
// default, whatever the PC's own setting), 24-hour clock, and ages as "3 分钟前".

import { lang, t } from "./i18n.js";

export const TIME_ZONE = document.documentElement.dataset.timeZone || "Asia/Shanghai";

function fmt(options) {
  return new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "zh-CN",
    { timeZone: TIME_ZONE, hourCycle: "h23", ...options });
}

export function parse(ts) {
  if (ts === null || ts === undefined || ts === "") return null;
  const d = ts instanceof Date ? ts : new Date(ts);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** 14:03:27 */
export function clock(ts) {
  const d = parse(ts);
  return d ? fmt({ hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(d) : "—";
}

/** 03-01 14:03 (today's date is left out) */
export function stamp(ts, now = new Date()) {
  const d = parse(ts);
  if (!d) return "—";
  const day = fmt({ year: "numeric", month: "2-digit", day: "2-digit" });
  const hm = fmt({ hour: "2-digit", minute: "2-digit" }).format(d);
  if (day.format(d) === day.format(now)) return hm;
  return `${fmt({ month: "2-digit", day: "2-digit" }).format(d)} ${hm}`;
}

/** 2025-03-01 14:03:27 */
export function full(ts) {
  const d = parse(ts);
  return d ? fmt({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: "2-digit" }).format(d) : "—";
}

/** Seconds between ts and now (never negative). */
export function secondsSince(ts, now = Date.now()) {
  const d = parse(ts);
  return d ? Math.max(0, Math.floor((now - d.getTime()) / 1000)) : 0;
}

/** A running timer: 0:45, 12:03, 1:02:09 */
export function timer(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** "刚刚", "3 分钟前", "2 小时前", "5 天前" */
export function ago(ts, now = Date.now()) {
  const d = parse(ts);
  if (!d) return t("time.never");
  const s = secondsSince(d, now);
  if (s < 45) return t("time.just_now");
  if (s < 3600) return t("time.ago_min", { n: Math.max(1, Math.round(s / 60)) });
  if (s < 86400) return t("time.ago_hour", { n: Math.round(s / 3600) });
  return t("time.ago_day", { n: Math.round(s / 86400) });
}

/** Age in whole years from a birth date (YYYY-MM-DD), in the local zone. */
export function age(birthDate, now = new Date()) {
  if (!birthDate) return null;
  const [y, m, d] = birthDate.split("-").map(Number);
  const today = fmt({ year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(now).reduce((acc, p) => ({ ...acc, [p.type]: Number(p.value) }), {});
  let years = today.year - y;
  if (today.month < m || (today.month === m && today.day < d)) years -= 1;
  return years;
}
