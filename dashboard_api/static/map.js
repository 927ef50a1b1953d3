// The map of the sites: Leaflet (vendored under /static/vendor/leaflet, loaded before this
// module as the global `L`), one marker per site at its coordinates, labelled with its
// free and total counts and coloured by its free ratio (the count is always written, so
// colour is never the only signal). With a tile server configured (`api.tile_url`) the
// sites sit on its tiles; without one, on a plain background: positions and counts
// still read. Markers are updated in place (their element kept, so keyboard focus
// stays) whenever the page has new counts: every list refresh and every `counts` event
// of the live stream. Pins that would cover each other (sites a few hundred metres apart
// on a city-wide view) are stacked upwards, so every site's count stays readable.
/** The colour class of a site's marker: by the share of its spaces known free. */
export function ratioClass(site) {
  if (!site.total || site.stale || site.free + site.occupied === 0) return "r-unknown";
  const ratio = site.free / site.total;
  if (site.free === 0) return "r-full";
  return ratio < 0.2 ? "r-low" : "r-ok";
}

export class SiteMap {
  /** `el`: the map's element; `tileUrl`: a {z}/{x}/{y} template or null; `onSelect(key)`. */
  constructor(el, tileUrl, onSelect) {
    this.onSelect = onSelect;
    this.markers = new Map(); // "tenant/site" → { marker, pin }
    this.fitted = "";
    this.map = L.map(el, { zoomControl: false, attributionControl: false, keyboard: true,
                           worldCopyJump: true, minZoom: 3 });
    this.zoom = null;
    if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 19 }).addTo(this.map);
    else el.classList.add("no-tiles");
    this.map.setView([32.4, 53.7], 5); // Iran, until the sites arrive
    this.map.on("zoomend", () => this.declutter());
  }

  /** Zoom buttons titled in the page's language (re-made when the language changes). */
  setLabels(zoomIn, zoomOut) {
    if (this.zoom) this.map.removeControl(this.zoom);
    this.zoom = L.control.zoom({ zoomInTitle: zoomIn, zoomOutTitle: zoomOut }).addTo(this.map);
  }

  /** Show `sites` ({tenant, site, lat, lon, free, total, …}); `label(site)` gives the
   * marker's visible count and `describe(site)` its accessible name. */
  update(sites, selected, label, describe) {
    const seen = new Set();
    for (const s of sites) {
      const key = `${s.tenant}/${s.site}`;
      seen.add(key);
      let entry = this.markers.get(key);
      if (!entry) entry = this.add(key, s);
      entry.marker.setLatLng([s.lat, s.lon]);
      const el = entry.marker.getElement();
      entry.pin.className = `pin ${ratioClass(s)}${key === selected ? " selected" : ""}`;
      entry.pin.replaceChildren(...label(s));
      entry.pin.dir = document.documentElement.dir; // the map itself is always ltr
      if (el) {
        el.setAttribute("aria-label", describe(s));
        el.title = describe(s);
      }
    }
    for (const [key, entry] of this.markers) {
      if (!seen.has(key)) { entry.marker.remove(); this.markers.delete(key); }
    }
    this.fit(sites);
    this.declutter();
  }

  /** Lift each pin above those it would overlap (in a stable order: by key). */
  declutter() {
    const placed = [];
    for (const key of [...this.markers.keys()].sort()) {
      const { marker, pin } = this.markers.get(key);
      const at = this.map.latLngToContainerPoint(marker.getLatLng());
      const w = pin.offsetWidth || 40, hgt = pin.offsetHeight || 22;
      let lift = 0;
      while (placed.some((p) => Math.abs(p.x - at.x) < (p.w + w) / 2 && Math.abs(p.y - (at.y - lift)) < hgt)) {
        lift += hgt + 2;
      }
      pin.style.transform = `translate(-50%, calc(-100% - ${lift}px))`;
      placed.push({ x: at.x, y: at.y - lift, w });
    }
  }

  add(key, site) {
    const pin = document.createElement("span");
    const icon = L.divIcon({ html: pin, className: "pin-anchor", iconSize: null });
    const marker = L.marker([site.lat, site.lon], { icon, keyboard: true, riseOnHover: true }).addTo(this.map);
    marker.getElement().dataset.site = key;
    marker.on("click", () => this.onSelect(key));
    // Leaflet makes a marker focusable (role "button") but Enter only opens popups: select
    marker.on("keypress", (e) => {
      if (e.originalEvent.key === "Enter" || e.originalEvent.key === " ") {
        e.originalEvent.preventDefault();
        this.onSelect(key);
      }
    });
    const entry = { marker, pin };
    this.markers.set(key, entry);
    return entry;
  }

  /** Frame the sites once per set of sites (never again on a mere change of counts). */
  fit(sites) {
    const set = sites.map((s) => `${s.tenant}/${s.site}`).sort().join();
    if (!sites.length || set === this.fitted) return;
    this.fitted = set;
    const bounds = L.latLngBounds(sites.map((s) => [s.lat, s.lon]));
    const wide = this.map.getSize().x > 500; // pins carry names there: keep them inside
    this.map.fitBounds(bounds, { padding: [wide ? 120 : 44, 44], maxZoom: 15 });
  }

  /** Leaflet measures its element: call when it was resized or shown. */
  resize() { this.map.invalidateSize(); }
}
