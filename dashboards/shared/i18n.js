// Every string a person reads comes from a translation table (shared/i18n/*.json), zh-CN
// first. tests/console/test_i18n.py checks that both tables have the same keys and that
// every key the pages use exists.

export const LANGS = ["zh-CN", "en"];
const LANG_KEY = "eldercare.lang";
const tables = {};
let current = "zh-CN";

export async function loadLanguages() {
  await Promise.all(LANGS.map(async (lang) => {
    const res = await fetch(`/ui/shared/i18n/${lang}.json`, { cache: "no-cache" });
    tables[lang] = await res.json();
  }));
  const saved = localStorage.getItem(LANG_KEY);
  current = LANGS.includes(saved) ? saved : "zh-CN";
  document.documentElement.lang = current;
}

export function lang() { return current; }

export function setLang(value) {
  if (!LANGS.includes(value)) return;
  current = value;
  localStorage.setItem(LANG_KEY, value);
  document.documentElement.lang = value;
}

/** t("queue.title") or t("time.ago_min", {n: 3}); a missing key shows itself, loudly. */
export function t(key, params = {}) {
  const table = tables[current] || {};
  let text = table[key];
  if (text === undefined) {
    console.warn("missing translation", current, key);
    text = (tables["zh-CN"] || {})[key] ?? `⟦${key}⟧`;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

/** Whether the current table (or the Chinese one) has a text for ``key``. */
export function has(key) {
  return key in (tables[current] || {}) || key in (tables["zh-CN"] || {});
}

/** t() for an enum value, e.g. tx("kind", "sos"); unknown values show as they are. */
export function tx(prefix, value) {
  if (value === null || value === undefined || value === "") return "";
  const key = `${prefix}.${value}`;
  const table = tables[current] || {};
  return key in table ? table[key] : String(value);
}

/** Translate static markup: data-i18n (text), data-i18n-title, data-i18n-placeholder,
 *  data-i18n-aria (aria-label). */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-aria]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAria));
  }
}
