"""A site's live counts as forecaster rows: the one rule ingest (training) and the
API (predicting) share.

A count row says, at an instant, how many spaces were free, occupied and in
total (the others unknown: no fresh observation). The forecaster wants the
share of capacity free. With every space known that is ``free / total``; with
some unknown, the known spaces stand for the others (``free / (free +
occupied)``), which does not read a dead sensor as an occupied bay. A row in
which fewer than ``MIN_KNOWN`` of the spaces are known says too little and is
left out; so is a site without spaces. Capacity is ``total``, so a row's
forecast is in the site's spaces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from occupancy.forecast.series import Series

MIN_KNOWN = 0.5  # the share of a site's spaces that must be known for a row to count


def usable(free: np.ndarray, occupied: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Which rows say enough: a site with spaces, at least ``MIN_KNOWN`` of them known (pure)."""
    known = free + occupied
    ok: np.ndarray = (total > 0) & (known > 0) & (known >= MIN_KNOWN * total)
    return ok


def series_of_counts(t: Sequence[float] | np.ndarray, free: Sequence[int] | np.ndarray,
                     occupied: Sequence[int] | np.ndarray, total: Sequence[int] | np.ndarray) -> Series:
    """The usable rows (UTC seconds ``t``) as a ``Series``: share free among the known
    spaces, capacity ``total`` (pure; the rows may come in any order)."""
    ta, fr, oc, to = (np.asarray(a, dtype=float) for a in (t, free, occupied, total))
    ok = usable(fr, oc, to)
    share_free = fr[ok] / (fr[ok] + oc[ok])
    return Series.of(ta[ok], share_free * to[ok], to[ok])
