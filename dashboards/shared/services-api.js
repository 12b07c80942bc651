// The service desk's API calls for the console, the worker's phone page and the family
// page: the same bearer token as the rest of the pages (or a worker link's token), and
// the desk's refusals shown in the reader's language (the server sends message_zh).

import { session } from "./api.js";
import { lang } from "./i18n.js";

export class DeskError extends Error {
  constructor(status, message, code, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    /** the refusal's JSON body, for pages that map its code or fields to their own text */
    this.body = body;
  }
}

export async function desk(path, { method = "GET", body, token = session.token,
  linkToken = null } = {}) {
  const headers = { Accept: "application/json" };
  if (token && !linkToken) headers.Authorization = `Bearer ${token}`;
  if (linkToken) headers["X-Work-Token"] = linkToken;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    let message = res.statusText;
    if (data && typeof data === "object") {
      if (lang() === "zh-CN" && data.message_zh) message = data.message_zh;
      else if (Array.isArray(data.detail)) {
        message = data.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`)
          .join("; ");
      } else if (data.detail) message = String(data.detail);
    }
    throw new DeskError(res.status, message, data && data.code,
      data && typeof data === "object" ? data : null);
  }
  return data;
}

/** Today's date and an hour in Asia/Shanghai: {date: "2025-03-04", hour: 9}. */
export function shanghaiNow() {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", hourCycle: "h23" })
    .formatToParts(new Date());
  const get = (type) => parts.find((p) => p.type === type).value;
  return { date: `${get("year")}-${get("month")}-${get("day")}`, hour: Number(get("hour")) };
}

/** "2025-03-04" + "09:30" → ISO with the district's offset (China has no DST). */
export function localIso(date, time) {
  return `${date}T${time}:00+08:00`;
}

export function yuan(cents) {
  return (cents / 100).toFixed(2);
}
