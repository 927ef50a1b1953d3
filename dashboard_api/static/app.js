// The live page: sites from /v1/sites every 2 s; a selected site's zones and
// spaces from /v1/sites/{tenant}/{site}(/spaces). Plain DOM, no framework;
// every text goes through textContent, never innerHTML.
"use strict";

const REFRESH_MS = 2000;
const TEXT = {
  en: {
    title: "Free spaces, live", sites: "Parking lots and markets", free: "free",
    pick: "Choose a site to see its zones and spaces.",
    occupied: "occupied", unknown: "unknown", of: "of", parking: "parking", market: "market",
    updated: "updated", never: "no data yet", stale: "stale", live: "live",
    offline: "connection lost, retrying…", spaces: "spaces", other: "فارسی",
    footer: "Data of the municipalities, refreshed every 2 seconds. API: /v1/sites · /docs",
  },
  fa: {
    title: "جای خالی، همین حالا", sites: "پارکینگ‌ها و بازارها", free: "خالی",
    pick: "یک پارکینگ یا بازار را برای دیدن بخش‌ها و جایگاه‌هایش انتخاب کنید.",
    occupied: "پر", unknown: "نامعلوم", of: "از", parking: "پارکینگ", market: "بازار",
    updated: "به‌روز شده", never: "هنوز داده‌ای نیست", stale: "قدیمی", live: "زنده",
    offline: "اتصال قطع شد، تلاش دوباره…", spaces: "جایگاه‌ها", other: "English",
    footer: "داده‌های شهرداری‌ها، هر ۲ ثانیه به‌روز می‌شود. API: /v1/sites · /docs",
  },
};

const query = new URLSearchParams(location.search);
const state = {
  lang: query.get("lang") || localStorage.getItem("lang") || "en",
  sites: [],
  selected: decodeURIComponent(location.hash.slice(1)) || null, // #tenant/site
};
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[state.lang][key] || key;

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v; else el.setAttribute(k, v);
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

const num = (n) => n.toLocaleString(state.lang === "fa" ? "fa-IR" : "en-US");

function localTime(iso, zone) {
  if (!iso) return t("never");
  const fmt = new Intl.DateTimeFormat(state.lang === "fa" ? "fa-IR" : "en-GB", {
    timeZone: zone || "Asia/Tehran", hour: "2-digit", minute: "2-digit", second: "2-digit",
    day: "numeric", month: "short",
  });
  return fmt.format(new Date(iso));
}

function names(site) {
  const fa = site.name_fa || site.name;
  return state.lang === "fa" ? [fa, site.name] : [site.name, site.name_fa];
}

function bar(c) {
  const part = (cls, n) => h("span", { class: cls, style: `width:${(100 * n) / (c.total || 1)}%` });
  return h("div", { class: "bar", role: "img",
    "aria-label": `${c.free} ${t("free")}, ${c.occupied} ${t("occupied")}, ${c.unknown} ${t("unknown")}` },
    part("free", c.free), part("occupied", c.occupied), part("unknown", c.unknown));
}

function counts(c) {
  return `${num(c.free)} ${t("free")} · ${num(c.occupied)} ${t("occupied")} · ` +
         `${num(c.unknown)} ${t("unknown")} · ${num(c.total)} ${t("spaces")}`;
}

function updated(site) {
  const text = `${t("updated")}: ${localTime(site.updated_at, site.timezone)}`;
  return site.stale ? h("span", { class: "stale" }, `${text} (${t("stale")})`) : text;
}

function siteItem(site) {
  const [name, alt] = names(site);
  const key = `${site.tenant}/${site.site}`;
  const li = h("li", { class: "site" + (state.selected === key ? " selected" : ""), tabindex: "0" },
    h("div", { class: "top" },
      h("div", {}, h("div", { class: "name" }, name), alt ? h("div", { class: "alt" }, alt) : null),
      h("div", { class: "count" }, h("span", { class: "big" }, num(site.free)),
        ` ${t("of")} ${num(site.total)} `,
        h("span", { class: "kind" }, t(site.kind)))),
    bar(site), h("p", { class: "meta" }, counts(site), h("br"), updated(site)));
  li.addEventListener("click", () => select(key));
  li.addEventListener("keydown", (e) => { if (e.key === "Enter") select(key); });
  return li;
}

function renderSites() {
  $("sites").replaceChildren(...state.sites.map(siteItem));
}

function zoneBlock(zone, spaces) {
  const [name] = names({ name: zone.name || zone.zone, name_fa: zone.name_fa });
  const cells = spaces.filter((s) => s.zone === zone.zone).map((s) =>
    h("div", { class: `cell ${s.state}`, dir: "ltr", title: `${s.space}: ${t(s.state)}` }, s.space));
  return h("div", { class: "zone" },
    h("h3", {}, `${name} — ${num(zone.free)} ${t("of")} ${num(zone.total)} ${t("free")}`),
    bar(zone), h("div", { class: "grid" }, ...cells));
}

function renderDetail(site, spaces) {
  const [name, alt] = names(site);
  $("detail").hidden = false;
  $("hint").hidden = true;
  $("detail-name").textContent = alt ? `${name} · ${alt}` : name;
  $("detail-meta").replaceChildren(counts(site), h("br"), updated(site));
  const zoned = site.zones.map((z) => zoneBlock(z, spaces));
  const loose = spaces.filter((s) => s.zone === null);
  if (loose.length) zoned.push(zoneBlock({ zone: null, name: "—", ...site }, loose));
  $("zones").replaceChildren(...zoned);
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) throw Object.assign(new Error(`${path}: HTTP ${r.status}`), { status: r.status });
  return r.json();
}

async function refresh() {
  try {
    state.sites = await getJSON("/v1/sites");
    renderSites();
    if (state.selected) {
      const base = `/v1/sites/${state.selected}`;
      const [site, spaces] = await Promise.all([getJSON(base), getJSON(`${base}/spaces`)]);
      renderDetail(site, spaces);
    }
    setStatus(`${t("live")} · ${localTime(new Date().toISOString(), "Asia/Tehran")}`, false);
  } catch (err) {
    console.warn(err);
    if (err.status === 404) {  // the selected site is gone (or a bad link): forget it
      state.selected = null;
      history.replaceState(null, "", location.pathname + location.search);
      $("detail").hidden = true;
      $("hint").hidden = false;
    } else {
      setStatus(t("offline"), true);
    }
  }
}

function setStatus(text, error) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function select(key) {
  state.selected = key;
  history.replaceState(null, "", `#${key}`);
  refresh();
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.documentElement.dir = state.lang === "fa" ? "rtl" : "ltr";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("lang").textContent = t("other");
  localStorage.setItem("lang", state.lang);
}

$("lang").addEventListener("click", () => {
  state.lang = state.lang === "en" ? "fa" : "en";
  applyLanguage();
  refresh();
});

applyLanguage();
refresh();
setInterval(refresh, REFRESH_MS);
