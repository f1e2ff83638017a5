"""The settings of a run's programs (SPEC 9): which machines are whose, and how they are held.

Read by the table of settings (lclock.setting_table) whenever a settings file or a flag
names them, so this module imports nothing heavy: a plain run never needs more of
lclock.impl than this.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from lclock.setting_checks import MAX_STRING, Run, fail


@dataclass(frozen=True)
class Limits:
    """What one machine's program may use (``--impl-limits cpu=S,mem=MiB,procs=N,fsize=MiB``).

    The defaults let every reference program run, node and the JVM included, with room.
    """

    cpu: int = 600
    mem: int = 1024
    procs: int = 64
    fsize: int = 256

    @classmethod
    def parse(cls, text: str) -> Limits:
        """``cpu=60,mem=512``: the keys given replace the defaults. ValueError says why not."""
        values: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in ("cpu", "mem", "procs", "fsize"):
                raise ValueError(f"{part!r}: expected cpu=S, mem=MiB, procs=N or fsize=MiB")
            if not value.isdigit() or not 1 <= int(value) <= 10**6:
                raise ValueError(f"{part!r}: the value must be a whole number from 1 to 1000000")
            if key in values:
                raise ValueError(f"{key} is given twice")
            values[key] = int(value)
        return cls(**values)

    def text(self) -> str:
        return f"cpu={self.cpu},mem={self.mem},procs={self.procs},fsize={self.fsize}"

    def to_json(self) -> dict[str, int]:
        return {"cpu": self.cpu, "mem": self.mem, "procs": self.procs, "fsize": self.fsize}




def programs(value: Any, where: str, run: Run) -> tuple[tuple[int, str], ...]:
    """``--impl CMD`` / ``--impl ID=CMD`` (repeatable), or settings.toml's ``impl``: a
    command for every machine, or a table of machine ids; as (id, command) pairs in id order.

    A command for every machine and one for some: the one for the machine wins.
    """
    every, some = _given(value, where)
    out: dict[int, str] = {}
    if every is not None:
        out = {mid: every for mid in range(1, run.n + 1)}
    for mid, cmd in some.items():
        if not 1 <= mid <= run.n:
            raise fail(where, f"machine {mid} does not exist (the run has {run.n} machines)")
        out[mid] = cmd
    return tuple(sorted(out.items()))


def _given(value: Any, where: str) -> tuple[str | None, dict[int, str]]:
    """The command for every machine (or None) and those for one machine each."""
    if isinstance(value, str):
        return _command(value, where), {}
    if isinstance(value, dict):  # settings.toml: [impl] with "2" = "./vm"
        some = {}
        for key, cmd in value.items():
            if not str(key).isdigit():
                raise fail(f"{where}.{key}", "a machine id (1, 2, ...) names each program")
            some[int(key)] = _command(cmd, f"{where}.{key}")
        return None, some
    if isinstance(value, list):  # the flags, each CMD or ID=CMD
        every: str | None = None
        some = {}
        for item in value:
            head, eq, rest = str(item).partition("=")
            if eq and head.strip().isdigit():
                mid = int(head)
                if mid in some:
                    raise fail(where, f"machine {mid} is given twice")
                some[mid] = _command(rest, where)
            elif every is not None:
                hint = "" if where.startswith("--") else (  # a settings file's list
                    f"; a command and its arguments are one string: "
                    f"{' '.join(map(str, value))!r}, not a list")
                raise fail(where, "a program for every machine is given twice (use ID=CMD "
                                  f"for one machine{hint})")
            else:
                every = _command(str(item), where)
        return every, some
    raise fail(where, "must be a command line, or a table of machine ids and commands")


def _command(cmd: Any, where: str) -> str:
    if not isinstance(cmd, str):
        raise fail(where, f"must be a command line (got {type(cmd).__name__})")
    if len(cmd) > MAX_STRING or "\0" in cmd:
        raise fail(where, "the command is too long or holds a NUL character")
    try:
        argv = shlex.split(cmd)
    except ValueError as e:
        raise fail(where, f"cannot split {cmd!r} like a shell line ({e})") from None
    if not argv:
        raise fail(where, "the command is empty")
    return cmd


def limits(value: Any, where: str, run: Run) -> str:
    """``--impl-limits cpu=S,mem=MiB,procs=N,fsize=MiB``: every limit, as text."""
    if not isinstance(value, str):
        raise fail(where, "must be text such as cpu=60,mem=512")
    try:
        return Limits.parse(value).text()
    except ValueError as e:
        raise fail(where, str(e)) from None


def show_programs(pairs: Any) -> list[str]:
    """The flags that give the same programs again."""
    out: list[str] = []
    for mid, cmd in pairs or ():
        out += [f"--impl={mid}={cmd}"]
    return out
