#!/usr/bin/env python3
"""How often a Chandy–Lamport snapshot is wrong as reordering grows (NOTEBOOK.md, section on
snapshots): simulated runs, and a few real ones, checked by ``lclock check``.

    python bench/snapshot_reorder.py [--seeds 20] [--real 3]

Each run: 3 machines at rates 10,10,10 for 20 s, four snapshots (one every 4 s), latency
exponential with mean MS, with and without ``--reorder``; then FIFO links with loss (a lost
marker: the snapshot does not complete). A snapshot is counted as
*inconsistent* when check names a message taken in inside its cut but sent outside it, and
as *wrong* when any of its channels is not exactly the messages in transit (an inconsistent
cut, a message recorded in transit that was sent after the marker, or one sent before it
that came after). Without reordering both must be 0 (check fails otherwise). Results are
figures of the model, not of the machine: the simulator is deterministic for a seed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lclock.analysis.check import check_run  # noqa: E402
from lclock.settings import SettingsFile, resolve  # noqa: E402
from lclock.sim.engine import NetworkSettings, run_sim  # noqa: E402

SNAPSHOTS = "1@2;2@6;3@10;1@14"
MEANS = (5.0, 20.0, 50.0, 100.0, 200.0, 400.0)


def judged(run_dir: Path, meta: dict[str, Any]) -> tuple[int, int, int]:
    """(completed snapshots, inconsistent ones, wrong ones) of one run folder."""
    result = check_run(run_dir, cap=None)
    if not result.ok:
        raise SystemExit(f"check failed on {run_dir}: {[str(f) for f in result.errors]}")
    bad: dict[int, set[str]] = {}
    for f in result.warnings:
        if f.rule == "snapshot-crossed":
            sid = int(f.text.split()[1].rstrip(":"))
            bad.setdefault(sid, set()).add("cut" if "not a consistent cut" in f.text else "channel")
    done = sum(1 for s in meta["snapshots"] if s["completed"])
    return done, sum(1 for v in bad.values() if "cut" in v), len(bad)


def simulated(mean: float, reorder: bool, seed: int, out: Path,
              loss: float = 0.0) -> tuple[int, int, int]:
    s = resolve(SettingsFile(), {"machines": 3, "duration": 20.0, "rates": (10, 10, 10),
                                 "seed": seed, "snapshots": SNAPSHOTS, "latency_ms": mean,
                                 "latency_dist": "exponential", "reorder": reorder or None,
                                 "loss": loss or None})
    run_dir, _m, meta = run_sim(s, NetworkSettings(), out)
    return judged(run_dir, meta)


def real(mean: float, seed: int, out: Path) -> tuple[int, int, int]:
    cmd = [sys.executable, "-m", "lclock", "run", "--settings", "/dev/null", "--duration", "20",
           "--rates", "10,10,10", "--seed", str(seed), "--snapshot", SNAPSHOTS, "--latency",
           str(mean), "--latency-dist", "exponential", "--reorder", "--output", str(out),
           "--quiet", "--no-report"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120, cwd=REPO,
                   env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return judged(run_dir, json.loads((run_dir / "run.json").read_text()))


def row(label: str, counts: list[tuple[int, int, int]]) -> str:
    done = sum(c[0] for c in counts)
    cut = sum(c[1] for c in counts)
    wrong = sum(c[2] for c in counts)
    share = (lambda k: f"{100 * k / done:.0f} %") if done else (lambda k: "-")
    return f"| {label} | {done} | {cut} ({share(cut)}) | {wrong} ({share(wrong)}) |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--real", type=int, default=3, help="real runs per latency (0: none)")
    args = ap.parse_args()
    print("| links | snapshots completed | inconsistent cut | wrong channels |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for reorder in (False, True):
            for mean in MEANS:
                counts = [simulated(mean, reorder, seed, Path(tmp) / f"{reorder}-{mean}-{seed}")
                          for seed in range(1, args.seeds + 1)]
                kind = "reorder" if reorder else "FIFO"
                print(row(f"sim, {kind}, latency {mean:g} ms", counts), flush=True)
        for loss in (0.01, 0.05, 0.2):
            counts = [simulated(50.0, False, seed, Path(tmp) / f"loss-{loss}-{seed}", loss)
                      for seed in range(1, args.seeds + 1)]
            print(row(f"sim, FIFO, latency 50 ms, loss {loss:g} ({4 * args.seeds} planned)",
                      counts), flush=True)
        for mean in (50.0, 200.0) if args.real else ():
            counts = [real(mean, seed, Path(tmp) / f"real-{mean}-{seed}")
                      for seed in range(1, args.real + 1)]
            print(row(f"real, reorder, latency {mean:g} ms", counts), flush=True)


if __name__ == "__main__":
    main()
