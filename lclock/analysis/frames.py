"""A loaded run as pandas DataFrames: events, messages and machines (SPEC section 13).

Why a module of its own: the columns ``load`` reads are numpy arrays made for the rules and
the plots (-1 where a value is missing, 0 where a machine does not roll); a notebook wants
them typed the way pandas says "missing": ``pd.NA`` in nullable ``Int64`` columns, ``NaT`` in
UTC datetimes. Everything here is pure (a loaded ``Run`` in, DataFrames out) and vectorised:
only the list-valued columns (``to``, ``vclock``, ``hlc``) become Python objects.

pandas is imported by the caller's request only (``lclock.api`` checks it is there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lclock.analysis.causal import Event, match_run
from lclock.analysis.load import KEPT_EVENTS, KIND_RECEIVE, KIND_SEND, MachineLog, Run
from lclock.analysis.matching import SendTable
from lclock.analysis.timestamps import parse_ts_column

KIND_CATEGORIES = ["internal", "send", "receive"]  # the codes of load.KINDS, in order
# The event names every frame knows, tick events first; a log's other names follow, sorted.
KNOWN_EVENTS = [*KIND_CATEGORIES, *KEPT_EVENTS, "error"]
# The columns a non-tick line fills from its own JSON fields, by their type.
INT_FIELDS = ("tick", "lclock", "queue_len", "from", "msg_lclock", "dice")
LIST_FIELDS = ("hlc", "vclock")
# Fields every row states already (or the same on every line of a run): not in ``fields``.
ROW_FIELDS = frozenset({"ts", "event", "run_id", "machine"})
FATES = ["received", "unprocessed", "dropped", "lost"]
MESSAGE_COLUMNS = ["sender", "receiver", "send_tick", "receive_tick", "msg_lclock", "delay_s",
                   "jump", "fate", "dup"]
MACHINE_COLUMNS = ["rate", "ticks", "sent", "received", "unprocessed", "lclock", "stopped"]


def nullable(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    """An ``Int64`` column: ``values`` where ``missing`` is False, ``pd.NA`` where it is True."""
    return pd.arrays.IntegerArray(values.astype(np.int64), missing.astype(bool))


def utc(seconds: np.ndarray) -> pd.DatetimeIndex:
    """Seconds since the epoch (NaN: unknown) as UTC datetimes to the microsecond."""
    ok = np.isfinite(seconds)
    us = np.where(ok, np.round(np.where(ok, seconds, 0.0) * 1e6), 0).astype(np.int64)
    out = pd.to_datetime(us, unit="us", utc=True).as_unit("us")  # pandas 2 would make ns
    return out.where(ok) if not ok.all() else out


def utc_us(micros: np.ndarray) -> pd.DatetimeIndex:
    """Microseconds since the epoch (-1: unknown) as UTC datetimes."""
    ok = micros >= 0
    out = pd.to_datetime(np.where(ok, micros, 0).astype(np.int64), unit="us", utc=True).as_unit("us")
    return out.where(ok) if not ok.all() else out


def _recipients(log: MachineLog) -> np.ndarray:
    """Per event: the list of recipients of a send, None for the other events."""
    out = np.full(log.events, None, dtype=object)
    sends = np.flatnonzero(log.kind == KIND_SEND)
    if sends.size:
        flat = log.to_ids.tolist()
        starts = log.to_ptr[sends].tolist()
        ends = log.to_ptr[sends + 1].tolist()
        out[sends] = [flat[s:e] for s, e in zip(starts, ends)]
    return out


def _rows(values: np.ndarray | None, n: int, ok: np.ndarray | None = None) -> np.ndarray:
    """A 2-D column (vector clocks, [l, c] pairs) as one Python list per row, None where a
    machine did not log it (or a row is unusable)."""
    out = np.full(n, None, dtype=object)
    if values is None:
        return out
    good = (values >= 0).all(axis=1) if ok is None else ok
    if good.all():
        out[:] = values.tolist()
        return out
    # row by row: numpy takes equal lists given to a mask for a 2-D array and refuses them
    for i, row in zip(np.flatnonzero(good).tolist(), values[good].tolist()):
        out[i] = row
    return out


def _cat(parts: list[np.ndarray], dtype: Any = None) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype or np.int64)


def events_frame(run: Run) -> pd.DataFrame:
    """A row per line the reader kept, machine by machine in log order (SPEC 13's columns,
    plus ``fields``, ``t_s`` and ``line``): the tick events, built column-wise, and the few
    other lines (start, connected, drop, fault, pause, resume, snapshot, stop, errors, ...),
    built row-wise from their JSON fields and merged in by line number."""
    ticks = _tick_frame(run)
    others = [(i, num, o) for i in run.ids for num, o in _other_lines(run.machines[i])]
    names = {o["event"] for _, _, o in others} - set(KNOWN_EVENTS)
    categories = [*KNOWN_EVENTS, *sorted(names)]
    ticks["event"] = ticks["event"].cat.set_categories(categories)
    if not others:
        return ticks
    rows = _other_frame(run, others, ticks.columns, categories)
    both = pd.concat([ticks, rows], ignore_index=True)
    order = np.lexsort((both["line"].to_numpy(), both["machine"].to_numpy()))
    return both.take(order).reset_index(drop=True)


def _other_lines(log: MachineLog) -> list[tuple[int, dict[str, Any]]]:
    """The non-tick lines the reader kept whole: those ``load`` keeps by kind, the warnings
    and errors, and lines of events it does not know (each but the first two capped, see
    ``load.MAX_NOTABLE``; ``left_out`` counts what a cap left out)."""
    kept = [x for name in KEPT_EVENTS for x in log.lines_of(name)]
    return kept + log.notable + log.unknown


def left_out(run: Run) -> dict[int, int]:
    """Per machine, how many of its non-tick lines are not rows of ``events_frame``: the
    reader keeps at most ``load.MAX_KEPT`` of a kind and ``load.MAX_NOTABLE`` of the rest."""
    out = {}
    for i in run.ids:
        log = run.machines[i]
        n = sum(log.other_events.values()) - len(_other_lines(log))
        if n > 0:
            out[i] = n
    return out


def _int(v: Any) -> Any:
    """An integer an ``Int64`` column holds; None for anything else (a flag, a huge value)."""
    ok = isinstance(v, int) and not isinstance(v, bool) and -(2**63) < v < 2**63
    return v if ok else None


def _ints(v: Any) -> list[int] | None:
    """A list of integers (a recipient, a clock) as the line has it; None if it is not one."""
    v = [v] if _int(v) is not None else v
    return v if isinstance(v, list) and all(_int(x) is not None for x in v) else None


def _rest(o: dict[str, Any], columns: pd.Index) -> dict[str, Any]:
    """A line's keys no column holds: its own (a snapshot's channels, a drop's reason), any
    of a column's name whose value is not of the column's type (a start line's ``hlc: true``
    says the run keeps hybrid clocks, it is not one), and those of a column the frame has
    not (a snapshot's ``vclock`` in a run whose ticks log none)."""
    held = {k for k in INT_FIELDS if _int(o.get(k)) is not None}
    held |= {k for k in (*LIST_FIELDS, "to") if _ints(o.get(k)) is not None}
    held |= {"pt"} if _int(o.get("pt")) is not None else set()
    held &= set(columns)
    return {k: v for k, v in o.items() if k not in ROW_FIELDS and k not in held}


def _other_frame(run: Run, lines: list[tuple[int, int, dict[str, Any]]], columns: pd.Index,
                 categories: list[str]) -> pd.DataFrame:
    """The rows of the non-tick lines: each column the line's own field where it has one of
    the right type, missing where it has not."""
    objs = [o for _, _, o in lines]
    ts = parse_ts_column([o.get("ts") for o in objs])
    cols: dict[str, Any] = {"machine": np.array([i for i, _, _ in lines], np.int64)}
    for name in INT_FIELDS:
        vals = [_int(o.get(name)) for o in objs]
        cols[name] = pd.array(vals, dtype="Int64")
    code = {name: k for k, name in enumerate(categories)}  # a log may name a thousand events
    codes = np.array([code[o["event"]] for o in objs], np.int32)
    cols["event"] = pd.Categorical.from_codes(codes, categories)
    cols["ts"] = utc(ts)
    cols["to"] = _objects([_ints(o.get("to")) for o in objs])
    if "pt" in columns:
        pt = [_int(o.get("pt")) for o in objs]
        cols["pt"] = utc_us(np.array([-1 if v is None else v for v in pt], np.int64))
    for name in LIST_FIELDS:
        if name in columns:
            cols[name] = _objects([_ints(o.get(name)) for o in objs])
    cols["fields"] = _objects([_rest(o, columns) for o in objs])
    cols["t_s"] = ts - run.t0
    cols["line"] = np.array([num for _, num, _ in lines], np.int64)
    return pd.DataFrame(cols, copy=False)[list(columns)]


def _objects(values: list[Any]) -> np.ndarray:
    """A column of Python objects (lists, dicts) as is: numpy would make a 2-D array of equal
    lists."""
    out = np.empty(len(values), dtype=object)
    for k, v in enumerate(values):
        out[k] = v
    return out


def _tick_frame(run: Run) -> pd.DataFrame:
    """A row per tick event, machine by machine in log order, built column-wise."""
    logs = [run.machines[i] for i in run.ids]
    kind = _cat([m.kind for m in logs], np.int8)
    machine = np.repeat(np.array(run.ids, np.int64), [m.events for m in logs])
    ts = _cat([m.ts for m in logs], np.float64)
    recv = kind == KIND_RECEIVE
    no_dice = "dice" in run.not_logged
    qlen = _cat([m.qlen for m in logs])
    msg = _cat([m.msg for m in logs])
    no = np.zeros(len(kind), bool)  # every tick line has its tick and its clock
    cols: dict[str, Any] = {
        "machine": machine,
        "tick": nullable(_cat([m.tick for m in logs]), no),
        "event": pd.Categorical.from_codes(kind, KIND_CATEGORIES),
        "lclock": nullable(_cat([m.lclock for m in logs]), no),
        "ts": utc(ts),
        "queue_len": nullable(qlen, qlen < 0),
        "from": nullable(_cat([m.frm for m in logs]), ~recv),
        "to": _cat([_recipients(m) for m in logs], object),
        "msg_lclock": nullable(msg, ~recv | (msg < 0)),
        "dice": nullable(_cat([m.dice for m in logs]), recv | no_dice),
    }
    if any(m.pt is not None for m in logs):
        cols["pt"] = utc_us(_cat([m.pt if m.pt is not None else np.full(m.events, -1)
                                  for m in logs]))
    if any(m.hlc is not None for m in logs):
        cols["hlc"] = _cat([_rows(m.hlc, m.events) for m in logs], object)
    if any(m.vclock is not None for m in logs):
        cols["vclock"] = _cat([_rows(m.vclock, m.events) for m in logs], object)
    cols["fields"] = np.full(len(kind), None, dtype=object)
    cols["t_s"] = ts - run.t0
    cols["line"] = _cat([m.line for m in logs])
    return pd.DataFrame(cols, copy=False)


# ---------------------------------------------------------------- messages


def _dropped(log: MachineLog) -> set[tuple[int, int]]:
    """(recipient, msg_lclock) of every message the sender logged as dropped."""
    out: set[tuple[int, int]] = set()
    for _num, d in log.lines_of("drop"):
        to, lc = d.get("to"), d.get("msg_lclock")
        for j in to if isinstance(to, list) else [to]:
            if isinstance(j, int) and isinstance(lc, int):
                out.add((j, lc))
    return out


def _queued(run: Run, sender: int, receiver: int) -> int | None:
    """How many messages of ``sender`` the receiver's stop line left unprocessed (None: the
    log does not say: no stop line, or no count per sender)."""
    stop = run.machines[receiver].stop if receiver in run.machines else None
    frm = (stop or {}).get("unprocessed_from")
    if not isinstance(frm, dict):
        return None
    v = frm.get(str(sender), 0)
    return v if isinstance(v, int) and v >= 0 else None


def _unplaced(run: Run, unmatched: list[Event]) -> set[tuple[int, int]]:
    """The links (sender, receiver) on which a receive matched no send (a log with holes: no
    message clock, or one no send has): a message of theirs never matched may be one of them."""
    out: set[tuple[int, int]] = set()
    for e in unmatched:
        frm = int(run.machines[e.machine].frm[e.index])
        out.update((s, e.machine) for s in ([frm] if frm in run.machines else run.ids))
    return out


def _link(run: Run, s: int, j: int, sends: np.ndarray,
          channel: tuple[np.ndarray, np.ndarray] | None, dropped: set[tuple[int, int]],
          unplaced: bool = False) -> dict[str, np.ndarray]:
    """The rows of one link s -> j: a row per receive of a message of each send, and one row
    for each message never handled (its fate from the drop lines and the stop counts;
    missing, -1, on a link whose receiver logged receives that matched no send)."""
    slog = run.machines[s]
    s_idx, r_idx = channel if channel is not None else (np.zeros(0, np.int64),) * 2
    cnt = np.searchsorted(s_idx, sends, "right") - np.searchsorted(s_idx, sends, "left")
    reps = np.maximum(cnt, 1)
    send_row = np.repeat(sends, reps)
    handled = np.repeat(cnt > 0, reps)
    recv = np.full(len(send_row), -1, np.int64)
    recv[handled] = r_idx
    first = np.r_[True, send_row[1:] != send_row[:-1]] if len(send_row) else handled
    lc = slog.lclock[send_row]
    fate = np.zeros(len(send_row), np.int8)
    open_rows = np.flatnonzero(~handled)
    drop = np.array([(j, int(x)) in dropped for x in lc[open_rows].tolist()], bool)
    fate[open_rows[drop]] = 2
    rest = open_rows[~drop]
    queued = _queued(run, s, j)
    fate[rest] = -1 if unplaced else 3
    if queued:  # a link is FIFO: the latest messages are the ones still queued
        fate[rest[-queued:]] = 1
    return {"send": send_row, "recv": recv, "lc": lc, "fate": fate,
            "dup": handled & ~first}


def messages_frame(run: Run) -> pd.DataFrame:
    """A row per message of every send to each recipient (a duplicate delivery: a row per
    handling, ``dup`` True on the later ones); receives match sends as ``lclock trace`` does."""
    _senders, _send_index, channels, unmatched = match_run(run)
    unplaced = _unplaced(run, unmatched)
    frames = []
    for s in run.ids:
        table = SendTable(run.machines[s])
        dropped = _dropped(run.machines[s])
        # a send naming no recipient (an imported log with holes) has a row per receive
        # matched to it: who else it went to, the log does not say
        for j in sorted(set(table.to.tolist()) | {r for (x, r) in channels if x == s}):
            ch = channels.get((s, j))
            sends = np.union1d(table.event[table.to == j], ch[0] if ch is not None else [])
            rows = _link(run, s, j, sends.astype(np.int64), ch, dropped, (s, j) in unplaced)
            frames.append(_link_frame(run, s, j, rows))
    if not frames:
        return _empty_messages()
    return pd.concat(frames, ignore_index=True)


def _link_frame(run: Run, s: int, j: int, rows: dict[str, np.ndarray]) -> pd.DataFrame:
    slog = run.machines[s]
    rlog = run.machines.get(j)
    recv, n = rows["recv"], len(rows["send"])
    got = recv >= 0
    k = np.where(got, recv, 0)
    if rlog is not None and rlog.events:
        r_tick, r_ts, r_lc = rlog.tick[k], rlog.ts[k], rlog.lclock[k]
        before = np.where(k > 0, rlog.lclock[np.maximum(k - 1, 0)], 0)
    else:
        r_tick = r_lc = before = np.zeros(n, np.int64)
        r_ts = np.full(n, np.nan)
    delay = np.where(got, r_ts - slog.ts[rows["send"]], np.nan)
    return pd.DataFrame({
        "sender": np.full(n, s, np.int64), "receiver": np.full(n, j, np.int64),
        "send_tick": slog.tick[rows["send"]],
        "receive_tick": nullable(r_tick, ~got),
        "msg_lclock": rows["lc"],
        "delay_s": delay,
        "jump": nullable(r_lc - before, ~got),
        "fate": pd.Categorical.from_codes(rows["fate"], FATES),
        "dup": rows["dup"],
    })


def _empty_messages() -> pd.DataFrame:
    none = np.zeros(0, np.int64)
    return pd.DataFrame({
        "sender": none, "receiver": none, "send_tick": none,
        "receive_tick": nullable(none, none.astype(bool)), "msg_lclock": none,
        "delay_s": none.astype(float), "jump": nullable(none, none.astype(bool)),
        "fate": pd.Categorical.from_codes(none.astype(np.int8), FATES),
        "dup": none.astype(bool),
    })


# ---------------------------------------------------------------- machines


def machines_frame(run: Run) -> pd.DataFrame:
    """A row per machine, counted from its events (what it did, whatever its stop line
    claims); ``unprocessed`` from its stop line (missing when it has none: it crashed)."""
    ids = run.ids
    rows: dict[str, list[Any]] = {c: [] for c in MACHINE_COLUMNS}
    for i in ids:
        log = run.machines[i]
        stop = log.stop or {}
        rows["rate"].append(run.rates.get(i))
        rows["ticks"].append(log.events)
        rows["sent"].append(int(log.to_ptr[-1]) if len(log.to_ptr) else 0)
        rows["received"].append(int(np.count_nonzero(log.kind == KIND_RECEIVE)))
        u = stop.get("unprocessed")
        rows["unprocessed"].append(u if isinstance(u, int) and not isinstance(u, bool) else None)
        rows["lclock"].append(int(log.lclock[-1]) if log.events else None)
        rows["stopped"].append(log.stop is not None)
    frame = pd.DataFrame(rows, index=pd.Index(ids, name="machine", dtype=np.int64))
    for c in ("rate", "unprocessed", "lclock"):
        frame[c] = frame[c].astype("Int64")
    return frame
