"""Siblings of the hardening cases found by an adversarial review (issues 9-14).

Each test starts the real program (``lclock sim``, ``lclock check``) on a case that broke
it: pauses close together, schedule times that are not whole in floating point.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
from test_consistency import rules, sim


def _ticks(run: Path, mid: int) -> list[dict]:
    out = []
    for raw in (run / f"machine-{mid}.jsonl").read_bytes().splitlines():
        d = orjson.loads(raw)
        if "tick" in d and d["event"] in ("send", "receive", "internal"):
            out.append(d)
    return out


def test_sim_pauses_with_no_tick_between_keep_one_tick_chain(tmp_path: Path) -> None:
    """A pause during which no deadline fell due once left the old tick pending while the
    resume scheduled another: two tick chains, a machine at 1 tick/s ran three ticks in
    one millisecond and more ticks than its rate allows. Now every tick keeps its deadline
    and check finds nothing (the run's own output must always pass check)."""
    run = sim(tmp_path, "--duration", "5", "--seed", "1", "--nemesis", "partition,pause,crash",
              "--nemesis-interval", "0.2")
    assert rules(run) == {}
    rates = {d["machine"]: d["rate"] for d in
             (orjson.loads((run / f"machine-{i}.jsonl").read_bytes().splitlines()[0])
              for i in (1, 2, 3))}
    for mid, rate in rates.items():
        ticks = _ticks(run, mid)
        assert len(ticks) <= rate * 5 + 1, (mid, rate, len(ticks))
        t = [d["ts"] for d in ticks]
        assert len(set(t)) == len(t), f"machine {mid} ran two ticks at one instant"


def test_schedule_times_to_the_microsecond(tmp_path: Path) -> None:
    """7% of 10 s is 0.7000000000000001 in floats: the deadline at 0.7 s lay "before" the
    pause, its tick (a little late, as every tick) fell into the pause and ran after the
    resume, and check, reading the logged 0.700000, called it a burst. Times in % of the run,
    the nemesis's times and a pause's end are now whole microseconds, as the logs are."""
    run = sim(tmp_path, "--duration", "10", "--seed", "2", "--rates", "10,10,10",
              "--pause", "1@7%+1%")
    assert rules(run) == {}
    meta = orjson.loads((run / "run.json").read_bytes())
    assert meta["faults"]["plan"]["pauses"] == [{"machine": 1, "start": 0.7, "length": 0.1}]
    resume = next(orjson.loads(x) for x in (run / "machine-1.jsonl").read_bytes().splitlines()
                  if b'"resume"' in x)
    assert resume["skipped"] == 1  # the deadline at 0.7 s fell in the pause


def test_check_accepts_two_pauses_with_no_tick_between(tmp_path: Path) -> None:
    """Back-to-back pauses of a slow machine: the first tick after the first resume lies
    after the second pause too. Check once blamed the first resume for the deadline the
    second one skipped ("deadlines after the resume were skipped too")."""
    for seed in (1, 2):
        run = sim(tmp_path / str(seed), "--duration", "20", "--seed", str(seed), "--nemesis",
                  "pause", "--nemesis-interval", "0.2", "--rates", "5,17,40")
        assert rules(run) == {}, seed


def test_ctrl_c_while_python_m_lclock_imports(tmp_path: Path) -> None:
    """Ctrl-C in the first ~10 ms of ``python -m lclock`` (while lclock.cli is imported)
    gave a KeyboardInterrupt traceback and status -2; launcher.py already left with 130.
    The signal is sent from inside the import, so the test does not race the clock."""
    code = (
        "import builtins, os, runpy, signal\n"
        "real = builtins.__import__\n"
        "def imp(name, *a, **k):\n"
        "    if name == 'lclock.cli':\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = imp\n"
        "runpy.run_module('lclock', run_name='__main__', alter_sys=True)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, "run", "--output", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 130, p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "out").exists()
