"""Writing an output file a user names: whole or not at all, never over a run's record.

A report, an export, a summary or an explorer page is written to a spare file beside its
target and renamed over it, so a reader (or a failed write: a full disk, Ctrl-C) never
finds half a file. But a target that is not a regular file (``-o /dev/null``, a FIFO, a
terminal) is written into as it is: renaming over it would replace the device itself, for
every program on the machine.

What the analysis commands write may never destroy or mix up a run folder: an output is
refused (``OutputRefused``, one line, exit 2) when it would replace a ``run.json`` or a
``machine-*.jsonl``, or land in a run folder other than the ones the command reads. This
module is the one place that rule lives: every writer here applies it.

Several files that belong together (a report: its PNGs, summary.json and report.html) are
written all or none (``all_or_none``): each to its spare file first, and only when every
one is complete are they renamed into place; a failure leaves the folder as it was.

A stop signal (Ctrl-C, SIGTERM, SIGHUP) unwinds every command that writes
(``lclock.lifecycle``): the clean-ups here run shielded from a second one, so a signal at
any moment leaves the target as it was or complete, and no spare behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from lclock.errors import BadInput
from lclock.lifecycle import current

# The files of a run folder's record (SPEC section 4): never an output's name.
RUN_RECORD = re.compile(r"(run\.json|machine-.*\.jsonl)")


class OutputRefused(BadInput, ValueError):
    """An output that would destroy or mix up a run folder (the CLI prints it, exit 2)."""


class OutputFailed(OSError, BadInput):
    """An output that could not be written, named by its target (not its spare file)."""

    def __init__(self, path: Path, exc: OSError, note: str = "") -> None:
        super().__init__(exc.errno, exc.strerror or str(exc), str(path))
        self.path = path
        self.note = note

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.strerror}{self.note}"


def _is_special(path: Path) -> bool:
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False  # absent (or unreadable): a new file


def _real(path: Path) -> Path:
    """The path with its links followed as far as they exist (what a write would reach)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a loop of links: as written
        return path.absolute()


def is_run_folder(folder: Path) -> bool:
    """A folder holding a run's record: a run.json (or a machine log)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return any(RUN_RECORD.fullmatch(n) for n in names)


def check_output(path: Path, runs: Sequence[Path] = (), what: str = "--output") -> None:
    """Raise ``OutputRefused`` when writing the file ``path`` would replace a run's record
    or write into a run folder other than ``runs`` (the folders the command reads)."""
    if _is_special(path):
        return  # a device or a FIFO is written into, never replaced
    real = _real(path)
    for name in (path.name, real.name):
        if RUN_RECORD.fullmatch(name):
            raise OutputRefused(f"{what} {path}: {name} is part of a run's record (no output "
                                "may be a run.json or a machine-*.jsonl): name another file")
    check_folder(real.parent, runs, what, shown=path)


def check_folder(folder: Path, runs: Sequence[Path] = (), what: str = "--output",
                 shown: Path | None = None) -> None:
    """Raise ``OutputRefused`` when ``folder`` is a run folder other than ``runs``."""
    real = _real(folder)
    if real in {_real(r) for r in runs} or not is_run_folder(real):
        return
    raise OutputRefused(f"{what} {shown if shown is not None else folder}: {real} is another "
                        "run's folder (it holds a run.json or machine logs): write elsewhere")


def _spare(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def _discard(*tmps: Path) -> str:
    """Remove spare files; says what is left behind when the folder forbids it (an
    append-only folder): their content is cut to nothing at least."""
    left = []
    with current().shielded():
        for tmp in tmps:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                with contextlib.suppress(OSError), open(tmp, "r+b") as fh:  # noqa: PTH123
                    fh.truncate(0)
                left.append(tmp.name)
    if not left:
        return ""
    names = ", ".join(left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
    one = len(left) == 1
    return (f" (the folder forbids removing files: empty {names} {'is' if one else 'are'} "
            f"left there; remove {'it' if one else 'them'} yourself)")


@contextlib.contextmanager
def replacing(path: Path, mode: str = "wb", *, runs: Sequence[Path] = (), **kw: Any
              ) -> Iterator[IO[Any]]:
    """An open file whose content becomes ``path`` when the block ends without an error.

    ``runs``: the run folders the command reads (it may write into those). Raises
    ``OutputRefused`` before anything is written, ``OutputFailed`` when the write fails
    (no spare file is left behind where the folder allows removing it).
    """
    check_output(path, runs)
    if _is_special(path):
        with open(path, mode, **kw) as fh:  # noqa: PTH123 - a device or a FIFO: write into it
            yield fh
        return
    tmp = _spare(path)
    done = False
    try:
        try:
            with open(tmp, mode.replace("w", "x"), **kw) as fh:  # noqa: PTH123
                yield fh
            os.replace(tmp, path)
            done = True
        except OSError as exc:
            raise OutputFailed(path, exc, _discard(tmp)) from None
    finally:
        if not done:
            _discard(tmp)


def write_bytes(path: Path, data: bytes, *, runs: Sequence[Path] = ()) -> None:
    with replacing(path, runs=runs) as fh:
        fh.write(data)


def write_with(path: Path, writer: Callable[[IO[str]], Any], *, runs: Sequence[Path] = (),
               **kw: Any) -> Any:
    """Text written by ``writer(fh)``; returns what it returns."""
    with replacing(path, "w", runs=runs, **kw) as fh:
        return writer(fh)


class Together:
    """Files staged by ``all_or_none``: ``add(path, data)`` writes one to its spare file."""

    def __init__(self, runs: Sequence[Path]) -> None:
        self.runs = runs
        self.staged: list[tuple[Path, Path]] = []

    def add(self, path: Path, data: bytes) -> None:
        check_output(path, self.runs)
        tmp = _spare(path)
        self.staged.append((tmp, path))
        try:
            with open(tmp, "xb") as fh:  # noqa: PTH123
                fh.write(data)
        except OSError as exc:
            raise OutputFailed(path, exc) from None


@contextlib.contextmanager
def all_or_none(runs: Sequence[Path] = ()) -> Iterator[Together]:
    """Files written together: all renamed into place when the block ends without an error,
    none when it fails (each spare file removed, the folder as it was)."""
    together = Together(runs)
    moved = 0
    try:
        yield together
        for tmp, path in together.staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise OutputFailed(path, exc) from None
            moved += 1
    except OutputFailed as exc:
        exc.note = _discard(*(tmp for tmp, _ in together.staged[moved:]))
        raise
    finally:
        _discard(*(tmp for tmp, _ in together.staged[moved:]))


