"""RFC 3339 timestamps of log lines, decoded in bulk.

Shared by the careful reader (``load``) and the byte-level reader (``fastparse``), which is
why it is a module of its own: both need the same calendar arithmetic.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from lclock.core.logline import parse_ts

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.ASCII)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


def days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: np.ndarray = era * 146097 + doe - 719468
    return days


def valid_dates(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Which (year, month, day) are real calendar dates (what ``datetime`` accepts)."""
    ok = (y >= 1) & (m >= 1) & (m <= 12) & (d >= 1)
    mm = np.where(ok, m, 1)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    last = _DAYS_IN_MONTH[mm] + ((mm == 2) & leap)
    valid: np.ndarray = ok & (d <= last)
    return valid


def parse_ts_column(values: Sequence[Any]) -> np.ndarray:
    """Epoch seconds of RFC 3339 strings, vectorised for the usual fixed-width form.

    ``2026-01-01T00:00:00.123456Z`` is decoded with numpy on a character view; anything
    else (other precision, an offset) goes through the general parser; a missing or bad
    value becomes NaN, which ``check`` reports and the metrics skip.
    """
    out = np.full(len(values), np.nan)
    if not values:
        return out
    try:
        arr = np.array(values, dtype="U28")
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (len(values),):  # a list among the values: strings only
        arr = np.array([v if isinstance(v, str) else "" for v in values], dtype="U28")
    c = arr.view(np.uint32).reshape(len(values), 28).astype(np.int64) - 48
    digits = c[:, [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25]]
    ok = (c[:, 27] == -48) & np.all((digits >= 0) & (digits <= 9), axis=1)
    ok &= (c[:, 4] == ord("-") - 48) & (c[:, 7] == ord("-") - 48) & (c[:, 10] == ord("T") - 48)
    ok &= (c[:, 13] == ord(":") - 48) & (c[:, 16] == ord(":") - 48) & (c[:, 19] == ord(".") - 48)
    ok &= c[:, 26] == ord("Z") - 48
    if ok.any():
        g = digits[ok]
        y = g[:, 0] * 1000 + g[:, 1] * 100 + g[:, 2] * 10 + g[:, 3]
        mo = g[:, 4] * 10 + g[:, 5]
        d = g[:, 6] * 10 + g[:, 7]
        hh = g[:, 8] * 10 + g[:, 9]
        mm = g[:, 10] * 10 + g[:, 11]
        ss = g[:, 12] * 10 + g[:, 13]
        us = g[:, 14:20] @ np.array([100000, 10000, 1000, 100, 10, 1])
        valid = valid_dates(y, mo, d) & (hh < 24) & (mm < 60) & (ss < 60)
        sec = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss
        vals = sec.astype(np.float64) + us * 1e-6
        vals[~valid] = np.nan
        out[ok] = vals
    for k in np.flatnonzero(~ok).tolist():
        v = values[k]
        if isinstance(v, str) and TS_RE.match(v):
            with contextlib.suppress(ValueError, OverflowError):
                out[k] = parse_ts(v.replace("Z", "+00:00") if not v.endswith("Z") else v)
    return out


def ts_problem(v: Any) -> str | None:
    """Why a ``ts`` value is not an RFC 3339 UTC time, or None when it is fine."""
    if v is None:
        return "missing ts (every line needs the system time)"
    if not isinstance(v, str) or not TS_RE.match(v):
        return f"ts {short(v)} is not an RFC 3339 time"
    try:
        parse_ts(v)
    except (ValueError, OverflowError):
        return f"ts {v!r} is not a valid date and time"
    return None


def short(v: Any, limit: int = 60) -> str:
    """``repr`` of a value from a file, cut to ``limit`` characters: a finding quotes what
    it saw, but a hostile value can be a megabyte long."""
    try:
        text = repr(v)
    except ValueError:  # an int with more digits than Python will print
        return f"<an integer of more than {limit} digits>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
