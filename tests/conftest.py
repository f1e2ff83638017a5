"""Shared fixtures: start the real launcher as a subprocess, in its own session.

Every process a test starts runs in a new session, and the whole process group is killed
in a ``finally`` -- pytest-timeout's thread method skips fixture teardown, so cleanup
cannot live only in fixtures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "launcher.py"


def kill_group(proc: subprocess.Popen) -> None:
    """Kill the process group of a test's subprocess and everything recorded under it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def launcher_cmd(*args: str) -> list[str]:
    return [sys.executable, str(LAUNCHER), *args]


@contextmanager
def started(cmd: list[str], cwd: Path, **kw: object) -> Iterator[subprocess.Popen]:
    """Start ``cmd`` in a new session; kill its group on the way out, whatever happened."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
        **kw,  # type: ignore[arg-type]
    )
    try:
        yield proc
    finally:
        kill_group(proc)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def run_dirs(output: Path) -> list[Path]:
    return sorted(p for p in output.iterdir() if p.is_dir()) if output.exists() else []


def wait_for(pred, timeout: float, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def alive(pids: list[int]) -> list[int]:
    """The pids still running (zombies count as gone: they hold nothing)."""
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def session_members(sid: int) -> list[int]:
    """Live processes of a session: everything a launcher started, at any depth."""
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(p.info["pid"]) == sid:
                out.append(p.info["pid"])
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass
    return out


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working folder (no settings.toml: built-in defaults apply)."""
    d = tmp_path / "work"
    d.mkdir()
    return d


# -- a small file system, for the full-disk tests (root only; skipped otherwise) -----------------


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> None:
    """Fill a file system to the last byte."""
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (4096, 1):
            with suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
