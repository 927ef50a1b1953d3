// The camera layout editor (/admin/layout). An operator signs in with an admin token (kept
// for the tab only), picks a site and camera, and sees the camera's latest frame
// (GET …/frame, shown from a blob: URL) with its bay polygons as SVG over it. Polygons are
// drawn by clicking their corners, selected, dragged (whole or by a corner), deleted,
// numbered and bound to the site's spaces, then saved as a new layout version
// (PUT …/layout with the version they were edited from, so a save made meanwhile by
// someone else is a 409, not silently undone). Imports go through the existing
// …/polygons route. Plain DOM, no framework; every text through textContent.
"use strict";

const TEXT = {
  en: {
    title: "Camera layout editor", back: "Live page", token: "Admin token", login: "Sign in",
    logout: "Sign out", site: "Site", camera: "Camera", draw: "New polygon (N)", corners: "corners",
    delete: "Delete (Del)", save: "Save (Ctrl+S)", reload: "Reload", selected: "Selected polygon",
    space: "Space", polygons: "Polygons", number: "Number all", prefix: "prefix", start: "from",
    width: "digits", apply: "Apply", import: "Import a layout file", format: "format", file: "file",
    importbtn: "Import and save", upload: "Upload a frame", uploadbtn: "Upload", history: "History",
    numberhint: "Top row first, left to right: prefix + number.",
    hint: "Click on a polygon to select it; drag it or its corners. N: draw (click the corners; it " +
      "closes on the first corner, at the corner count, or with Enter; Esc cancels). Arrow keys move " +
      "the selected polygon (Shift: 10 px). Del deletes it.",
    signed: "signed in as", notadmin: "this token is not an admin token", badtoken: "this token is not valid",
    nocamera: "this site has no camera: create one (POST …/devices with kind camera) first",
    noframe: "no frame of this camera yet: upload one, or run `parkbazaar layout frame` on the gateway",
    version: "layout version", none: "none yet", unsaved: "unsaved changes", saved: "saved as version",
    loaded: "loaded version {v}: Save makes it the current layout", imported: "imported and saved as version",
    uploaded: "frame uploaded", load: "Load", points: "points", spaces: "spaces", empty: "a polygon has no space id",
    duplicate: "space {s} has two polygons", unknown: "{s} is not a space of this site (create it first)",
    nothing: "nothing to save: draw a polygon first", pickfile: "choose a file first",
    leave: "There are unsaved changes. Leave anyway?", drawing: "drawing: click the corners",
  },
};
const DRAG_PX = 10; // how near (in screen pixels) a click must be to the first corner to close

const state = {
  lang: "en", token: sessionStorage.getItem("admin-token"), who: null, sites: [], spaces: [],
  site: null, camera: null, polys: [], selected: null, base: null, dirty: false,
  drawing: null, drag: null, size: [1280, 720], frameUrl: null,
};
const $ = (id) => document.getElementById(id);
const t = (key, vars = {}) => (TEXT[state.lang][key] || key).replace(/\{(\w+)\}/g, (_, k) => vars[k]);
const SVG = "http://www.w3.org/2000/svg";

function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c != null) el.append(c);
  return el;
}

function say(text, error = false) {
  $("message").textContent = text || "";
  $("message").classList.toggle("error", error);
}

// --- the API ---
function problemText(body, status) {
  const d = body && body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("\n");
  return `HTTP ${status}`;
}

async function api(method, path, { json, body, type, raw } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (type) headers["Content-Type"] = type;
  const r = await fetch(path, { method, headers, body });
  if (!r.ok) {
    let parsed = null;
    try { parsed = await r.json(); } catch { /* not JSON */ }
    throw Object.assign(new Error(problemText(parsed, r.status)), { status: r.status });
  }
  return raw ? r : r.json();
}

const adminBase = () => `/v1/admin/${state.who.tenant}/sites/${state.site}`;
const cameraBase = () => `${adminBase()}/devices/${encodeURIComponent(state.camera)}`;

// --- signing in, sites and cameras ---
async function login(token) {
  state.token = token;
  try {
    state.who = await api("GET", "/v1/manage/whoami");
  } catch (err) {
    return signOut(err.status === 401 ? t("badtoken") : err.message);
  }
  if (state.who.role !== "admin") return signOut(t("notadmin"));
  sessionStorage.setItem("admin-token", token);
  $("whoami").textContent = `${t("signed")} ${state.who.role} · ${state.who.tenant}`;
  $("logout").hidden = false;
  $("work").hidden = false;
  say("");
  await loadSites();
}

function signOut(reason) {
  sessionStorage.removeItem("admin-token");
  state.token = state.who = null;
  $("work").hidden = true;
  $("logout").hidden = true;
  $("whoami").textContent = "";
  say(reason || "", Boolean(reason));
}

async function loadSites() {
  const [wantSite, wantCamera] = decodeURIComponent(location.hash.slice(1)).split("/");
  const all = await api("GET", "/v1/sites");
  state.sites = all.filter((s) => s.tenant === state.who.tenant);
  $("site").replaceChildren(...state.sites.map((s) => h("option", { value: s.site }, `${s.name} (${s.site})`)));
  if (state.sites.some((s) => s.site === wantSite)) $("site").value = wantSite;
  await loadSite(wantCamera);
}

async function loadSite(wantCamera) {
  state.site = $("site").value;
  if (!state.site) return;
  const [devices, spaces] = await Promise.all([
    api("GET", `${adminBase()}/devices`),
    api("GET", `/v1/sites/${state.who.tenant}/${state.site}/spaces`),
  ]);
  state.spaces = spaces.map((s) => s.space);
  $("spaces").replaceChildren(...state.spaces.map((s) => h("option", { value: s })));
  const cameras = devices.filter((d) => d.kind === "camera").map((d) => d.id);
  $("camera").replaceChildren(...cameras.map((c) => h("option", { value: c }, c)));
  if (cameras.includes(wantCamera)) $("camera").value = wantCamera;
  if (!cameras.length) {
    state.camera = null;
    setPolys([], null);
    return say(t("nocamera"), true);
  }
  await loadCamera();
}

async function loadCamera() {
  state.camera = $("camera").value;
  history.replaceState(null, "", `#${state.site}/${state.camera}`);
  cancelDraw();
  const [layout] = await Promise.all([api("GET", `${cameraBase()}/layout`), loadFrame(), loadVersions()]);
  setPolys(Object.entries(layout.spaces).map(([id, points]) => ({ id, points })), layout.version);
}

async function loadFrame() {
  if (state.frameUrl) URL.revokeObjectURL(state.frameUrl);
  state.frameUrl = null;
  let r;
  try {
    r = await api("GET", `${cameraBase()}/frame`, { raw: true });
  } catch (err) {
    if (err.status !== 404) throw err;
    $("frame").removeAttribute("href");
    say(t("noframe"));
    return;
  }
  state.size = [Number(r.headers.get("X-Frame-Width")) || 1280, Number(r.headers.get("X-Frame-Height")) || 720];
  state.frameUrl = URL.createObjectURL(await r.blob());
  $("frame").setAttribute("href", state.frameUrl);
  sizeStage();
}

async function loadVersions() {
  const versions = await api("GET", `${cameraBase()}/layouts?limit=50`);
  $("versions").replaceChildren(...versions.map((v) => h("li", {},
    `v${v.version} · ${new Date(v.at).toLocaleString()} · ${v.actor} · ${v.source} · ${v.spaces} ${t("spaces")} `,
    button(t("load"), () => loadVersion(v.version)))));
}

async function loadVersion(n) {
  const v = await api("GET", `${cameraBase()}/layouts/${n}`);
  const base = state.base;
  setPolys(Object.entries(v.spaces).map(([id, points]) => ({ id, points })), base);
  state.dirty = true;
  showVersion();
  say(t("loaded", { v: n }));
}

function button(text, onClick) {
  const b = h("button", { type: "button" }, text);
  b.addEventListener("click", onClick);
  return b;
}

// --- the drawing ---
function setPolys(polys, version) {
  state.polys = polys;
  state.base = version;
  state.selected = null;
  state.dirty = false;
  if (!state.frameUrl) state.size = boundsOf(polys);
  sizeStage();
  showVersion();
  render();
}

function boundsOf(polys) {
  const xs = polys.flatMap((p) => p.points.map((q) => q[0]));
  const ys = polys.flatMap((p) => p.points.map((q) => q[1]));
  return [Math.max(1280, ...xs.map((x) => x + 20)), Math.max(720, ...ys.map((y) => y + 20))];
}

function sizeStage() {
  const [w, hgt] = state.size;
  $("canvas").setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  $("frame").setAttribute("width", w);
  $("frame").setAttribute("height", hgt);
}

function showVersion() {
  const v = state.base == null ? t("none") : `v${state.base}`;
  $("version").textContent = `${t("version")}: ${v}${state.dirty ? ` · ${t("unsaved")}` : ""}`;
}

const unit = () => state.size[0] / Math.max(1, $("canvas").clientWidth); // SVG units per screen pixel
const pointsAttr = (pts) => pts.map((p) => `${p[0]},${p[1]}`).join(" ");

function centroid(pts) {
  return [pts.reduce((s, p) => s + p[0], 0) / pts.length, pts.reduce((s, p) => s + p[1], 0) / pts.length];
}

function render() {
  const bad = problems().badIndexes;
  $("polys").replaceChildren(...state.polys.flatMap((p, i) => {
    const cls = `poly${i === state.selected ? " selected" : ""}${bad.has(i) ? " bad" : ""}`;
    const [cx, cy] = centroid(p.points);
    const label = h("svg:text", { class: "label", x: cx, y: cy, "font-size": 14 * unit() }, p.id || "?");
    return [h("svg:polygon", { class: cls, points: pointsAttr(p.points), "data-index": i }), label];
  }));
  const sel = state.polys[state.selected];
  $("handles").replaceChildren(...(sel ? sel.points.map((q, j) =>
    h("svg:circle", { class: "handle", cx: q[0], cy: q[1], r: 6 * unit(), "data-vertex": j })) : []));
  $("list").replaceChildren(...state.polys.map((p, i) => {
    const b = button(`${p.id || "?"} · ${p.points.length} ${t("points")}`, () => select(i));
    if (i === state.selected) b.classList.add("selected");
    if (bad.has(i)) b.classList.add("bad");
    return h("li", {}, b);
  }));
  $("space").disabled = !sel;
  if (document.activeElement !== $("space")) $("space").value = sel ? sel.id : "";
  $("sketch").setAttribute("points", state.drawing ? pointsAttr(state.drawing.concat(state.cursor ? [state.cursor] : [])) : "");
}

function problems() {
  const seen = new Map(), messages = [], badIndexes = new Set();
  state.polys.forEach((p, i) => {
    if (!p.id) { messages.push(t("empty")); badIndexes.add(i); return; }
    if (seen.has(p.id)) { messages.push(t("duplicate", { s: p.id })); badIndexes.add(i).add(seen.get(p.id)); }
    seen.set(p.id, i);
    if (state.spaces.length && !state.spaces.includes(p.id)) { messages.push(t("unknown", { s: p.id })); badIndexes.add(i); }
  });
  return { messages: [...new Set(messages)], badIndexes };
}

function changed() {
  state.dirty = true;
  showVersion();
  render();
}

function select(i) {
  state.selected = i;
  render();
}

function svgPoint(e) {
  const m = $("canvas").getScreenCTM().inverse();
  const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(m);
  const [w, hgt] = state.size;
  return [Math.round(Math.min(w, Math.max(0, p.x)) * 10) / 10, Math.round(Math.min(hgt, Math.max(0, p.y)) * 10) / 10];
}

function nextSpace() {
  const used = new Set(state.polys.map((p) => p.id));
  return state.spaces.find((s) => !used.has(s)) || "";
}

function startDraw() {
  state.drawing = [];
  state.selected = null;
  $("draw").setAttribute("aria-pressed", "true");
  $("canvas").classList.add("drawing");
  $("canvas").focus();
  say(t("drawing"));
  render();
}

function cancelDraw() {
  state.drawing = null;
  state.cursor = null;
  $("draw").setAttribute("aria-pressed", "false");
  $("canvas").classList.remove("drawing");
  render();
}

function finishDraw() {
  const pts = state.drawing;
  if (!pts || pts.length < 3) return;
  state.polys.push({ id: nextSpace(), points: pts });
  cancelDraw();
  say("");
  select(state.polys.length - 1);
  changed();
}

function addCorner(q) {
  const pts = state.drawing;
  const first = pts[0];
  if (pts.length >= 3 && Math.hypot(q[0] - first[0], q[1] - first[1]) <= DRAG_PX * unit()) return finishDraw();
  pts.push(q);
  const corners = Number($("corners").value) || 4;
  if (pts.length >= Math.max(3, corners)) return finishDraw();
  render();
}

function onPointerDown(e) {
  const q = svgPoint(e);
  if (state.drawing) { addCorner(q); return; }
  const vertex = e.target.dataset.vertex, index = e.target.dataset.index;
  if (vertex !== undefined) {
    state.drag = { vertex: Number(vertex), from: q, moved: false };
  } else if (index !== undefined) {
    select(Number(index));
    state.drag = { from: q, orig: state.polys[state.selected].points.map((p) => p.slice()), moved: false };
  } else {
    select(null);
    return;
  }
  $("canvas").setPointerCapture(e.pointerId);
}

function onPointerMove(e) {
  if (state.drawing) { state.cursor = svgPoint(e); render(); return; }
  const drag = state.drag, poly = state.polys[state.selected];
  if (!drag || !poly) return;
  const q = svgPoint(e);
  if (drag.vertex !== undefined) poly.points[drag.vertex] = q;
  else poly.points = drag.orig.map((p) => [p[0] + q[0] - drag.from[0], p[1] + q[1] - drag.from[1]]);
  drag.moved = true;
  render();
}

function onPointerUp() {
  if (state.drag && state.drag.moved) changed();
  state.drag = null;
}

function moveSelected(dx, dy) {
  const poly = state.polys[state.selected];
  if (!poly) return;
  poly.points = poly.points.map((p) => [p[0] + dx, p[1] + dy]);
  changed();
}

function deleteSelected() {
  if (state.selected == null) return;
  state.polys.splice(state.selected, 1);
  state.selected = null;
  changed();
}

function numberAll() {
  const prefix = $("num-prefix").value.trim(), start = Number($("num-start").value) || 0;
  const width = Number($("num-width").value) || 0;
  const rowHeight = Math.max(1, state.size[1] / 20); // centroids within a band count as one row
  const order = state.polys.map((p, i) => [centroid(p.points), i])
    .sort((a, b) => Math.floor(a[0][1] / rowHeight) - Math.floor(b[0][1] / rowHeight) || a[0][0] - b[0][0]);
  order.forEach(([, i], n) => { state.polys[i].id = prefix + String(start + n).padStart(width, "0"); });
  changed();
}

// --- saving, importing, uploading ---
async function save() {
  const found = problems();
  if (!state.polys.length) return say(t("nothing"), true);
  if (found.messages.length) return say(found.messages.join("\n"), true);
  const spaces = Object.fromEntries(state.polys.map((p) => [p.id, p.points]));
  const r = await api("PUT", `${cameraBase()}/layout`, { json: { spaces, base: state.base } });
  state.base = r.version;
  state.dirty = false;
  showVersion();
  say(`${t("saved")} ${r.version}`);
  await loadVersions();
}

async function importFile() {
  const file = $("imp-file").files[0];
  if (!file) return say(t("pickfile"), true);
  const q = new URLSearchParams({ format: $("imp-format").value, prefix: $("imp-prefix").value.trim(),
                                  width: $("imp-width").value || "0" });
  const r = await api("PUT", `${cameraBase()}/polygons?${q}`, { body: await file.text(), type: "text/plain" });
  await loadCamera();
  say(`${t("imported")} ${r.version}`);
}

async function uploadFrame() {
  const file = $("frame-file").files[0];
  if (!file) return say(t("pickfile"), true);
  await api("PUT", `${cameraBase()}/frame`, { body: file, type: file.type || "image/jpeg" });
  await loadFrame();
  render();
  say(t("uploaded"));
}

// Every action's error is shown as the API worded it.
const guarded = (fn) => async (...args) => {
  try { await fn(...args); } catch (err) { console.warn(err); say(err.message, true); }
};

function onKey(e) {
  if (!state.camera) return;
  if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); guarded(save)(); return; }
  if (e.target.matches("input, select, textarea") && e.key !== "Escape") return; // typing
  const step = e.shiftKey ? 10 : 1;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (e.key === "n" || e.key === "N") startDraw();
  else if (e.key === "Enter" && state.drawing) finishDraw();
  else if (e.key === "Escape") { if (state.drawing) cancelDraw(); else select(null); }
  else if ((e.key === "Delete" || e.key === "Backspace") && !state.drawing) deleteSelected();
  else if (moves[e.key] && state.selected != null) { e.preventDefault(); moveSelected(...moves[e.key]); }
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

function confirmLeave() {
  return !state.dirty || window.confirm(t("leave"));
}

$("login").addEventListener("submit", (e) => { e.preventDefault(); guarded(login)($("token").value.trim()); });
$("logout").addEventListener("click", () => signOut());
$("site").addEventListener("change", guarded(async () => { if (confirmLeave()) await loadSite(); else $("site").value = state.site; }));
$("camera").addEventListener("change", guarded(async () => { if (confirmLeave()) await loadCamera(); else $("camera").value = state.camera; }));
$("draw").addEventListener("click", () => (state.drawing ? cancelDraw() : startDraw()));
$("delete").addEventListener("click", deleteSelected);
$("save").addEventListener("click", guarded(save));
$("reload").addEventListener("click", guarded(async () => { if (confirmLeave()) await loadCamera(); }));
$("number-all").addEventListener("click", numberAll);
$("import").addEventListener("click", guarded(importFile));
$("upload").addEventListener("click", guarded(uploadFrame));
$("space").addEventListener("input", () => {
  const poly = state.polys[state.selected];
  if (poly) { poly.id = $("space").value.trim(); changed(); }
});
$("canvas").addEventListener("pointerdown", onPointerDown);
$("canvas").addEventListener("pointermove", onPointerMove);
$("canvas").addEventListener("pointerup", onPointerUp);
$("canvas").addEventListener("pointercancel", onPointerUp);
document.addEventListener("keydown", onKey);
window.addEventListener("beforeunload", (e) => { if (state.dirty) e.preventDefault(); });
window.addEventListener("resize", render);

applyLanguage();
if (state.token) guarded(login)(state.token);
