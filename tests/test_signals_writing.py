"""Every command that writes a file or a folder leaves nothing partial under any stop signal.

SIGTERM or SIGHUP while ``lclock import`` wrote its folder once left a hidden half-built
folder and ended the process by the signal (exit -15); only Ctrl-C cleaned up. The signal
is sent from inside the command, at its first rename (the moment a spare becomes real), so
the test does not race the clock; the real program runs as a subprocess.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import sys
from pathlib import Path

import pytest
from conftest import started

REPO = Path(__file__).resolve().parent.parent

#: Runs ``lclock`` after making its first rename send ``sig`` to the process first.
HOOK = (
    "import os, pathlib, runpy, sys\n"
    "sig = int(sys.argv.pop(1))\n"
    "sent = []\n"
    "def hooked(real):\n"
    "    def call(*a, **k):\n"
    "        if not sent:\n"
    "            sent.append(1)\n"
    "            os.kill(os.getpid(), sig)\n"
    "        return real(*a, **k)\n"
    "    return call\n"
    "os.replace = hooked(os.replace)\n"
    "os.rename = hooked(os.rename)\n"
    "pathlib.Path.rename = hooked(pathlib.Path.rename)\n"
    "runpy.run_module('lclock', run_name='__main__', alter_sys=True)\n"
)


def lclock(*args: str, sig: int | None = None) -> tuple[int, str]:
    cmd = [sys.executable, "-c", HOOK, str(int(sig))] if sig is not None else \
        [sys.executable, "-m", "lclock"]
    with started([*cmd, *args], REPO, text=True) as p:
        _out, err = p.communicate(timeout=120)
    return p.returncode, err


def tree(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones too), with its content's digest."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "folder" for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    rc, err = lclock("sim", "--rates", "1,3,6", "--duration", "10", "--quiet", "--seed", "3",
                     "--no-report", "--output", str(out))
    assert rc == 0, err
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def stopped_cleanly(rc: int, err: str, sig: int) -> None:
    assert rc == CODES[sig], err
    assert "Traceback" not in err, err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", list(CODES), ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_import_leaves_no_folder(tmp_path: Path, sig: int) -> None:
    log = tmp_path / "in" / "a.log"
    log.parent.mkdir()
    log.write_text("".join(f"ts={k}.5 machine={1 + k % 3} event=internal lclock={k}\n"
                           for k in range(1, 200)))
    work = tmp_path / "work"
    work.mkdir()
    rc, err = lclock("import", "--preset", "logfmt", str(log), "-o", str(work / "imp"), sig=sig)
    stopped_cleanly(rc, err, sig)
    assert tree(work) == {}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", list(CODES), ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_merge_leaves_no_folder(run: Path, tmp_path: Path, sig: int) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    rc, err = lclock("merge", str(run), "--output", str(out), sig=sig)
    stopped_cleanly(rc, err, sig)
    assert tree(out) == {}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("args", "sig"), [
    (["report", "{run}"], signal.SIGTERM),
    (["report", "{run}"], signal.SIGHUP),
    (["view", "{run}"], signal.SIGTERM),
    (["export", "--format", "csv", "{run}"], signal.SIGHUP),
    (["analyze", "{run}"], signal.SIGTERM),
], ids=["report-SIGTERM", "report-SIGHUP", "view-SIGTERM", "export-SIGHUP", "analyze-SIGTERM"])
def test_outputs_in_a_run_folder_are_whole_or_absent(run: Path, tmp_path: Path,
                                                     args: list[str], sig: int) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = tree(copy)
    rc, err = lclock(*(a.format(run=copy) for a in args), sig=sig)
    stopped_cleanly(rc, err, sig)
    assert tree(copy) == before
