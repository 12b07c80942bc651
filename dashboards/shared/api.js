// The cloud API as the pages use it: JSON over fetch with a bearer token, and the live
// stream (server-sent events) read through fetch so that it can carry the same
// Authorization header and resume with Last-Event-ID after a reconnect.

import { has, lang, t } from "./i18n.js";

const TOKEN_KEY = "eldercare.token";

/**
 * A refusal from the API. The server's `detail` is English, for logs and API clients;
 * people read the text the page has for its stable `code` (errors.<code> in the i18n
 * tables), or for its HTTP status, so no English server sentence reaches the Chinese UI.
 */
export class ApiError extends Error {
  constructor(status, detail, code = null) {
    super(localize(status, code, detail));
    this.status = status;
    this.detail = detail;
    this.code = code;
  }
}

function localize(status, code, detail) {
  const english = typeof detail === "string" ? detail : JSON.stringify(detail);
  if (lang() === "en" && english && english !== "{}") return english;
  for (const key of [code && `errors.${code}`, `errors.http_${status >= 500 ? 500 : status}`]) {
    if (key && has(key)) return t(key);
  }
  return t("errors.unknown", { status });
}

/** The bearer token lives for the browser tab only (sessionStorage), never in a cookie. */
export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

/** One API call; throws ApiError with the server's reason on any non-2xx answer. */
export async function api(path, { method = "GET", body, form, token = session.token,
  signal } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (form) {
    payload = new URLSearchParams(form);
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload, signal, cache: "no-store" });
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const detail = data && typeof data === "object" && "detail" in data ? data.detail : data;
    const code = data && typeof data === "object" && typeof data.code === "string" ? data.code : null;
    throw new ApiError(res.status, describe(detail ?? res.statusText), code);
  }
  return data;
}

export async function login(username, password, totp = "") {
  const form = { username, password, grant_type: "password" };
  if (totp) form.totp = totp;
  const tok = await api("/api/v1/auth/token", { method: "POST", form, token: null });
  session.token = tok.access_token;
  return tok;
}

/** Parse a text/event-stream chunk sequence; calls onMessage({id, event, data}). */
export class SseParser {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.buffer = "";
    this.reset();
  }

  reset() { this.id = null; this.event = "message"; this.data = []; }

  push(text) {
    this.buffer += text;
    let nl;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, nl);
      const sep = this.buffer[nl] === "\r" && this.buffer[nl + 1] === "\n" ? 2 : 1;
      this.buffer = this.buffer.slice(nl + sep);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      if (this.data.length) {
        this.onMessage({ id: this.id, event: this.event, data: this.data.join("\n") });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) return; // comment / heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id") this.id = value;
  }
}

/**
 * Follow the live stream until stop() is called. Reconnects with a capped backoff and
 * resumes after the last event id it saw, so a dropped connection loses nothing.
 * onEvent(type, data, id) gets parsed JSON; onState("live" | "reconnecting" | "stopped").
 */
export function follow(path, { onEvent, onState = () => {}, lastId = null,
  token = () => session.token } = {}) {
  let stopped = false;
  let controller = null;
  let last = lastId;
  let delay = 500;

  async function once() {
    controller = new AbortController();
    const headers = { Accept: "text/event-stream" };
    const tok = token();
    if (tok) headers.Authorization = `Bearer ${tok}`;
    if (last !== null) headers["Last-Event-ID"] = String(last);
    const res = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
    if (!res.ok || !res.body) throw new ApiError(res.status, res.statusText);
    onState("live");
    delay = 500;
    const parser = new SseParser((msg) => {
      if (msg.id !== null) last = msg.id;
      let data = msg.data;
      try { data = JSON.parse(msg.data); } catch { /* plain text event */ }
      onEvent(msg.event, data, msg.id);
    });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch (err) {
        if (stopped) break;
        if (err instanceof ApiError && err.status === 401) {
          onState("unauthorized");
          return;
        }
      }
      if (stopped) break;
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
    onState("stopped");
  })();

  return {
    stop() { stopped = true; if (controller) controller.abort(); },
    get lastId() { return last; },
  };
}
