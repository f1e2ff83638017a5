"""A ``--window START,END`` of seconds after the run's start: parsed, and checked against a run.

Shared by the report's space-time diagram and the explorer, which both import it from
here, below them both (neither imports the other to reach it).
"""

from __future__ import annotations

import argparse

import numpy as np

from lclock.analysis.load import Run
from lclock.errors import BadInput


def parse_window(text: str) -> tuple[float, float]:
    """The argparse type of ``--window``: ``START,END`` with 0 <= START < END."""
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START,END in seconds, got {text!r}") from None
    if not 0 <= lo < hi:
        raise argparse.ArgumentTypeError(f"need 0 <= START < END, got {text!r}")
    return lo, hi


def secs_text(x: float) -> str:
    """Seconds with enough digits for the window's scale (0.0123 s, not 0.01 s)."""
    return f"{x:.2f} s" if x >= 1 or x == 0 else f"{x:.3g} s"


def check_window(run: Run, window: tuple[float, float]) -> None:
    """A window past the run's end, or with no event in it, is a mistake of the caller: say
    so rather than draw an empty figure."""
    problem = window_problem(run, window)
    if problem:
        raise BadInput(problem)


def window_problem(run: Run, window: tuple[float, float], end_included: bool = True
                   ) -> str | None:
    """Why ``--window`` shows nothing of ``run`` (None: it holds events). The explorer
    embeds [START, END), the space-time diagram draws [START, END]."""
    lo, hi = window
    ends = [float(np.nanmax(m.ts)) - run.t0 for m in run.machines.values()
            if m.events and np.isfinite(m.ts).any()]
    if not ends:
        return "--window: the run has no events with a time"
    end = max(ends)
    span = f"the run's events span 0 to {secs_text(end)} after the run's start"
    if lo > end:
        return f"--window {lo:.10g},{hi:.10g} starts after the run's last event ({span})"
    for m in run.machines.values():
        t = m.ts - run.t0
        if np.any((t >= lo) & ((t <= hi) if end_included else (t < hi))):
            return None
    return f"--window {lo:.10g},{hi:.10g} holds no event ({span}); widen it"
