"""What the launcher prints: progress while the run goes on, a table at the end.

Only formatting lives here; the launcher decides when. On a terminal the progress block
is redrawn in place; otherwise a plain line now and then, so a log file stays readable.
Output that nobody reads any more (``lclock run | head -1``, a terminal closed under the
run) is not the run's problem: the console just falls silent and the run goes on.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

PLAIN_INTERVAL = 10.0
TTY_INTERVAL = 0.5
MAX_ROWS_LIVE = 16


class Console:
    def __init__(self, quiet: bool, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.out = stream or sys.stdout
        self.tty = self.out.isatty()
        self.interval = TTY_INTERVAL if self.tty else PLAIN_INTERVAL
        self._drawn = 0
        self.gone = False  # nobody reads the output any more

    def line(self, text: str) -> None:
        if not self.quiet:
            self.always(text)

    def always(self, text: str) -> None:
        """A line printed even with --quiet: where the run folder is, the one thing a
        quiet run must still say."""
        self._clear()
        self._emit(text + "\n")

    def _emit(self, text: str) -> None:
        if self.gone:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except (BrokenPipeError, OSError, ValueError):  # reader gone, terminal closed
            self.gone = self.quiet = True

    def _clear(self) -> None:
        if self._drawn:
            self._emit(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def progress(self, elapsed: float, duration: float, machines: list[dict[str, Any]]) -> None:
        if self.quiet:
            return
        elapsed = min(elapsed, duration)
        head = f"{elapsed:6.1f} s elapsed, {max(0.0, duration - elapsed):6.1f} s remaining"
        if not self.tty:
            parts = ", ".join(
                f"m{m['id']} {m.get('ticks', 0)}t L={m.get('lclock', 0)} q={m.get('queue', 0)}"
                for m in machines[:MAX_ROWS_LIVE]
            )
            more = f", ... ({len(machines)} machines)" if len(machines) > MAX_ROWS_LIVE else ""
            self._emit(f"[{head}] {parts}{more}\n")
            return
        rows = [head, f"  {'machine':>7} {'rate':>6} {'ticks':>9} {'clock':>9} {'queue':>7}"]
        for m in machines[:MAX_ROWS_LIVE]:
            rows.append(
                f"  {m['id']:>7} {m['rate']:>6} {m.get('ticks', 0):>9} "
                f"{m.get('lclock', 0):>9} {m.get('queue', 0):>7}"
            )
        if len(machines) > MAX_ROWS_LIVE:
            rows.append(f"  ... and {len(machines) - MAX_ROWS_LIVE} more machines")
        self._clear()
        self._emit("\n".join(rows) + "\n")
        self._drawn = len(rows)

    def summary(self, machines: list[dict[str, Any]]) -> None:
        if self.quiet:
            return
        self._clear()
        cols = ["machine", "rate", "ticks", "sent", "received", "unprocessed", "clock", "max queue"]
        rows = [[str(m.get(k, "-")) for k in ("id", "rate", "ticks", "sent", "received",
                                              "unprocessed", "lclock", "max_queue")]
                for m in machines]
        # With faults, sent != received + unprocessed: say where the rest went.
        for col, key in (("dropped", "dropped_to"), ("duplicated", "dup_to")):
            if any(_total(m.get(key)) for m in machines):
                cols.append(col)
                for row, m in zip(rows, machines):
                    row.append(str(_total(m.get(key))) if key in m else "-")
        table = [cols, *rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
        for n, r in enumerate(table):
            self._emit("  ".join(v.rjust(w) for v, w in zip(r, widths)) + "\n")
            if n == 0:
                self._emit("  ".join("-" * w for w in widths) + "\n")
        crashed = [m for m in machines if m.get("reason") == "crashed"]
        for m in crashed:
            at = m.get("crashed_at")
            when = f" at {at:g} s" if isinstance(at, (int, float)) else ""
            self._emit(f"machine {m.get('id')} crashed as planned{when}: no stop line, so no "
                       "unprocessed count (what it held was lost with it)\n")


def _total(counts: Any) -> int:
    """The sum of a per-peer counter ({"2": 3, ...}); 0 for anything else."""
    if not isinstance(counts, dict):
        return 0
    return sum(v for v in counts.values() if isinstance(v, int) and not isinstance(v, bool))


def counted(n: int, word: str) -> str:
    """``1 message``, ``2 messages``: a count as a reader says it."""
    return f"{n} {word}{'' if n == 1 else 's'}"
