// Every text of the page in English and Persian, and the formatting of numbers, times
// and dates per language: Persian digits and the Solar Hijri (Jalali) calendar in fa,
// Latin digits and the Gregorian calendar in en. Pure functions of `lang`, no DOM: the
// page asks `text(lang, key)` and the formatters below.
//
// Jalali ↔ Gregorian goes through ICU's `persian` calendar (Intl), the same rule as the
// API's dashboard_api/jalali.py: Gregorian → Jalali is one `formatToParts`; Jalali →
// Gregorian estimates the day from 1 Farvardin 1403 (2024-03-20) and corrects it by
// at most a few days, checking each guess with the formatter.
export const LANGS = ["en", "fa"];

// `sep` joins parts of a line: a middle dot in English; in Persian a comma, since a
// middle dot next to a number reads as the Persian zero (۰).

const TEXT = {
  en: {
    doctitle: "parkbazaar — free spaces, live", title: "Free spaces, live",
    sites: "Parking lots and markets", map: "Map of the sites", list: "List of the sites",
    free: "free", occupied: "occupied", unknown: "unknown", of: "of", parking: "parking", market: "market",
    pick: "Choose a site to see its zones and spaces.",
    updated: "updated", never: "no data yet", stale: "stale", live: "live",
    offline: "connection lost, retrying…", saved: "offline: last known counts, saved",
    spaces: "spaces", other: "فارسی", otherlang: "Persian", near: "Near me",
    nearfail: "your position is not available", metres: "m",
    manager: "Managers", token: "Token", login: "Sign in", logout: "Sign out", date: "Date",
    year: "Year", month: "Month", day: "Day",
    attendance: "Vendor attendance", utilization: "Utilization by hour (last 7 days)", alerts: "Alerts",
    stall: "Stall", vendor: "Vendor", arrival: "First arrival", departure: "Last departure",
    minutes: "Minutes", absent: "absent", csv: "CSV", closed: "closed that day", none: "none",
    badtoken: "this token is not valid", signed: "signed in as", jalali: "Solar Hijri",
    gregorian: "Gregorian", role_manager: "manager", role_admin: "administrator",
    device_silent: "device silent", gateway_offline: "gateway offline", battery_low: "battery low",
    stall_absent: "stall absent", since: "since", loadfail: "could not load the report",
    zoomin: "Zoom in", zoomout: "Zoom out", marker: "{name}: {free} free of {total}",
    hour: "{h}:00", sep: " · ",
    footer: "Open data of the municipalities, live.",
  },
  fa: {
    doctitle: "پارک‌بازار — جای خالی، همین حالا", title: "جای خالی، همین حالا",
    sites: "پارکینگ‌ها و بازارها", map: "نقشهٔ پارکینگ‌ها و بازارها", list: "فهرست پارکینگ‌ها و بازارها",
    free: "خالی", occupied: "پر", unknown: "نامعلوم", of: "از", parking: "پارکینگ", market: "بازار",
    pick: "یک پارکینگ یا بازار را برای دیدن بخش‌ها و جایگاه‌هایش انتخاب کنید.",
    updated: "به‌روز شده", never: "هنوز داده‌ای نیست", stale: "قدیمی", live: "زنده",
    offline: "اتصال قطع شد، تلاش دوباره…", saved: "آفلاین: آخرین شمارش‌ها، ذخیره‌شده",
    spaces: "جایگاه", other: "English", otherlang: "انگلیسی", near: "نزدیک من",
    nearfail: "موقعیت شما در دسترس نیست", metres: "متر",
    manager: "مدیران", token: "توکن", login: "ورود", logout: "خروج", date: "تاریخ",
    year: "سال", month: "ماه", day: "روز",
    attendance: "حضور غرفه‌داران", utilization: "بهره‌وری ساعتی (۷ روز اخیر)", alerts: "هشدارها",
    stall: "غرفه", vendor: "غرفه‌دار", arrival: "نخستین ورود", departure: "آخرین خروج",
    minutes: "دقیقه", absent: "غایب", csv: "CSV", closed: "آن روز تعطیل است", none: "هیچ",
    badtoken: "این توکن معتبر نیست", signed: "وارد شده به عنوان", jalali: "هجری شمسی",
    gregorian: "میلادی", role_manager: "مدیر", role_admin: "سرپرست",
    device_silent: "دستگاه خاموش", gateway_offline: "دروازه قطع", battery_low: "باتری کم",
    stall_absent: "غرفه خالی", since: "از", loadfail: "گزارش بارگیری نشد",
    zoomin: "بزرگ‌نمایی", zoomout: "کوچک‌نمایی", marker: "{name}: {free} خالی از {total}",
    hour: "ساعت {h}", sep: "، ",
    footer: "داده‌های باز شهرداری‌ها، زنده.",
  },
};

/** The text of `key` in `lang` (the key itself if missing, so a gap shows). */
export function text(lang, key, vars = {}) {
  const s = TEXT[lang][key] ?? TEXT.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? "");
}

/** Both tables have the same keys (checked by the browser tests). */
export const keys = () => [Object.keys(TEXT.en), Object.keys(TEXT.fa)];

export const locale = (lang) => (lang === "fa" ? "fa-IR" : "en-GB");

/** A number with the language's digits (۰–۹ in fa). */
export const num = (lang, n) => Number(n).toLocaleString(lang === "fa" ? "fa-IR" : "en-US");

/** A share (0–1) as a percentage in the language's digits. */
export const percent = (lang, x) =>
  new Intl.NumberFormat(lang === "fa" ? "fa-IR" : "en-US", { style: "percent" }).format(x);

/** Date and time of an instant in a time zone, in the language's calendar (Jalali in fa). */
export function dateTime(lang, iso, zone) {
  return new Intl.DateTimeFormat(locale(lang), {
    timeZone: zone || "Asia/Tehran", hour: "2-digit", minute: "2-digit", second: "2-digit",
    day: "numeric", month: "short",
  }).format(new Date(iso));
}

/** Hours and minutes of an instant in a time zone. */
export function clock(lang, iso, zone) {
  return new Intl.DateTimeFormat(locale(lang), { timeZone: zone, hour: "2-digit", minute: "2-digit" })
    .format(new Date(iso));
}

/** How long ago `ms` (a Date.now() value) was: "3 minutes ago", "۳ دقیقه پیش". */
export function age(lang, ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  const rtf = new Intl.RelativeTimeFormat(locale(lang), { numeric: "auto" });
  if (s < 60) return rtf.format(-s, "second");
  if (s < 3600) return rtf.format(-Math.floor(s / 60), "minute");
  if (s < 86400) return rtf.format(-Math.floor(s / 3600), "hour");
  return rtf.format(-Math.floor(s / 86400), "day");
}

/** A calendar day (ISO `YYYY-MM-DD`) in words, in the calendar of `calendar` ("persian" or
 * "gregory") and the language of `lang`. */
export function longDate(lang, isoDate, calendar) {
  return new Intl.DateTimeFormat(`${locale(lang)}-u-ca-${calendar}`, {
    timeZone: "UTC", year: "numeric", month: "long", day: "numeric",
  }).format(new Date(`${isoDate}T12:00:00Z`));
}

const PERSIAN = new Intl.DateTimeFormat("en-u-ca-persian-nu-latn", {
  timeZone: "UTC", year: "numeric", month: "numeric", day: "numeric",
});
const DAY_MS = 86400000;
const FARVARDIN_1403 = Date.UTC(2024, 2, 20);

/** [year, month, day] of the Jalali date of an ISO Gregorian day. */
export function toJalali(isoDate) {
  const parts = PERSIAN.formatToParts(new Date(`${isoDate}T12:00:00Z`));
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return [get("year"), get("month"), get("day")];
}

/** The ISO Gregorian day of a Jalali date. */
export function fromJalali(y, m, d) {
  const before = m <= 7 ? (m - 1) * 31 : 186 + (m - 7) * 30;
  let ms = FARVARDIN_1403 + (Math.round((y - 1403) * 365.2422) + before + d - 1) * DAY_MS;
  const want = y * 10000 + m * 100 + d;
  for (let i = 0; i < 8; i++) {
    const [gy, gm, gd] = toJalali(new Date(ms).toISOString().slice(0, 10));
    const got = gy * 10000 + gm * 100 + gd;
    if (got === want) break;
    ms += (got < want ? 1 : -1) * DAY_MS;
  }
  return new Date(ms).toISOString().slice(0, 10);
}

/** Days of a Jalali month (the 12th has 30 in a leap year). */
export function jalaliMonthDays(y, m) {
  if (m <= 6) return 31;
  if (m <= 11) return 30;
  const esfand1 = Date.parse(fromJalali(y, 12, 1)), next = Date.parse(fromJalali(y + 1, 1, 1));
  return Math.round((next - esfand1) / DAY_MS);
}

/** The names of the Jalali months in `lang` (Farvardin … Esfand). */
export function jalaliMonths(lang) {
  const f = new Intl.DateTimeFormat(`${locale(lang)}-u-ca-persian`, { timeZone: "UTC", month: "long" });
  return Array.from({ length: 12 }, (_, i) => f.format(new Date(`${fromJalali(1403, i + 1, 15)}T12:00:00Z`)));
}
