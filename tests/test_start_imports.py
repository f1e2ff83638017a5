"""A run imports only what it uses, and the helpers it starts early end with it.

What the launcher's process and the forkserver's preload import is checked in a fresh
interpreter after a real run; how long start-up takes is a figure of
``bench/bench_startup.py`` (BENCHMARKS.md), never asserted here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import LAUNCHER, ROOT, launcher_cmd, run_dirs, session_members, started

#: Never needed by a run without a report (``--no-report``) or a program (``--impl``):
#: plotting, data frames, the analysis, the other commands, and the parsers of settings that
#: were not given (a settings file, faults, clocks).
HEAVY = ("matplotlib", "numpy", "pandas", "duckdb", "dask", "distributed", "regex",
         "lclock.analysis", "lclock.explorer", "lclock.grade", "lclock.impl", "lclock.sim",
         "lclock.experiment", "lclock.shrink", "lclock.ingest", "lclock.cluster", "lclock.api",
         "lclock.setting_schedules", "tomllib", "tomli")

#: Imported in the launcher, then dumped when it exits (after its workers are collected).
DUMP_MODULES = """
import atexit, runpy, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = [sys.argv[2], *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def heavy_in(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY or any(
        m == h or m.startswith(h + ".") for h in HEAVY)]


def test_a_run_imports_no_analysis_plotting_or_program_code(workdir: Path) -> None:
    """The launcher's process, from the command to the end of a completed run."""
    dump = workdir / "modules.txt"
    cmd = [sys.executable, "-c", DUMP_MODULES, str(dump), str(LAUNCHER), "--rates", "5,5",
           "--duration", "0.3", "--quiet", "--no-report", "--output", "out"]
    with started(cmd, workdir) as p:
        _out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    modules = dump.read_text().split("\n")
    assert "lclock.runtime.launcher" in modules and "lclock.runtime.worker" in modules
    assert heavy_in(modules) == []
    assert len(run_dirs(workdir / "out")) == 1


def test_the_forkserver_preloads_only_the_worker() -> None:
    """What every worker has from the forkserver: the machine, not the rest of lclock."""
    from lclock.runtime.helpers import PRELOAD

    probe = ("import sys\n"
             f"for m in {PRELOAD!r}: __import__(m)\n"
             "print('\\n'.join(sorted(sys.modules)))")
    with started([sys.executable, "-c", probe], ROOT) as p:  # lclock from ROOT, the cwd
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err.decode()
    modules = out.decode().split()
    assert "lclock.runtime.driver" in modules and "lclock.core.node" in modules
    assert heavy_in(modules) == []
    assert "psutil" not in modules  # only the launcher signals and inspects processes


def test_a_refused_run_leaves_no_process_behind(workdir: Path) -> None:
    """The forkserver and resource tracker start before the settings are read: a run refused
    for bad input ends them before it exits (nothing of it is left the moment it has
    exited), and creates nothing."""
    for args in (["--duration", "-5"], ["--settings", "missing.toml"], ["--output", "f/sub"]):
        (workdir / "f").write_text("a file, not a folder")
        with started(launcher_cmd(*args), workdir) as p:
            # not communicate(): it would wait for whatever still holds the output open
            assert p.wait(timeout=60) == 2
            left = session_members(p.pid)
            assert p.stderr is not None and p.stderr.read().count(b"\n") == 1
        assert left == [], args
        assert sorted(x.name for x in workdir.iterdir()) == ["f"]
