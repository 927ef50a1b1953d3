// The live page. Drivers: sites (near them, on request) from /v1/sites every 5 s (ETag:
// unchanged lists cost a 304), a map when a tile server is configured, and the selected
// site's plan live over Server-Sent Events (/v1/sites/{tenant}/{site}/live: a snapshot,
// then `space` and `counts` events; the browser resumes with Last-Event-ID by itself).
// Managers: a token (kept for the tab only) opens attendance, utilization and alerts.
// Plain DOM, no framework; every text goes through textContent, never innerHTML.
"use strict";

const REFRESH_MS = 5000;
const TEXT = {
  en: {
    title: "Free spaces, live", sites: "Parking lots and markets", free: "free",
    pick: "Choose a site to see its zones and spaces.",
    occupied: "occupied", unknown: "unknown", of: "of", parking: "parking", market: "market",
    updated: "updated", never: "no data yet", stale: "stale", live: "live",
    offline: "connection lost, retrying…", spaces: "spaces", other: "فارسی", near: "Near me",
    manager: "Managers", token: "Token", login: "Sign in", logout: "Sign out", date: "Date",
    attendance: "Vendor attendance", utilization: "Utilization by hour (last 7 days)", alerts: "Alerts",
    stall: "Stall", vendor: "Vendor", arrival: "First arrival", departure: "Last departure",
    minutes: "Minutes", absent: "absent", csv: "CSV", closed: "closed that day", none: "none",
    badtoken: "this token is not valid", signed: "signed in as", jalali: "Solar Hijri",
    footer: "Open data of the municipalities, live. API: /v1/sites · /docs",
  },
  fa: {
    title: "جای خالی، همین حالا", sites: "پارکینگ‌ها و بازارها", free: "خالی",
    pick: "یک پارکینگ یا بازار را برای دیدن بخش‌ها و جایگاه‌هایش انتخاب کنید.",
    occupied: "پر", unknown: "نامعلوم", of: "از", parking: "پارکینگ", market: "بازار",
    updated: "به‌روز شده", never: "هنوز داده‌ای نیست", stale: "قدیمی", live: "زنده",
    offline: "اتصال قطع شد، تلاش دوباره…", spaces: "جایگاه‌ها", other: "English", near: "نزدیک من",
    manager: "مدیران", token: "توکن", login: "ورود", logout: "خروج", date: "تاریخ",
    attendance: "حضور غرفه‌داران", utilization: "بهره‌وری ساعتی (۷ روز اخیر)", alerts: "هشدارها",
    stall: "غرفه", vendor: "غرفه‌دار", arrival: "نخستین ورود", departure: "آخرین خروج",
    minutes: "دقیقه", absent: "غایب", csv: "CSV", closed: "آن روز تعطیل است", none: "هیچ",
    badtoken: "این توکن معتبر نیست", signed: "وارد شده به عنوان", jalali: "هجری شمسی",
    footer: "داده‌های باز شهرداری‌ها، زنده. API: /v1/sites · /docs",
  },
};

const query = new URLSearchParams(location.search);
const state = {
  lang: query.get("lang") || localStorage.getItem("lang") || "en",
  sites: [], near: null, config: {},
  selected: decodeURIComponent(location.hash.slice(1)) || null, // #tenant/site
  source: null, site: null, spaces: new Map(),
  token: sessionStorage.getItem("token"), who: null,
};
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[state.lang][key] || key;
const locale = () => (state.lang === "fa" ? "fa-IR" : "en-GB");

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    // style through the CSSOM: the page's Content-Security-Policy refuses style attributes
    if (k === "class") el.className = v; else if (k === "style") el.style.cssText = v; else el.setAttribute(k, v);
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

const num = (n) => n.toLocaleString(state.lang === "fa" ? "fa-IR" : "en-US");

function localTime(iso, zone) {
  if (!iso) return t("never");
  return new Intl.DateTimeFormat(locale(), {
    timeZone: zone || "Asia/Tehran", hour: "2-digit", minute: "2-digit", second: "2-digit",
    day: "numeric", month: "short",
  }).format(new Date(iso));
}

function clock(iso, zone) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale(), { timeZone: zone, hour: "2-digit", minute: "2-digit" })
    .format(new Date(iso));
}

// A date in the Solar Hijri calendar (ICU's persian calendar), in the page's language.
function jalali(isoDate) {
  const d = new Date(`${isoDate}T12:00:00Z`);
  return new Intl.DateTimeFormat(`${locale()}-u-ca-persian`, {
    timeZone: "UTC", year: "numeric", month: "long", day: "numeric",
  }).format(d);
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
  const li = h("li", { class: "site" + (state.selected === key ? " selected" : ""), tabindex: "0",
                       "data-site": key },
    h("div", { class: "top" },
      h("div", {}, h("div", { class: "name" }, name), alt ? h("div", { class: "alt" }, alt) : null),
      h("div", { class: "count" }, h("span", { class: "big" }, num(site.free)),
        ` ${t("of")} ${num(site.total)} `,
        h("span", { class: "kind" }, t(site.kind)))),
    bar(site), h("p", { class: "meta" }, counts(site),
      site.distance_m != null ? ` · ${num(Math.round(site.distance_m))} m` : null, h("br"), updated(site)));
  li.addEventListener("click", () => select(key));
  li.addEventListener("keydown", (e) => { if (e.key === "Enter") select(key); });
  return li;
}

function renderSites() {
  $("sites").replaceChildren(...state.sites.map(siteItem));
  renderMap();
}

// --- map: plain slippy-map tiles around the sites, only when a tile server is configured ---
const TILE = 256;
function project(lat, lon, z) {
  const n = 2 ** z, rad = (lat * Math.PI) / 180;
  return [((lon + 180) / 360) * n * TILE, ((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n * TILE];
}

function renderMap() {
  const url = state.config.tile_url;
  if (!url || !state.sites.length) return;
  const map = $("map"), z = 13, w = map.clientWidth || 600, hgt = 260;
  map.hidden = false;
  const lat = state.sites.reduce((a, s) => a + s.lat, 0) / state.sites.length;
  const lon = state.sites.reduce((a, s) => a + s.lon, 0) / state.sites.length;
  const [cx, cy] = project(lat, lon, z), x0 = cx - w / 2, y0 = cy - hgt / 2;
  const nodes = [];
  for (let tx = Math.floor(x0 / TILE); tx <= Math.floor((x0 + w) / TILE); tx++) {
    for (let ty = Math.floor(y0 / TILE); ty <= Math.floor((y0 + hgt) / TILE); ty++) {
      const src = url.replace("{z}", z).replace("{x}", tx).replace("{y}", ty);
      nodes.push(h("img", { src, alt: "", style: `left:${tx * TILE - x0}px;top:${ty * TILE - y0}px` }));
    }
  }
  for (const s of state.sites) {
    const [px, py] = project(s.lat, s.lon, z);
    const pin = h("span", { class: "pin", style: `left:${px - x0}px;top:${py - y0}px` }, num(s.free));
    pin.addEventListener("click", () => select(`${s.tenant}/${s.site}`));
    nodes.push(pin);
  }
  map.replaceChildren(...nodes);
}

// --- the selected site's plan, live ---
function zoneBlock(zone, spaces) {
  const [name] = names({ name: zone.name || zone.zone, name_fa: zone.name_fa });
  const cells = spaces.filter((s) => s.zone === zone.zone).map((s) =>
    h("div", { class: `cell ${s.state}`, dir: "ltr", "data-space": s.space,
               title: `${s.space}: ${t(s.state)}` }, s.space));
  return h("div", { class: "zone" },
    h("h3", {}, `${name} — ${num(zone.free)} ${t("of")} ${num(zone.total)} ${t("free")}`),
    bar(zone), h("div", { class: "grid" }, ...cells));
}

function renderDetail() {
  const site = state.site;
  if (!site) return;
  const spaces = [...state.spaces.values()];
  const [name, alt] = names(site);
  $("detail").hidden = false;
  $("hint").hidden = true;
  $("detail-name").textContent = alt ? `${name} · ${alt}` : name;
  $("detail-meta").replaceChildren(counts(site), h("br"), updated(site));
  const zoned = site.zones.map((z) => zoneBlock(z, spaces));
  const loose = spaces.filter((s) => s.zone === null);
  if (loose.length) zoned.push(zoneBlock({ ...site, zone: null, name: "—", name_fa: "—" }, loose));
  $("zones").replaceChildren(...zoned);
}

function mergeSite(site) {
  state.site = site;
  const i = state.sites.findIndex((s) => s.tenant === site.tenant && s.site === site.site);
  if (i >= 0) { state.sites[i] = { ...state.sites[i], ...site, zones: undefined }; renderSites(); }
}

function follow(key) {
  if (state.source) state.source.close();
  state.source = null;
  if (!key) return;
  const source = new EventSource(`/v1/sites/${key}/live`);
  source.addEventListener("snapshot", (e) => {
    const data = JSON.parse(e.data);
    state.spaces = new Map(data.spaces.map((s) => [s.space, s]));
    mergeSite(data.site);
    renderDetail();
  });
  source.addEventListener("space", (e) => {
    const s = JSON.parse(e.data);
    state.spaces.set(s.space, { ...(state.spaces.get(s.space) || {}), ...s });
  });
  source.addEventListener("counts", (e) => { mergeSite(JSON.parse(e.data)); renderDetail(); });
  source.onopen = () => setStatus(`${t("live")} · ${localTime(new Date().toISOString(), "Asia/Tehran")}`, false);
  source.onerror = () => setStatus(t("offline"), true);
  state.source = source;
}

async function getJSON(path, auth) {
  const headers = { Accept: "application/json" };
  if (auth) headers.Authorization = `Bearer ${state.token}`;
  const r = await fetch(path, { headers });
  if (!r.ok) throw Object.assign(new Error(`${path}: HTTP ${r.status}`), { status: r.status });
  return r.json();
}

async function refresh() {
  try {
    const params = state.near ? `?near=${state.near}&radius_m=50000` : "";
    state.sites = await getJSON(`/v1/sites${params}`);
    renderSites();
    if (!state.source) setStatus(`${t("live")} · ${localTime(new Date().toISOString(), "Asia/Tehran")}`, false);
  } catch (err) {
    console.warn(err);
    setStatus(t("offline"), true);
  }
}

function setStatus(text, error) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function select(key) {
  state.selected = key;
  history.replaceState(null, "", `#${key}`);
  renderSites();
  follow(key);
}

// --- managers ---
async function login(token) {
  state.token = token;
  try {
    state.who = await getJSON("/v1/manage/whoami", true);
  } catch (err) {
    state.who = null;
    sessionStorage.removeItem("token");
    $("whoami").textContent = t("badtoken");
    $("manage-body").hidden = true;
    return;
  }
  sessionStorage.setItem("token", token);
  $("logout").hidden = false;
  $("whoami").textContent = `${t("signed")} ${state.who.role} · ${state.who.tenant}`;
  const markets = state.sites.filter((s) => s.tenant === state.who.tenant &&
    (!state.who.sites.length || state.who.sites.includes(s.site)));
  $("market").replaceChildren(...markets.sort((a, b) => (a.kind === "market" ? -1 : 1) - (b.kind === "market" ? -1 : 1))
    .map((s) => h("option", { value: s.site }, names(s)[0])));
  $("manage-body").hidden = false;
  await loadManager();
}

async function loadManager() {
  if (!state.who || !$("market").value) return;
  const base = `/v1/manage/${state.who.tenant}`;
  const site = $("market").value;
  const day = $("day").value;
  const dq = day ? `?date=${day}` : "";
  const [att, util, alerts] = await Promise.all([
    getJSON(`${base}/sites/${site}/attendance${dq}`, true),
    getJSON(`${base}/sites/${site}/utilization`, true),
    getJSON(`${base}/alerts`, true),
  ]);
  if (!day) $("day").value = att.date;
  $("day-jalali").textContent = `${t("jalali")}: ${jalali(att.date)} (${att.date_jalali})`;
  const rows = att.closed ? [h("tr", {}, h("td", { colspan: "5" }, t("closed")))] : att.stalls.map((s) =>
    h("tr", { class: s.absent ? "absent" : "" }, h("td", { dir: "ltr" }, s.space), h("td", {}, s.vendor || "—"),
      h("td", {}, clock(s.first_arrival, att.timezone)), h("td", {}, clock(s.last_departure, att.timezone)),
      h("td", {}, s.absent ? t("absent") : num(Math.round(s.minutes_occupied)))));
  $("attendance").tBodies[0].replaceChildren(...rows);
  $("utilization").replaceChildren(...util.hours.map((u) =>
    h("div", { class: "col", style: `height:${Math.round(u.utilization * 100)}%`,
               title: `${u.hour}:00 — ${Math.round(u.utilization * 100)}%` }, h("span", {}, num(u.hour)))));
  const items = alerts.map((a) => h("li", {}, `${a.kind} · ${a.site || ""} ${a.subject} — ${a.detail}`));
  $("alerts").replaceChildren(...(items.length ? items : [h("li", {}, t("none"))]));
}

async function downloadCsv(e) {
  e.preventDefault();
  const site = $("market").value, day = $("day").value;
  const r = await fetch(`/v1/manage/${state.who.tenant}/sites/${site}/attendance?format=csv&date=${day}`,
                        { headers: { Authorization: `Bearer ${state.token}` } });
  const a = h("a", { href: URL.createObjectURL(await r.blob()), download: `attendance-${site}-${day}.csv` });
  a.click();
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
  renderSites();
  renderDetail();
  if (state.who) loadManager();
});
$("near").addEventListener("click", () => {
  navigator.geolocation?.getCurrentPosition((p) => {
    state.near = `${p.coords.latitude.toFixed(5)},${p.coords.longitude.toFixed(5)}`;
    refresh();
  });
});
$("manager").addEventListener("click", () => { $("manage").hidden = !$("manage").hidden; });
$("login").addEventListener("submit", (e) => { e.preventDefault(); login($("token").value.trim()); });
$("logout").addEventListener("click", () => {
  sessionStorage.removeItem("token");
  state.token = state.who = null;
  $("manage-body").hidden = true;
  $("logout").hidden = true;
  $("whoami").textContent = "";
});
$("market").addEventListener("change", loadManager);
$("day").addEventListener("change", loadManager);
$("att-csv").addEventListener("click", downloadCsv);

async function start() {
  applyLanguage();
  try { state.config = await getJSON("/config.json"); } catch { state.config = {}; }
  await refresh();
  if (state.selected) follow(state.selected);
  if (state.token) { $("manage").hidden = false; login(state.token); }
  setInterval(refresh, REFRESH_MS);
}
start();
