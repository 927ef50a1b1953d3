// The page's service worker (served at /sw.js so that it controls the whole origin).
// How this works: on install it keeps the page and its files in a cache; then every
// request of this origin for them goes to the network first and, when the network
// fails, is answered from the cache (so the page opens offline and is never stale
// online). The site list (/v1/sites, with or without a query) is kept the same way,
// each answer saved with the time it was saved in the X-Parkbazaar-Saved-At header
// (milliseconds since the epoch): answered from the cache, the page knows it is
// offline and says how old the counts are. The live stream, the managers' reports
// (a token's data stays out of caches) and map tiles are never cached.
const VERSION = "v1";
const SHELL = `parkbazaar-shell-${VERSION}`;
const DATA = `parkbazaar-data-${VERSION}`;
const SAVED_HEADER = "X-Parkbazaar-Saved-At";
const FILES = [
  "/", "/config.json", "/manifest.webmanifest",
  "/static/app.js", "/static/i18n.js", "/static/map.js", "/static/style.css",
  "/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
  "/static/icons/icon.svg", "/static/icons/icon-192.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  const keep = new Set([SHELL, DATA]);
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => !keep.has(n)).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname === "/v1/sites") event.respondWith(sites(event.request));
  else if (event.request.mode === "navigate" || FILES.includes(url.pathname)) {
    event.respondWith(networkFirst(event.request));
  }
});

/** The network's answer (kept for later), or the kept one when the network fails. */
async function networkFirst(request) {
  const cache = await caches.open(SHELL);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(new URL(request.url).pathname, response.clone());
    return response;
  } catch (err) {
    const kept = await cache.match(new URL(request.url).pathname);
    if (kept) return kept;
    throw err;
  }
}

/** The site list from the network, saved with its time; offline, the last one saved. */
async function sites(request) {
  const cache = await caches.open(DATA);
  try {
    // revalidate (a 304 when unchanged): never the browser's copy of the last seconds,
    // which would pass for live counts while offline
    const response = await fetch(request, { cache: "no-cache" });
    if (response.ok) {
      const headers = new Headers(response.headers);
      headers.set(SAVED_HEADER, String(Date.now()));
      const saved = new Response(await response.clone().blob(), { status: 200, headers });
      await cache.put(request.url, saved.clone());
      await cache.put("/v1/sites", saved); // the last list of any query, for a new one offline
    }
    return response;
  } catch (err) {
    const kept = (await cache.match(request.url)) || (await cache.match("/v1/sites"));
    if (kept) return kept;
    throw err;
  }
}
