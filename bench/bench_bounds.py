#!/usr/bin/env python3
"""How fast lclock reacts: the timings the tests used to assert, measured here instead.

    python bench/bench_bounds.py [--repeat 5]

Why here and not in the tests: a wall-clock bound in a test fails when the machine is busy
(``report_after_run`` once took 10.4 s against a bound of 10), and a test proves behaviour,
not speed. The tests keep a generous timeout as their hang check; this prints the medians.

- SIGINT to the launcher's group while 3 machines tick -> the launcher has exited;
- SIGTERM to the launcher -> exited;
- one worker SIGKILLed -> the launcher has noticed, stopped the others and exited;
- the launcher SIGKILLed -> every orphaned worker has left by itself;
- a bad settings file -> the one error line and exit 2;
- a 4 s run with a constant latency of 50 ms -> the worst machine's median delivery
  lateness (how long after send + 50 ms a message enters its receiver's queue; a test
  asserted under 2 ms, and met 3.6 ms at load 16);
- ``report_after_run`` on a generated 60 s run of rates 1,3,6 (in this process);
- ``lclock check`` on a 180,000-event run with a wrong clock on every receive, as a ratio to
  the same run without the mistake (findings beyond the cap are counted, not made).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import machine_info  # noqa: E402 - bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import alive, launcher_cmd, run_dirs, started, wait_for  # noqa: E402

RUN = ("--no-report", "--quiet", "--duration", "30", "--rates", "5,5,5")


def _ticking(out: Path) -> dict | None:
    """run.json once every machine has ticked, else None."""
    dirs = run_dirs(out)
    logs = list(dirs[-1].glob("machine-*.jsonl")) if dirs else []
    if len(logs) != 3 or not all(b'"tick"' in p.read_bytes() for p in logs):
        return None
    return json.loads((dirs[-1] / "run.json").read_text())  # type: ignore[no-any-return]


def stop_time(act: Callable[[subprocess.Popen, dict], None], until_workers_gone: bool) -> float:
    """Seconds from ``act`` to the launcher's exit (or to the last worker's)."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        with started(launcher_cmd("--output", str(out), *RUN), Path(d)) as p:
            if not wait_for(lambda: _ticking(out) is not None, 30):
                raise SystemExit("the run never ticked")
            meta = _ticking(out)
            assert meta is not None
            pids = [m["pid"] for m in meta["machines"]]
            t = time.monotonic()
            act(p, meta)
            if until_workers_gone:
                p.wait(timeout=30)
                wait_for(lambda: alive(pids) == [], 30, interval=0.002)
            else:
                p.communicate(timeout=30)
            return time.monotonic() - t


def bad_input_time() -> float:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "bad.toml").write_text("duration = -1\n")
        t = time.monotonic()
        p = subprocess.run(launcher_cmd("--settings", "bad.toml"), cwd=d, capture_output=True,
                           timeout=60)
        took = time.monotonic() - t
        if p.returncode != 2:
            raise SystemExit(f"bad settings exited {p.returncode}: {p.stderr!r}")
        return took


def delivery_lateness() -> float:
    """Seconds: the worst machine's median delivery lateness under a 50 ms latency."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(launcher_cmd("--output", "out", "--no-report", "--quiet", "--duration", "4",
                                    "--rates", "50,50,50", "--latency", "50", "--seed", "3"),
                       cwd=d, capture_output=True, timeout=120, check=True)
        (rd,) = run_dirs(Path(d) / "out")
        meta = json.loads((rd / "run.json").read_text())
        return float(max(m["delivery_lateness_ms"]["p50"] for m in meta["machines"])) / 1e3


def report_time() -> float:
    from analysis_fixtures import make_run

    from lclock.analysis.report import report_after_run

    with tempfile.TemporaryDirectory() as d:
        run = make_run(Path(d) / "run", rates=(1, 3, 6), duration=60.0)
        t = time.perf_counter()
        report_after_run(run)
        return time.perf_counter() - t


def check_ratio() -> float:
    """Wall time of check on the bad run over the good one's."""
    from analysis_fixtures import make_run

    times = {}
    with tempfile.TemporaryDirectory() as d:
        for name, bug in (("good", None), ("bad", "receive_no_plus1")):
            run = make_run(Path(d) / name, rates=(2000, 3000, 4000), duration=20.0, bug=bug)
            t = time.monotonic()
            subprocess.run([sys.executable, "-m", "lclock", "check", str(run)], cwd=ROOT,
                           capture_output=True, timeout=300)
            times[name] = time.monotonic() - t
    return times["bad"] / times["good"]


CASES: dict[str, Callable[[], float]] = {
    "Ctrl-C (SIGINT to the group) -> launcher exited":
        lambda: stop_time(lambda p, m: os.killpg(p.pid, signal.SIGINT), False),
    "SIGTERM to the launcher -> exited":
        lambda: stop_time(lambda p, m: p.send_signal(signal.SIGTERM), False),
    "a worker SIGKILLed -> launcher noticed and exited":
        lambda: stop_time(lambda p, m: os.kill(m["machines"][1]["pid"], signal.SIGKILL), False),
    "the launcher SIGKILLed -> every worker gone":
        lambda: stop_time(lambda p, m: os.kill(p.pid, signal.SIGKILL), True),
    "a bad settings file -> one line, exit 2 (whole process)": bad_input_time,
    "latency 50 ms -> median delivery lateness (worst machine)": delivery_lateness,
    "report_after_run on a 60 s run (rates 1,3,6)": report_time,
    "check, wrong clock on every receive / good run (ratio)": check_ratio,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {machine_info()}; load average before: {os.getloadavg()}")
    for name, case in CASES.items():
        got = [case() for _ in range(args.repeat)]
        if name.endswith("(ratio)"):
            print(f"{name}: median {statistics.median(got):.2f} (min {min(got):.2f}, "
                  f"max {max(got):.2f}) over {args.repeat}")
        else:
            print(f"{name}: median {statistics.median(got) * 1e3:.0f} ms "
                  f"(min {min(got) * 1e3:.0f}, max {max(got) * 1e3:.0f}) over {args.repeat}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
