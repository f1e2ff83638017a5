"""Where a user's program runs: its limits, its cgroup, and the end of every process it made.

A machine's program is untrusted code (SPEC 9.6). Three things must hold whatever it does:
it runs within limits (CPU time, resident memory, processes, file size), it can be paused
and resumed as a whole (a planned pause stops its processes too), and nothing it started
outlives its machine, not even a child that called ``setsid()`` to leave its process group.

- Limits are set by a tiny trampoline (``_TRAMPOLINE``, run by ``python -I -S -c``) between
  fork and exec, rather than by Popen's
  ``preexec_fn``, which is unsafe in a process with threads (Dask workers, the experiment
  pool). The trampoline waits until the parent has put it in its cgroups, so not even a
  program that forks at once escapes them.
- Resident memory and the number of processes are held by the ``memory`` and ``pids``
  cgroups where the machine has them (v1 hierarchies, as root): an address-space limit
  would kill node and the JVM, which reserve far more than they use, and RLIMIT_NPROC counts
  every process of a user. Where there is no cgroup, RLIMIT_AS and RLIMIT_NPROC stand in,
  and the run says so (``Jail.held_by``).
- The end: the freezer cgroup stops every member at once, SIGKILL goes to each, and the
  group is thawed so the kills land; without cgroups, the parent is a child subreaper
  (orphans come back to it) and kills the process tree it can see.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from lclock.impl.config import Limits

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Marks a program's processes in their environment, for finding orphans without cgroups.
JAIL_ENV = "LCLOCK_JAIL"
#: ``UID:GID`` the programs of a run drop to (set by ``lclock grade`` for the ``lclock sim``
#: it starts; honoured only when lclock runs as root, where dropping is possible at all).
USER_ENV = "LCLOCK_JAIL_USER"
#: Folders (one a line) the program must not see even where their modes would let it: the
#: class's submissions and the grader's output. Hidden under an empty read-only tmpfs in a
#: mount namespace of the program's own, with the user (root only).
HIDE_ENV = "LCLOCK_JAIL_HIDE"
#: Set (for the trampoline, which removes it): the program runs under SCHED_BATCH.
BATCH_ENV = "LCLOCK_JAIL_BATCH"
#: Set (for the trampoline, which removes it) when the program's writes in its folder must
#: stay (a submission's build); else, hidden from the other submissions, they go to an
#: overlay of its own, a tmpfs its memory limit holds: many files cannot fill the disk.
KEEP_ENV = "LCLOCK_JAIL_KEEP"
MIB = 1 << 20
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


# The trampoline: argv = [python, -I, -S, -c, this, fd, cpu, fsize, as, nproc, uid, gid, parent,
# cmd...].
# It sets the rlimits, drops to the given user, asks to be killed when lclock dies, waits for
# the parent's go (one byte on fd: by then it is in its cgroups) and becomes the program.
_TRAMPOLINE = """\
import os, resource, sys, warnings  # everything imported before dropping to the user
a = sys.argv
fd, cpu, fsize, as_, nproc, uid, gid = (int(x) for x in a[1:8])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if as_:
    resource.setrlimit(resource.RLIMIT_AS, (as_, as_))
if nproc:
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
try:
    import ctypes
except Exception:
    ctypes = None
hide = [h for h in os.environ.pop("LCLOCK_JAIL_HIDE", "").split("\\n") if h]
scratch = not os.environ.pop("LCLOCK_JAIL_KEEP", "")  # a build's writes stay: not scratch
if hide and uid >= 0:  # a mount namespace of its own, those folders under an empty tmpfs
    libc = ctypes.CDLL(None, use_errno=True)
    ok = libc.unshare(0x20000) == 0 and libc.mount(b"none", b"/", None, 0x44000, None) == 0
    for h in hide:
        if ok and os.path.isdir(h):
            ok = libc.mount(b"none", h.encode(), b"tmpfs", 15, b"size=4k,mode=000") == 0
    here = os.path.realpath(os.getcwd())  # the copy; its folder holds what the program needs
    keep = [(d, os.open(d, getattr(os, "O_PATH", os.O_RDONLY))) for d in (os.path.dirname(here), here)]
    for t in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock"):  # its own: what it leaves ends with it
        if ok and os.path.isdir(t) and not os.path.islink(t):
            ok = libc.mount(b"none", t.encode(), b"tmpfs", 6, b"size=64m,mode=1777") == 0
            below = [k for k in keep if k[0].startswith(os.path.realpath(t) + "/")]
            if ok and below:  # the copy's folder (or the copy), bound back in place
                os.makedirs(below[0][0], exist_ok=True)
                ok = libc.mount(b"/proc/self/fd/%d" % below[0][1], below[0][0].encode(), None, 0x5000, None) == 0
    for k in keep:
        os.close(k[1])
    if ok and scratch and not set(",:") & set(here):  # overlay's separators
        try:  # what it writes in its copy lands in a tmpfs of its own (a build's stays)
            up = "/tmp/.lclock-scratch"
            os.mkdir(up, 0o700)
            if libc.mount(b"none", up.encode(), b"tmpfs", 6, b"size=256m,mode=700") == 0:
                st = os.stat(here)
                os.mkdir(up + "/u", st.st_mode & 0o7777)
                os.chown(up + "/u", st.st_uid, st.st_gid)
                os.mkdir(up + "/w", 0o700)
                opts = "lowerdir=%s,upperdir=%s/u,workdir=%s/w" % (here, up, up)
                libc.mount(b"overlay", here.encode(), b"overlay", 6, opts.encode())
        except OSError:
            pass  # no overlay: it writes in its copy itself
    if ok:
        os.chdir(here)
    if not ok:
        sys.stderr.write("lclock: cannot hide the other submissions: %s\\n" % os.strerror(ctypes.get_errno()))
        os._exit(127)
if os.environ.pop("LCLOCK_JAIL_BATCH", ""):  # its wake-ups never preempt lclock (Linux)
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass
if gid >= 0:
    os.setgroups([]); os.setgid(gid)
if uid >= 0:
    os.setuid(uid)
try:  # the program dies with lclock, even a SIGKILLed lclock (PR_SET_PDEATHSIG)
    ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)
except Exception:
    pass
if os.getppid() != int(a[8]):  # lclock died before the line above: no parent to die with
    os._exit(127)
if os.read(fd, 1) != b"g":
    os._exit(127)
os.close(fd)
try:
    os.execvp(a[9], a[9:])
except OSError as e:
    sys.stderr.write("lclock: cannot start %s: %s\\n" % (a[9], e.strerror))
    os._exit(127)
"""


# The watchdog: argv = [python, -I, -S, -c, this, lclock's pid, cgroup parents...]. Its stdin
# is a pipe only lclock writes to; the read ends when lclock is gone, however it died (even
# SIGKILLed, when nothing of lclock can act). Then it kills what lclock's programs left: the
# programs die of their parent-death signal, but not what they started in a session of its
# own. Found by lclock's mark in their environment and in the cgroups named after lclock.
# A frozen process (paused, or lclock died between freezing a jail and thawing it) keeps
# its SIGKILL pending, in state D, until its freezer group is thawed: so it is thawed.
_WATCHDOG = """\
import os, signal, sys, time
os.read(0, 1)
tag = "lclock-%s-" % sys.argv[1]
mark = ("LCLOCK_JAIL=" + tag).encode()
groups = [os.path.join(d, n) for d in sys.argv[2:] if os.path.isdir(d)
          for n in os.listdir(d) if n.startswith(tag)]
def left():
    pids = set()
    for g in groups:
        try:
            pids.update(int(p) for p in open(os.path.join(g, "cgroup.procs")).read().split())
        except (OSError, ValueError):
            pass
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and (b"\\0" + mark) in b"\\0" + open("/proc/%s/environ" % p, "rb").read():
                pids.add(int(p))
        except OSError:
            pass
    pids.discard(os.getpid())
    return pids
for _ in range(100):
    pids = left()
    if not pids:
        break
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    for g in groups:  # a paused program (or one lclock died freezing) dies only once thawed
        try:
            with open(os.path.join(g, "freezer.state"), "w") as f:
                f.write("THAWED")
        except OSError:
            pass
    time.sleep(0.05)
for g in groups:
    try:
        os.rmdir(g)
    except OSError:
        pass
"""
_watched: dict[str, Any] = {}  # this process's watchdog (one per process: a fork has its own)


def start_watchdog() -> None:
    """Once per lclock process: the watchdog that ends its programs' leftovers when it dies."""
    pid = os.getpid()
    if _watched.get("pid") == pid:
        return
    parents = [str(p) for p in map(_own_cgroup, Cgroups.CONTROLLERS) if p is not None]
    read_fd, write_fd = os.pipe()  # the write end is lclock's alone (not inheritable)
    try:
        subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHDOG, str(pid), *parents],
                         stdin=read_fd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, env={"PATH": os.environ.get("PATH", "")})
    except OSError:
        os.close(write_fd)
        return
    finally:
        os.close(read_fd)
    _watched.update(pid=pid, fd=write_fd)


def make_subreaper(on: bool = True) -> bool:
    """Orphans of our programs come back to this process, so it can kill them (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _is_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        flag = ctypes.c_int(0)
        return int(libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)) == 0 \
            and flag.value != 0
    except (OSError, AttributeError):
        return False


class _Reaping:
    """This process is a subreaper while it holds a jail, and only then, unless it was one
    before (``lclock run``'s launcher makes itself one for good). Left on, a long-lived
    process that once ran a program in-process (a notebook's ``lclock.simulate(impl=...)``,
    a test worker, ``lclock grade``) became the parent of every orphan below it afterwards,
    and, never having started them, reaped none: a zombie each."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jails = 0
        self.before = False

    def hold(self) -> None:
        with self.lock:
            if self.jails == 0:
                self.before = _is_subreaper()
                make_subreaper()
            self.jails += 1

    def release(self) -> None:
        with self.lock:
            self.jails -= 1
            if self.jails == 0 and not self.before:
                make_subreaper(False)


_REAPING = _Reaping()


def _own_cgroup(controller: str) -> Path | None:
    """This process's cgroup directory of a v1 ``controller``, if mounted and ours to use."""
    here = cgroup_dir(controller)
    return here if here is not None and os.access(here, os.W_OK) else None


def cgroup_dir(controller: str, proc: str = "self") -> Path | None:
    """The cgroup directory of a v1 ``controller`` of process ``proc`` (a pid, or self)."""
    try:
        lines = Path(f"/proc/{proc}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUP_ROOT / controller / path.lstrip("/")
    return None


class Cgroups:
    """One program's cgroups (memory, pids, freezer), made for it and removed after."""

    CONTROLLERS = ("memory", "pids", "freezer")

    def __init__(self, name: str, limits: Limits) -> None:
        self.dirs: dict[str, Path] = {}
        for controller in self.CONTROLLERS:
            parent = _own_cgroup(controller)
            if parent is None:
                continue
            _sweep(parent)
            path = parent / name
            try:
                path.mkdir()
            except OSError:
                continue
            self.dirs[controller] = path
        self._write("memory", "memory.limit_in_bytes", str(limits.mem * MIB))
        self._write("memory", "memory.memsw.limit_in_bytes", str(limits.mem * MIB))
        self._write("pids", "pids.max", str(limits.procs))

    def _write(self, controller: str, name: str, value: str) -> bool:
        path = self.dirs.get(controller)
        if path is None:
            return False
        try:
            (path / name).write_text(value)
            return True
        except OSError:
            return False

    def has(self, controller: str) -> bool:
        return controller in self.dirs

    def join(self, pid: int) -> None:
        for controller in self.dirs:
            self._write(controller, "cgroup.procs", str(pid))

    def pids(self) -> set[int]:
        out: set[int] = set()
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                out.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        return out

    def freeze(self, frozen: bool) -> bool:
        return self._write("freezer", "freezer.state", "FROZEN" if frozen else "THAWED")

    def oom_killed(self) -> bool:
        """The limit was hit: ``failcnt``, or the OOM kills that ``memory.oom_control``
        counts (some kernels kill at the limit and leave ``failcnt`` at 0)."""
        path = self.dirs.get("memory")
        if path is None:
            return False
        try:
            if int((path / "memory.failcnt").read_text()) > 0:
                return True
        except (OSError, ValueError):
            pass
        try:
            fields = dict(line.split() for line in
                          (path / "memory.oom_control").read_text().splitlines() if line.strip())
            return int(fields.get("oom_kill", "0")) > 0
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                path.rmdir()


def _sweep(parent: Path) -> None:
    """Remove the empty cgroups of an lclock that died before it could (``lclock-<pid>-...``,
    its pid gone): a SIGKILLed lclock's programs die with it, their cgroups stay."""
    for path in parent.glob("lclock-*-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            with contextlib.suppress(OSError):
                path.rmdir()


@dataclass(frozen=True)
class User:
    """Who the program runs as: lclock's own user, or (as root, grading) an unprivileged one."""

    uid: int = -1
    gid: int = -1
    hide: tuple[str, ...] = ()


    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> User:
        """The user ``LCLOCK_JAIL_USER`` names, when lclock is root; lclock's own otherwise.
        A malformed value is refused rather than ignored: running a grader's submission as
        root by mistake is the one failure this must not have."""
        text = env.get(USER_ENV, "")
        if not text:
            return cls()
        uid, sep, gid = text.partition(":")
        if not (sep and uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0):
            raise ValueError(f"{USER_ENV}={text!r}: expected UID:GID, both above 0")
        if os.geteuid() != 0:
            return cls()
        hide = tuple(h for h in env.get(HIDE_ENV, "").split("\n") if h)
        return cls(int(uid), int(gid), hide)

    def owns(self, path: Path) -> None:
        """Give ``path`` (a folder the program writes in) to the user, when it is not ours."""
        if self.uid >= 0:
            os.chown(path, self.uid, self.gid)


#: The program starts in a process group of its own (signals to lclock's group, Ctrl-C,
#: never reach it; ``killpg`` ends it), in lclock's session: a session of its own would also
#: be a scheduling group of its own where the kernel groups by session (autogroup), and a
#: busy machine then shares its cores by session, so the machine that asks the program got
#: the cores later on waking (C at 1,000 ticks/s, load 15: p99 lateness 39-196 ms in a
#: session of its own, 23-30 ms in lclock's).
_OWN_GROUP: dict[str, Any] = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp})


class Jail:
    """One program, started within its limits, and everything it starts, ended together."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], limits: Limits,
                 name: str, user: User = User(), batch: bool = False,
                 subreaper: bool = True) -> None:
        self.limits = limits
        self.name = name
        self.cgroups = Cgroups(name, limits)
        self._reaps = subreaper  # else its orphans go up to init, and its maker ends them
        if subreaper:
            _REAPING.hold()
        start_watchdog()
        read_fd, write_fd = os.pipe()
        as_ = 0 if self.cgroups.has("memory") else limits.mem * MIB * 4
        nproc = 0 if self.cgroups.has("pids") else limits.procs
        args = [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, str(read_fd), str(limits.cpu),
                str(limits.fsize * MIB), str(as_), str(nproc), str(user.uid), str(user.gid),
                str(os.getpid()), *argv]
        try:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=cwd, env=_trampoline_env(env, name, user, batch), pass_fds=(read_fd,), bufsize=0,
                **_OWN_GROUP)
        except BaseException:
            os.close(write_fd)
            self.cgroups.remove()
            self._release()
            raise
        finally:
            os.close(read_fd)
        self.pid = self.proc.pid
        self._track: psutil.Process | None = None
        with contextlib.suppress(psutil.Error):
            self._track = psutil.Process(self.pid)
        self.cgroups.join(self.pid)
        os.write(write_fd, b"g")
        os.close(write_fd)

    @property
    def held_by(self) -> list[str]:
        """What holds memory and processes: cgroups, or the rlimits that stand in for them."""
        return [("cgroup " if self.cgroups.has(c) else "rlimit ") + c for c in ("memory", "pids")]

    def _members(self) -> list[psutil.Process]:
        """Every process of the program: its cgroup's, and the tree we can see from here."""
        found: dict[int, psutil.Process] = {}
        for pid in self.cgroups.pids():
            with contextlib.suppress(psutil.Error):
                found[pid] = psutil.Process(pid)
        if self._track is not None:
            with contextlib.suppress(psutil.Error):
                if self._track.is_running():
                    found[self._track.pid] = self._track
                    for child in self._track.children(recursive=True):
                        found[child.pid] = child
        found.update((p.pid, p) for p in _orphans_of(self.name))
        return list(found.values())

    def pause(self, stopped: bool) -> None:
        """Stop or continue every process of the program (a planned pause, SPEC 6.5)."""
        if self.cgroups.freeze(stopped):
            return
        sig = signal.SIGSTOP if stopped else signal.SIGCONT
        for proc in self._members():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)

    def cpu_seconds(self) -> float | None:
        """CPU time the program has used (with the children it waited for), while it runs."""
        if self._track is None:
            return None
        try:
            t = self._track.cpu_times()
        except psutil.Error:
            return None
        return round(t.user + t.system + t.children_user + t.children_system, 3)

    def kill(self, within: float = 2.0) -> None:
        """End every process of the program, however it hid, and reap what is ours."""
        end = time.monotonic() + within
        while True:
            frozen = self.cgroups.freeze(True)
            members = self._members()
            for proc in members:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            if frozen:
                self.cgroups.freeze(False)
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            _reap(self.name)
            self.proc.poll()  # our own child reaped: its zombie would look alive to psutil
            if not _alive(members) or time.monotonic() > end:
                break
            time.sleep(0.01)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=max(0.0, end - time.monotonic()))
        self.cgroups.remove()
        self._release()

    def _release(self) -> None:
        """Its hold on this process's subreaping, once (kill may come twice)."""
        if self._reaps:
            self._reaps = False
            _REAPING.release()


def _trampoline_env(env: Mapping[str, str], name: str, user: User,
                    batch: bool = False) -> dict[str, str]:
    """The program's environment, its jail's mark, and (for the trampoline, which removes
    them) what to hide from it and whether it runs under SCHED_BATCH."""
    out = {k: v for k, v in env.items() if k not in (HIDE_ENV, USER_ENV, BATCH_ENV)}
    out[JAIL_ENV] = name
    if batch:
        out[BATCH_ENV] = "1"
    if user.hide and user.uid >= 0:
        out[HIDE_ENV] = "\n".join(user.hide)
    return out


def _orphans_of(name: str) -> list[psutil.Process]:
    """Processes of jail ``name`` reparented to us as subreaper (without cgroups, the mark
    in their environment is how we tell them from another machine's program)."""
    me = os.getpid()
    found = []
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(me).children():
            with contextlib.suppress(psutil.Error):
                if child.ppid() == me and child.environ().get(JAIL_ENV) == name:
                    found.append(child)
    return found


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The processes that still run: a zombie is dead, waiting only to be reaped (psutil's
    ``is_running`` says True of it; waiting 2 s for it cost every planned crash 2 s)."""
    out = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
    return out


def _reap(name: str) -> None:
    """Collect the exit status of orphans the subreaper inherited (Popen reaps its own)."""
    for child in _orphans_of(name):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(child.pid, os.WNOHANG)
