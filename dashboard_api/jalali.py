"""Gregorian → Solar Hijri (Jalali) dates, pure arithmetic.

The Iranian calendar's 33-year arithmetic rule (as in the widely used ``jdf``
routine), exact for the years 1979–2087 of the official calendar, which is
all a market manager reads. ICU's ``persian`` calendar (what the web page's
``Intl.DateTimeFormat('fa-IR-u-ca-persian')`` uses) follows the same rule.
"""

from __future__ import annotations

from datetime import date

_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def to_jalali(d: date) -> tuple[int, int, int]:
    """(year, month, day) of the Solar Hijri date of ``d``."""
    gy2 = d.year + 1 if d.month > 2 else d.year
    days = (355666 + 365 * d.year + (gy2 + 3) // 4 - (gy2 + 99) // 100 + (gy2 + 399) // 400
            + d.day + _DAYS_BEFORE_MONTH[d.month - 1])
    jy = -1595 + 33 * (days // 12053)
    days %= 12053
    jy += 4 * (days // 1461)
    days %= 1461
    if days > 365:
        jy += (days - 1) // 365
        days = (days - 1) % 365
    if days < 186:
        return jy, 1 + days // 31, 1 + days % 31
    return jy, 7 + (days - 186) // 30, 1 + (days - 186) % 30


def jalali_iso(d: date) -> str:
    """``YYYY-MM-DD`` in the Solar Hijri calendar, e.g. 2024-03-20 → ``1403-01-01``."""
    y, m, day = to_jalali(d)
    return f"{y:04d}-{m:02d}-{day:02d}"
