"""The command line: one table of subcommands, each in its own module, imported lazily.

Only the chosen subcommand's module is imported, so ``lclock run`` does not pay for
matplotlib and the analysis code at start-up. Each command provides
``add_arguments(parser)`` and ``main(args) -> int``: a module, or an object of a module
named ``module:object`` (several small commands share one module). A command that meets
bad input raises ``lclock.errors.BadInput``; :func:`_main` prints it and returns 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys
from typing import Any, NoReturn

from lclock import __version__, errors
from lclock.lifecycle import (
    STOP_SIGNALS,
    Interrupted,
    Stage,
    StopRequest,
    children_ignore_sigint,
    end_of_command,
    install,
    restore,
    stop_with_parent_if_asked,
)

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("lclock.runtime.launcher", "run the model: N machines as real processes"),
    "check": ("lclock.analysis.commands:check", "verify a run folder against the model's rules"),
    "analyze": ("lclock.analysis.commands:analyze", "print tables of jumps, drift and queues; write summary.json"),
    "report": ("lclock.analysis.commands:report", "write report.html and PNG figures for a run folder"),
    "export": ("lclock.analysis.commands:export", "export a run: a ShiViz log, a CSV table, the total order"),
    "view": ("lclock.explorer.view_cmd", "write explorer.html: the run in the browser, causality on a click"),
    "schema": ("lclock.analysis.commands:schema", "print the JSON Schema of the log lines"),
    "trace": ("lclock.analysis.commands:trace", "a message's life and an event's causal past and future"),
    "hb": ("lclock.analysis.commands:hb", "did A happen before B? with the proof; --lamport-lies"),
    "cuts": ("lclock.analysis.cuts_cmd", "is a cut consistent? count and list the consistent cuts of a window"),
    "import": ("lclock.ingest.import_cmd", "turn text logs of your own implementation into a run folder"),
    "sim": ("lclock.sim.sim_cmd", "run the same model in virtual time, deterministically"),
    "experiment": ("lclock.experiment.experiment_cmd", "run named experiments of several trials"),
    "compare": ("lclock.experiment.compare_cmd", "compare runs or experiments side by side, with intervals"),
    "vm": ("lclock.cluster.vm_cmd", "run one machine of a TCP cluster (one per host or terminal)"),
    "merge": ("lclock.cluster.merge_cmd", "merge per-host run folders into one run folder"),
    "shrink": ("lclock.shrink.shrink_cmd", "the smallest simulated run that still shows a run's finding"),
    "grade": ("lclock.grade.grade_cmd", "grade a class: run, check and score every submission"),
}


# Commands that run something and stop it gracefully: their stop signals are recorded
# (lclock.lifecycle) from before their module is imported, so a Ctrl-C while they are still
# importing is a stop request like any other, never a KeyboardInterrupt inside an import.
OWNS_PROCESSES = ("run", "vm", "experiment", "sim", "shrink")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem, exit status 2.

    The line has the shape of every other bad-input line (lclock.errors): ``lclock run:
    error: --duraton: unknown option (did you mean --duration?)``. A command's parser
    refuses what it does not know itself, so the suggestion comes from its own options.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if " " not in self.prog:  # the top-level parser: the name the user typed
            errors.set_program(self.prog)

    def _command(self) -> str | None:
        return self.prog.split(" ", 1)[1] if " " in self.prog else None

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        if extras and self._command() is not None:
            self.error(self._unknown(extras))
        return ns, extras

    def _unknown(self, extras: list[str]) -> str:
        first = extras[0]
        if not first.startswith("-") or first == "-":
            return f"unexpected argument {errors.shown(first)}"
        flag = first.split("=", 1)[0]
        known = [o[2:] for o in self._option_string_actions if o.startswith("--")]
        close = errors.closest(flag.lstrip("-"), known)
        hint = f"did you mean --{close}?" if close else f"see {errors.prefix(self._command())} --help"
        return f"{errors.printable(flag)}: unknown option ({hint})"

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(errors.error_line(self._command(), self._reword(message)) + "\n")
        sys.exit(errors.EXIT_BAD_INPUT)

    def _reword(self, message: str) -> str:
        """argparse's words in ours: the flag first, a suggestion for a mistyped choice."""
        if message.startswith("unrecognized arguments: "):
            return self._unknown(message[len("unrecognized arguments: "):].split(" "))
        m = re.fullmatch(r"argument (?P<arg>[^:]+): (?P<rest>.*)", message, re.S)
        if m is None:
            return message
        arg = m["arg"].split("/")[-1]
        rest = m["rest"]
        choice = re.fullmatch(r"invalid choice: (?P<value>.*?) \(choose from (?P<choices>.*)\)", rest, re.S)
        if choice is not None:
            value = _literal(choice["value"])
            action = next((a for a in self._actions if arg in (a.metavar, a.dest, *a.option_strings)), None)
            choices = [str(c) for c in (action.choices or [])] if action is not None else []
            close = errors.closest(value, choices)
            what = "unknown command" if arg == "COMMAND" else "invalid choice"
            hint = f"did you mean {close}?" if close else "choose from " + ", ".join(choices)
            return f"{arg}: {what} {errors.shown(value)} ({hint})"
        return f"{arg}: {rest}"


def _literal(text: str) -> str:
    """The value in argparse's message, which quotes it with repr()."""
    import ast  # only on the way to an error

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, str) else text


def entry(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The program's entry point (console script, ``python -m lclock``, launcher.py).

    After a command that owns processes is done, Ctrl-C and SIGTERM are ignored for the
    last milliseconds of the interpreter's exit: at finalization CPython puts SIGINT back
    to its default action, and a late second Ctrl-C would end the process by the signal
    instead of with the status the command returned.
    """
    stop_with_parent_if_asked()
    code = main(argv, prog)
    chosen = next((a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")), None)
    if chosen in OWNS_PROCESSES:
        end_of_command()
    return code


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run one subcommand; Ctrl-C before a command has its own handlers exits 130 quietly."""
    try:
        code = _main(argv, prog)
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's exit
        return code
    except Interrupted as exc:  # a stop signal unwound a command that writes (lclock.lifecycle)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: a normal end for a filter
        _silence_stdout()
        # ... but not for a run, which it cut short
        args = sys.argv[1:] if argv is None else argv
        return 1 if next((a for a in args if not a.startswith("-")), None) in OWNS_PROCESSES else 0
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        _silence_stdout()  # standard output is a full disk or a broken device: say so once
        sys.stderr.write(f"lclock: cannot write the output: {exc.strerror or exc}\n")
        return 1


#: What a write to a full or failing standard output raises (``> /dev/full``, a full disk);
#: a command that writes files says so for its own files before this is reached.
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's final flush of what is left
    in the buffer does not fail again and print a warning."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(argv: list[str] | None, prog: str | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    # A command that owns processes polls its stop request; any other is one call stack,
    # unwound by a stop signal, so that what it was writing is discarded (lclock.outfile).
    owner = chosen in OWNS_PROCESSES
    # only recorded while the command's modules are imported: an exception raised inside
    # the start of a C extension (orjson's) can crash the interpreter (SIGSEGV)
    stop = StopRequest(stage=Stage.RUNNING if owner else Stage.WRITING)
    previous = install(stop)
    early = chosen == "run" and not {"-h", "--help"} & set(argv)
    try:
        if early:  # the forkserver starts its interpreter and preload while we import
            start_helpers_early(stop)
        return _command(argv, prog, chosen, stop)
    finally:
        if early:
            from lclock.runtime.helpers import end_helpers

            end_helpers()
        if not owner:  # an owner's last moments are covered by ``entry``
            restore(previous)


def start_helpers_early(stop: StopRequest) -> None:
    """``lclock run``'s forkserver and resource tracker, started before the launcher's
    imports and settings instead of after them: on another core, they are ready (the
    forkserver's preload of the worker done) by the time the first worker is asked for."""
    from lclock.runtime.helpers import start_context, start_helpers

    start_helpers(start_context(), lambda: children_ignore_sigint(stop, STOP_SIGNALS))


def _command(argv: list[str], prog: str | None, chosen: str | None, stop: StopRequest) -> int:
    parser = _Parser(
        prog=prog or "lclock",
        description="A scale model of an asynchronous distributed system with Lamport and "
        "vector clocks: run it, check it, analyse it, plot it.",
    )
    parser.add_argument("--version", action="version", version=f"lclock {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # Only the chosen command's module is imported; the others appear in --help only.
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        if name == chosen:
            path, _, attr = module.partition(":")
            mod = importlib.import_module(path)
            command = getattr(mod, attr) if attr else mod
            command.add_arguments(p)
            p.set_defaults(_main=command.main)
    if prog == "launcher.py":
        parser.prog = "launcher.py"
    args = parser.parse_args(argv)
    args.stop_request = stop
    if args.command is None:
        parser.print_help()
        return 2
    if chosen not in OWNS_PROCESSES:
        import orjson  # noqa: F401 - every writer's; imported before a signal may unwind

        if stop.requested:
            return stop.exit_code()
        stop.unwind = True
    try:
        return int(args._main(args))
    except errors.BadInput as exc:  # the one place a bad input becomes its line and exit 2
        return errors.fail(args.command, exc)
