"""A vectorised reader for the tick lines of a log chunk, straight from the bytes.

Why: turning a million JSON lines into dicts and then into columns costs about 3 us a line
in CPython, which caps ``lclock analyze`` near 300,000 events/s. Tick lines are flat JSON
objects of a few known keys with integer, short-string and integer-list values, so their
fields can be located and decoded with numpy on the raw bytes of a whole chunk at once:
every ``"key":`` of the chunk is found and identified in one pass over all of them, and
the integers of all keys are decoded together.

It is deliberately conservative: a line is taken here only if each needed key occurs in it
exactly once, unescaped, with a value of the expected shape; any other line (start, stop,
connected, warnings, garbage, unusual formatting) is handed back to the caller, which parses
it with orjson and validates it.

``strict`` (what ``lclock check`` asks for) takes a line only if every byte of it is
accounted for: ``{``, known keys, values of the expected shape, ``,`` or ``, `` between
them, ``}`` and the newline, so the line is valid JSON that orjson would read to the same
values; and only if the careful validation would find nothing wrong with it (the machine,
the level, the run id, a real calendar date, peers that exist). Anything else goes the
careful way, which words the findings. Tests hold both ways equal on damaged logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lclock.analysis.timestamps import days_from_civil, valid_dates

_Q, _COLON, _SP, _COMMA, _LBR, _RBR, _BSL, _LBRACE, _RBRACE = 34, 58, 32, 44, 91, 93, 92, 123, 125
INT_WIDTH = 18  # digits; longer numbers go to the careful path
I31 = 2**31

# Every key this reader knows. ``dup`` and ``dup_to`` (SPEC section 6) always send their
# line the careful way: they are rare, and the careful way validates them.
KEYS = ("ts", "event", "tick", "lclock", "queue_len", "vclock", "dice", "to", "from",
        "msg_lclock", "level", "run_id", "machine", "pt", "msg_pt", "hlc", "msg_hlc", "dup",
        "dup_to")
K = {k: i for i, k in enumerate(KEYS)}
_INT_KEYS = ("tick", "lclock", "queue_len", "dice", "from", "msg_lclock", "pt", "msg_pt",
             "machine")
_ANALYSIS_INTS = _INT_KEYS[:8]  # strict mode also decodes ``machine``
_FILL = {"msg_lclock": -1, "pt": -1, "msg_pt": -1}  # what a line without the key reads
_INT_LIMIT = {"queue_len": I31, "dice": I31, "from": I31}  # 32-bit columns
_REQUIRED = ("ts", "event", "tick", "lclock", "queue_len")
# What analyze needs (it ignores other keys); strict mode locates every key of KEYS.
_ANALYSIS_KEYS = ("ts", "event", "tick", "lclock", "queue_len", "vclock", "dice", "to", "from",
                  "msg_lclock", "pt", "msg_pt", "hlc", "msg_hlc", "dup", "dup_to")
# Physical times (µs since the epoch) have 16 digits from 2001 to 2286: decoded as a block.
_PT_DIGITS = 16
_STRICT_REQUIRED = ("level", "run_id", "machine")
_EVENTS = (b"internal", b"send", b"receive")
_LEVELS = (b"info", b"warning", b"error")


_KEY_LEN = np.array([len(k) for k in KEYS] + [0], np.int64)  # -1 (no key) reads 0


@dataclass
class Chunk:
    """What the byte reader made of a chunk."""

    cols: dict[str, np.ndarray]  # columns of the lines taken, in line order
    taken: np.ndarray  # 0-based indexes of those lines
    rest: np.ndarray  # indexes of the lines left to the caller
    nl: np.ndarray  # position of each line's newline in the chunk

    def line(self, buf: bytes, k: int) -> bytes:
        """Line ``k`` of the chunk, with its newline."""
        start = int(self.nl[k - 1]) + 1 if k else 0
        return buf[start:int(self.nl[k]) + 1]


def _value_start(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Skip the colon and up to two spaces (json.dumps writes one, orjson none)."""
    v = pos + 2
    v = v + (a[v] == _SP)
    out: np.ndarray = v + (a[v] == _SP)
    return out


def _ints(a: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode non-negative integers starting at ``v``: (values, lengths, ok).

    Digit by digit over the rows still reading a number (a row leaves when its number
    ends), so a column of one-digit dice costs two passes and six-digit clocks seven.
    """
    n = len(v)
    out_val = np.zeros(n, np.int64)
    length = np.full(n, INT_WIDTH + 1, np.int64)
    idx = np.arange(n)
    pos = v
    val = np.zeros(n, np.int64)
    for j in range(INT_WIDTH + 1):
        d = a[pos] - np.uint8(48)  # wraps for non-digits
        more = d <= 9
        if not more.all():
            done = ~more
            out_val[idx[done]] = val[done]
            length[idx[done]] = j
            idx, pos, val, d = idx[more], pos[more], val[more], d[more]
            if not idx.size:
                break
        val = val * 10 + d
        pos = pos + 1
    ok = (length > 0) & (length <= INT_WIDTH)
    ok &= (length == 1) | (a[v] != ord("0"))  # no leading zeros, as JSON says
    end = a[v + np.minimum(length, INT_WIDTH + 1)]  # 5.0 or 5e3 are not integers
    ok &= (end == _COMMA) | (end == _RBRACE) | (end == _RBR) | (end == _SP)
    return out_val, length, ok


# SWAR ("SIMD within a register"): eight ASCII digits read as one little-endian 64-bit
# word become their value in three multiply-shift steps, and the non-digit bytes show in
# one mask; so a number costs a few operations on a column of words, not one per digit.
_U = np.uint64
_M30, _M76, _M80 = _U(0x3030303030303030), _U(0x7676767676767676), _U(0x8080808080808080)
_M0F, _MFF, _MFFFF = _U(0x0F0F0F0F0F0F0F0F), _U(0x00FF00FF00FF00FF), _U(0x0000FFFF0000FFFF)
_K1, _K2, _K3 = _U(2561), _U(6553601), _U(42949672960001)
_S8, _S16, _S32, _S56 = _U(8), _U(16), _U(32), _U(56)


def _words(a: np.ndarray) -> np.ndarray:
    """Every 8-byte window of ``a`` as a little-endian word (a strided view, no copy)."""
    view: np.ndarray = np.ndarray(shape=(len(a) - 7,), dtype="<u8", buffer=a, offset=0,
                                  strides=(1,))
    return view


def _swar8(t: np.ndarray) -> np.ndarray:
    """Eight digit values (bytes 0-9, the first digit in the lowest byte) -> the number."""
    t = (t & _M0F) * _K1 >> _S8
    t = (t & _MFF) * _K2 >> _S16
    out: np.ndarray = ((t & _MFFFF) * _K3 >> _S32).astype(np.int64)
    return out


def _nondigits(t: np.ndarray) -> np.ndarray:
    """The top bit of each byte of ``t`` (bytes minus '0') that is not a digit, correct up
    to the first such byte (a borrow or carry only reaches the bytes after it)."""
    out: np.ndarray = (t | (t + _M76)) & _M80
    return out


def _ends_ok(a: np.ndarray, end: np.ndarray) -> np.ndarray:
    e = a[end]
    out: np.ndarray = (e == _COMMA) | (e == _RBRACE) | (e == _RBR) | (e == _SP)
    return out


def _short_ints(a: np.ndarray, w: np.ndarray, v: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_ints`` for numbers of up to seven digits at once (the others digit by digit)."""
    if not len(v):
        return _ints(a, v)
    t = w[v] - _M30
    m = _nondigits(t)
    low = m & (~m + _U(1))  # the first non-digit byte's top bit
    fits = low != 0
    length = (np.frexp(np.where(fits, low, _U(1)).astype(np.float64))[1].astype(np.int64) - 8) >> 3
    length = np.where(fits, length, 0)
    shift = ((8 - np.maximum(length, 1)) * 8).astype(np.uint64)
    vals = np.where(length > 0, _swar8(t << shift), 0)
    ok = (length > 0) & ((length == 1) | (a[v] != ord("0"))) & _ends_ok(a, v + length)
    rest = np.flatnonzero(~fits)
    if rest.size:
        rv, rl, rok = _ints(a, v[rest])
        vals[rest], length[rest], ok[rest] = rv, rl, rok
    return vals, length, ok


def _long_ints(a: np.ndarray, v: np.ndarray, w: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like ``_ints``, for columns of mostly 16-digit numbers (physical times, µs since
    the epoch from 2001 to 2286): those are read as two words each, the others digit by
    digit."""
    if not len(v):
        return _ints(a, v)
    if w is None:
        w = _words(a)
    t1, t2 = w[v] - _M30, w[v + 8] - _M30
    block = (((_nondigits(t1) | _nondigits(t2)) == 0) & (a[v] != ord("0"))
             & _ends_ok(a, v + _PT_DIGITS))
    vals = _swar8(t1) * 100_000_000 + _swar8(t2)
    length = np.full(len(v), _PT_DIGITS, np.int64)
    ok = block.copy()
    rest = np.flatnonzero(~block)
    if rest.size:
        rv, rl, rok = _ints(a, v[rest])
        vals[rest], length[rest], ok[rest] = rv, rl, rok
    return vals, length, ok


def _int_list(a: np.ndarray, v: np.ndarray, count: int | None, max_count: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode ``[i, j, ...]`` lists at ``v``: (values matrix, lengths, ok)."""
    mat, lengths, ok, _ = _int_list_end(a, v, count, max_count)
    return mat, lengths, ok


def _int_list_end(a: np.ndarray, v: np.ndarray, count: int | None, max_count: int,
                  w: np.ndarray | None = None, spaces: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode ``[i, j, ...]`` lists at ``v``: (values matrix, lengths, ok, end positions).

    ``count`` fixes the length (vector clocks); otherwise lists of 1..max_count are read.
    Columns are made only as far as some list reaches, so a wide bound costs nothing.
    """
    rows = len(v)
    ok = a[v] == _LBR
    pos = v + 1
    width = count if count is not None else max_count
    cols: list[np.ndarray] = []
    lengths = np.zeros(rows, np.int64)
    end = np.zeros(rows, np.int64)
    open_ = ok.copy()
    for e in range(width):
        if spaces:
            pos = pos + (a[pos] == _SP)
        vals, ln, good = _ints(a, pos) if w is None else _short_ints(a, w, pos)
        good &= open_
        cols.append(np.where(good, vals, 0))
        ok &= good | ~open_
        pos = pos + ln
        if spaces:
            pos = pos + (a[pos] == _SP)
        nxt = a[pos]
        closes = nxt == _RBR
        if count is not None:
            ok &= (closes if e == width - 1 else nxt == _COMMA) | ~open_
        else:
            ok &= (closes | (nxt == _COMMA)) | ~open_
        lengths += open_ & good
        end = np.where(open_ & closes, pos + 1, end)
        open_ &= good & (nxt == _COMMA)
        pos = pos + 1
        if count is None and not open_.any():
            break
    if count is None:
        ok &= ~open_  # a list longer than max_count
    out = np.stack(cols, axis=1) if cols else np.zeros((rows, 0), np.int64)
    return out, lengths, ok, end


_TS_TEMPLATE = np.frombuffer(b'"0000-00-00T00:00:00.000000Z"', np.uint8)
_TS_DIGITS = np.array([1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 25, 26])
_TS_FIXED = np.array([0, 5, 8, 11, 14, 17, 20, 27, 28])
_TS_LEN = len(_TS_TEMPLATE)
_W_DATE = np.array([10**7, 10**6, 10**5, 10**4, 1000, 100, 10, 1], np.int64)
_W_TIME = np.array([36000, 3600, 600, 60, 10, 1], np.int64)
_W_US = np.array([100000, 10000, 1000, 100, 10, 1], np.int64)


def _ts(a: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``"YYYY-MM-DDTHH:MM:SS.ffffffZ"`` at ``v``: (epoch seconds, ok).

    ok only for a real date and time (what the careful parser accepts too). The calendar
    arithmetic runs once per distinct date, not once per line.
    """
    m = a[v[:, None] + np.arange(_TS_LEN)]
    ok = np.all(m[:, _TS_FIXED] == _TS_TEMPLATE[_TS_FIXED], axis=1)
    d = m[:, _TS_DIGITS] - np.uint8(48)
    ok &= np.all(d <= 9, axis=1)
    d = d.astype(np.int64)
    ymd = d[:, :8] @ _W_DATE
    tod = d[:, 8:14] @ _W_TIME
    us = d[:, 14:20] @ _W_US
    if len(ymd) and np.all(ymd == ymd[0]):  # the usual chunk: one day
        dates, inv = ymd[:1], np.zeros(len(ymd), np.int64)
    else:
        dates, inv = np.unique(ymd, return_inverse=True)
    y, mo, dd = dates // 10000, dates // 100 % 100, dates % 100
    good_date = valid_dates(y, mo, dd)
    days = days_from_civil(y, np.where(good_date, mo, 1), np.where(good_date, dd, 1))
    ok &= good_date[inv]
    hh, mi, ss = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
    ok &= (hh < 24) & (mi < 60) & (ss < 60)
    t = (days[inv] * 86400 + tod).astype(np.float64) + us * 1e-6
    return t, ok


def _find_key(a: np.ndarray, q: np.ndarray, code: np.ndarray, key: bytes) -> np.ndarray:
    """Positions (from ``q``) of the keys ``"key"``: what the explorer's reader uses."""
    out: np.ndarray = q[_find_key_idx(a, q, code, key)]
    return out


def _find_key_idx(a: np.ndarray, q: np.ndarray, code: np.ndarray, key: bytes) -> np.ndarray:
    """Indexes into ``q`` (closing quotes followed by a colon) of the keys ``"key"``.

    ``code`` packs the three bytes before each ``q`` (computed once for all keys), so one
    integer compare over all of them leaves only a few to check byte by byte.
    """
    n = len(key)
    tail = (b'"' + key)[-3:]
    idx = np.flatnonzero(code == ((tail[0] << 16) | (tail[1] << 8) | tail[2]))
    pos = q[idx]
    keep = pos >= n + 2
    if not keep.all():
        idx, pos = idx[keep], pos[keep]
    for j in range(n - 2):
        if not idx.size:
            break
        keep = a[pos - n + j] == key[j]
        if not keep.all():
            idx, pos = idx[keep], pos[keep]
    if idx.size:
        keep = a[pos - n - 1] == _Q
        # the opening quote starts a key: after '{', ',' or a space
        before = a[pos - n - 2]
        keep &= (before == _LBRACE) | (before == _COMMA) | (before == _SP)
        idx = idx[keep]
    return idx


class _Scan:
    """The structure of one chunk: its lines and the ``"key":`` places in them."""

    def __init__(self, buf: bytes, keys: tuple[str, ...]) -> None:
        self.a = a = np.frombuffer(buf + b"\0" * 64, np.uint8)
        self.w = _words(a)
        size = len(buf)
        # a chunk without a space or a backslash (what lclock writes) skips their checks
        self.spaces = buf.find(b" ") >= 0
        self.nl = np.flatnonzero(a[:size] == 10)
        self.nlines = len(self.nl)
        colons = np.flatnonzero(a[:size] == _COLON)
        if colons.size and colons[0] < 5:
            colons = colons[colons >= 5]
        q = colons[a[colons - 1] == _Q] - 1
        if buf.find(b"\\") >= 0:
            q = q[a[q - 1] != _BSL]
        self.q = q
        # where each key's value begins
        self.vstart = _value_start(a, q) if self.spaces else q + 2
        self.code = ((a[q - 3].astype(np.int32) << 16) | (a[q - 2].astype(np.int32) << 8)
                     | a[q - 1])
        # the line of each key: q and nl are both sorted, so count keys per line
        self.per_line = per_line = np.diff(np.searchsorted(q, self.nl), prepend=0)
        self.qline = np.repeat(np.arange(self.nlines), per_line)
        self.bad = np.zeros(self.nlines, bool)  # lines that cannot be taken
        self.kind = np.full(self.nlines, -1, np.int8)
        self.kid = np.full(len(q), -1, np.int8)  # which of KEYS each key is (-1: none)
        self.keys: dict[str, np.ndarray] = {}  # key -> indexes into q, in position order
        self.has: dict[str, np.ndarray] = {}
        for key in keys:
            idx = _find_key_idx(a, q, self.code, key.encode())
            self.kid[idx] = K[key]
            line = self.qline[idx]
            if line.size > 1:
                dup = line[1:] == line[:-1]
                if dup.any():
                    self.bad[line[1:][dup]] = True
            self.keys[key] = idx
            h = np.zeros(self.nlines, bool)
            h[line] = True
            self.has[key] = h

    def start(self, idx: np.ndarray) -> np.ndarray:
        """Where the keys at ``idx`` (into q) begin: their opening quote."""
        out: np.ndarray = self.q[idx] - _KEY_LEN[self.kid[idx]] - 1
        return out


class _Decoder:
    """Decodes the values of the tick lines of a scanned chunk into columns."""

    def __init__(self, s: _Scan, tick_line: np.ndarray, strict: bool) -> None:
        self.s = s
        self.tick_line = tick_line
        self.ok = np.ones(s.nlines, bool)
        self.idx = np.flatnonzero(tick_line)
        self.m = len(self.idx)
        self.slot = np.full(s.nlines, -1, np.int64)
        self.slot[self.idx] = np.arange(self.m)
        # strict: where each key's value ends, by index into q (0: not decoded)
        self.end = np.zeros(len(s.q), np.int64) if strict else None

    def at(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indexes into q, value starts, lines) of ``key`` on the tick lines."""
        idx = self.s.keys[key]
        line = self.s.qline[idx]
        sel = self.tick_line[line]
        if not sel.all():
            idx, line = idx[sel], line[sel]
        return idx, self.s.vstart[idx], line

    def ended(self, idx: np.ndarray, end: np.ndarray) -> None:
        if self.end is not None:
            self.end[idx] = end

    def ints(self, keys: tuple[str, ...], fills: dict[str, int]) -> dict[str, np.ndarray]:
        """The integer columns of ``keys``, decoded together (one pass for all the short
        ones, one for the physical times)."""
        short = tuple(k for k in keys if k not in ("pt", "msg_pt"))
        w = self.s.w
        out = self._ints(short, fills, lambda a, v: _short_ints(a, w, v))
        if len(short) < len(keys):
            out.update(self._ints(tuple(k for k in keys if k not in short), fills,
                                  lambda a, v: _long_ints(a, v, w)))
        return out

    def _ints(self, keys: tuple[str, ...], fills: dict[str, int], decode: Any
              ) -> dict[str, np.ndarray]:
        parts = [self.at(k) for k in keys]
        v = np.concatenate([p[1] for p in parts])
        vals, length, good = decode(self.s.a, v)
        out: dict[str, np.ndarray] = {}
        start = 0
        for key, (idx, _, line) in zip(keys, parts, strict=True):
            stop = start + len(idx)
            col = np.full(self.m, fills.get(key, 0), np.int64)
            kv = vals[start:stop]
            col[self.slot[line]] = kv
            g = good[start:stop] & (kv < _INT_LIMIT.get(key, 2**62))
            self.ok[line[~g]] = False
            self.ended(idx, v[start:stop] + length[start:stop])
            out[key] = col
            start = stop
        return out

    def ts(self) -> np.ndarray:
        idx, v, line = self.at("ts")
        t, good = _ts(self.s.a, v)
        out = np.full(self.m, np.nan)
        out[self.slot[line]] = t
        self.ok[line[~good]] = False
        self.ended(idx, v + _TS_LEN)
        return out

    def int_list(self, key: str, count: int | None, max_count: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(matrix, lengths, lines) of a list-valued key, rows in line order."""
        idx, v, line = self.at(key)
        mat, lens, good, end = _int_list_end(self.s.a, v, count, max_count, self.s.w,
                                             self.s.spaces)
        self.ok[line[~good]] = False
        self.ended(idx, end)
        return mat, lens, line

    def pair(self, key: str) -> np.ndarray:
        """The ``[l, c]`` lists of ``key`` (hybrid clocks) as rows, -1 where a line has none.

        The usual ``[16 digits,c]`` is decoded as a block; anything else as a list."""
        idx, v, line = self.at(key)
        out = np.full((self.m, 2), -1, np.int64)
        if not len(idx):
            return out
        a = self.s.a
        l_val, l_len, l_ok = _long_ints(a, v + 1, self.s.w)
        c_at = v + 1 + l_len + 1
        c_val, c_len, c_ok = _short_ints(a, self.s.w, c_at)
        fast = ((a[v] == _LBR) & l_ok & (a[v + 1 + l_len] == _COMMA) & c_ok
                & (a[c_at + c_len] == _RBR))
        rows = self.slot[line]
        out[rows[fast], 0] = l_val[fast]
        out[rows[fast], 1] = c_val[fast]
        self.ended(idx[fast], (c_at + c_len + 1)[fast])
        slow = np.flatnonzero(~fast)
        if slow.size:
            mat, _, good, end = _int_list_end(a, v[slow], 2, 2, self.s.w, self.s.spaces)
            out[rows[slow]] = mat
            self.ok[line[slow][~good]] = False
            self.ended(idx[slow], end)
        big = np.any(out >= 2**62, axis=1)
        if big.any():
            self.ok[self.idx[big]] = False
        return out

    def word(self, key: str, words: tuple[bytes, ...]) -> np.ndarray:
        """Which of ``words`` (index, -1 for none) the string value of ``key`` is."""
        idx, v, line = self.at(key)
        which = _which_word(self.s.a, v, words, self.s.w)
        self.ended(idx, v + 2 + np.array([len(w) for w in words] + [0])[which])
        self.ok[line[which < 0]] = False
        return which

    def token(self, key: str, token: bytes) -> None:
        """Lines whose ``key`` is not exactly the JSON text ``token`` go the careful way."""
        idx, v, line = self.at(key)
        self.ok[line[~_matches(self.s.a, v, token, self.s.w)]] = False
        self.ended(idx, v + len(token))


def _matches(a: np.ndarray, v: np.ndarray, text: bytes, w: np.ndarray | None = None
             ) -> np.ndarray:
    """Which of the positions ``v`` start with exactly the bytes ``text`` (compared eight
    at a time as words when ``w``, the chunk's 8-byte windows, is given)."""
    same = np.ones(len(v), bool)
    if w is None:
        for j, b in enumerate(text):
            same &= a[v + j] == b
        return same
    for start in range(0, len(text), 8):
        part = text[start:start + 8]
        word = w[v + start]
        if len(part) < 8:
            word = word & _U((1 << (8 * len(part))) - 1)
        same &= word == _U(int.from_bytes(part, "little"))
    return same


def _which_word(a: np.ndarray, v: np.ndarray, words: tuple[bytes, ...],
                w: np.ndarray | None = None) -> np.ndarray:
    """Which of ``words`` (index, -1 for none) the JSON string at each of ``v`` is."""
    which = np.full(len(v), -1, np.int64)
    for k, word in enumerate(words):
        which[_matches(a, v, b'"' + word + b'"', w)] = k
    return which


def _tick_lines(s: _Scan, width: int | None, strict: bool) -> np.ndarray:
    """Which lines are tick events with the keys their event needs (and no other kind)."""
    a = s.a
    idx = s.keys["event"]
    s.kind[s.qline[idx]] = _which_word(a, s.vstart[idx], _EVENTS, s.w)
    kind = s.kind
    tick: np.ndarray = (kind >= 0) & ~s.bad & ~s.has["dup"] & ~s.has["dup_to"]
    for key in _REQUIRED + (_STRICT_REQUIRED if strict else ()):
        tick &= s.has[key]
    if width:
        tick &= s.has["vclock"]
    tick &= s.has["dice"] == (kind != 2)
    tick &= s.has["to"] == (kind == 1)
    tick &= s.has["from"] == (kind == 2)
    tick &= s.has["msg_lclock"] == (kind == 2)
    return tick


def _layout_ok(s: _Scan, dec: _Decoder) -> np.ndarray:
    """Lines whose every byte is accounted for: ``{``, known keys and their values joined
    by ``,`` or ``, ``, then ``}`` and the newline (strict mode).

    The separators are judged over every key, the braces once per line (at its first and
    last key), so the work is a few operations per key."""
    assert dec.end is not None
    a, qline = s.a, s.qline
    good = s.per_line > 0
    nq = len(s.q)
    if not nq:
        return good
    end = dec.end
    start = s.q - _KEY_LEN[s.kid] - 1  # the opening quote of each key
    prev_end = np.empty_like(end)
    prev_end[0] = 0
    prev_end[1:] = end[:-1]
    gap = start - prev_end
    sep = (gap == 1) & (a[prev_end] == _COMMA)
    odd = np.flatnonzero(~sep)  # the first key of each line, ", " separators, and errors
    spaced = (gap[odd] == 2) & (a[prev_end[odd]] == _COMMA) & (a[prev_end[odd] + 1] == _SP)
    last_q = np.cumsum(s.per_line) - 1
    first_q = last_q - s.per_line + 1
    is_first = np.zeros(nq, bool)
    is_first[first_q[good]] = True
    bad = odd[~spaced & ~is_first[odd]]
    bad_lines = [qline[bad], qline[(s.kid < 0) | (end == 0)]]
    lines = np.flatnonzero(good)
    fq, lq = first_q[lines], last_q[lines]
    line_start = np.concatenate(([0], s.nl[:-1] + 1))[lines]
    opens = (start[fq] == line_start + 1) & (a[line_start] == _LBRACE)
    closes = (a[end[lq]] == _RBRACE) & (end[lq] + 1 == s.nl[lines])
    good[lines[~(opens & closes)]] = False
    for b in bad_lines:
        good[b] = False
    return good


def _to_column(dec: _Decoder, n: int | None, machine: int | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Recipients of the send lines: (count per row, ids flat in row order). With
    ``machine`` (strict), rows naming a machine that is not a peer, or one twice, fail."""
    to_n = np.zeros(dec.m, np.int64)
    if not len(dec.s.keys["to"]):
        return to_n, np.zeros(0, np.int64)
    max_to = max((n or 2) - 1, 1) if n else 64
    mat, lens, line = dec.int_list("to", None, max_to)
    to_n[dec.slot[line]] = lens
    if machine is not None and mat.size:
        width = mat.shape[1]
        inside = np.arange(width)[None, :] < lens[:, None]
        wrong = inside & ((mat < 1) | (mat == machine) | ((mat > n) if n else False))
        # a machine named twice: sort each row with distinct fillers past its length
        filled = np.where(inside, mat, -1 - np.arange(width)[None, :])
        srt = np.sort(filled, axis=1)
        twice = np.any(srt[:, 1:] == srt[:, :-1], axis=1) if width > 1 else np.zeros(len(mat), bool)
        dec.ok[line[np.any(wrong, axis=1) | twice]] = False
    rows = np.repeat(np.arange(len(line)), lens)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(lens) - lens, lens)
    return to_n, (mat[rows, within] if mat.size else np.zeros(0, np.int64))


def _strict_values(dec: _Decoder, ints: dict[str, np.ndarray], machine: int, n: int | None
                   ) -> None:
    """Clear ``dec.ok`` for rows the careful validation would find fault with, and decode
    the keys only strict mode accounts for."""
    dec.word("level", _LEVELS)
    kind = dec.s.kind[dec.idx]
    frm = ints["from"]
    bad = ints["machine"] != machine
    bad |= (kind == 2) & ((frm < 1) | (frm == machine) | ((frm > n) if n else False))
    dec.ok[dec.idx[bad]] = False
    a = dec.s.a
    idx, v, _ = dec.at("event")
    first = a[v + 1]
    length = np.where(first == ord("i"), 8, np.where(first == ord("s"), 4, 7))
    dec.ended(idx, v + 2 + length)


def parse_chunk(buf: bytes, width: int | None, n: int | None, *, strict: bool = False,
                machine: int | None = None, run_id: bytes | None = None) -> Chunk | None:
    """Decode the tick lines of ``buf`` (whole lines, each ending in a newline).

    ``run_id`` (the run id as JSON text) leaves lines of another run to the caller;
    ``strict`` also needs ``machine`` and ``run_id``. None when the chunk is better read
    the careful way.
    """
    if not buf or buf[-1:] != b"\n" or (strict and (machine is None or run_id is None)):
        return None
    s = _Scan(buf, KEYS if strict else _ANALYSIS_KEYS + (("run_id",) if run_id else ()))
    tick_line = _tick_lines(s, width, strict)
    dec = _Decoder(s, tick_line, strict)
    cols: dict[str, np.ndarray] = {"ts": dec.ts()}
    if run_id is not None:
        dec.token("run_id", run_id)
    ints = dec.ints(_INT_KEYS if strict else _ANALYSIS_INTS, _FILL)
    cols.update(tick=ints["tick"], lclock=ints["lclock"], qlen=ints["queue_len"],
                dice=ints["dice"], frm=ints["from"], msg=ints["msg_lclock"],
                kind=s.kind[dec.idx], pt=ints["pt"], msg_pt=ints["msg_pt"])
    for key in ("hlc", "msg_hlc"):
        cols[key] = dec.pair(key)
    if width:
        mat, _, line = dec.int_list("vclock", width, width)
        dec.ok[line[~np.all(mat < I31, axis=1)]] = False
        vc = np.zeros((dec.m, width), np.int64)
        vc[dec.slot[line]] = mat
        cols["vclock"] = vc
    to_n, to_ids = _to_column(dec, n, machine if strict else None)
    if strict:
        assert machine is not None
        _strict_values(dec, ints, machine, n)
        dec.ok &= _layout_ok(s, dec)
    return _finish(dec, cols, to_n, to_ids, tick_line, s.nl)


def _finish(dec: _Decoder, cols: dict[str, np.ndarray], to_n: np.ndarray, to_ids: np.ndarray,
            tick_line: np.ndarray, nl: np.ndarray) -> Chunk:
    taken = tick_line & dec.ok
    keep = taken[dec.idx]
    if not keep.all():
        # drop rows that failed a value check; their lines go the careful way
        sel_rows = np.flatnonzero(keep)
        to_ids = to_ids[np.repeat(keep, to_n)] if to_ids.size else to_ids
        for k in list(cols):
            cols[k] = cols[k][sel_rows]
        to_n = to_n[sel_rows]
    cols["to_n"] = to_n
    cols["to_ids"] = to_ids
    return Chunk(cols, np.flatnonzero(taken), np.flatnonzero(~taken), nl)
