"""A machine's program runs within limits and leaves nothing behind (SPEC 9.6).

Hostile programs, each a few lines of Python: one that hides a child in a session of its
own, a fork bomb, a memory hog, one that never reads, one that floods. Each test ends the
jail in a ``finally``; the last assertion of each is that no process of it is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from lclock.impl.config import Limits
from lclock.impl.jail import JAIL_ENV, Cgroups, Jail, _alive, _own_cgroup
from lclock.impl.pipe import STDERR_TAIL, Pipes, ProgramGone, wait
from lclock.impl.protocol import ProtocolError

pytestmark = pytest.mark.timeout(60)


def left(name: str) -> list[int]:
    """Processes still running (not zombies) that carry jail ``name``'s mark."""
    out = []
    for proc in psutil.process_iter(["environ", "status"]):
        try:
            if (proc.info["environ"] or {}).get(JAIL_ENV) == name and \
                    proc.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except psutil.Error:
            pass
    return out


@contextmanager
def jailed(tmp_path: Path, code: str, limits: Limits | None = None, batch: bool = False
           ) -> Iterator[tuple[Jail, Pipes]]:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(code))
    name = f"lclock-test-{os.getpid()}-{time.monotonic_ns()}"
    jail = Jail([sys.executable, str(script)], tmp_path, dict(os.environ), limits or Limits(),
                name, batch=batch)
    assert jail.proc.stdin and jail.proc.stdout and jail.proc.stderr
    pipes = Pipes(jail.proc.stdin.fileno(), jail.proc.stdout.fileno(), jail.proc.stderr.fileno())
    try:
        yield jail, pipes
    finally:
        jail.kill()
        assert left(name) == []


def answer(pipes: Pipes, within: float = 20.0) -> bytes:
    end = time.monotonic() + within
    while time.monotonic() < end:
        line = pipes.next_line()
        if line is not None:
            return line
        wait([pipes], 0.1)
    raise AssertionError("no answer")


@pytest.fixture(params=["cgroups", "no-cgroups"])
def cgroups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of holding a program: its cgroups, and (where there are none) the subreaper
    with the mark in its processes' environment, and signals to its tree."""
    if request.param == "no-cgroups":
        monkeypatch.setattr("lclock.impl.jail._own_cgroup", lambda controller: None)
    return str(request.param)


def test_the_program_leads_a_process_group_of_its_own_in_lclock_s_session(tmp_path: Path) -> None:
    """Its own group (lclock's signals and Ctrl-C do not reach it; ``killpg`` ends it), but
    not a session of its own: a session is a scheduling group of its own under autogroup,
    which made its machine wait longer for a core on a busy machine."""
    with jailed(tmp_path, """
        import os
        print(os.getpgid(0) == os.getpid(), os.getsid(0), flush=True)
    """) as (_jail, pipes):
        assert answer(pipes) == f"True {os.getsid(0)}".encode()


@pytest.mark.parametrize("batch", [True, False])
def test_a_real_run_s_program_runs_under_sched_batch(batch: bool, tmp_path: Path) -> None:
    """A real run's program (``batch``) is SCHED_BATCH, its children too: on waking it does
    not take the core from the machine that keeps the deadlines. The mark that asks for it
    is not left in the program's environment, nor passed on when not asked for."""
    with jailed(tmp_path, """
        import os, subprocess, sys
        child = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                               capture_output=True, text=True).stdout.strip()
        print(os.sched_getscheduler(0), child, "LCLOCK_JAIL_BATCH" in os.environ, flush=True)
    """, batch=batch) as (_jail, pipes):
        policy = os.SCHED_BATCH if batch else os.SCHED_OTHER
        assert answer(pipes) == f"{policy} {policy} False".encode()


@pytest.mark.usefixtures("cgroups")
def test_a_child_in_a_session_of_its_own_is_killed_with_the_program(tmp_path: Path) -> None:
    with jailed(tmp_path, """
        import os, sys, time
        program_session = os.getsid(0)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                print("hidden", os.getsid(0) != program_session, flush=True)
                time.sleep(300)
            os._exit(0)
        time.sleep(300)
    """) as (jail, pipes):
        assert answer(pipes) == b"hidden True"
        assert len(left(jail.name)) >= 2  # the program and its hidden grandchild


def test_a_fork_bomb_stops_at_the_process_limit(tmp_path: Path) -> None:
    with jailed(tmp_path, """
        import os, time
        n = 0
        try:
            for _ in range(500):
                if os.fork() == 0:
                    time.sleep(300)
                n += 1
        except OSError:
            pass
        print(n, flush=True)
        time.sleep(300)
    """, Limits(procs=20)) as (_jail, pipes):
        assert int(answer(pipes)) < 20


def test_a_program_over_its_memory_dies_and_the_rest_goes_on(tmp_path: Path) -> None:
    with jailed(tmp_path, """
        import sys
        print("start", flush=True)
        hog = bytearray(600 * 1024 * 1024)
        hog[::4096] = b"x" * len(hog[::4096])
        print("survived", flush=True)
    """, Limits(mem=128)) as (jail, pipes):
        assert answer(pipes) == b"start"
        with pytest.raises(ProgramGone):
            answer(pipes)
        assert jail.proc.wait(timeout=20) != 0
        assert jail.cgroups.oom_killed() == jail.cgroups.has("memory")


def test_an_oom_kill_is_told_by_the_kernel_s_count_not_only_by_failcnt(tmp_path: Path) -> None:
    """Some kernels leave memory.failcnt at 0 when the limit's OOM killer ends a program;
    memory.oom_control's ``oom_kill`` counts it (without this, "killed by signal 9" hid
    that the program was over its memory limit)."""
    cgroups = Cgroups.__new__(Cgroups)
    cgroups.dirs = {"memory": tmp_path}
    (tmp_path / "memory.failcnt").write_text("0\n")
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not cgroups.oom_killed()
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert cgroups.oom_killed()


def test_a_file_beyond_the_size_limit_is_refused(tmp_path: Path) -> None:
    with jailed(tmp_path, """
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            with open("big", "wb") as f:
                f.write(b"x" * (3 << 20))
            print("wrote", flush=True)
        except OSError as e:
            print("refused", e.errno, flush=True)
    """, Limits(fsize=1)) as (_jail, pipes):
        assert answer(pipes).startswith(b"refused")
    assert (tmp_path / "big").stat().st_size <= 1 << 20


def test_a_program_that_never_reads_does_not_block_lclock(tmp_path: Path) -> None:
    with jailed(tmp_path, """
        import time
        print("ready", flush=True)
        time.sleep(300)
    """) as (_jail, pipes):
        assert answer(pipes) == b"ready"
        pipes.send(b"x" * (8 << 20))
        pipes.flush()  # returns: the pipe takes what it can
        assert 0 < len(pipes.out) < 8 << 20


def test_an_endless_line_is_a_protocol_error_before_it_ends(tmp_path: Path) -> None:
    with jailed(tmp_path, """
        import sys
        while True:
            sys.stdout.write("x" * 65536)
    """) as (_jail, pipes), pytest.raises(ProtocolError, match="more than 1048576"):
        answer(pipes)


def test_stderr_is_read_continuously_and_its_end_kept(tmp_path: Path) -> None:
    with jailed(tmp_path, """
        import sys
        for i in range(3000):
            sys.stderr.write("line %05d %s\\n" % (i, "e" * 100))
        sys.stderr.flush()
        print("done", flush=True)
    """) as (_jail, pipes):
        assert answer(pipes) == b"done"
        pipes.read_stderr()
        assert pipes.err_bytes > STDERR_TAIL
        assert len(pipes.err_tail) == STDERR_TAIL
        assert pipes.err_tail.endswith(b"line 02999 " + b"e" * 100 + b"\n")


@pytest.mark.usefixtures("cgroups")
def test_a_paused_program_stops_and_goes_on_when_resumed(tmp_path: Path) -> None:
    with jailed(tmp_path, """
        import sys
        for line in sys.stdin:
            print(line.strip(), flush=True)
    """) as (jail, pipes):
        pipes.send(b"one\n")
        assert answer(pipes) == b"one"
        jail.pause(True)
        try:
            pipes.send(b"two\n")
            pipes.flush()
            assert not wait([pipes], 0.5) or pipes.next_line() is None
        finally:
            jail.pause(False)
        assert answer(pipes) == b"two"


def test_limits_read_from_their_flag() -> None:
    assert Limits.parse("cpu=5, mem=64") == Limits(cpu=5, mem=64)
    assert Limits.parse("") == Limits()
    for bad, why in [("cpu", "expected cpu=S"), ("disk=5", "expected"), ("mem=-1", "whole"),
                     ("mem=1.5", "whole"), ("cpu=1,cpu=2", "twice"), ("procs=0", "1 to")]:
        with pytest.raises(ValueError, match=why):
            Limits.parse(bad)


def test_a_killed_lclock_takes_its_programs_along(tmp_path: Path) -> None:
    """SIGKILL to the simulator: its programs die with it (the parent-death signal), so do
    the children they started in sessions of their own (the watchdog), and the next run
    removes the cgroups it left."""
    out = tmp_path / "out"
    prog = tmp_path / "slow.py"
    prog.write_text("import json, subprocess, sys, time\n"
                    "subprocess.Popen(['setsid', 'sleep', '300'])\n"
                    "for line in sys.stdin:\n"
                    "    r = json.loads(line)\n"
                    "    if r['type'] == 'init':\n"
                    "        print(json.dumps({'type': 'init_ok', 'clocks': ['lamport']}), "
                    "flush=True)\n"
                    "    else:\n"
                    "        time.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, "-m", "lclock", "sim", "--impl",
                             f"{sys.executable} {prog}", "--duration", "5", "--output", str(out),
                             "--quiet"], start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        name = f"lclock-{proc.pid}-"
        assert _wait(lambda: len([p for p in _programs() if p[1].startswith(name)]) == 6, 60)
        proc.kill()
        proc.wait(timeout=10)
        assert _wait(lambda: not [p for p in _programs() if p[1].startswith(name)], 10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    Jail([sys.executable, "-c", "pass"], tmp_path, dict(os.environ), Limits(), "lclock-x-y").kill()
    for controller in ("pids", "memory", "freezer"):
        parent = _own_cgroup(controller)
        if parent is not None:
            assert not list(parent.glob(f"{name}*"))


def _programs() -> list[tuple[int, str]]:
    out = []
    for p in psutil.process_iter(["environ", "status"]):
        try:
            mark = (p.info["environ"] or {}).get(JAIL_ENV)
            if mark and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append((p.pid, mark))
        except psutil.Error:
            pass
    return out


def _wait(pred: object, within: float) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")


@needs_root
def test_as_root_the_program_runs_as_the_user_it_is_given() -> None:
    """lclock grade's submissions: another uid and gid, no supplementary groups, and the
    folders it must not see hidden even where their modes would let anyone read them.
    (In a folder of /tmp of its own: pytest's tmp_path is closed to other users.)"""
    from lclock.impl.jail import User

    base = Path(tempfile.mkdtemp(prefix="lclock-test-user-"))
    try:
        base.chmod(0o711)
        secret, home = base / "class", base / "copy"
        secret.mkdir(mode=0o755)
        (secret / "other.py").write_text("the other student's code")
        (secret / "other.py").chmod(0o644)
        home.mkdir(mode=0o700)
        (home / "prog.py").write_text(textwrap.dedent(f"""\
            import os
            try:
                seen = open({str(secret / "other.py")!r}).read()
            except OSError:
                seen = "refused"
            try:
                open({str(base / "written")!r}, "w").close()
                wrote = "wrote"
            except OSError:
                wrote = "refused"
            print(os.getuid(), os.getgid(), os.getgroups(), seen, wrote, flush=True)
            """))
        for path in (home, home / "prog.py"):
            os.chown(path, 200_123, 200_123)
        run_as(User(200_123, 200_123, (str(secret),)), home)
        assert (secret / "other.py").read_text() == "the other student's code"
        assert not (base / "written").exists()
    finally:
        shutil.rmtree(base)


def run_as(user: Any, home: Path) -> None:
    name = f"lclock-test-{os.getpid()}-{time.monotonic_ns()}"
    jail = Jail(["/usr/bin/python3", "prog.py"], home, dict(os.environ), Limits(), name, user)
    assert jail.proc.stdin and jail.proc.stdout and jail.proc.stderr
    pipes = Pipes(jail.proc.stdin.fileno(), jail.proc.stdout.fileno(), jail.proc.stderr.fileno())
    try:
        assert answer(pipes) == b"200123 200123 [] refused refused"
    finally:
        jail.kill()
        assert left(name) == []


@needs_root
def test_the_user_comes_from_the_environment_only_for_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from lclock.impl.jail import User

    assert User.from_env({}) == User()
    assert User.from_env({"LCLOCK_JAIL_USER": "200001:200002", "LCLOCK_JAIL_HIDE": "/a\n/b"}) == \
        User(200001, 200002, ("/a", "/b"))
    with pytest.raises(ValueError, match="LCLOCK_JAIL_USER"):
        User.from_env({"LCLOCK_JAIL_USER": "0:0"})
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert User.from_env({"LCLOCK_JAIL_USER": "200001:200002"}) == User()

def test_waiting_never_raises_an_endless_line_the_next_answer_does() -> None:
    """``wait`` moves every program's pipes at once, outside any one machine's handling of
    its answers: a line too long must surface where answers are read, as that program's
    error, never out of the wait (where it was a traceback of lclock's)."""
    ends = [os.pipe() for _ in range(3)]
    try:
        pipes = Pipes(ends[0][1], ends[1][0], ends[2][0])
        os.set_blocking(ends[1][1], False)
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(ends[1][1], b"x" * 65536)
        for _ in range(40):  # a pipe holds 64 kB at a time: read it until the limit
            wait([pipes], 0.01)
            with contextlib.suppress(BlockingIOError):
                os.write(ends[1][1], b"x" * 65536)
        with pytest.raises(ProtocolError, match="more than 1048576"):
            pipes.next_line()
    finally:
        for r, w in ends:
            os.close(r)
            os.close(w)


def test_a_killed_process_waiting_to_be_reaped_is_not_alive() -> None:
    """jail.kill loops while a member is alive: a zombie (dead, not yet reaped, which
    psutil's is_running calls running) must not count, or every kill waits its whole 2 s."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)
    try:
        zombie = psutil.Process(dead.pid)
        while zombie.status() != psutil.STATUS_ZOMBIE:  # exited, left unreaped on purpose
            time.sleep(0.01)
        running = psutil.Process(live.pid)
        assert _alive([zombie, running]) == [running]
    finally:
        for proc in (dead, live):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


_SUBREAPING = """\
import os, sys
from pathlib import Path
from lclock.impl.config import Limits
from lclock.impl.jail import Jail, _is_subreaper
before = _is_subreaper()
jails = [Jail([sys.executable, "-c", "import time; time.sleep(30)"], Path("."), dict(os.environ),
              Limits(), "lclock-test-reaping-%d" % k) for k in range(2)]
during = _is_subreaper()
jails[0].kill()
one_left = _is_subreaper()
jails[1].kill()
jails[1].kill()  # twice: still one release
print(before, during, one_left, _is_subreaper())
"""


def test_a_process_is_a_subreaper_only_while_it_holds_a_jail(tmp_path: Path) -> None:
    """A notebook that ran ``lclock.simulate(impl=...)`` (or lclock grade, or a test worker)
    stayed a subreaper for good, and every later orphan below it became a zombie of it."""
    p = subprocess.run([sys.executable, "-c", _SUBREAPING], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, start_new_session=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "True", "True", "False"]
