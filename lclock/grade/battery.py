"""The battery, run: each item as ``lclock sim`` / ``import`` / ``check`` subprocesses.

Every run is a separate lclock process with a wall-time bound, started in a session of its
own and killed as a group when it overruns; the student's program is a machine of it, held by
lclock's jail (limits, cgroups, an unprivileged user when we are root: ``LCLOCK_JAIL_USER``).
Nothing here scores: it records what happened (lclock.grade.results).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from lclock.grade.build import STOPPED as _STOPPED
from lclock.grade.build import clean_env
from lclock.grade.results import ItemResult, RunResult
from lclock.grade.rubric import Item
from lclock.grade.submission import Submission
from lclock.impl.jail import HIDE_ENV, USER_ENV, User

#: What a submission's program may use in every run (SPEC 9.6 ``--impl-limits``).
LIMITS = "cpu=60,mem=512,procs=64,fsize=64"
#: An empty settings file in a submission's work folder (lclock.grade.workspace).
SETTINGS = "settings.toml"
#: Wall time of one lclock process of the battery (a run, a check, an import).
WALL = 180.0
#: A failed run's reason, read from run.json: these words mean the program did not answer.
HANG_WORDS = ("no answer", "hung", "timed out", "wall time")


#: Starts an lclock of the battery so that it is SIGKILLed when the grader dies, however
#: (its programs then die with it): a SIGTERM would ask it to stop gracefully, which waits
#: for the answer of a program that may never give one.
_WITH_GRADER = """\
import ctypes, os, sys
ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    os._exit(137)
os.execv(sys.argv[2], sys.argv[2:])
"""

#: The lclock processes running now (any thread's), for stop_all.
_RUNNING: set[subprocess.Popen[str]] = set()
_LOCK = threading.Lock()


def stop_all() -> None:
    """The grading was stopped (Ctrl-C): kill every running lclock of the battery (their
    programs die with them) and start no other."""
    with _LOCK:  # with lclock's registration: none starts unseen between the two
        _STOPPED.set()
        running = list(_RUNNING)
    for proc in running:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def lclock(args: list[str], cwd: Path, user: User, wall: float = WALL) -> tuple[int, str, str]:
    """Run ``lclock ARGS`` in ``cwd``; (exit code, stdout, stderr); 124 when it overran."""
    if _STOPPED.is_set():
        return 130, "", "lclock grade was stopped"
    env = clean_env(cwd)
    if user.uid >= 0:
        env[USER_ENV] = f"{user.uid}:{user.gid}"
        env[HIDE_ENV] = "\n".join(user.hide)
    argv = [sys.executable, "-I", "-S", "-c", _WITH_GRADER, str(os.getpid()), sys.executable,
            "-m", "lclock", *args]
    proc = subprocess.Popen(argv, cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, text=True,
                            errors="replace")
    with _LOCK:
        _RUNNING.add(proc)
        if _STOPPED.is_set():  # stopped while it started
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
    try:
        out, err = proc.communicate(timeout=wall)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return 124, out, err + f"\nlclock: the run took more than {wall:g} s of wall time"
    finally:
        with _LOCK:
            _RUNNING.discard(proc)
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_item(item: Item, sub: Submission, copy: Path, runs: Path, user: User) -> ItemResult:
    """Every run of one item, in seed order."""
    result = ItemResult(item.name, item.kind, item.points)
    if item.skip:
        result.skipped = "skipped by the rubric"
        return result
    if item.kind == "import":
        result.runs.append(import_logs(sub, copy, runs / item.name))
        return result
    for seed in item.seeds:
        result.runs.append(program_run(item, sub, seed, copy, runs, user))
    return result


def program_args(item: Item, impl: str, seed: int, runs: Path, run_id: str) -> list[str]:
    real = item.kind == "real"
    impl_arg = f"{item.machine}={impl}" if item.kind == "mixed" else impl
    # lclock run names its folder itself: a real run writes into a folder of its own, whose
    # one run folder program_run renames to run_id
    where = ["--output", str(real_output(runs, run_id))] if real else \
        ["--output", str(runs), "--run-id", run_id]
    args = ["run" if real else "sim", "--impl", impl_arg, "--impl-limits", LIMITS,
            "--duration", f"{item.duration:g}", "--quiet", *where, "--seed", str(seed),
            # never the submission's own settings.toml: the rubric's flags alone
            "--settings", str(runs.parent / SETTINGS)]
    if real:  # the battery checks the run itself: report.html and figures cost ~2 s of CPU
        args.append("--no-report")
    if item.kind == "twice":
        args.append("--twice")
    if item.kind == "mixed":
        args += ["--machines", str(max(3, item.machine))]
    return [*args, *item.args]


def program_run(item: Item, sub: Submission, seed: int, copy: Path, runs: Path,
                user: User) -> RunResult:
    run_id = f"{item.name}-{seed}"
    result = RunResult(f"{item.name}, seed {seed}", run_id)
    assert sub.impl is not None
    code, _out, err = lclock(program_args(item, sub.impl, seed, runs, run_id), copy, user,
                             run_wall(item))
    run_dir = runs / run_id
    if item.kind == "real":
        _take_real_run(real_output(runs, run_id), run_dir)
    result.cpu_s = programs_cpu(run_dir)
    if item.kind == "twice" and "two runs differ" in err:
        result.failure = ("nondeterministic", _differs(err), run_id)
        return result
    if code != 0 or not (run_dir / "run.json").is_file():
        # the copy's path is another each time (its length too): out of the grades, which
        # must repeat, before any text is cut to length
        result.failure = _failure(run_dir, err, code, copy)
        return result
    check_run(run_dir, run_id, result, here=True)
    return result


def run_wall(item: Item) -> float:
    """The wall time one run of ``item`` may take: a real run lasts its ``duration`` on the
    clock (up to an hour), on top of what any run may take; a simulated one does not."""
    return WALL + item.duration if item.kind == "real" else WALL


def programs_cpu(run_dir: Path) -> float | None:
    """CPU seconds the run's programs used, all together (run.json's ``impl``), if known."""
    try:
        machines = json.loads((run_dir / "run.json").read_text())["impl"]["machines"]
        return float(sum(float(m.get("cpu_s") or 0.0) for m in machines.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def real_output(runs: Path, run_id: str) -> Path:
    return runs / f"{run_id}.out"


def _take_real_run(out: Path, run_dir: Path) -> None:
    """The one run folder ``lclock run`` wrote into ``out`` becomes ``run_dir`` (none: the
    run failed before it made one, which _failure then says)."""
    with contextlib.suppress(OSError):
        made = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
        if len(made) == 1:
            made[0].rename(run_dir)
        shutil.rmtree(out, ignore_errors=True)


def _differs(err: str) -> str:
    for line in err.splitlines():
        if "two runs differ" in line:
            return "two runs with one seed differ, " + line.split("differ", 1)[1].strip(" :")
    return "two runs with one seed differ"


def _failure(run_dir: Path, err: str, code: int, copy: Path) -> tuple[str, str, str]:
    """(crash or hang, the reason, where): from run.json and the first error line, the
    copy's path in them written ``<submission>``."""
    reason = ""
    err = err.replace(str(copy), "<submission>")
    with contextlib.suppress(OSError, ValueError, AttributeError):
        meta = json.loads((run_dir / "run.json").read_text().replace(
            json.dumps(str(copy))[1:-1], "<submission>"))
        reason = str(meta.get("reason") or "")
        reason += _stderr_tail(meta)
    if not reason:
        tail = [ln for ln in err.splitlines() if ln.strip()]
        reason = tail[-1] if tail else f"lclock exited with code {code}"
    kind = "hang" if code == 124 or any(w in reason for w in HANG_WORDS) else "crash"
    named = re.match(r"machine (\d+):", reason)  # the machine the run's reason blames
    return kind, reason[:600], first_error_line(run_dir, int(named[1]) if named else None)


def _stderr_tail(meta: dict[str, Any]) -> str:
    """The end of the first failed machine's stderr, which often says why (a traceback)."""
    machines = (meta.get("impl") or {}).get("machines") or {}
    for _mid, m in sorted(machines.items(), key=lambda kv: _machine_no(kv[0])):
        if isinstance(m, dict) and m.get("failed") and m.get("stderr_tail"):
            tail = str(m["stderr_tail"]).strip().splitlines()[-3:]
            return "; its stderr ends: " + " | ".join(t[:160] for t in tail)
    return ""


def first_error_line(run_dir: Path, blamed: int | None = None) -> str:
    """``RUN/machine-N.jsonl:LINE`` of the first error line of the machine the run blames
    (else of the lowest machine), or RUN."""
    def order(p: Path) -> tuple[bool, int]:
        return _machine_no(p.name) != blamed, _machine_no(p.name)

    for path in sorted(run_dir.glob("machine-*.jsonl"), key=order):
        with contextlib.suppress(OSError), path.open("rb") as f:
            for n, line in enumerate(f, 1):
                if b'"event":"error"' in line:
                    return f"{run_dir.name}/{path.name}:{n}"
    return run_dir.name


def _machine_no(name: str) -> int:
    digits = "".join(c for c in name if c.isdigit())
    return int(digits) if digits else 0


def check_run(run_dir: Path, label: str, result: RunResult, here: bool = False) -> None:
    """``lclock check --json`` of the run: its error findings, each with where it shows.

    ``here``: in this process, for a run lclock itself wrote (a program's, bounded by its
    duration): 0.02-0.04 s of CPU, where a process of its own pays 0.3 s to start Python
    and import lclock, ten times per program. A folder imported from a student's text
    (up to the copy's size) is checked in a process of its own, with its wall time."""
    answer = _checked_here(run_dir) if here else _checked_apart(run_dir)
    if isinstance(answer, str):
        result.failure = ("crash", f"check could not read the run: {answer}", label)
        return
    result.notes = [str(n) for n in answer.get("notes", [])]
    for finding in answer.get("findings", []):
        if isinstance(finding, dict) and finding.get("severity", "error") == "error":
            finding["where"] = where_of(run_dir, finding, label)
            result.findings.append(finding)


def _checked_apart(run_dir: Path) -> dict[str, Any] | str:
    """check's JSON answer, from a process of its own; or why there is none."""
    _code, out, err = lclock(["check", "--json", str(run_dir)], run_dir.parent, User())
    try:
        answer = json.loads(out)
    except ValueError:
        return err.strip()[-300:]
    return answer if isinstance(answer, dict) else err.strip()[-300:]


def _checked_here(run_dir: Path) -> dict[str, Any] | str:
    """check's JSON answer, the same object ``lclock check --json`` prints (through JSON,
    so that the grades are the same bytes either way); or why there is none."""
    from lclock.analysis.check import check_json
    from lclock.analysis.check import check_run as check

    try:
        text = json.dumps(check_json(check(str(run_dir), cap=20)))
    except Exception as e:  # noqa: BLE001 - a run check cannot read is the run's failure
        return (str(e) or type(e).__name__)[:300]
    answer: dict[str, Any] = json.loads(text)
    return answer


def where_of(run_dir: Path, finding: dict[str, Any], label: str) -> str:
    """The student's own file and line (an imported line's ``src``) or the run's log line."""
    if isinstance(finding.get("src"), str):
        return str(finding["src"])
    file, line = finding.get("file"), finding.get("line")
    if not isinstance(file, str) or not isinstance(line, int):
        return label
    if "log_file" in finding:  # check already cites the student's own file and line
        return f"{file}:{line}"
    src = _line_src(run_dir / file, line)
    return src if src is not None else f"{label}/{file}:{line}"


def _line_src(path: Path, number: int) -> str | None:
    with contextlib.suppress(OSError, ValueError), path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if n == number:
                src = json.loads(raw).get("src")
                return src if isinstance(src, str) else None
    return None


def import_logs(sub: Submission, copy: Path, run_dir: Path) -> RunResult:
    """``lclock import`` of the submission's logs (never its code), then check."""
    result = RunResult("import", run_dir.name)
    files = log_files(copy, sub.imports["files"])
    if not files:
        result.failure = ("crash", "no log file matches import.files "
                          + ", ".join(sub.imports["files"]), "lclock.toml")
        return result
    args = ["import", *import_flags(sub.imports), *files, "-o", str(run_dir)]
    code, _out, err = lclock(args, copy, User())
    if not (run_dir / "run.json").is_file():
        lines = [ln for ln in err.splitlines() if ln.strip()]
        result.failure = ("crash", (lines[-1] if lines else f"import exited with {code}")[:300],
                          "lclock.toml")
        return result
    if code != 0:
        result.notes.append("import: " + " ".join(err.split())[:300])
    check_run(run_dir, run_dir.name, result)
    return result


def import_flags(imports: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key in ("preset", "regex", "event"):
        for value in imports.get(key, []):
            flags += [f"--{key}", value]
    if "date" in imports:
        flags += ["--date", imports["date"]]
    return flags


def log_files(copy: Path, patterns: list[str]) -> list[str]:
    """The regular files the globs name inside the copy (no symlink: it could point out)."""
    root = copy.resolve()
    found: set[str] = set()
    for pattern in patterns:
        for path in copy.glob(pattern):
            if path.is_symlink() or not path.is_file():
                continue
            if path.resolve().is_relative_to(root):
                found.add(str(path.relative_to(copy)))
    return sorted(found)
