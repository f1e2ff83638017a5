"""The command line: one table of subcommands, each in its own module, imported lazily.

Only the chosen subcommand's module is imported, so ``lclock run`` does not pay for
matplotlib and the analysis code at start-up. Each command module provides
``add_arguments(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import signal
import sys

from lclock import __version__

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("lclock.runtime.launcher", "run the model: N machines as real processes"),
    "check": ("lclock.analysis.check_cmd", "verify a run folder against the model's rules"),
    "analyze": ("lclock.analysis.analyze_cmd", "print tables of jumps, drift and queues; write summary.json"),
    "report": ("lclock.analysis.report_cmd", "write report.html and PNG figures for a run folder"),
    "export": ("lclock.analysis.export_cmd", "export a run as a ShiViz log or a CSV table"),
    "schema": ("lclock.analysis.schema_cmd", "print the JSON Schema of the log lines"),
    "sim": ("lclock.sim.sim_cmd", "run the same model in virtual time, deterministically"),
    "experiment": ("lclock.experiment.experiment_cmd", "run named experiments of several trials"),
    "compare": ("lclock.experiment.compare_cmd", "compare runs or experiments side by side, with intervals"),
    "vm": ("lclock.tcp.vm_cmd", "run one machine of a TCP cluster (one per host or terminal)"),
    "merge": ("lclock.tcp.merge_cmd", "merge per-host run folders into one run folder"),
}


# Commands that own processes: a Ctrl-C while they are still importing is recorded here
# and handled by their own graceful stop, never a KeyboardInterrupt inside an import.
OWNS_PROCESSES = ("run", "vm", "experiment")
EARLY_SIGNALS: list[int] = []


def _record_early(signum: int, _frame: object) -> None:
    EARLY_SIGNALS.append(signum)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _available() -> dict[str, tuple[str, str]]:
    out = {}
    for name, (module, help_) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            out[name] = (module, help_)
    return out


def entry(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The program's entry point (console script, ``python -m lclock``, launcher.py).

    After a command that owns processes is done, Ctrl-C and SIGTERM are ignored for the
    last milliseconds of the interpreter's exit: at finalization CPython puts SIGINT back
    to its default action, and a late second Ctrl-C would end the process by the signal
    instead of with the status the command returned.
    """
    code = main(argv, prog)
    chosen = next((a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")), None)
    if chosen in OWNS_PROCESSES:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run one subcommand; Ctrl-C before a command has its own handlers exits 130 quietly."""
    try:
        return _main(argv, prog)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        return 1


def _main(argv: list[str] | None, prog: str | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _available()
    parser = _Parser(
        prog=prog or "lclock",
        description="A scale model of an asynchronous distributed system with Lamport and "
        "vector clocks: run it, check it, analyse it, plot it.",
    )
    parser.add_argument("--version", action="version", version=f"lclock {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # Only the chosen command's module is imported; the others appear in --help only.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    if chosen in OWNS_PROCESSES:
        signal.signal(signal.SIGINT, _record_early)
        signal.signal(signal.SIGTERM, _record_early)
    for name, (module, help_) in commands.items():
        p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        if name == chosen:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_main=mod.main)
    if prog == "launcher.py":
        parser.prog = "launcher.py"
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args._main(args))
