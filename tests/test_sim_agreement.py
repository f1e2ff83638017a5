"""The simulator agrees with real runs (issue 4, point 2).

Real runs of rates 1,3,6 (two seeds, 30 s each, run side by side) and simulations of the
same settings and seeds are compared machine by machine, on the distributions of

- jumps: how much the Lamport clock advances per event,
- queue lengths: ``queue_len`` after every event,
- drift: how far the machine's clock is behind the highest clock at each of its events.

Tolerance: the two-sample Kolmogorov–Smirnov statistic D (the largest gap between the two
empirical distribution functions) must be at most 0.2 for every machine and quantity, and
the slowest machine's mean jump must agree within 20%. Measured on this machine D is
typically below 0.1. The same seed gives the same dice stream in both, so what is compared
is exactly what the simulator models: timing, the network and the queues. To show that the
bound has teeth, a simulator with a wrong network (0.4 s constant delay) must fail it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from lclock.settings import SettingsFile, resolve
from lclock.sim.engine import NetworkSettings, run_sim

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
RATES = (1, 3, 6)
SEEDS = (21, 22)
DURATION = 30.0
KS_BOUND = 0.2
MEAN_JUMP_REL = 0.2


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov D = sup |F_a - F_b| (ties handled by side='right')."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def samples(run_dir: Path) -> dict[int, dict[str, np.ndarray]]:
    """Per machine: jumps, queue lengths and drift at each tick event."""
    events = []
    per: dict[int, dict[str, list[int]]] = {}
    for path in sorted(run_dir.glob("machine-*.jsonl")):
        mid = int(path.stem.split("-")[1])
        d = per.setdefault(mid, {"jump": [], "queue": [], "drift": []})
        prev = 0
        for line in path.read_bytes().splitlines():
            e = orjson.loads(line)
            if e["event"] in ("send", "receive", "internal"):
                d["jump"].append(e["lclock"] - prev)
                d["queue"].append(e["queue_len"])
                prev = e["lclock"]
                events.append((e["ts"], mid, e["lclock"]))
    events.sort()
    clocks: dict[int, int] = dict.fromkeys(per, 0)
    for _ts, mid, lc in events:
        clocks[mid] = lc
        per[mid]["drift"].append(max(clocks.values()) - lc)
    return {m: {k: np.array(v) for k, v in d.items()} for m, d in per.items()}


def pooled(run_dirs: list[Path]) -> dict[int, dict[str, np.ndarray]]:
    out: dict[int, dict[str, list[np.ndarray]]] = {}
    for rd in run_dirs:
        for m, d in samples(rd).items():
            for k, v in d.items():
                out.setdefault(m, {}).setdefault(k, []).append(v)
    return {m: {k: np.concatenate(v) for k, v in d.items()} for m, d in out.items()}


#: A faulty configuration (SPEC section 6): a slow lossy network, machine 1 cut off for
#: the first third of the run, machine 2 paused for 5 s.
FAULTS = {"latency_ms": 50.0, "latency_dist": "exponential", "loss": 0.1,
          "partitions": "0-10:1", "pauses": "2@15+5"}
FAULT_FLAGS = ["--latency", "50", "--latency-dist", "exponential", "--loss", "0.1",
               "--partition", "0-10:1", "--pause", "2@15+5"]
CONFIGS = {"plain": [], "faulty": FAULT_FLAGS}


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Every real run at once (each in its own session, killed whatever happens)."""
    base = tmp_path_factory.mktemp("real")
    procs = []
    try:
        for name, flags in CONFIGS.items():
            for seed in SEEDS:
                out = base / name / str(seed)
                cmd = [sys.executable, "-m", "lclock", "run", "--rates", ",".join(map(str, RATES)),
                       "--duration", str(DURATION), "--seed", str(seed), "--output", str(out),
                       "--quiet", "--no-report", *flags]  # fmt: skip
                procs.append(subprocess.Popen(cmd, cwd=REPO, start_new_session=True,
                                              env={**os.environ, "PYTHONPATH": str(REPO)}))
        for p in procs:
            assert p.wait(timeout=DURATION + 60) == 0
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
    out: dict[str, list[Path]] = {}
    for name in CONFIGS:
        for seed in SEEDS:
            (run_dir,) = [d for d in (base / name / str(seed)).iterdir() if d.is_dir()]
            out.setdefault(name, []).append(run_dir)
    return out


@pytest.fixture(scope="module")
def real_runs(real: dict[str, list[Path]]) -> list[Path]:
    return real["plain"]


def simulated(tmp: Path, net: NetworkSettings, faulty: bool = False) -> list[Path]:
    dirs = []
    for seed in SEEDS:
        flags: dict[str, object] = {"rates": RATES, "duration": DURATION, "seed": seed}
        if faulty:
            flags.update(FAULTS)
        s = resolve(SettingsFile(), flags)
        run_dir, _, _ = run_sim(s, net, tmp)
        dirs.append(run_dir)
    return dirs


def distances(real: list[Path], sim: list[Path]) -> dict[tuple[int, str], float]:
    r, s = pooled(real), pooled(sim)
    return {(m, k): ks_statistic(r[m][k], s[m][k]) for m in r for k in ("jump", "queue", "drift")}


def test_sim_agrees_with_real_runs(real_runs: list[Path], tmp_path: Path) -> None:
    sim = simulated(tmp_path, NetworkSettings())  # the default network of lclock sim
    d = distances(real_runs, sim)
    report = ", ".join(f"m{m} {k} D={v:.3f}" for (m, k), v in sorted(d.items()))
    assert max(d.values()) <= KS_BOUND, report
    r, s = pooled(real_runs), pooled(sim)
    slow = RATES.index(min(RATES)) + 1
    real_mean, sim_mean = r[slow]["jump"].mean(), s[slow]["jump"].mean()
    assert abs(real_mean - sim_mean) <= MEAN_JUMP_REL * real_mean, (real_mean, sim_mean)
    # same number of ticks: both follow the absolute-deadline schedule
    for m in r:
        assert len(r[m]["jump"]) == len(s[m]["jump"])


def test_the_bound_rejects_a_wrong_network(real_runs: list[Path], tmp_path: Path) -> None:
    """A simulator whose messages take 0.4 s (about two ticks of the fastest machine)."""
    sim = simulated(tmp_path, NetworkSettings("constant", 0.4))
    d = distances(real_runs, sim)
    assert max(d.values()) > KS_BOUND, d


def test_sim_agrees_with_real_runs_under_faults(real: dict[str, list[Path]], tmp_path: Path) -> None:
    """The same bound with latency, loss, a partition and a pause: the simulator models
    every fault the way the real runtime applies it."""
    real_runs = real["faulty"]
    sim = simulated(tmp_path, NetworkSettings(), faulty=True)
    d = distances(real_runs, sim)
    report = ", ".join(f"m{m} {k} D={v:.3f}" for (m, k), v in sorted(d.items()))
    assert max(d.values()) <= KS_BOUND, report
    r, s = pooled(real_runs), pooled(sim)
    for m in r:  # the pause skips the same deadlines in both
        assert len(r[m]["jump"]) == len(s[m]["jump"])
    for rd in real_runs + sim:
        meta = orjson.loads((rd / "run.json").read_bytes())
        assert meta["status"] == "completed" and meta["faults"]["plan"]["pauses"]
