"""What a run folder holds, read defensively: its files, run.json, and the facts it states.

A run folder may come from anyone (another student's implementation, a download, an
attacker), so nothing in it is trusted: a name is a file only if it is a regular file inside
the folder (never a FIFO, a device or a symbolic link that leads out of it), run.json is
read only up to a sane size, and every fact taken from it is type- and range-checked before
it sizes anything. What run.json claims (the number of machines, their ids and rates)
never decides how much memory or time the tools spend: the logs themselves do.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from lclock import runfolder
from lclock.analysis.timestamps import short
from lclock.core.clocks import ClockPlan
from lclock.core.faults import FaultPlan
from lclock.runfolder import MAX_MACHINES as MAX_MACHINES
from lclock.runfolder import RUN_JSON
from lclock.safefile import BadFile as UnreadableFile
from lclock.safefile import inside as inside
from lclock.safefile import open_regular as open_regular
from lclock.safefile import parse_json as parse_json
from lclock.safefile import read_small as read_small

__all__ = ["UnreadableFile"]  # the readers' error, by its name in the analysis

MAX_RATE = 10_000_000  # ticks per second
MAX_DURATION_S = 10**8  # about three years
MAX_DICE_SIDES = 10**9
MACHINE_FILE = re.compile(r"^machine-([0-9]+)\.jsonl$", re.ASCII)
STATUSES = ("completed", "interrupted", "failed", "running")
# What a folder another program wrote may declare its logs do not have (run.json
# ``not_logged``): two fields of the tick events, and the start and stop lines; and the
# fields an imported log may lack on some lines (a send's recipients, a receive's sender or
# its message's clock), which check then cannot match by channel order.
NOT_LOGGABLE = ("dice", "queue_len", "start", "stop", "to", "from", "msg_lclock")


@dataclass
class Problem:
    """Something wrong with the folder itself (a file, run.json), before any log is read."""

    file: str
    text: str
    rule: str
    severity: str = "error"


def machine_files(run_dir: Path, problems: list[Problem] | None = None) -> dict[int, Path]:
    """``machine-<id>.jsonl`` files by id, sorted; names that cannot be a machine's log
    (id 0, beyond MAX_MACHINES, a second file for one id) are problems, not logs."""
    problems = problems if problems is not None else []
    found: dict[int, list[Path]] = {}
    try:
        entries = sorted(os.scandir(run_dir), key=lambda e: e.name)
    except OSError as exc:
        problems.append(Problem(".", f"cannot list the folder: {exc.strerror or exc}", "folder"))
        return {}
    for entry in entries:
        m = MACHINE_FILE.match(entry.name)
        if not m:
            continue
        digits = m.group(1)
        if len(digits) > 9 or not 1 <= int(digits) <= MAX_MACHINES:
            problems.append(Problem(entry.name, f"not a machine id from 1 to {MAX_MACHINES}: "
                                                "not read", "folder-name"))
            continue
        found.setdefault(int(digits), []).append(Path(entry.path))
    out: dict[int, Path] = {}
    for mid, paths in sorted(found.items()):
        canonical = [p for p in paths if p.name == f"machine-{mid}.jsonl"]
        chosen = canonical[0] if canonical else paths[0]
        out[mid] = chosen
        for p in paths:
            if p is chosen:
                continue
            problems.append(Problem(p.name, f"a second log for machine {mid} (besides "
                                            f"{chosen.name}): not read", "folder-duplicate"))
        if not canonical:
            problems.append(Problem(chosen.name, f"not the name lclock gives machine {mid}'s log "
                                                 f"(machine-{mid}.jsonl); read as machine {mid}",
                                    "folder-name", "warning"))
    return out


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class RunFacts:
    """What run.json states, each fact checked; None where it is absent or unusable."""

    run_id: str | None = None
    status: str | None = None
    seed: int | None = None
    machines: int | None = None  # settings.machines
    ids: list[int] = field(default_factory=list)  # ids of the machines[] entries, in order
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)  # machines[] by id
    rates: dict[int, int] = field(default_factory=dict)  # machines[].rate, else settings.rates
    rate_min: int | None = None
    rate_max: int | None = None
    fixed_rates: list[int] | None = None  # settings.rates
    duration: float | None = None
    dice_sides: int | None = None
    vector_clocks: bool | None = None
    lclock: bool = False  # written by lclock (it names its version): the seed decides the dice
    sim: bool = False  # written by the simulator (mode "sim"): the plan's instants are exact
    reorder: bool = False  # [faults] reorder: channels need not be FIFO
    # SPEC section 6: the resolved fault plan (None: run.json states none, so the rules
    # that compare the logs with it are not applied), and the machines a planned crash
    # ended (id -> seconds after t0)
    faults: FaultPlan | None = None
    crashed: dict[int, float] = field(default_factory=dict)
    # SPEC section 7: the physical clocks' plan, the bound of l - pt it implies, and
    # whether pt and which clocks were kept
    clocks: ClockPlan | None = None
    hlc_bound_us: int | None = None
    pt_kept: bool | None = None
    clocks_kept: tuple[str, ...] | None = None
    # fields and lines the logs do not have (``not_logged``, e.g. an import of text logs):
    # read as unknown, and check skips the rules about them
    not_logged: frozenset[str] = frozenset()


class _FactReader:
    """Checks one value of run.json at a time and records why one is refused."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def bad(self, key: str, want: str, v: Any) -> None:
        self.problems.append(Problem(RUN_JSON, f"{key}: expected {want}, got {short(v)}; "
                                                 "ignored", "meta-type"))

    def int_in(self, d: dict[str, Any], key: str, where: str, lo: int, hi: int) -> int | None:
        if key not in d or d[key] is None:
            return None
        v = d[key]
        if not _is_int(v) or not lo <= v <= hi:
            self.bad(where + key, f"an integer from {lo} to {hi}", v)
            return None
        return int(v)

    def text(self, d: dict[str, Any], key: str, where: str = "") -> str | None:
        if key not in d or d[key] is None:
            return None
        v = d[key]
        if not isinstance(v, str):
            self.bad(where + key, "a string", v)
            return None
        return v


def run_facts(meta: dict[str, Any], problems: list[Problem]) -> RunFacts:
    """The checked facts of run.json; a value of the wrong type or range is a problem."""
    r = _FactReader(problems)
    f = RunFacts()
    f.run_id = r.text(meta, "run_id")
    f.status = r.text(meta, "status")
    seed = meta.get("seed")
    if seed is not None:
        if _is_int(seed):
            f.seed = int(seed)
        else:
            r.bad("seed", "an integer", seed)
    f.lclock = isinstance(meta.get("lclock_version"), str)
    f.sim = f.lclock and meta.get("mode") == "sim"
    settings = meta.get("settings")
    if settings is not None and not isinstance(settings, dict):
        r.bad("settings", "an object", settings)
        settings = None
    s: dict[str, Any] = settings or {}
    f.machines = r.int_in(s, "machines", "settings.", 1, MAX_MACHINES)
    f.rate_min = r.int_in(s, "rate_min", "settings.", 1, MAX_RATE)
    f.rate_max = r.int_in(s, "rate_max", "settings.", 1, MAX_RATE)
    f.dice_sides = r.int_in(s, "dice_sides", "settings.", 2, MAX_DICE_SIDES)
    vc = s.get("vector_clocks")
    if vc is not None:
        if isinstance(vc, bool):
            f.vector_clocks = vc
        else:
            r.bad("settings.vector_clocks", "true or false", vc)
    dur = s.get("duration")
    if dur is not None:
        if isinstance(dur, (int, float)) and not isinstance(dur, bool) \
                and 0 < dur <= MAX_DURATION_S and not (isinstance(dur, float) and math.isnan(dur)):
            f.duration = float(dur)
        else:
            r.bad("settings.duration", f"a number of seconds from 0 to {MAX_DURATION_S}", dur)
    if f.seed is not None and _is_int(s.get("seed")) and s["seed"] != f.seed:
        problems.append(Problem(RUN_JSON, f"seed is {f.seed} but settings.seed is {s['seed']}",
                                "meta-seed"))
    faults = s.get("faults") if isinstance(s.get("faults"), dict) else meta.get("faults")
    if isinstance(faults, dict) and faults.get("reorder") is True:
        f.reorder = True
    _read_fault_plan(r, meta.get("faults"), f)
    _read_clocks(r, meta.get("clocks"), f)
    _read_rates(r, s, f)
    _read_entries(r, meta, f)
    f.not_logged = _read_not_logged(r, meta.get("not_logged"))
    return f


def _read_not_logged(r: _FactReader, v: Any) -> frozenset[str]:
    """The names of NOT_LOGGABLE that ``not_logged`` lists; anything else in it is a
    warning and ignored (a list that is no list is ignored whole)."""
    if v is None:
        return frozenset()
    if not isinstance(v, list):
        r.bad("not_logged", f"a list of {', '.join(NOT_LOGGABLE)}", v)
        return frozenset()
    known = frozenset(x for x in v if isinstance(x, str) and x in NOT_LOGGABLE)
    junk = [x for x in v if not (isinstance(x, str) and x in NOT_LOGGABLE)]
    if junk:
        r.problems.append(Problem(RUN_JSON, f"not_logged: {short(junk[:10])} not among "
                                              f"{', '.join(NOT_LOGGABLE)}; ignored",
                                  "meta-type", "warning"))
    return known


def _plan_problem(r: _FactReader, key: str, exc: Exception) -> None:
    r.problems.append(Problem(RUN_JSON, f"{key}: unusable ({type(exc).__name__}: "
                                          f"{short(str(exc))}); the rules that compare the "
                                          "logs with it are not applied", "meta-plan"))


def _ids_ok(ids: list[int]) -> bool:
    return all(1 <= i <= MAX_MACHINES for i in ids)


def _read_fault_plan(r: _FactReader, faults: Any, f: RunFacts) -> None:
    """``faults.plan`` through the fault model's own reader, each value checked."""
    if not isinstance(faults, dict) or faults.get("plan") is None:
        return
    try:
        plan = FaultPlan.from_json(faults["plan"])
        ids = [c.machine for c in plan.crashes] + [p.machine for p in plan.pauses] + [
            i for part in plan.partitions for g in part.groups for i in g] + [
            i for link in plan.links for i in link]
        times = [c.time for c in plan.crashes] + [x for p in plan.pauses
                                                  for x in (p.start, p.length)] + [
            x for p in plan.partitions for x in (p.start, p.end)]
        probs = [s.loss for s in (plan.default, *plan.links.values())] + [
            s.duplicate for s in (plan.default, *plan.links.values())]
        if not _ids_ok(ids) or not all(math.isfinite(x) and x >= 0 for x in times) or not all(
                0 <= x <= 1 for x in probs):
            raise ValueError("a machine id, a time or a probability out of range")
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        _plan_problem(r, "faults.plan", exc)
        return
    f.faults = plan
    if plan.reorder:
        f.reorder = True
    for c in plan.crashes:
        f.crashed[c.machine] = min(c.time, f.crashed.get(c.machine) or math.inf)


def _read_clocks(r: _FactReader, clocks: Any, f: RunFacts) -> None:
    """``clocks``: what was kept, the plan of the physical clocks, the HLC bound."""
    if clocks is None:
        return
    if not isinstance(clocks, dict):
        r.bad("clocks", "an object", clocks)
        return
    kept = clocks.get("kept")
    if isinstance(kept, list) and all(isinstance(x, str) for x in kept):
        f.clocks_kept = tuple(kept)
    if isinstance(clocks.get("pt"), bool):
        f.pt_kept = clocks["pt"]
    f.hlc_bound_us = r.int_in(clocks, "hlc_bound_us", "clocks.", 0, 2**62)
    if clocks.get("plan") is None:
        return
    try:
        plan = ClockPlan.from_json(clocks["plan"])
        values = [*plan.offsets_us, *plan.drifts_ppm, *(x for b in plan.bumps
                                                         for x in (b.time, b.ms))]
        if (len(plan.offsets_us) != len(plan.drifts_ppm) or len(plan.offsets_us) > MAX_MACHINES
                or not _ids_ok([b.machine for b in plan.bumps])
                or any(b.machine > len(plan.offsets_us) for b in plan.bumps)
                or not all(math.isfinite(x) and abs(x) < 1e15 for x in values)):
            raise ValueError("lists of different lengths, or a value out of range")
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        _plan_problem(r, "clocks.plan", exc)
        return
    f.clocks = plan


def _read_rates(r: _FactReader, s: dict[str, Any], f: RunFacts) -> None:
    rates = s.get("rates")
    if rates is None:
        return
    if not isinstance(rates, list) or len(rates) > MAX_MACHINES or not all(
            _is_int(x) and 1 <= x <= MAX_RATE for x in rates):
        r.bad("settings.rates", f"a list of at most {MAX_MACHINES} rates from 1 to {MAX_RATE}",
              rates)
        return
    f.fixed_rates = [int(x) for x in rates]
    for k, x in enumerate(f.fixed_rates, 1):
        f.rates[k] = x


def _read_entries(r: _FactReader, meta: dict[str, Any], f: RunFacts) -> None:
    ms = meta.get("machines")
    if ms is None:
        return
    if not isinstance(ms, list):
        r.bad("machines", "a list of machines", ms)
        return
    bad_ids = 0
    for k, m in enumerate(ms):
        if not isinstance(m, dict):
            r.bad(f"machines[{k}]", "an object", m)
            continue
        mid = m.get("id")
        if not _is_int(mid) or not 1 <= mid <= MAX_MACHINES:
            bad_ids += 1
            if bad_ids <= 3:
                r.bad(f"machines[{k}].id", f"a machine id from 1 to {MAX_MACHINES}", mid)
            continue
        if mid in f.entries:
            r.problems.append(Problem(RUN_JSON, f"machines[{k}]: machine {mid} listed twice",
                                      "meta-duplicate"))
            continue
        f.entries[mid] = m
        f.ids.append(int(mid))

        rate = r.int_in(m, "rate", f"machines[{k}].", 1, MAX_RATE)
        if rate is not None:
            if mid in f.rates and f.fixed_rates and f.rates[mid] != rate:
                r.problems.append(Problem(RUN_JSON, f"machine {mid}: rate {rate} but "
                                                      f"settings.rates says {f.rates[mid]}",
                                          "meta-rate"))
            f.rates[mid] = rate
    if bad_ids > 3:
        r.problems.append(Problem(RUN_JSON, f"... and {bad_ids - 3} more machines[] entries "
                                              "without a usable id", "meta-type"))


def read_run_json(run_dir: Path, problems: list[Problem]) -> dict[str, Any]:
    """run.json as a dict, or {} with a problem: a run without it can still be analysed."""
    try:
        return runfolder.read_run_json(run_dir)
    except runfolder.RunFolderError as exc:
        severity = "warning" if exc.rule == "meta-missing" else "error"
        problems.append(Problem(RUN_JSON, exc.reason, exc.rule, severity))
        return {}
