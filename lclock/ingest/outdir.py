"""Where ``lclock import`` writes: a spare folder beside the output, put in place whole at the
end, or removed, whatever stops the import (an error, Ctrl-C, SIGTERM, SIGHUP).

Only what lclock made is ever deleted: the spare folder (made here, with a unique name), an
earlier import that ``--force`` replaces, moved aside under a unique name made here (a
``.NAME.old`` folder someone else made is never touched), and only when it holds nothing but
what lclock commands write into a run folder. The output is looked at again just before the
folder is put in place, so a folder the user made there while the import ran is kept.

The signal handling is deliberately small and local (SIGTERM and SIGHUP become
:class:`Stopped` while the spare folder exists, so it is removed as after Ctrl-C); it is the
place to plug in a shared lifecycle for every command later.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from lclock.runfolder import RunFolderError, read_run_json

# What lclock commands write into a run folder (import, analyze, report, view, export).
_OURS = re.compile(r"run\.json|machine-\d+\.jsonl|summary\.json|report\.html|explorer[^/]*\.html"
                   r"|[\w.-]+\.png|shiviz\.log|events\.csv|total-order\.csv")
SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class OutputTaken(Exception):
    """The output, free (or an earlier import, with ``--force``) when the import began, is
    now something else: a folder made meanwhile is never replaced."""


class Stopped(Exception):
    """A stop signal came while the import was writing; nothing was written."""

    def __init__(self, signum: int, written: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.written = written  # it came after the folder was in place


def output_problem(out: Path, force: bool) -> str | None:
    """Why ``out`` cannot be written (or replaced, with ``force``); None if it can."""
    if not out.exists() and not out.is_symlink():
        return None
    if not out.is_dir():
        return f"--output {out}: exists and is not a folder"
    try:
        entries = list(_entries(out))
    except OSError as exc:
        return f"--output {out}: cannot list it: {exc.strerror or exc}"
    if not entries:
        return None
    if force and _is_import(out):
        foreign = next((e for e in entries if not _is_ours(e)), None)
        if foreign is None:
            return None
        return (f"--output {out}: holds {foreign.name!r}, which lclock did not write; --force "
                "replaces only an earlier import (move that file away first)")
    why = " (--force replaces only an earlier import)" if force else \
        " (choose another --output, or --force to replace an earlier import)"
    return f"--output {out}: already exists and is not empty{why}"


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        return list(it)


def _is_ours(entry: os.DirEntry[str]) -> bool:
    try:
        regular = stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return False
    return regular and _OURS.fullmatch(entry.name) is not None


def _is_import(folder: Path) -> bool:
    """Whether run.json says an import wrote the folder (read with bounds: it may be a FIFO
    or a link to /dev/zero)."""
    try:
        meta = read_run_json(folder)
    except RunFolderError:
        return False
    return meta.get("mode") == "import"


class Staging:
    """The spare folder ``folder`` beside ``out``: ``commit()`` puts it in place; leaving the
    ``with`` block without it removes the folder (and any parent folder made for it)."""

    def __init__(self, out: Path, force: bool = False) -> None:
        self.out = out
        self.force = force
        self.made: list[Path] = []
        self.folder = Path()
        self.committed = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Staging:
        self._old = {s: signal.signal(s, _raise_stopped) for s in SIGNALS}
        try:
            self._make_parents()
            self.folder = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.",
                                                dir=self.out.parent))
        except BaseException:
            self._undo()
            raise
        return self

    def _make_parents(self) -> None:
        missing = []
        for p in [self.out.parent, *self.out.parent.parents]:
            if p.exists():
                break
            missing.append(p)
        for p in reversed(missing):
            p.mkdir()
            self.made.append(p)

    def commit(self) -> None:
        """Put the folder in place of ``out`` (an earlier import is moved aside, then
        removed); a signal meanwhile waits until the folder is in place."""
        with _deferred() as pending:
            self._place()
        if pending:
            raise Stopped(pending[0], written=True)

    def _place(self) -> None:
        out = self.out
        problem = output_problem(out, self.force)  # again: the import may have run minutes
        if problem is not None:
            raise OutputTaken(problem)
        os.chmod(self.folder, 0o755)
        aside = None
        if out.is_symlink():  # the link goes; what it pointed to stays
            out.unlink()
        elif out.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rename(out, aside)  # over the empty folder just made: a name no one else uses
        self.folder.rename(out)
        self.committed = True
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._undo()

    def _undo(self) -> None:
        with _deferred() as pending:
            try:
                if not self.committed and self.folder != Path():
                    shutil.rmtree(self.folder, ignore_errors=True)
                    self._remove_parents()
            finally:
                for sig, handler in self._old.items():
                    signal.signal(sig, handler)
        if pending:
            raise Stopped(pending[0], written=self.committed)

    def _remove_parents(self) -> None:
        for p in reversed(self.made):
            try:
                p.rmdir()
            except OSError:
                break


@contextlib.contextmanager
def _deferred() -> Iterator[list[int]]:
    """Signals (stop signals and Ctrl-C) that come meanwhile are noted, not acted on."""
    pending: list[int] = []
    sigs = (*SIGNALS, signal.SIGINT)
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in sigs}
    try:
        yield pending
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)
