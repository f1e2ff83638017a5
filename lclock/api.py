"""lclock in Python: a run as pandas DataFrames, its check, its causal questions (SPEC 13).

    import lclock
    run = lclock.load("output/RUN")          # any run folder: real, simulated, imported
    run.events, run.messages, run.machines   # pandas DataFrames
    run.ticks                                # the tick events' rows of run.events
    run.check()                              # the findings of `lclock check` (errors only)
    run.happened_before((1, 40), (3, 12))    # events as (machine, tick)
    run = lclock.simulate(rates=[1, 3, 6], duration=60, seed=1, loss=0.1)

Why one module: a notebook needs one import and one object per run, and the commands
already answer every question; so a ``Run`` holds the run as the commands read it (the
reader of ``lclock analyze``, lclock.analysis.load) and asks the same code the commands
ask (check, trace, hb, analyze, view). Nothing is computed twice and nothing differs from
what the command line says. The DataFrames and the causal index are built on first use and
kept, so loading costs one read of the logs and a question about one pair costs a lookup.

pandas is needed for the DataFrames only, and imported here, never by the command line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
import weakref
from collections.abc import Iterator
from functools import cached_property
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lclock import tempdirs
from lclock.analysis import load as _load
from lclock.runfolder import RunFolderError, has_run_json

if TYPE_CHECKING:
    import pandas as pd

    from lclock.analysis.causal import Causality, Event

__all__ = ["PANDAS_MISSING", "EventRef", "Run", "load", "simulate"]

#: The one line ``lclock.load`` (and ``lclock.simulate``) says without pandas.
PANDAS_MISSING = ("lclock.load and lclock.simulate need pandas: python -m pip install "
                  "'lclock[notebook]' (or python -m pip install pandas)")

#: An event as a notebook names it: (machine, tick).
EventRef = tuple[int, int]


def _count(name: str, value: Any, least: int) -> int:
    """An integer argument of ``least`` or more: a bool, a float or a string is a TypeError
    and a smaller number a ValueError, both naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < least:
        raise ValueError(f"{name} must be at least {least} (got {value})")
    return int(value)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(PANDAS_MISSING) from None
    return pandas


class Run:
    """One run: its DataFrames, its check, its causal questions and its explorer.

    Made by :func:`load` or :func:`simulate`. ``path`` is the run folder (for a run
    simulated in memory, a private temporary folder that goes with this object).
    """

    def __init__(self, loaded: _load.Run) -> None:
        self._run = loaded
        self.path: Path = loaded.path

    # ------------------------------------------------------------ what the logs say

    @property
    def meta(self) -> dict[str, Any]:
        """run.json as read (empty when the folder has none)."""
        return self._run.meta

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def status(self) -> str:
        """run.json's status (``completed``, ``failed``, ...; ``unknown`` without one)."""
        return self._run.status

    @property
    def seed(self) -> int | None:
        seed = self.meta.get("seed")
        return seed if isinstance(seed, int) else None

    @cached_property
    def events(self) -> pd.DataFrame:
        """A row per log line the reader kept, machine by machine in log order: machine,
        tick, event (a category of every event name), lclock, ts (UTC), queue_len, from, to,
        msg_lclock, dice, and pt, hlc, vclock where logged; fields (a non-tick line's other
        keys), t_s (seconds since the run's start) and line (in the machine's log). A value
        a line does not have is ``pd.NA``/``NaT``/None. Warns if a machine had more non-tick
        lines than the reader keeps (the frame would not hold them all)."""
        from lclock.analysis.frames import events_frame, left_out

        missing = left_out(self._run)
        if missing:
            told = ", ".join(f"machine {i}: {n:,}" for i, n in missing.items())
            warnings.warn(f"{self.path}: run.events leaves out non-tick lines past the "
                          f"reader's cap ({told}); the logs have them", stacklevel=2)
        return events_frame(self._run)

    @cached_property
    def ticks(self) -> pd.DataFrame:
        """The tick events' rows (send, receive, internal) of ``events``, with its index:
        ``run.events[run.events["event"].isin(["send", "receive", "internal"])]``, as a frame
        of its own: a column added to it (``ticks["jump"] = ...``) neither warns (pandas'
        SettingWithCopyWarning on a slice) nor touches ``events``."""
        from lclock.analysis.frames import KIND_CATEGORIES

        ev = self.events
        return ev[ev["event"].isin(KIND_CATEGORIES)].copy(deep=False)

    @cached_property
    def messages(self) -> pd.DataFrame:
        """A row per message of every send to each recipient: sender, receiver, send_tick,
        receive_tick (missing if never handled), msg_lclock, delay_s, jump, fate
        (received, unprocessed, dropped, lost) and dup (a second handling of a duplicate)."""
        from lclock.analysis.frames import messages_frame

        return messages_frame(self._run)

    @cached_property
    def machines(self) -> pd.DataFrame:
        """A row per machine (indexed by its id): rate, ticks, sent, received, unprocessed,
        lclock (the last), stopped (whether it logged a stop line)."""
        from lclock.analysis.frames import machines_frame

        return machines_frame(self._run)

    def summary(self) -> dict[str, Any]:
        """What ``lclock analyze --json`` prints (summary.json): rates, jumps, drift, queues,
        the theory, concurrency, clocks and faults."""
        from lclock.analysis.analyze import compute

        return compute(self._run)[0]

    def check(self, cap: int | None = None) -> pd.DataFrame:
        """The findings of ``lclock check`` (errors only, not warnings or notes), a row each:
        rule, severity, file, machine, line, count, message, and log_line. Empty when every
        rule holds. ``cap``: at most that many per rule and file, as ``lclock check`` without
        ``--all``. On an imported run ``file`` and ``line`` are the user's own text log (as
        check cites them) and ``log_line`` the line in the machine's log, as ``events`` has
        it, so that a finding finds its row there on every kind of run."""
        from lclock.analysis.check import check_run, findings_json

        pd = _pandas()
        result = check_run(self.path, cap=None if cap is None else _count("cap", cap, 1))
        rows = [{**f, "log_line": f.get("log_line", f.get("line"))}
                for f in findings_json(result) if f["severity"] == "error"]
        cols = ["rule", "severity", "file", "machine", "line", "count", "message", "log_line"]
        frame = pd.DataFrame(rows, columns=cols)
        for col in ("machine", "log_line"):
            frame[col] = frame[col].astype("Int64")
        return frame

    # ------------------------------------------------------------ causality

    @cached_property
    def _causality(self) -> Causality:
        from lclock.analysis.causal import CausalError, Causality

        if not self._run.machines or self._run.events == 0:
            raise CausalError(f"{self.path}: no tick events to ask about")
        return Causality.build(self._run)

    def _event(self, e: EventRef | str) -> Event:
        """(machine, tick), or the text of ``lclock hb``/``trace`` (``2:t17``, ``2:L40``)."""
        from lclock.analysis.causal import CausalError, find_event

        if isinstance(e, str):
            return find_event(self._run, e)
        try:
            machine, tick = (_count("", x, 0) for x in e)
            if max(machine, tick) >= 2**63:  # no log holds it; the event syntax refuses it
                raise ValueError
        except (TypeError, ValueError):
            raise CausalError(f"{e!r} is not an event: give (machine, tick), two integers "
                              "from 0") from None
        return find_event(self._run, f"{machine}:t{tick}")

    def happened_before(self, a: EventRef | str, b: EventRef | str) -> bool:
        """Whether a -> b: a chain of events along machines and messages leads from a to b
        (False for the same event). From the logs' order and matched messages, not from the
        logged vector clocks (SPEC 5; ``lclock hb``)."""
        return self.relation(a, b) == "before"

    def concurrent(self, a: EventRef | str, b: EventRef | str) -> bool:
        """Whether neither happened before the other (a || b)."""
        return self.relation(a, b) == "concurrent"

    def relation(self, a: EventRef | str, b: EventRef | str) -> str:
        """``before`` (a -> b), ``after`` (b -> a), ``concurrent`` or ``same``."""
        c = self._causality
        return c.relation(self._event(a), self._event(b))

    def hb(self, a: EventRef | str, b: EventRef | str) -> dict[str, Any]:
        """The answer of ``lclock hb A B --json``: the relation, with its proof (vectors and
        a chain of messages) and what the Lamport clocks say."""
        from lclock.analysis.causal_answers import hb

        return hb(self._causality, self._event(a), self._event(b))

    def trace(self, e: EventRef | str) -> dict[str, Any]:
        """The answer of ``lclock trace EVENT --json``: the event, its message's life, its
        causal past, the concurrent events and its future, per machine."""
        from lclock.analysis.causal_answers import trace

        return trace(self._causality, self._event(e))

    def chain(self, a: EventRef | str, b: EventRef | str) -> list[tuple[EventRef, EventRef]]:
        """The messages that carry a's news to b, as (send, receive) pairs of (machine, tick),
        fewest first; [] on one machine; ValueError if b is not in a's future."""
        c = self._causality
        hops = c.chain(self._event(a), self._event(b))
        if hops is None:
            raise ValueError(f"{a} did not happen before {b}: no chain of messages")
        return [(self._ref(h.send), self._ref(h.receive)) for h in hops]

    def lamport_lies(self, examples: int = 5) -> dict[str, Any]:
        """The answer of ``lclock hb --lamport-lies --json``: pairs Lamport clocks order
        although they are concurrent."""
        from lclock.analysis.causal_answers import lies

        return lies(self._causality, _count("examples", examples, 0))

    def _ref(self, e: Event) -> EventRef:
        return e.machine, int(self._run.machines[e.machine].tick[e.index])

    # ------------------------------------------------------------ showing it

    def explorer(self, height: int = 720, max_events: int | None = None) -> Any:
        """The explorer of ``lclock view`` inline in Jupyter: its self-contained page in an
        iframe (an IPython HTML object; outside Jupyter, ``.data`` is the HTML)."""
        import importlib

        display = importlib.import_module("IPython.display")  # untyped: Any
        return display.HTML(self._iframe(height, max_events))

    def explorer_html(self, max_events: int | None = None) -> str:
        """The whole page of ``lclock view`` for this run, as text."""
        from lclock.explorer import extract, page
        from lclock.explorer.precheck import precheck

        precheck(self.path)  # what lclock view refuses (a claim of 10**30 machines), refused
        most = extract.MAX_EVENTS if max_events is None else _count("max_events", max_events, 1)
        data, _notes = extract.build(self.path, None, most)
        return page.render([data]).decode()

    def _iframe(self, height: int, max_events: int | None) -> str:
        doc = escape(self.explorer_html(max_events), quote=True)
        return (f'<div><iframe srcdoc="{doc}" style="width:100%;height:{int(height)}px;border:0" '
                'sandbox="allow-scripts allow-downloads"></iframe></div>')

    def _repr_html_(self) -> str:
        return _summary_html(self)

    def __repr__(self) -> str:
        return (f"<lclock.Run {self.run_id}: {len(self._run.machines)} machines, "
                f"{self._run.events} events, {self.status}>")


def _summary_html(run: Run) -> str:
    """A Run in a notebook: what it is, per machine what it did, and where its messages went."""
    loaded = run._run
    head = (f"<b>lclock run {escape(run.run_id)}</b>: {escape(run.status)}, "
            f"{len(loaded.machines)} machines, {loaded.events:,} events"
            + (f", seed {run.seed}" if run.seed is not None else "")
            + f"<br><code>{escape(str(run.path))}</code>")
    fates = run.messages["fate"].value_counts().reindex(["received", "unprocessed", "dropped",
                                                         "lost"], fill_value=0)
    told = ", ".join(f"{int(n):,} {name}" for name, n in fates.items() if n)
    unknown = int(run.messages["fate"].isna().sum())
    told += f"{', ' if told else ''}{unknown:,} the logs cannot place" if unknown else ""
    skipped = sum(m.skipped for m in loaded.machines.values())
    note = (f"<br>{skipped} unusable line(s) left out: <code>run.check()</code> names them"
            if skipped else "")
    blind = _sends_without_recipients(loaded)
    note += (f"<br>{blind} send{'s' * (blind > 1)} without recipients, not in messages "
             "(the log does not say to whom)" if blind else "")
    return (f"<div>{head}<br>messages: {told or 'none'}{note}"
            f"{run.machines.to_html(na_rep='-')}</div>")


def _sends_without_recipients(loaded: _load.Run) -> int:
    """Sends whose line names no recipient (an imported log) and that no receive was matched
    to: ``messages`` has no row for them (one matched has a row per receive)."""
    from lclock.analysis.causal import match_run
    from lclock.analysis.matching import SendTable

    channels = match_run(loaded)[2]
    n = 0
    for s, log in loaded.machines.items():
        handled = [ch[0] for (x, _j), ch in channels.items() if x == s]
        n += len(np.setdiff1d(SendTable(log).unnamed, np.concatenate(handled) if handled else []))
    return n


@contextlib.contextmanager
def _argv(command: list[str]) -> Iterator[None]:
    """run.json records ``sys.argv`` as the run's command: the call, not the kernel's argv."""
    old = sys.argv
    sys.argv = command
    try:
        yield
    finally:
        sys.argv = old


def load(path: str | Path) -> Run:
    """Read a run folder (real, simulated or imported), as ``lclock analyze`` reads it.

    Raises ImportError (one line: the pip command) without pandas, and
    ``lclock.runfolder.RunFolderError`` (a BadInput) when the folder is not a run at all. Lines
    that cannot be used are left out, as the commands leave them out: ``check()`` names them.
    """
    _pandas()
    where = Path(path).expanduser()
    try:
        return Run(_load.load_run(where))
    except RunFolderError as e:
        inside = _runs_inside(where)
        if not inside:
            raise
        raise RunFolderError(f"{e}; it holds {len(inside)} run folder{'s' * (len(inside) > 1)}: load one, e.g. "
                             f"lclock.load({str(inside[-1])!r}) (the newest)") from None


def _runs_inside(where: Path) -> list[Path]:
    """The run folders in ``where``, oldest first: ``lclock.load("output")`` means one of them."""
    try:
        found = [p for p in where.iterdir() if p.is_dir() and has_run_json(p)]
        return sorted(found, key=lambda p: p.stat().st_mtime)
    except OSError:
        return []


def simulate(**settings: Any) -> Run:
    """Simulate a run, as ``lclock sim`` with the same settings: the same events, line for line.

    The keywords are the keys of settings.toml and run.json (``rates``, ``duration``,
    ``seed``, ``machines``, ``loss``, ``latency_ms``, ``partitions``, ``skew_ms``,
    ``clocks``, ``delay_mean``, ``impl``, ...), over the built-in defaults (a settings.toml
    in the working folder is not read). An unknown keyword raises a TypeError naming the
    nearest key; a bad value a SettingsError naming the keyword. ``output=FOLDER`` keeps the
    run folder there (as ``lclock sim --output``); without it the run lives in a temporary
    folder removed with the Run. A run that failed (a program of ``impl=`` that died) is
    returned all the same: its ``status`` is ``failed`` and ``meta["reason"]`` says why.
    """
    from lclock.sim.engine import run_sim
    from lclock.sim.keywords import output_folder, resolve_keywords

    _pandas()
    keep = settings.get("output") is not None
    if isinstance(settings.get("output"), os.PathLike):  # any other type: the setting's error
        settings["output"] = os.fspath(settings["output"])
    run_settings, net = resolve_keywords(settings)
    call = ["lclock.simulate", *(f"{k}={v!r}" for k, v in settings.items())]
    # a temporary folder a killed script left (its finalizer never ran) goes at the next call
    where = output_folder(run_settings.output) if keep else tempdirs.made("sim")
    try:
        with _argv(call):
            run_dir, _machines, _meta = run_sim(run_settings, net, where)
        run = Run(_load.load_run(run_dir))
    except BaseException:
        if not keep:
            shutil.rmtree(where, ignore_errors=True)
        raise
    if not keep:
        weakref.finalize(run, shutil.rmtree, str(where), True)
    return run
