"""A vectorised reader for the tick lines of a log chunk, straight from the bytes.

Why: turning a million JSON lines into dicts and then into columns costs about 3 us a line
in CPython, which caps ``lclock analyze`` near 300,000 events/s. Tick lines are flat JSON
objects of a few known keys with integer, short-string and integer-list values, so their
fields can be located and decoded with numpy on the raw bytes of a whole chunk at once.

It is deliberately conservative: a line is taken here only if each needed key occurs in it
exactly once, unescaped, with a value of the expected shape; any other line (start, stop,
connected, warnings, garbage, unusual formatting) is handed back to the caller, which parses
it with orjson and validates it as before. ``lclock check`` never uses this path: it parses
every line with orjson, so the checker does not depend on this reader being right. Tests
compare both readers on the same runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_Q, _COLON, _SP, _COMMA, _LBR, _RBR, _BSL = 34, 58, 32, 44, 91, 93, 92
INT_WIDTH = 18  # digits; longer numbers go to the careful path

_KEYS = ("ts", "event", "tick", "lclock", "queue_len", "vclock", "dice", "to", "from", "msg_lclock")
_REQUIRED = ("ts", "event", "tick", "lclock", "queue_len")


def _code3(b0: int, b1: int, b2: int) -> int:
    return (b0 << 16) | (b1 << 8) | b2


def _find_key(a: np.ndarray, q: np.ndarray, code: np.ndarray, key: bytes) -> np.ndarray:
    """Positions in ``q`` (closing quotes followed by a colon) that end the key ``"key"``.

    ``code`` packs the three bytes before each ``q`` (computed once for all keys), so one
    integer compare over all candidates leaves only a few to check byte by byte.
    """
    n = len(key)
    tail = (b'"' + key)[-3:]
    cand = q[code == _code3(*tail)]
    cand = cand[cand >= n + 2]
    for j in range(n - 2):
        if not cand.size:
            break
        cand = cand[a[cand - n + j] == key[j]]
    if cand.size:
        cand = cand[a[cand - n - 1] == _Q]
        # the opening quote starts a key: after '{', ',' or a space
        before = a[cand - n - 2]
        cand = cand[(before == ord("{")) | (before == _COMMA) | (before == _SP)]
    return cand


def _value_start(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Skip the colon and up to two spaces (json.dumps writes one, orjson none)."""
    v = pos + 2
    v = v + (a[v] == _SP)
    return v + (a[v] == _SP)


def _ints(a: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode non-negative integers starting at ``v``: (values, lengths, ok).

    Digit by digit over the rows still reading a number, so a column of one-digit dice
    costs two passes and a column of six-digit clocks seven.
    """
    n = len(v)
    val = np.zeros(n, np.int64)
    length = np.zeros(n, np.int64)
    idx = np.arange(n)
    for j in range(INT_WIDTH + 1):
        d = a[v[idx] + j] - np.uint8(48)  # wraps for non-digits
        more = d <= 9
        if not more.any():
            break
        idx = idx[more]
        val[idx] = val[idx] * 10 + d[more]
        length[idx] += 1
    ok = (length > 0) & (length <= INT_WIDTH)
    ok &= (length == 1) | (a[v] != ord("0"))  # no leading zeros, as JSON says
    end = a[v + length]  # 5.0 or 5e3 are not integers: the number must end here
    ok &= (end == _COMMA) | (end == ord("}")) | (end == _RBR) | (end == _SP)
    return val, length, ok


def _int_list(a: np.ndarray, v: np.ndarray, count: int | None, max_count: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode ``[i, j, ...]`` lists at ``v``: (values matrix, lengths, ok).

    ``count`` fixes the length (vector clocks); otherwise lists of 1..max_count are read.
    """
    rows = len(v)
    ok = a[v] == _LBR
    pos = v + 1
    width = count if count is not None else max_count
    out = np.zeros((rows, width), np.int64)
    lengths = np.zeros(rows, np.int64)
    open_ = ok.copy()
    for e in range(width):
        pos = pos + (a[pos] == _SP)
        vals, ln, good = _ints(a, pos)
        good &= open_
        out[:, e] = np.where(good, vals, 0)
        ok &= good | ~open_
        pos = pos + ln
        pos = pos + (a[pos] == _SP)
        nxt = a[pos]
        end = nxt == _RBR
        if count is not None:
            ok &= (end if e == width - 1 else nxt == _COMMA) | ~open_
        else:
            ok &= (end | (nxt == _COMMA)) | ~open_
        lengths += open_ & good
        open_ &= good & (nxt == _COMMA)
        pos = pos + 1
        if count is None and not open_.any():
            break
    if count is None:
        ok &= ~open_  # a list longer than max_count
    return out, lengths, ok


_TS_TEMPLATE = np.frombuffer(b'"0000-00-00T00:00:00.000000Z"', np.uint8)
_TS_DIGITS = np.array([1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 25, 26])
_TS_FIXED = np.array([0, 5, 8, 11, 14, 17, 20, 27, 28])
_W_DATE = np.array([10**7, 10**6, 10**5, 10**4, 1000, 100, 10, 1], np.int64)
_W_TIME = np.array([36000, 3600, 600, 60, 10, 1], np.int64)
_W_US = np.array([100000, 10000, 1000, 100, 10, 1], np.int64)


def _ts(a: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``"YYYY-MM-DDTHH:MM:SS.ffffffZ"`` at ``v``: (epoch seconds, ok).

    The calendar arithmetic runs once per distinct date, not once per line.
    """
    from lclock.analysis.load import _days_from_civil

    m = a[v[:, None] + np.arange(29)]
    ok = np.all(m[:, _TS_FIXED] == _TS_TEMPLATE[_TS_FIXED], axis=1)
    d = m[:, _TS_DIGITS] - np.uint8(48)
    ok &= np.all(d <= 9, axis=1)
    d = d.astype(np.int64)
    ymd = d[:, :8] @ _W_DATE
    tod = d[:, 8:14] @ _W_TIME
    us = d[:, 14:20] @ _W_US
    dates, inv = np.unique(ymd, return_inverse=True)
    y, mo, dd = dates // 10000, dates // 100 % 100, dates % 100
    good_date = (mo >= 1) & (mo <= 12) & (dd >= 1) & (dd <= 31)
    days = _days_from_civil(y, np.where(good_date, mo, 1), np.where(good_date, dd, 1))
    ok &= good_date[inv]
    hh, mi, ss = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
    ok &= (hh < 24) & (mi < 60) & (ss < 61)
    t = (days[inv] * 86400 + tod).astype(np.float64) + us * 1e-6
    return t, ok


def parse_chunk(buf: bytes, width: int | None, n: int | None
                ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None:
    """Decode the tick lines of ``buf`` (whole lines, each ending in a newline).

    Returns (columns of the tick lines taken, their 0-based line indexes, the indexes of the
    lines left to the caller), or None when the chunk is better read the careful way.
    """
    if not buf or buf[-1:] != b"\n":
        return None
    a = np.frombuffer(buf + b"\0" * 64, np.uint8)
    nl = np.flatnonzero(a[: len(buf)] == 10)
    nlines = len(nl)
    q = np.flatnonzero((a[:-1] == _Q) & (a[1:] == _COLON))
    q = q[(q > 0) & (a[q - 1] != _BSL)]
    q = q[q >= 4]
    code = (a[q - 3].astype(np.uint32) << 16) | (a[q - 2].astype(np.uint32) << 8) | a[q - 1]
    keypos: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    bad = np.zeros(nlines, bool)
    for key in _KEYS:
        if key == "vclock" and not width:
            continue
        pos = _find_key(a, q, code, key.encode())
        line = np.searchsorted(nl, pos)
        if line.size > 1:
            dup = line[1:] == line[:-1]
            if dup.any():
                bad[line[1:][dup]] = True
        keypos[key] = (pos, line)
    has = {}
    for key, (_, line) in keypos.items():
        h = np.zeros(nlines, bool)
        h[line] = True
        has[key] = h
    # the event decides which keys a tick line needs
    epos, eline = keypos["event"]
    ev_v = _value_start(a, epos)
    first = a[ev_v + 1]
    kind_at = np.full(len(epos), -1, np.int8)
    for code, word in ((0, b"internal"), (1, b"send"), (2, b"receive")):
        sel = (a[ev_v] == _Q) & (first == word[0]) & (a[ev_v + 1 + len(word)] == _Q)
        for j in range(1, len(word)):
            sel &= a[ev_v + 1 + j] == word[j]
        kind_at[sel] = code
    kind = np.full(nlines, -1, np.int8)
    kind[eline] = kind_at
    tick_line = kind >= 0
    for key in _REQUIRED:
        tick_line &= has[key]
    if width:
        tick_line &= has["vclock"]
    tick_line &= has["dice"] == (kind != 2)
    tick_line &= has["to"] == (kind == 1)
    tick_line &= has["from"] == (kind == 2)
    tick_line &= has["msg_lclock"] == (kind == 2)
    tick_line &= ~bad
    cols: dict[str, np.ndarray] = {}

    def at(key: str) -> tuple[np.ndarray, np.ndarray]:
        """Value starts of ``key`` on the tick lines, in line order."""
        pos, line = keypos[key]
        sel = tick_line[line]
        return _value_start(a, pos[sel]), line[sel]

    ok = np.ones(nlines, bool)
    idx = np.flatnonzero(tick_line)
    m = len(idx)
    slot = np.full(nlines, -1, np.int64)
    slot[idx] = np.arange(m)

    def put_int(key: str, fill: int, limit: int = 2**62) -> np.ndarray:
        out = np.full(m, fill, np.int64)
        if key not in keypos:
            return out
        v, line = at(key)
        vals, _, good = _ints(a, v)
        good &= vals < limit
        out[slot[line]] = vals
        ok[line[~good]] = False
        return out

    v, line = at("ts")
    t, good = _ts(a, v)
    ts = np.full(m, np.nan)
    ts[slot[line]] = t
    ok[line[~good]] = False
    cols["ts"] = ts
    cols["tick"] = put_int("tick", 0)
    cols["lclock"] = put_int("lclock", 0)
    cols["qlen"] = put_int("queue_len", 0, 2**31)  # 32-bit columns: the rest go the careful way
    cols["dice"] = put_int("dice", 0, 2**31)
    cols["frm"] = put_int("from", 0, 2**31)
    cols["msg"] = put_int("msg_lclock", -1)
    cols["kind"] = kind[idx]
    if width:
        v, line = at("vclock")
        mat, _, good = _int_list(a, v, width, width)
        good &= np.all(mat < 2**31, axis=1)
        vc = np.zeros((m, width), np.int64)
        vc[slot[line]] = mat
        ok[line[~good]] = False
        cols["vclock"] = vc
    to_n = np.zeros(m, np.int64)
    to_ids = np.zeros(0, np.int64)
    if "to" in keypos:
        v, line = at("to")
        max_to = max((n or 2) - 1, 1) if n else 64
        mat, lens, good = _int_list(a, v, None, max_to)
        ok[line[~good]] = False
        to_n[slot[line]] = lens
        rows = np.repeat(np.arange(len(line)), lens)
        cols_i = np.arange(len(rows)) - np.repeat(np.cumsum(lens) - lens, lens)
        to_ids = mat[rows, cols_i]  # in line order: ``line`` is sorted
    taken = tick_line & ok
    keep = taken[idx]
    if not keep.all():
        # drop rows that failed a value check; their lines go the careful way
        sel_rows = np.flatnonzero(keep)
        starts = np.cumsum(to_n) - to_n
        to_keep = np.repeat(keep, to_n)
        to_ids = to_ids[to_keep] if to_ids.size else to_ids
        del starts
        for k in list(cols):
            cols[k] = cols[k][sel_rows]
        to_n = to_n[sel_rows]
    cols["to_n"] = to_n
    cols["to_ids"] = to_ids
    rest = np.flatnonzero(~taken)
    return cols, np.flatnonzero(taken), rest


def describe(cols: dict[str, Any]) -> str:  # pragma: no cover - debugging aid
    return ", ".join(f"{k}={np.asarray(v).shape}" for k, v in cols.items())
