// The live page. Drivers: sites (near them, on request) from /v1/sites every 5 s (ETag:
// unchanged lists cost a 304), on a map (map.js) and in a list, and the selected site's
// plan live over Server-Sent Events (/v1/sites/{tenant}/{site}/live: a snapshot, then
// `space` and `counts` events; the browser resumes with Last-Event-ID by itself).
// Managers: a token (kept for the tab only) opens attendance, utilization and alerts.
// Offline: the service worker (/sw.js) answers the page and the last list it saw, marked
// with the time it was saved, and the status line says how old those counts are.
// Deep links: `?lang=fa|en` picks the language, `#tenant/site` selects a site.
// Plain DOM, no framework; every text goes through textContent, never innerHTML.
import {
  LANGS, age, clock, dateTime, fromJalali, jalaliMonthDays, jalaliMonths, longDate, num, percent,
  text, toJalali,
} from "./i18n.js";
import { SiteMap } from "./map.js";

const REFRESH_MS = 5000;
const SAVED_HEADER = "X-Parkbazaar-Saved-At"; // set by sw.js on a list answered from its cache

const query = new URLSearchParams(location.search);
const pickLang = (...options) => options.find((l) => LANGS.includes(l)) || "en";
const state = {
  lang: pickLang(query.get("lang"), localStorage.getItem("lang")),
  sites: [], near: null, config: {}, map: null,
  selected: siteKey(location.hash), // #tenant/site
  source: null, site: null, spaces: new Map(),
  status: { kind: "loading" }, // live (at) | offline | saved (savedAt) | nearfail
  token: sessionStorage.getItem("token"), who: null, report: null,
};
const $ = (id) => document.getElementById(id);
const t = (key, vars) => text(state.lang, key, vars);
const n = (x) => num(state.lang, x);

/** "tenant/site" of a location hash, or null. */
function siteKey(hash) {
  const key = decodeURIComponent((hash || "").replace(/^#/, ""));
  return /^[^/]+\/[^/]+$/.test(key) ? key : null;
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    // style through the CSSOM: the page's Content-Security-Policy refuses style attributes
    if (k === "class") el.className = v; else if (k === "style") el.style.cssText = v; else el.setAttribute(k, v);
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

/** [the name in the page's language, the other one if it differs]. */
function names(site) {
  const fa = site.name_fa || site.name;
  const [name, alt] = state.lang === "fa" ? [fa, site.name] : [site.name, site.name_fa];
  return [name, alt && alt !== name ? alt : null];
}

// --- drivers: the list ---
function bar(c) {
  const part = (cls, x) => h("span", { class: cls, style: `width:${(100 * x) / (c.total || 1)}%` });
  return h("div", { class: "bar", role: "img",
    "aria-label": `${n(c.free)} ${t("free")}, ${n(c.occupied)} ${t("occupied")}, ${n(c.unknown)} ${t("unknown")}` },
    part("free", c.free), part("occupied", c.occupied), part("unknown", c.unknown));
}

function counts(c) {
  return [`${n(c.free)} ${t("free")}`, `${n(c.occupied)} ${t("occupied")}`,
          `${n(c.unknown)} ${t("unknown")}`, `${n(c.total)} ${t("spaces")}`].join(t("sep"));
}

function updated(site) {
  const when = site.updated_at ? dateTime(state.lang, site.updated_at, site.timezone) : t("never");
  const line = `${t("updated")}: ${when}`;
  return site.stale ? h("span", { class: "stale" }, `${line} (${t("stale")})`) : line;
}

function siteItem(site) {
  const [name, alt] = names(site);
  const key = `${site.tenant}/${site.site}`;
  const link = h("a", { class: "name", href: `#${key}` }, name);
  link.addEventListener("click", (e) => { e.preventDefault(); select(key); });
  const li = h("li", { class: "site" + (state.selected === key ? " selected" : ""), "data-site": key },
    h("div", { class: "top" },
      h("div", {}, link, alt ? h("div", { class: "alt" }, alt) : null),
      h("div", { class: "count" }, h("span", { class: "big" }, n(site.free)),
        ` ${t("of")} ${n(site.total)} `, h("span", { class: "kind" }, t(site.kind)))),
    bar(site), h("p", { class: "meta" }, counts(site),
      site.distance_m != null ? `${t("sep")}${n(Math.round(site.distance_m))} ${t("metres")}` : null,
      h("br"), updated(site)));
  if (state.selected === key) link.setAttribute("aria-current", "true");
  li.addEventListener("click", () => select(key));
  return li;
}

function renderSites() {
  $("sites").replaceChildren(...state.sites.map(siteItem));
  state.map?.update(state.sites, state.selected,
    (s) => [h("span", { dir: "ltr" }, h("b", {}, n(s.free)), h("span", { class: "of" }, `/${n(s.total)}`)),
            h("bdi", { class: "nm" }, names(s)[0])],
    (s) => t("marker", { name: names(s)[0], free: n(s.free), total: n(s.total) }));
}

function renderStatus() {
  const s = state.status;
  const line = { loading: "", offline: t("offline"), nearfail: t("nearfail"),
    live: s.at ? `${t("live")}${t("sep")}${dateTime(state.lang, s.at, "Asia/Tehran")}` : "",
    saved: s.savedAt ? `${t("saved")} ${age(state.lang, s.savedAt)}` : "" }[s.kind];
  $("status").textContent = line;
  $("status").classList.toggle("error", s.kind !== "live");
}

function setStatus(status) {
  state.status = status;
  renderStatus();
}

// --- drivers: the selected site's plan, live ---
function zoneBlock(zone, spaces) {
  const [name] = names({ name: zone.name || zone.zone, name_fa: zone.name_fa });
  const cells = spaces.filter((s) => s.zone === zone.zone).map((s) =>
    h("div", { class: `cell ${s.state}`, dir: "ltr", "data-space": s.space, role: "img",
               "aria-label": `${s.space}: ${t(s.state)}`, title: `${s.space}: ${t(s.state)}` }, s.space));
  return h("div", { class: "zone" },
    h("h3", {}, h("bdi", {}, name), ` — ${n(zone.free)} ${t("of")} ${n(zone.total)} ${t("free")}`),
    bar(zone), h("div", { class: "grid" }, ...cells));
}

function renderDetail() {
  const site = state.site;
  if (!site) return;
  const spaces = [...state.spaces.values()];
  const [name, alt] = names(site);
  $("detail").hidden = false;
  $("hint").hidden = true;
  $("detail-name").textContent = alt ? `${name}${t("sep")}${alt}` : name;
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
  source.onopen = () => setStatus({ kind: "live", at: new Date().toISOString() });
  source.onerror = () => { if (state.status.kind !== "saved") setStatus({ kind: "offline" }); };
  state.source = source;
}

function select(key) {
  state.selected = key;
  history.replaceState(null, "", `${location.pathname}${location.search}#${key}`);
  renderSites();
  follow(key);
}

async function fetchJSON(path, auth) {
  const headers = { Accept: "application/json" };
  if (auth) headers.Authorization = `Bearer ${state.token}`;
  const r = await fetch(path, { headers });
  if (!r.ok) throw Object.assign(new Error(`${path}: HTTP ${r.status}`), { status: r.status });
  return { data: await r.json(), savedAt: Number(r.headers.get(SAVED_HEADER)) || null };
}

const getJSON = async (path, auth) => (await fetchJSON(path, auth)).data;

async function refresh() {
  try {
    const params = state.near ? `?near=${state.near}&radius_m=50000` : "";
    const { data, savedAt } = await fetchJSON(`/v1/sites${params}`);
    state.sites = data;
    renderSites();
    if (savedAt) setStatus({ kind: "saved", savedAt });
    else if (!state.source || state.status.kind !== "live") {
      setStatus({ kind: "live", at: new Date().toISOString() });
    }
  } catch (err) {
    console.warn(err);
    setStatus({ kind: "offline" });
  }
}

// --- managers ---
async function login(token) {
  state.token = token;
  try {
    state.who = await getJSON("/v1/manage/whoami", true);
  } catch {
    state.who = null;
    sessionStorage.removeItem("token");
    $("whoami").textContent = t("badtoken");
    $("manage-body").hidden = true;
    return;
  }
  sessionStorage.setItem("token", token);
  $("logout").hidden = false;
  renderWho();
  const markets = state.sites.filter((s) => s.tenant === state.who.tenant &&
    (!state.who.sites.length || state.who.sites.includes(s.site)));
  const first = (s) => (s.kind === "market" ? 0 : 1);
  $("market").replaceChildren(...markets.sort((a, b) => first(a) - first(b))
    .map((s) => h("option", { value: s.site }, names(s)[0])));
  $("manage-body").hidden = false;
  await loadManager();
}

function renderWho() {
  if (!state.who) return;
  $("whoami").replaceChildren(`${t("signed")} ${t(`role_${state.who.role}`)}${t("sep")}`,
    h("bdi", { dir: "ltr" }, state.who.tenant));
  for (const option of $("market").options) {
    const site = state.sites.find((s) => s.tenant === state.who.tenant && s.site === option.value);
    if (site) option.textContent = names(site)[0];
  }
}

async function loadManager() {
  if (!state.who || !$("market").value) return;
  const base = `/v1/manage/${state.who.tenant}`;
  const site = $("market").value;
  const day = $("day").value;
  const dq = day ? `?date=${day}` : "";
  try {
    const [att, util, alerts] = await Promise.all([
      getJSON(`${base}/sites/${site}/attendance${dq}`, true),
      getJSON(`${base}/sites/${site}/utilization`, true),
      getJSON(`${base}/alerts`, true),
    ]);
    state.report = { att, util, alerts };
  } catch (err) {
    console.warn(err);
    $("whoami").textContent = t("loadfail");
    return;
  }
  if (!day) $("day").value = state.report.att.date;
  renderReport();
}

function renderReport() {
  if (!state.report) return;
  const { att, util, alerts } = state.report;
  renderDay(att.date);
  const rows = att.closed ? [h("tr", {}, h("td", { colspan: "5" }, t("closed")))] : att.stalls.map((s) =>
    h("tr", { class: s.absent ? "absent" : "" }, h("td", { dir: "ltr" }, s.space), h("td", {}, s.vendor || "—"),
      h("td", {}, s.first_arrival ? clock(state.lang, s.first_arrival, att.timezone) : "—"),
      h("td", {}, s.last_departure ? clock(state.lang, s.last_departure, att.timezone) : "—"),
      h("td", {}, s.absent ? t("absent") : n(Math.round(s.minutes_occupied)))));
  $("attendance").tBodies[0].replaceChildren(...rows);
  $("utilization").replaceChildren(...util.hours.map((u) => {
    const label = `${t("hour", { h: n(u.hour) })} — ${percent(state.lang, u.utilization)}`;
    return h("div", { class: "col", style: `height:${Math.round(u.utilization * 100)}%`, title: label },
      h("span", {}, n(u.hour)));
  }));
  $("utilization").setAttribute("aria-label", t("utilization"));
  $("alerts").replaceChildren(...(alerts.length ? alerts.map(alertItem) : [h("li", {}, t("none"))]));
}

function alertItem(a) {
  const site = state.sites.find((s) => s.tenant === state.who.tenant && s.site === a.site);
  const pct = a.kind === "battery_low" ? a.detail.match(/\d+/) : null;
  const parts = [t(a.kind) + (pct ? ` (${percent(state.lang, pct[0] / 100)})` : ""),
    h("bdi", { dir: "ltr" }, a.subject), site ? names(site)[0] : a.site,
    a.since ? `${t("since")} ${dateTime(state.lang, a.since, site?.timezone)}` : null,
    state.lang === "en" ? a.detail : null];
  const li = h("li", {});
  parts.filter((p) => p).forEach((p, i) => li.append(...(i ? [t("sep"), p] : [p])));
  return li;
}

// The date of the report: the native picker (Gregorian) in English; in Persian, Jalali
// year / month / day lists, which set the same ISO date behind them.
function renderDay(iso) {
  const fa = state.lang === "fa";
  $("day-en").hidden = fa;
  $("day-fa").hidden = !fa;
  if (!iso) return;
  const other = fa ? "gregory" : "persian";
  $("day-jalali").textContent = `${t(fa ? "gregorian" : "jalali")}: ${longDate(state.lang, iso, other)}`;
  if (!fa) return;
  const [y, m, d] = toJalali(iso);
  const [thisYear] = toJalali(new Date().toISOString().slice(0, 10));
  const option = (value, label) => h("option", { value: String(value) }, label);
  const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  $("jy").replaceChildren(...range(Math.min(y, thisYear - 3), thisYear).map((v) => option(v, v.toLocaleString("fa-IR", { useGrouping: false }))));
  $("jm").replaceChildren(...jalaliMonths("fa").map((name, i) => option(i + 1, name)));
  $("jd").replaceChildren(...range(1, jalaliMonthDays(y, m)).map((v) => option(v, n(v))));
  $("jy").value = String(y); $("jm").value = String(m); $("jd").value = String(d);
}

function pickJalali() {
  const y = Number($("jy").value), m = Number($("jm").value);
  const d = Math.min(Number($("jd").value), jalaliMonthDays(y, m));
  $("day").value = fromJalali(y, m, d);
  loadManager();
}

async function downloadCsv(e) {
  e.preventDefault();
  const site = $("market").value, day = $("day").value;
  const r = await fetch(`/v1/manage/${state.who.tenant}/sites/${site}/attendance?format=csv&date=${day}`,
                        { headers: { Authorization: `Bearer ${state.token}` } });
  const a = h("a", { href: URL.createObjectURL(await r.blob()), download: `attendance-${site}-${day}.csv` });
  a.click();
}

// --- language ---
function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.documentElement.dir = state.lang === "fa" ? "rtl" : "ltr";
  document.title = t("doctitle");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
  $("lang").textContent = t("other");
  $("lang").setAttribute("lang", state.lang === "fa" ? "en" : "fa");
  state.map?.setLabels(t("zoomin"), t("zoomout"));
  localStorage.setItem("lang", state.lang);
}

function switchLanguage() {
  state.lang = state.lang === "en" ? "fa" : "en";
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) {
    url.searchParams.set("lang", state.lang);
    history.replaceState(null, "", url);
  }
  applyLanguage();
  renderSites();
  renderDetail();
  renderStatus();
  renderWho();
  renderReport();
  renderDay($("day").value);
}

function bind() {
  $("lang").addEventListener("click", switchLanguage);
  $("near").addEventListener("click", () => {
    if (!navigator.geolocation) { setStatus({ kind: "nearfail" }); return; }
    navigator.geolocation.getCurrentPosition((p) => {
      state.near = `${p.coords.latitude.toFixed(5)},${p.coords.longitude.toFixed(5)}`;
      refresh();
    }, () => setStatus({ kind: "nearfail" }));
  });
  $("manager").addEventListener("click", () => {
    $("manage").hidden = !$("manage").hidden;
    $("manager").setAttribute("aria-expanded", String(!$("manage").hidden));
  });
  $("login").addEventListener("submit", (e) => { e.preventDefault(); login($("token").value.trim()); });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem("token");
    state.token = state.who = state.report = null;
    $("manage-body").hidden = true;
    $("logout").hidden = true;
    $("whoami").textContent = "";
  });
  $("market").addEventListener("change", loadManager);
  $("day").addEventListener("change", loadManager);
  for (const id of ["jy", "jm", "jd"]) $(id).addEventListener("change", pickJalali);
  $("att-csv").addEventListener("click", downloadCsv);
  addEventListener("online", refresh); // back on the network: live counts at once
  addEventListener("hashchange", () => {
    const key = siteKey(location.hash);
    if (key && key !== state.selected) select(key);
  });
  setInterval(() => { if (state.status.kind === "saved") renderStatus(); }, 15000);
}

async function start() {
  bind();
  try { state.config = await getJSON("/config.json"); } catch { state.config = {}; }
  if (window.L) state.map = new SiteMap($("map"), state.config.tile_url || null, select);
  applyLanguage();
  renderDay(null);
  await refresh();
  if (state.selected) follow(state.selected);
  if (state.token) { $("manage").hidden = false; login(state.token); }
  setInterval(refresh, REFRESH_MS);
  // installable and usable offline: the worker keeps the page and the last list it saw
  navigator.serviceWorker?.register("/sw.js").catch((err) => console.warn("service worker:", err));
}
start();
