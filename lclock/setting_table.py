"""Every setting once: its flag, its place in settings.toml, its type, its check, its help and
how it reads back as a flag.

From this one table come the options of ``lclock run``, ``sim`` and ``vm`` (``add_options``),
the keys a settings file and an experiment may have (``keys_of``), the order and the checks
of validation (lclock.settings), and the command line of a planned trial (``to_flags``).
A new setting is one ``Key`` here (and its default: a field of the dataclass it lands in),
plus its check in lclock.setting_checks if none fits. A check gets the run's machines and
length: a fault or clock key always, a run key with ``late=True`` (a schedule such as
``ID@TIME;...`` written as the fault schedules are; a table of machine ids). ``toml="any"``
lets the check decide the type (a string or a table); ``show`` writes it back as the flag.

The defaults themselves stay in the dataclasses the run uses (RunSettings, FaultSettings,
ClockSettings); a help text's ``{default}`` is filled in from them, so the two cannot disagree.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from lclock import setting_checks as c
from lclock.core.faults import LATENCY_DISTS
from lclock.errors import shown

DEFAULT_SETTINGS_FILE = "settings.toml"
DELAY_MODELS = ("constant", "uniform", "exponential")
#: Default delay model of the simulator: what real runs over socket pairs measure (NOTEBOOK.md).
DEFAULT_DELAY = "exponential"
DEFAULT_DELAY_MEAN = 0.0002
MAX_DELAY_MEAN = 60.0
#: Default mean tick lateness of the simulator, calibrated on real runs (NOTEBOOK.md).
DEFAULT_JITTER = 0.0007
MAX_JITTER = 1.0

RUNS = frozenset({"run", "sim", "vm"})
FAULTS = "faults (SPEC section 6; also the [faults] table of settings.toml)"
PROGRAMS = "your implementation as a machine (SPEC section 9; docs/GUIDE-own-implementation.md)"
CLOCKS = "clocks (SPEC section 7; also the [clocks] table of settings.toml)"


# -- flag values: argparse types -----------------------------------------------------------------


def integer(text: str) -> int:
    """An integer flag's value; the range is checked where the setting is validated."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (got {shown(text)})") from None


def number(text: str) -> float:
    """A number flag's value; nan and infinity are not numbers of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number such as 30 or 0.5 (got {shown(text)})") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number (got {shown(text)})")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """``1,3,6``: every item an integer; an empty item (``1,,3``, ``,``) is a mistake."""
    parts = text.split(",")
    if not text.strip() or any(not x.strip() for x in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,3,6 (got {shown(text)})")
    return tuple(integer(x) for x in parts)


def float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0,5,-5 (got {text!r})") from None


# -- read-back: a value as its flag's argument ----------------------------------------------------


def num(x: float) -> str:
    """A number as the flags read it, exactly (the shortest text that reads back as x)."""
    return repr(float(x))


def nums(xs: Iterable[float]) -> str:
    return ",".join(num(x) for x in xs)


def ints(xs: Iterable[int]) -> str:
    return ",".join(str(x) for x in xs)


def show_partitions(ps: Any) -> str:
    return ";".join(f"{num(p.start)}-{num(p.end)}:" + "|".join(ints(g) for g in p.groups) for p in ps)


def show_pauses(ps: Any) -> str:
    return ";".join(f"{p.machine}@{num(p.start)}+{num(p.length)}" for p in ps)


def show_crashes(cs: Any) -> str:
    return ";".join(f"{x.machine}@{num(x.time)}" for x in cs)


def show_snapshots(ss: Any) -> str:
    return ";".join(f"{x.machine}@{num(x.time)}" for x in ss)


def show_bumps(bs: Any) -> str:
    return ";".join(f"{b.machine}@{num(b.time)}:{'+' if b.ms > 0 else '-'}{num(abs(b.ms))}" for b in bs)


def show_links(links: Any) -> str:
    return ";".join(f"{a}->{b}:latency_ms={num(k.latency_ms)},latency_dist={k.latency_dist},"
                    f"loss={num(k.loss)},duplicate={num(k.duplicate)}" for (a, b), k in links)


def _impl_back(s: Any) -> list[str]:
    from lclock.impl.config import show_programs

    return show_programs(s.impl)


def clocks_back(s: Any) -> list[str]:
    """``--clocks`` says which clocks besides Lamport's are kept: vector (a run key) and hlc."""
    if s.vector_clocks and s.clocks.hlc:
        return []
    return ["--clocks", ",".join(["vector"] * s.vector_clocks + ["hlc"] * s.clocks.hlc) or "none"]


# -- the table -----------------------------------------------------------------------------------


class Key(NamedTuple):
    """One setting. ``path`` is its place in settings.toml (``faults.loss``; None: a flag
    only); ``name`` its name in the flags (argparse's dest) and in validation."""

    name: str
    path: str | None
    check: c.Check | None = None
    toml: str = "any"  # what a settings file must give: int, float, bool, str, host, intlist, ...
    flag: str | None = None
    arg: Callable[[str], Any] | None = None
    metavar: str | None = None
    help: str = ""
    const: bool | None = None  # a flag without a value: it stores this
    choices: tuple[str, ...] | None = None
    field: str | None = None  # the value in RunSettings, dotted: faults.default.loss
    show: Callable[[Any], str] = str
    back: Callable[[Any], list[str]] | None = None  # read-back that is not one flag and value
    commands: frozenset[str] = RUNS
    experiment: bool = False  # also a key of [experiments.NAME] (faults and clocks: all of them)
    always: bool = False  # read back even at its default (a planned trial says it)
    late: bool = False  # a run key checked against the run (machines, duration) once known
    append: bool = False  # a flag given several times: its values as a list
    group: str = ""
    help_in: tuple[tuple[str, str], ...] = ()  # (command, help) where its help differs

    @property
    def table(self) -> str:
        return self.path.rpartition(".")[0] if self.path else ""

    @property
    def key(self) -> str:
        return (self.path or "").rpartition(".")[2]

    @property
    def where(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


def _run(name: str, toml: str, check: c.Check | None, flag: str, help: str, **kw: Any) -> Key:
    return Key(name, name, check, toml, flag, help=help, field=kw.pop("field", name), **kw)


def _fault(name: str, check: c.Check, flag: str, help: str, **kw: Any) -> Key:
    field = f"faults.default.{name}" if name in c.LINK_KEYS else f"faults.{name}"
    return Key(name, f"faults.{name}", check, "any", flag, help=help, field=field, group=FAULTS, **kw)


def _clock(name: str, check: c.Check, flag: str, help: str, **kw: Any) -> Key:
    field = kw.pop("field", f"clocks.{name}")
    return Key(name, f"clocks.{name}", check, "any", flag, help=help, field=field, group=CLOCKS, **kw)


def _sim(name: str, toml: str, check: c.Check, flag: str, help: str, **kw: Any) -> Key:
    kw.setdefault("arg", float)
    return Key(name, f"sim.{name}", check, toml, flag, help=help, commands=frozenset({"sim"}), **kw)


PROBABILITY = c.within(0, 1, "a probability from 0 to 1")
TABLE: tuple[Key, ...] = (
    _run("duration", "float", c.duration, "--duration", "length of the run (default {default})",
         arg=number, metavar="SECONDS", show=num, experiment=True, always=True),
    _run("machines", "int", c.integer(2, c.MAX_MACHINES), "--machines",
         f"number of machines, 2..{c.MAX_MACHINES} (default {{default}})",
         arg=integer, metavar="N", experiment=True, always=True),
    _run("seed", "int", c.integer(0, 2**63 - 1), "--seed",
         "seed of the random choices (default: random, recorded)",
         arg=integer, metavar="INT", experiment=True, always=True),
    _run("rates", "intlist", None, "--rates",
         "fix each machine's ticks per second, e.g. 1,3,6 (default: drawn)",
         arg=int_list, metavar="R1,R2,...", show=ints, experiment=True),
    _run("rate_min", "int", c.integer(1, c.MAX_RATE), "--rate-min", "smallest drawn rate (default {default})",
         arg=integer, metavar="R", experiment=True, always=True),
    _run("rate_max", "int", c.integer(1, c.MAX_RATE), "--rate-max", "largest drawn rate (default {default})",
         arg=integer, metavar="R", experiment=True, always=True),
    _run("dice_sides", "int", c.integer(3, 1_000_000), "--dice-sides",
         "sides of the die; 1-3 send, others internal (default {default})",
         arg=integer, metavar="K", experiment=True, always=True),
    _run("vector_clocks", "bool", None, "--no-vector-clocks",
         "do not keep vector clocks, for large N (default: kept)", const=False, experiment=True,
         field=None),  # read back by --clocks
    Key("settings", None, flag="--settings", metavar="PATH",
        help=f"settings file (default ./{DEFAULT_SETTINGS_FILE} if present)"),
    _run("output", "str", c.folder, "--output", "folder for run folders (default ./{default})",
         metavar="DIR", always=True),
    _run("quiet", "bool", None, "--quiet", "print nothing while running (default: off)", const=True),
    _fault("latency_ms", c.within(0, c.MAX_LATENCY_MS, f"a number of ms from 0 to {c.MAX_LATENCY_MS:g}"),
           "--latency", "mean extra one-way delay of every message, in ms (default {default})",
           arg=float, metavar="MS", show=num),
    _fault("latency_dist", c.one_of(LATENCY_DISTS), "--latency-dist",
           "constant, uniform (0 to 2 x mean) or exponential (default {default})", choices=LATENCY_DISTS),
    _fault("loss", PROBABILITY, "--loss", "probability that a message is dropped (default {default})",
           arg=float, metavar="P", show=num),
    _fault("duplicate", PROBABILITY, "--duplicate",
           "probability that a message is delivered twice (default {default})",
           arg=float, metavar="P", show=num),
    _fault("reorder", c.boolean, "--reorder", "each message takes its own delay, so messages can "
           "overtake on a link (default: off, links stay FIFO)", const=True),
    _fault("partitions", c.later("partitions"), "--partition",
           "START-END:GROUP|GROUP... in s since the start (or in %% of the run), ';' between "
           "several; e.g. 10-20:1|2,3 or 25%%-50%%:3 (machines not named form one more group)",
           metavar="SPEC", show=show_partitions),
    _fault("pauses", c.later("pauses"), "--pause", "ID@START+LENGTH in s (or %% of the run), e.g. 2@15+5 "
           "or 2@50%%+10%% (';' between several)", metavar="SPEC", show=show_pauses),
    _fault("crashes", c.later("crashes"), "--crash", "ID@TIME in s (or %% of the run), e.g. 3@20 or 3@75%%",
           metavar="SPEC", show=show_crashes),
    _fault("nemesis", c.later("nemesis"), "--nemesis", "random faults of these kinds (partition,pause,"
           "crash), one every --nemesis-interval seconds, each lasting half of it",
           metavar="KINDS", show=",".join),
    _fault("nemesis_interval", c.within(1e-3, c.WEEK, "a number of seconds > 0"), "--nemesis-interval",
           "seconds between the nemesis's faults (default {default})", arg=float, metavar="S", show=num),
    _fault("links", c.later("links"), "--link", "one link's own faults, A->B:KEY=VALUE,..., e.g. "
           "1->2:latency_ms=50,loss=0.1 (';' between links; keys latency_ms, latency_dist, loss, "
           "duplicate)", metavar="SPEC", show=show_links),
    _clock("skew_ms", c.within(0, c.MAX_SKEW_MS, f"a number of ms from 0 to {c.MAX_SKEW_MS:g}"),
           "--clock-skew", "each machine's clock offset drawn from -MS/2..+MS/2 (default {default})",
           arg=float, metavar="MS", show=num),
    _clock("drift_ppm", c.within(0, c.MAX_DRIFT_PPM, f"a number of ppm from 0 to {c.MAX_DRIFT_PPM:g}"),
           "--clock-drift", "each machine's clock rate error drawn from -PPM..+PPM (default {default})",
           arg=float, metavar="PPM", show=num),
    _clock("bumps", c.later("bumps"), "--clock-bump", "ID@TIME:MS, e.g. 2@10:+500 or 2@50%%:-500: that "
           "machine's clock jumps by MS at TIME s (or %% of the run; ';' between several)",
           metavar="SPEC", show=show_bumps),
    _clock("clocks", c.later("clock_names"), "--clocks",
           "clocks kept besides Lamport: vector, hlc, or none (default vector,hlc)",
           metavar="LIST", field=None, back=clocks_back),
    _clock("offsets_ms", c.per_machine(-c.MAX_SKEW_MS, c.MAX_SKEW_MS, "a number of ms"), "--clock-offsets",
           "fix each machine's clock offset instead of drawing it (one per machine)",
           arg=float_list, metavar="MS,...", show=nums),
    _clock("drifts_ppm", c.per_machine(-c.MAX_DRIFT_PPM, c.MAX_DRIFT_PPM, "a number of ppm"),
           "--clock-drifts", "fix each machine's clock rate error instead of drawing it",
           arg=float_list, metavar="PPM,...", show=nums),
    _run("transport", "str", c.transport, "--transport", "how the machines talk (default {default})",
         choices=("socketpair", "tcp"), commands=frozenset({"run"}), always=True),
    _run("report", "bool", None, "--no-report", "do not write report.html at the end", const=False,
         commands=frozenset({"run", "vm"}),
         help_in=(("vm", "do not write report.html when the run's folder is complete"),)),
    _run("impl", "any", c.lazy("lclock.impl.config", "programs"), "--impl",
         "run machines as your program, which speaks SPEC 9's protocol on stdin/stdout: CMD for "
         "every machine, ID=CMD for one (repeat it); split like a shell line, never run by one",
         metavar="[ID=]CMD", append=True, late=True, field="impl", back=_impl_back,
         commands=frozenset({"sim", "run", "vm"}), experiment=True, group=PROGRAMS),
    _run("impl_timeout", "float", c.within(1e-3, 3600.0, "a number of seconds from 0.001 to 3600"),
         "--impl-timeout", "seconds a program has to answer a tick (default {default}; init has "
         "10 s; the simulator waits 10x as long before calling a silent program hung)",
         arg=number, metavar="S", show=num, commands=frozenset({"sim", "run", "vm"}), experiment=True,
         group=PROGRAMS),
    _run("impl_limits", "str", c.lazy("lclock.impl.config", "limits"), "--impl-limits",
         "what each program may use: cpu=S,mem=MiB,procs=N,fsize=MiB (the keys given replace "
         "the defaults cpu=600,mem=1024,procs=64,fsize=256)", metavar="LIMITS",
         commands=frozenset({"sim", "run", "vm"}), experiment=True, group=PROGRAMS),
    _run("snapshots", "any", c.later("snapshots"), "--snapshot",
         "Chandy-Lamport snapshots, ID@TIME in s (or %% of the run), ';' between several: "
         "machine ID records its state and sends markers at TIME (SPEC 12)",
         metavar="SPEC", show=show_snapshots, late=True,
         experiment=True),
    _run("mutant", "str", c.lazy("lclock.analysis.bugs", "mutant_setting"), "--mutant",
         "run the built-in model with this classic bug (SPEC 10; lclock check --bugs lists them)",
         metavar="NAME", commands=frozenset({"run", "sim"}), experiment=True),
    Key("tcp_host", "tcp.host", toml="host"),
    Key("tcp_ports", "tcp.ports", toml="intlist"),
    Key("tcp_secret", "tcp.secret", toml="str"),
    Key("tcp_hosts", "tcp.hosts", toml="hostlist"),
    _sim("delay", "str", c.one_of(DELAY_MODELS), "--delay",
         "model of the host's own network delay, as a socket on this computer has it "
         f"(default from [sim], else {DEFAULT_DELAY}); a fault plan's --latency takes over when "
         "longer (a message arrives at the later of the two)", choices=DELAY_MODELS, arg=None),
    _sim("delay_mean", "float", c.within(0, MAX_DELAY_MEAN, f"a number of seconds from 0 to {MAX_DELAY_MEAN:g}"),
         "--delay-mean", f"mean one-way delay of the host's network, in seconds (default {DEFAULT_DELAY_MEAN:g})",
         metavar="SECONDS"),
    _sim("delay_max", "float", c.above_zero, "--delay-max", "cap on every drawn delay", metavar="SECONDS"),
    _sim("jitter", "float", c.within(0, MAX_JITTER, f"a number of seconds from 0 to {MAX_JITTER:g}"),
         "--jitter", f"mean lateness of a tick after its deadline (default {DEFAULT_JITTER:g}; 0 = "
         "exactly on time)", metavar="SECONDS"),
)
KEYS: dict[str, Key] = {k.name: k for k in TABLE}
#: The [experiments.NAME] keys that are not settings of a run.
EXPERIMENT_ONLY = {"description": "text", "trials": "int"}


def keys_of(table: str) -> list[Key]:
    """The keys of one table of settings.toml ("" is the top level), in the table's order."""
    return [k for k in TABLE if k.path is not None and k.table == table]


# -- generated: the options, the flags given, the flags that say a RunSettings --------------------


def add_options(p: argparse.ArgumentParser, command: str, defaults: Any = None) -> None:
    """The options of ``command`` (run, sim, vm), each from its entry in the table.

    ``defaults`` (a RunSettings) fills each help text's ``{default}``.
    """
    if defaults is None:
        from lclock.settings import RunSettings

        defaults = RunSettings()
    groups: dict[str, Any] = {}
    for k in TABLE:
        if k.flag is None or command not in k.commands:
            continue
        if k.group and k.group not in groups:
            groups[k.group] = p.add_argument_group(k.group)
        shown_default = _default_text(field_of(defaults, k.field)) if k.field else ""
        text = dict(k.help_in).get(command, k.help)
        kw: dict[str, Any] = {"help": text.replace("{default}", shown_default), "dest": k.name}
        if k.const is not None:
            kw.update(action="store_const", const=k.const, default=None)
        elif k.append:
            kw.update(action="append", metavar=k.metavar)
        else:
            kw.update(type=k.arg, metavar=k.metavar, choices=k.choices)
        (groups[k.group] if k.group else p).add_argument(k.flag, **kw)


def _default_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def field_of(s: Any, field: str) -> Any:
    for part in field.split("."):
        s = getattr(s, part)
    return s


def flags_of(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, by name; None where a flag was not given."""
    return {k.name: getattr(args, k.name, None) for k in TABLE if k.flag and k.path}


def to_flags(s: Any) -> list[str]:
    """The ``lclock run`` flags that give exactly the settings ``s`` (a RunSettings) again,
    over the built-in defaults (``--settings /dev/null``)."""
    from lclock.settings import RunSettings

    default = RunSettings()
    out: list[str] = []
    for k in TABLE:
        if k.back is not None:  # such a key says itself (``--impl`` as ID=CMD flags)
            out += k.back(s)
            continue
        if k.field is None or k.flag is None or "run" not in k.commands:
            continue
        value = field_of(s, k.field)
        if value is None or (value == field_of(default, k.field) and not k.always):
            continue
        if k.const is None:
            text = k.show(value)
            # argparse takes "-0.5,1" for an option: such a value is glued to its flag
            out += [f"{k.flag}={text}"] if text.startswith("-") else [k.flag, text]
        elif value == k.const:
            out.append(k.flag)
    return out
