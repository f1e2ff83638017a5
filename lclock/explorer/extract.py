"""A run folder as the explorer's data: compact columns, ready to embed as JSON.

Every column is per machine ("lane") and in log order. Integer columns that mostly step
by a constant (times in microseconds, line numbers, ticks, clocks) are delta-encoded:
``{"n": count, "s": first, "v": [steps]}``, or ``{"n", "s", "d": step}`` when every step is
the same. A 1M-event run then embeds in roughly 25 bytes an event, and orjson writes the
numpy arrays directly, so building the data costs about as much as loading the run.

Messages are matched here, once, on the whole run (a receive names its sender and the
Lamport time the message carried; the send with that Lamport time on that sender is its
send, SPEC section 5), so the page only draws. Times are microseconds since the run's t0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lclock import __version__
from lclock.analysis.causal import match_run
from lclock.analysis.load import KIND_RECEIVE, KIND_SEND, MachineLog, Run, RunFolderError, load_run
from lclock.analysis.window import window_problem
from lclock.errors import BadInput
from lclock.explorer.extras import MISSING, Extras, read_extras
from lclock.explorer.plan import fault_plan

MAX_EVENTS = 2_000_000  # the most tick events one explorer file embeds
MAX_VC_ENTRIES = 24_000_000  # vector clock entries (events x machines) embedded
MAX_MARKS = 200_000
MARK_TEXT = 2_000  # characters of a non-tick line kept for its tooltip
SETTINGS_SHOWN = ("machines", "duration", "seed", "rate_min", "rate_max", "rates", "dice_sides",
                  "vector_clocks", "transport", "clocks", "faults")


class ViewError(BadInput):
    """The explorer cannot be built from this input (the CLI prints it, exit 2)."""


@dataclass
class Lane:
    """One machine's log, its extra fields and its time column (us since t0)."""

    log: MachineLog
    extras: Extras
    t: np.ndarray  # int64, non-decreasing (a missing or earlier ts takes the previous one)
    t_raw: np.ndarray  # int64, each line's own ts (a missing one takes the previous one)


def enc(a: np.ndarray) -> dict[str, Any]:
    """Delta-encode an integer column (see the module docstring)."""
    a = np.asarray(a, dtype=np.int64)
    n = int(a.size)
    if n == 0:
        return {"n": 0, "s": 0, "d": 0}
    d = np.diff(a)
    if n == 1 or bool(np.all(d == d[0])):
        return {"n": n, "s": int(a[0]), "d": int(d[0]) if n > 1 else 0}
    return {"n": n, "s": int(a[0]), "v": d}


def _time_us(log: MachineLog, t0_us: int) -> np.ndarray:
    """Each event's ts in us since t0; a missing one takes the previous one's."""
    ts = log.ts
    if ts.size == 0:
        return np.zeros(0, np.int64)
    ok = np.isfinite(ts)
    us = np.zeros(ts.size, np.int64)
    us[ok] = np.round(ts[ok] * 1e6).astype(np.int64) - t0_us
    if not ok.all():  # carry the last known time forward (0 before the first one)
        idx = np.maximum.accumulate(np.where(ok, np.arange(ts.size), -1))
        us = np.where(idx >= 0, us[np.maximum(idx, 0)], 0)
    return us


def _send_index(log: MachineLog) -> tuple[np.ndarray, np.ndarray]:
    """This machine's send events, sorted by Lamport time: (lclocks, event rows)."""
    isd = np.flatnonzero(log.kind == KIND_SEND)
    lc = log.lclock[isd]
    order = np.argsort(lc, kind="stable")
    return lc[order], isd[order]


def _find_sends(index: tuple[np.ndarray, np.ndarray], lclocks: np.ndarray) -> np.ndarray:
    """Rows of the sends with these Lamport times on one sender (the send a ``drop`` line
    is of), -1 where there is none."""
    slc, rows = index
    p = np.searchsorted(slc, lclocks)
    ok = p < slc.size
    ok[ok] = slc[p[ok]] == lclocks[ok]
    return np.where(ok, rows[np.minimum(p, max(slc.size - 1, 0))] if slc.size else -1, -1)


def match_messages(run: Run) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """For every machine, per event: the machine whose send a receive handled (0: none) and
    that send's row on it (-1 for events that are not receives and for receives whose send
    is not in the logs), as ``check``, ``cuts`` and ``trace`` match them (SPEC 5.1), so the
    explorer's cut verdict is ``lclock cuts``'s."""
    senders, send_index, _channels, _unmatched = match_run(run)
    return senders, send_index


def _us(epoch_s: float, t0_us: int) -> int | None:
    """Microseconds since t0 of an epoch time, None for a missing or bad ts (NaN)."""
    return round(epoch_s * 1e6) - t0_us if np.isfinite(epoch_s) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**53 else None


def _choose_window(lanes: dict[int, Lane], window: tuple[float, float] | None,
                   max_events: int) -> tuple[tuple[int, int] | None, str | None]:
    """The part of the run to embed (us since t0, end excluded), and a note if it is a part."""
    total = sum(ln.t.size for ln in lanes.values())
    if window is not None:
        lo, hi = round(window[0] * 1e6), round(window[1] * 1e6)
        inside = sum(int(np.count_nonzero((ln.t >= lo) & (ln.t < hi))) for ln in lanes.values())
        if inside > max_events:
            raise ViewError(f"--window {window[0]:.10g},{window[1]:.10g} holds {inside:,} events, more "
                            f"than the {max_events:,} an explorer embeds: choose a shorter window "
                            "(or raise --max-events)")
        return (lo, hi), None
    if total <= max_events:
        return None, None
    allt = np.concatenate([ln.t for ln in lanes.values()])
    end = int(np.partition(allt, max_events)[max_events])  # the first time left out
    inside = int(np.count_nonzero(allt < end))
    note = (f"This run has {total:,} events, more than the {max_events:,} an explorer embeds: "
            f"it shows the first {end / 1e6:.6g} s ({inside:,} events). Choose another part "
            "with lclock view --window START,END (seconds after the run's start).")
    return (0 if allt.min() >= 0 else int(allt.min()), end), note


def load_lanes(run: Run) -> tuple[dict[int, Lane], int]:
    """The lanes of a loaded run and t0 in epoch microseconds."""
    t0_us = round(run.t0 * 1e6)
    lanes = {}
    for i in run.ids:
        log = run.machines[i]
        try:
            ex = read_extras(log, MAX_MARKS)
        except OSError as exc:
            raise ViewError(f"{log.path}: cannot read: {exc.strerror or exc}") from None
        raw = _time_us(log, t0_us)
        lanes[i] = Lane(log, ex, np.maximum.accumulate(raw) if raw.size else raw, raw)
    return lanes, t0_us


def build(run_dir: Path | str, window: tuple[float, float] | None = None,
          max_events: int = MAX_EVENTS, findings: list[dict[str, Any]] | None = None
          ) -> tuple[dict[str, Any], list[str]]:
    """The explorer's data for one run folder, and notes for the user; ``findings`` (check's,
    as ``check --json`` gives them) are marked at the events they name."""
    try:
        run = load_run(run_dir)
    except RunFolderError as exc:
        raise ViewError(str(exc)) from None
    if not run.machines:
        raise ViewError(f"{run_dir}: no machine logs to show")
    lanes, t0_us = load_lanes(run)
    if window is not None:
        _window_holds_events(run, lanes, window)
    span, note = _choose_window(lanes, window, max_events)
    notes = [note] if note else []
    data = _data(run, lanes, t0_us, span, notes)
    if findings:
        from lclock.explorer.finding_marks import add_finding_marks

        add_finding_marks(data["marks"], findings, lanes, span)
    return data, notes


def _window_holds_events(run: Run, lanes: dict[int, Lane], window: tuple[float, float]) -> None:
    """An empty page is never what ``--window`` asked for: refuse it (before anything is
    written), in the words of ``lclock report --window``."""
    lo, hi = round(window[0] * 1e6), round(window[1] * 1e6)
    if any(np.any((ln.t >= lo) & (ln.t < hi)) for ln in lanes.values()):
        return
    why = window_problem(run, window, end_included=False)
    raise ViewError(f"{run.path}: " + (why or f"--window {window[0]:.10g},{window[1]:.10g} holds no "
                                              "event; widen it"))


def _bounds(ln: Lane, span: tuple[int, int] | None) -> tuple[int, int]:
    if span is None:
        return 0, int(ln.t.size)
    lo, hi = np.searchsorted(ln.t, span, side="left")
    return int(lo), int(hi)


def _data(run: Run, lanes: dict[int, Lane], t0_us: int, span: tuple[int, int] | None,
          notes: list[str]) -> dict[str, Any]:
    ids = run.ids
    bounds = {i: _bounds(lanes[i], span) for i in ids}
    shown = sum(hi - lo for lo, hi in bounds.values())
    has_vc, embed_vc = _vectors(lanes, ids, shown, notes)
    clocks = ["real", "lamport"]
    for name, field in (("hlc", "hlc_l"), ("pt", "pt")):
        has = [lanes[i].extras.has(field) for i in ids]
        if True in has and False not in has:
            clocks.append(name)
    frm, src = match_messages(run)
    offsets: dict[int, int] = {}
    acc = 0
    for i in ids:
        offsets[i] = acc
        acc += bounds[i][1] - bounds[i][0]
    out_lanes = [_lane(run, lanes[i], bounds[i], embed_vc, "hlc" in clocks, "pt" in clocks, t0_us)
                 for i in ids]
    msgs, crossing = _messages(run, bounds, offsets, frm, src)
    if crossing:
        notes.append(f"{crossing:,} message(s) cross the edges of the part shown: they are not "
                     "drawn" + ("." if embed_vc else ", and causality through them is not followed."))
    drops, drop_keys = _drops(run, lanes, bounds, offsets, span, t0_us)
    pending = _pending(run, bounds, offsets, frm, src, drop_keys)
    marks, dropped_marks = _marks(run, lanes, span, t0_us)
    if dropped_marks:
        notes.append(f"{dropped_marks:,} other log line(s) (warnings, faults, ...) beyond the first "
                     f"{MAX_MARKS:,} are not marked.")
    raw_settings: Any = run.meta.get("settings")
    settings: dict[str, Any] = raw_settings if isinstance(raw_settings, dict) else {}
    issues = [str(x) for x in run.issues[:20]]
    _note_skipped(run, notes)
    snaps = _snapshots(run, notes)
    return {
        "format": 1,
        "generator": f"lclock {__version__}",
        "run": {
            "id": run.run_id, "dir": run.path.name, "path": str(run.path), "status": run.status,
            "n": len(ids),
            "t0_us": t0_us, "seed": run.meta.get("seed"),
            "settings": {k: settings[k] for k in SETTINGS_SHOWN if k in settings},
            "clocks": clocks, "vector": has_vc, "vc_embedded": embed_vc,
            "events_total": run.events, "events": shown,
            "window_us": list(span) if span is not None else None,
            "notes": notes, "issues": issues,
        },
        "lanes": out_lanes,
        "msgs": msgs,
        "drops": drops,
        "pending": pending,
        "marks": marks,
        "plan": fault_plan(run.meta),
        "snaps": snaps,
    }


def _vectors(lanes: dict[int, Lane], ids: list[int], shown: int, notes: list[str]
             ) -> tuple[bool, bool]:
    """(every lane has vector clocks, they are embedded): not beyond MAX_VC_ENTRIES."""
    vcs = [lanes[i].log.vclock for i in ids]
    has_vc = all(v is not None for v in vcs)
    width = max((v.shape[1] for v in vcs if v is not None), default=0)
    embed_vc = has_vc and shown * width <= MAX_VC_ENTRIES
    if has_vc and not embed_vc:
        notes.append(f"Vector clocks are not embedded ({shown:,} events x {width} machines is more "
                     f"than {MAX_VC_ENTRIES:,} entries): causality is computed from the matched "
                     "messages, which gives the same answer for a correct run.")
    return has_vc, embed_vc


def _note_skipped(run: Run, notes: list[str]) -> None:
    skipped = sum(m.skipped for m in run.machines.values())
    if skipped or any(x.line for x in run.issues):
        notes.append(f"{skipped + sum(1 for x in run.issues if x.line):,} unusable log line(s) "
                     "skipped: run lclock check for details.")


def _lane(run: Run, ln: Lane, b: tuple[int, int], embed_vc: bool, hlc: bool, pt: bool,
          t0_us: int) -> dict[str, Any]:
    log, ex = ln.log, ln.extras
    lo, hi = b
    sl = slice(lo, hi)
    kind = log.kind[sl]
    recv = kind == KIND_RECEIVE
    sends = np.flatnonzero(kind == KIND_SEND) + lo
    stop = log.stop if isinstance(log.stop, dict) else None
    start = log.start if isinstance(log.start, dict) else {}
    lane: dict[str, Any] = {
        "id": log.id, "file": log.path.name, "rate": run.rates.get(log.id),
        "n": hi - lo, "first": lo, "total": log.events,
        "line": enc(log.line[sl]), "t": enc(ln.t[sl]), "tick": enc(log.tick[sl]),
        "kind": kind.astype(np.int8), "L": enc(log.lclock[sl]), "q": log.qlen[sl],
        "dice": log.dice[sl],
        "to_n": log.to_ptr[sends + 1] - log.to_ptr[sends],
        "to": log.to_ids[log.to_ptr[lo]:log.to_ptr[hi]], "frm": log.frm[sl][recv], "msg": log.msg[sl][recv],
        "dup": np.flatnonzero(ex.dup[sl]),
        "vc": None, "pt": None, "hl": None, "hc": None, "mpt": None, "mhl": None, "mhc": None,
        "start": {k: start[k] for k in ("rate", "pid", "seed") if k in start},
        "stop": {k: v for k, v in stop.items() if k not in ("ts", "event", "level", "run_id", "machine")}
        if stop else None,
        "stop_line": log.stop_line, "stopped": stop is not None,
    }
    if not np.array_equal(ln.t_raw[sl], ln.t[sl]):  # a clock stepped back: the lines say so
        lane["traw"] = enc(ln.t_raw[sl])
    if embed_vc and log.vclock is not None:
        lane["vc"] = [enc(log.vclock[sl, c]) for c in range(log.vclock.shape[1])]
    if pt:
        lane["pt"] = enc(ex.pt[sl] - t0_us)
        mpt = ex.msg_pt[sl][recv]
        lane["mpt"] = enc(np.where(mpt == MISSING, 0, mpt - t0_us))
    if hlc:
        lane["hl"] = enc(ex.hlc_l[sl] - t0_us)
        lane["hc"] = ex.hlc_c[sl]
        mhl = ex.msg_hlc_l[sl][recv]
        lane["mhl"] = enc(np.where(mhl == MISSING, 0, mhl - t0_us))
        lane["mhc"] = np.maximum(ex.msg_hlc_c[sl][recv], 0)
    return lane


def _messages(run: Run, bounds: dict[int, tuple[int, int]], offsets: dict[int, int],
              frm: dict[int, np.ndarray], src: dict[int, np.ndarray]) -> tuple[dict[str, Any], int]:
    """Matched (send, receive) pairs with both ends shown, as global event indexes sorted by
    send; and how many matched messages have only one end shown."""
    s_all, r_all = [], []
    crossing = 0
    for j in run.ids:
        rows = np.flatnonzero(src[j] >= 0)
        if not rows.size:
            continue
        senders = frm[j][rows]
        send_rows = src[j][rows]
        lo, hi = bounds[j]
        r_in = (rows >= lo) & (rows < hi)
        s_in = np.zeros(rows.size, bool)
        s_glob = np.zeros(rows.size, np.int64)
        for s in np.unique(senders).tolist():
            sel = senders == s
            slo, shi = bounds[s]
            sr = send_rows[sel]
            s_in[sel] = (sr >= slo) & (sr < shi)
            s_glob[sel] = sr - slo + offsets[s]
        both = r_in & s_in
        crossing += int(np.count_nonzero(r_in ^ s_in))
        s_all.append(s_glob[both])
        r_all.append(rows[both] - lo + offsets[j])
    s = np.concatenate(s_all) if s_all else np.zeros(0, np.int64)
    r = np.concatenate(r_all) if r_all else np.zeros(0, np.int64)
    order = np.lexsort((r, s))
    return {"n": int(s.size), "s": enc(s[order]), "r": r[order]}, crossing


REASONS = ("loss", "partition", "crashed")
MARK_KINDS = ("pause", "resume", "fault", "stop", "warning", "error", "other", "finding")


def _drops(run: Run, lanes: dict[int, Lane], bounds: dict[int, tuple[int, int]],
           offsets: dict[int, int], span: tuple[int, int] | None, t0_us: int
           ) -> tuple[dict[str, Any], list[tuple[int, int, int]]]:
    """The ``drop`` lines shown (sender lane id, time, recipient, the message's Lamport time,
    reason code, line, global index of the send or -1), and the (sender, send row,
    recipient) of every drop in the run."""
    cols: dict[str, list[int]] = {k: [] for k in ("lane", "t", "to", "msg", "reason", "line", "s")}
    reasons = list(REASONS)
    keys: list[tuple[int, int, int]] = []
    for i in run.ids:
        ln = lanes[i]
        found = [(num, o, ln.extras.other_ts[q]) for q, (num, o, _) in enumerate(ln.extras.other)
                 if o.get("event") == "drop"]
        if not found:
            continue
        msg = np.array([_int(o.get("msg_lclock")) if _int(o.get("msg_lclock")) is not None else -1
                        for _, o, _ in found], np.int64)
        srow = _find_sends(_send_index(ln.log), msg)
        lo, hi = bounds[i]
        for (num, o, when), m, sr in zip(found, msg.tolist(), srow.tolist(), strict=True):
            to = o.get("to")
            tos = [x for x in map(_int, to if isinstance(to, list) else [to]) if x is not None]
            reason = str(o.get("reason")) if isinstance(o.get("reason"), str) else "?"
            if reason not in reasons:
                reasons.append(reason)
            t = _us(when, t0_us)
            shown = t is not None and (span is None or span[0] <= t < span[1])
            for x in tos:
                keys.append((i, sr, x))
                if shown:
                    for k, v in (("lane", i), ("t", t), ("to", x), ("msg", m),
                                 ("reason", reasons.index(reason)), ("line", num),
                                 ("s", sr - lo + offsets[i] if sr >= 0 and lo <= sr < hi else -1)):
                        cols[k].append(int(v))  # type: ignore[arg-type]
    out: dict[str, Any] = {k: np.array(v, np.int64) for k, v in cols.items()}
    out["n"] = len(cols["lane"])
    out["reasons"] = reasons
    return out, keys


def _pending(run: Run, bounds: dict[int, tuple[int, int]], offsets: dict[int, int],
             frm: dict[int, np.ndarray], src: dict[int, np.ndarray],
             drop_keys: list[tuple[int, int, int]]) -> dict[str, Any]:
    """Messages of the sends shown that were neither handled nor dropped anywhere in the run:
    still queued at the stop, or lost with a machine (global send index, recipient)."""
    base = max(run.ids) + 1

    def key(sender: np.ndarray, row: np.ndarray, to: np.ndarray) -> np.ndarray:
        out: np.ndarray = (row.astype(np.int64) * base + to) * base + sender
        return out

    known = []
    for j in run.ids:
        rows = np.flatnonzero(src[j] >= 0)
        known.append(key(frm[j][rows], src[j][rows],
                         np.full(rows.size, j, np.int64)))
    if drop_keys:
        dk = np.array(drop_keys, np.int64)
        known.append(key(dk[:, 0], dk[:, 1], dk[:, 2]))
    got = np.sort(np.concatenate(known)) if known else np.zeros(0, np.int64)
    s_out, to_out = [], []
    for i in run.ids:
        log = run.machines[i]
        lo, hi = bounds[i]
        isd = np.flatnonzero(log.kind == KIND_SEND)
        isd = isd[(isd >= lo) & (isd < hi)]
        if not isd.size:
            continue
        counts = log.to_ptr[isd + 1] - log.to_ptr[isd]
        rows = np.repeat(isd, counts)
        pos = np.repeat(log.to_ptr[isd], counts) + (np.arange(rows.size)
                                                      - np.repeat(np.cumsum(counts) - counts, counts))
        to = log.to_ids[pos].astype(np.int64)
        want = key(np.full(rows.size, i, np.int64), rows, to)
        p = np.minimum(np.searchsorted(got, want), max(got.size - 1, 0))
        miss = got[p] != want if got.size else np.ones(want.size, bool)
        s_out.append(rows[miss] - lo + offsets[i])
        to_out.append(to[miss])
    s = np.concatenate(s_out) if s_out else np.zeros(0, np.int64)
    to = np.concatenate(to_out) if to_out else np.zeros(0, np.int64)
    return {"n": int(s.size), "s": s, "to": to}


def _marks(run: Run, lanes: dict[int, Lane], span: tuple[int, int] | None, t0_us: int
           ) -> tuple[dict[str, Any], int]:
    """The other lines worth a mark (pause, resume, fault, stop, warnings, errors, unknown
    events), with their text for the tooltip; and how many were left unread."""
    cols: dict[str, list[Any]] = {k: [] for k in ("lane", "t", "kind", "line", "text")}
    dropped = 0
    for i in run.ids:
        ln = lanes[i]
        dropped += ln.extras.other_dropped
        end = int(ln.t[-1]) if ln.t.size else 0
        for (num, o, raw), when in zip(ln.extras.other, ln.extras.other_ts.tolist(), strict=True):
            ev = o.get("event")
            if ev in ("start", "connected", "drop", "snapshot"):  # snapshots: drawn as cuts
                continue
            level = o.get("level")
            kind = ev if ev in MARK_KINDS[:4] else level if level in ("warning", "error") else "other"
            t = _us(when, t0_us)
            t = end if t is None else t
            if span is not None and not span[0] <= t < span[1]:
                continue
            for k, v in (("lane", i), ("t", t), ("kind", MARK_KINDS.index(str(kind))),
                         ("line", num), ("text", raw[:MARK_TEXT].decode("utf-8", "replace"))):
                cols[k].append(v)
    out: dict[str, Any] = dict(cols)
    out["n"] = len(cols["lane"])
    out["kinds"] = list(MARK_KINDS)
    return out, dropped


MAX_SNAPSHOTS = 1000
MAX_SNAPSHOT_MESSAGES = 200  # per list (queue or channel) embedded; the rest counted


def _snapshot_lines(log: MachineLog) -> list[tuple[int, dict[str, Any]]]:
    """A log's ``snapshot`` lines (SPEC 12.2): kept by the loader as their own kind, or
    among the lines of events it does not know."""
    found = dict(log.lines_of("snapshot"))
    found.update((num, o) for num, o in log.unknown + log.notable if o.get("event") == "snapshot")
    return sorted(found.items(), key=lambda x: x[0])


def _messages_of(x: Any) -> list[dict[str, int]]:
    keep = ("from", "msg_lclock", "send_tick")
    out: list[dict[str, int]] = [{k: v for k, v in m.items() if k in keep and _int(v) is not None}
                                 for m in (x if isinstance(x, list) else []) if isinstance(m, dict)]
    if len(out) > MAX_SNAPSHOT_MESSAGES:  # the rest counted, never dropped silently
        out = out[:MAX_SNAPSHOT_MESSAGES] + [{"more": len(out) - MAX_SNAPSHOT_MESSAGES}]
    return out


def _snapshots(run: Run, notes: list[str]) -> list[dict[str, Any]]:
    """Each snapshot's recorded state per machine: its tick (the cut), clocks, queue and
    channels, with the line it came from; in order of id."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for i in run.ids:
        for num, o in _snapshot_lines(run.machines[i]):
            sid, tick = o.get("id"), _int(o.get("tick"))
            if tick is None or tick < 0 or not isinstance(sid, (str, int)) or isinstance(sid, bool):
                continue
            vc = o.get("vclock")
            ch = o.get("channels")
            by_id.setdefault(str(sid), []).append({
                "m": i, "tick": tick, "lclock": _int(o.get("lclock")), "line": num,
                "vclock": vc if isinstance(vc, list) and all(_int(x) is not None for x in vc) else None,
                "queue": _messages_of(o.get("queue")),
                "channels": {str(k): _messages_of(v) for k, v in ch.items()} if isinstance(ch, dict) else {}})
    keys = sorted(by_id, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    if len(keys) > MAX_SNAPSHOTS:
        notes.append(f"{len(keys) - MAX_SNAPSHOTS:,} snapshot(s) beyond the first {MAX_SNAPSHOTS:,} "
                     "are not drawn.")
    return [{"id": k, "parts": by_id[k]} for k in keys[:MAX_SNAPSHOTS]]
