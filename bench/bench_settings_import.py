#!/usr/bin/env python3
"""What the settings cost a run at start-up: importing them, and building run's options.

    python bench/bench_settings_import.py                 # this checkout
    python bench/bench_settings_import.py /path/to/other  # another checkout, to compare

Each sample is a fresh interpreter that first imports what the settings import from
elsewhere (argparse, the core, the error helpers), then times the settings' own modules
in CPU time (less disturbed by a loaded machine than wall time), best and median of 20;
with the bytecode cache (an installed lclock), and without it (PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import machine_info

PROBE = r"""
import time, argparse, dataclasses, re, json, os, stat, math, typing, collections.abc
import lclock.core.faults, lclock.core.clocks, lclock.errors, lclock.safefile
t0 = time.process_time()
import lclock.settings
try:
    import lclock.setting_table
except ImportError:  # a checkout from before the table
    import lclock.options
t1 = time.process_time()
from lclock.runtime.launcher import add_arguments
t2 = time.process_time()
add_arguments(argparse.ArgumentParser())
print((t1 - t0) * 1e3, (time.process_time() - t2) * 1e3)
"""

def samples(tree: str, env: dict[str, str], n: int = 20) -> list[tuple[float, float]]:
    out = []
    for _ in range(n):
        text = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                              text=True, check=True).stdout.split()
        out.append((float(text[0]), float(text[1])))
    return out


def main() -> None:
    tree = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[1])
    print(machine_info())
    base = {**os.environ, "PYTHONPATH": tree}
    with tempfile.TemporaryDirectory() as cache:
        cached = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = cache
        for label, env in (("bytecode cached", cached), ("no bytecode", {**base, "PYTHONDONTWRITEBYTECODE": "1"})):
            samples(tree, env, 2)  # fill the cache
            got = samples(tree, env)
            imp, opt = [x[0] for x in got], [x[1] for x in got]
            print(f"{tree} {label}: import of the settings {min(imp):.1f} ms (median "
                  f"{statistics.median(imp):.1f}), run's options {min(opt):.2f} ms "
                  f"(median {statistics.median(opt):.2f})")


if __name__ == "__main__":
    main()
