"""A submission's ``build`` command, run in its copy as it, within the limits of its runs."""

from __future__ import annotations

import os
import shlex
import threading
import time
from pathlib import Path
from typing import IO

from lclock.impl.config import Limits
from lclock.impl.jail import KEEP_ENV, Jail, User

BUILD_WALL = 300.0
BUILD_LIMITS = Limits(cpu=300, mem=1024, procs=64, fsize=64)
TAIL = 4000
#: Set when the grading is stopped: a build waiting for its command gives up.
STOPPED = threading.Event()


def run_build(command: str, copy: Path, user: User, name: str,
              wall: float = BUILD_WALL) -> str | None:
    """None when the build succeeded, else why not (with the end of its output)."""
    env = clean_env(copy)
    env[KEEP_ENV] = "1"  # what it builds is what the runs run
    jail_name = f"lclock-{os.getpid()}-build-{name}-{time.monotonic_ns()}"
    try:
        # As root the grader ends whatever the build left (workspace.end_processes). As a
        # subreaper, even only while the build runs, it would inherit the orphans of the
        # other submissions' lclocks ending meanwhile (their forkservers, a fork bomb's
        # children) and, never their parent, reap none of them.
        jail = Jail(shlex.split(command), copy, env, BUILD_LIMITS, jail_name, user,
                    subreaper=user.uid < 0)
    except OSError as e:
        return f"build: cannot start {command!r}: {e.strerror or e}"
    tails: list[bytearray] = [bytearray(), bytearray()]
    readers = [threading.Thread(target=_drain, args=(s, t), daemon=True)
               for s, t in ((jail.proc.stdout, tails[0]), (jail.proc.stderr, tails[1]))]
    try:
        assert jail.proc.stdin is not None
        jail.proc.stdin.close()
        for r in readers:
            r.start()
        code = _wait(jail, wall)
        if code is None:
            return f"build: {command!r} did not end within {wall:g} s"
    finally:
        jail.kill()
        for r in readers:
            r.join(timeout=2.0)
    if code == 0:
        return None
    out = (bytes(tails[0]) + bytes(tails[1])).decode("utf-8", "replace").strip()[-TAIL:]
    return f"build: {command!r} exited with code {code}" + (f":\n{out}" if out else "")


def _wait(jail: Jail, wall: float) -> int | None:
    """The build's exit code; None when it overran or the grading was stopped."""
    end = time.monotonic() + wall
    while not STOPPED.is_set() and time.monotonic() < end:
        code = jail.proc.poll()
        if code is not None:
            return code
        time.sleep(0.05)
    return None


def _drain(stream: IO[bytes] | None, tail: bytearray) -> None:
    """Read everything (a flood must not block the build), keep the end."""
    if stream is None:
        return
    while True:
        chunk = stream.read(65536)
        if not chunk:
            return
        tail += chunk
        del tail[:-TAIL]


def clean_env(home: Path) -> dict[str, str]:
    """What a submission sees of the grader's environment: the path and the locale only
    (and the stand-ins of lclock.grade.workspace.compat_bin first on the path, if any)."""
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "MPLBACKEND")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["HOME"] = str(home)
    stand_ins = home.parent / "bin"
    if stand_ins.is_dir():
        env["PATH"] = f"{stand_ins}{os.pathsep}{env.get('PATH', '')}"
    return env
