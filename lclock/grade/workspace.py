"""Where a submission runs: a private copy of its folder, owned by a user of its own.

As root, submission number i runs as a uid/gid of its own (``UID_BASE`` + a block of the
grading process's + i): no account is needed for a uid, and a uid per submission means no two
submissions can read each other's copies, even at once, even of two gradings. Its work folder is root's, open (traverse only) to its own group alone; the copy
is the submission user's, closed to everyone else. Without root there is no user to drop
to: the copy is still private to lclock's user, and the report says the isolation is weaker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

from lclock.impl.jail import User, cgroup_dir
from lclock.tempdirs import own_prefix
from lclock.tempdirs import sweep as sweep_kind

UID_BASE = 200_000
#: Submissions per grading: each grading (an lclock process) takes a block of uids of its
#: own, so that two gradings at once never share a user.
BLOCK = 10_000
#: Blocks of uids there is room for below 2^31 (a larger uid is refused by some tools).
BLOCKS = (2**31 - UID_BASE) // BLOCK
#: What lclock copies of a submission at most: entries (files, folders, links) and bytes of
#: its files (a sparse 2 GB file is 2 GB once copied); beyond, it is not graded, not copied.
MAX_FILES = 50_000
MAX_COPY_BYTES = 256 * 1024 * 1024


def user_for(index: int, hide: tuple[str, ...] = ()) -> User:
    """The unprivileged user of submission ``index`` (lclock's own when not root), from
    whose sight the folders ``hide`` (the class, the grader's output) are taken."""
    if os.geteuid() != 0:
        return User()
    uid = first_uid(os.getpid()) + index % BLOCK
    return User(uid, uid, hide)


def first_uid(pid: int) -> int:
    """The first uid of the block of the grading whose process is ``pid``: a block of its
    own for every pid up to 214,728 (pid % 1000 gave two gradings at once whose pids end
    alike the same users: each could read the other's copies and end its programs)."""
    return UID_BASE + (pid % BLOCKS) * BLOCK


#: Run as the submission's user: SIGKILL every process that user has. ``kill -9 -1`` from a
#: process of that uid reaches each of them, wherever it hid (a session of its own,
#: reparented to init), and a fork racing it fails (the kernel refuses a fork to a process
#: with SIGKILL pending); the shell's own builtin, so the shell alone is spared, and no
#: interpreter the user may not run (pyenv's, in /root). Its exit status cannot say whether
#: any process was left (the kernel counts the processes it may not signal too), so
#: ``end_processes`` looks in /proc instead.
_KILL_ALL = "kill -9 -1 2>/dev/null; kill -9 -1 2>/dev/null"
#: Rounds of _KILL_ALL before end_processes gives up on a process that will not die.
ROUNDS = 50


def end_processes(user: User) -> None:
    """Kill whatever the submission's user still runs: a program's child that left its
    session, a fork bomb's children whose lclock overran its wall time and was killed before
    its jail could end them. Only a uid of its own makes this exact, so only as root. It is
    called after every run: when nothing is left, as a rule, it costs one look at /proc."""
    if user.uid < 0:
        return
    for n in range(ROUNDS):
        left = alive(user.uid)
        if not left:
            return
        subprocess.run(["/bin/sh", "-c", _KILL_ALL], user=user.uid,
                       group=user.gid, extra_groups=[], cwd="/", stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False)
        for pid in left:  # a paused program, frozen, dies of its SIGKILL only once thawed
            _thaw(pid)
        time.sleep(0.01 * n)


def alive(uid: int) -> list[int]:
    """The processes whose real uid is ``uid`` (a zombie is dead: its parent reaps it)."""
    import psutil

    return [p.pid for p in psutil.process_iter(["uids", "status"])
            if p.info["uids"] is not None and p.info["uids"].real == uid
            and p.info["status"] != psutil.STATUS_ZOMBIE]


def _thaw(pid: int) -> None:
    """Thaw the cgroup v1 freezer group of process ``pid``, if it is one of lclock's jails'."""
    group = cgroup_dir("freezer", str(pid))
    if group is not None and group.name.startswith("lclock-"):
        with contextlib.suppress(OSError):
            (group / "freezer.state").write_text("THAWED")


def prepare(source: Path, work: Path, user: User) -> tuple[Path, Path]:
    """(copy, runs): the private copy of ``source`` and the folder for its runs, in ``work``."""
    work.mkdir(mode=0o700)
    copy, runs = work / "copy", work / "runs"
    shutil.copytree(source, copy, symlinks=True, ignore=_not_plain)
    runs.mkdir(mode=0o700)
    (work / "settings.toml").write_text("")  # the runs' settings: none of the student's
    if user.uid >= 0:
        compat_bin(work, os.environ.get("PATH", ""))
        _give(copy, user)
        for folder in (work, runs):
            os.chown(folder, 0, user.gid)
            folder.chmod(0o710)
    copy.chmod(0o700)
    return copy, runs


def too_big(source: Path) -> str | None:
    """Why ``source`` is too big to copy (too many entries or bytes), or None: asked before
    the copy, so that a 2 GB file or 100,000 files cost a walk, not a disk and minutes."""
    count, size = 0, 0
    for root, dirs, files in os.walk(source):
        for name in [*dirs, *files]:
            count += 1
            st = os.lstat(os.path.join(root, name))
            size += st.st_size if stat.S_ISREG(st.st_mode) else 0
            if count > MAX_FILES or size > MAX_COPY_BYTES:
                return (f"the folder holds more than {MAX_FILES} files or "
                        f"{MAX_COPY_BYTES // 2**20} MB: not copied, not graded")
    return None


def _not_plain(folder: str, names: list[str]) -> set[str]:
    """Leave out what is not a file, a folder or a symlink (a FIFO would block the copy)."""
    skip = set()
    for name in names:
        mode = os.lstat(os.path.join(folder, name)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            skip.add(name)
    return skip


def _give(copy: Path, user: User) -> None:
    count = 0
    for root, dirs, files in os.walk(copy):
        for name in [*dirs, *files, ""]:
            count += 1
            if count > MAX_FILES:
                return
            os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)


def others_reach(path: Path) -> bool:
    """Whether a user with no claim on ``path`` (not its owner, not its group) can run it:
    every folder on the way, and the file itself, executable by others."""
    try:
        real = Path(os.path.realpath(path))
        for p in (path.parent, *path.parent.parents, real, *real.parents):
            if not os.stat(p).st_mode & stat.S_IXOTH:
                return False
    except OSError:
        return False
    return True


def compat_bin(work: Path, path_var: str) -> Path | None:
    """A folder of stand-ins for the submission's PATH: ``python`` as the first ``python3``
    an unprivileged user can run, where no ``python`` on PATH is one it can (pyenv keeps
    its interpreters in root's home: a correct ``python vm.py`` would not start)."""
    dirs = [Path(d) for d in path_var.split(os.pathsep) if d]

    def runnable(name: str) -> Path | None:
        for d in dirs:
            candidate = d / name
            if candidate.is_file() and others_reach(candidate):
                return candidate
        return None

    if runnable("python") is not None:
        return None
    python3 = runnable("python3")
    if python3 is None:
        return None
    folder = work / "bin"
    folder.mkdir(mode=0o755)
    (folder / "python").symlink_to(python3)
    return folder


def work_prefix() -> str:
    """The name of this process's work folders in the temporary folder (its pid in it, so
    that a later grading can tell the folders of a grader that was killed)."""
    return own_prefix("grade")


def sweep(tmp: Path) -> None:
    """Remove the work folders a killed grader left (``lclock-grade-<pid>-...``, pid gone)."""
    sweep_kind(tmp, "grade")
