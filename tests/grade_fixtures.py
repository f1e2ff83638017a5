"""The class of tests/data/grade-class, assembled in a temporary folder for lclock grade.

The reference program (examples/impl/python/vm.py) is copied in where a submission uses it,
rather than kept in a copy per folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLASS = REPO / "tests" / "data" / "grade-class"
RUBRIC = REPO / "tests" / "data" / "grade-rubric.toml"
REFERENCE = REPO / "examples" / "impl" / "python" / "vm.py"
#: Where each submission that uses the reference program has it.
USES_REFERENCE = {"good": "vm.py", "built": "vm.src", "intruder": "vm.py", "orphan": "vm.py"}


def make_class(dest: Path, names: list[str]) -> Path:
    """The submissions ``names`` in ``dest`` (a folder only the grader can enter)."""
    dest.mkdir(mode=0o700)
    for name in names:
        shutil.copytree(CLASS / name, dest / name)
        if name in USES_REFERENCE:
            shutil.copy(REFERENCE, dest / name / USES_REFERENCE[name])
    return dest


class Graded(subprocess.CompletedProcess[str]):
    """A finished ``lclock grade``, with the grader's pid (its submissions' uids derive from it)."""

    pid: int


def grade(*args: str, cwd: Path, timeout: float = 600) -> Graded:
    with subprocess.Popen([sys.executable, "-m", "lclock", "grade", *args], cwd=cwd, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    done = Graded(proc.args, proc.returncode, out, err)
    done.pid = proc.pid
    return done


def csv_rows(out: Path) -> dict[str, dict[str, str]]:
    import csv

    with (out / "grades.csv").open() as f:
        return {row["submission"]: row for row in csv.DictReader(f)}
