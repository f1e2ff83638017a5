"""``lclock sim``: the model in virtual time, with the run options of ``lclock run``.

The options and their validation are those of ``lclock run`` (lclock.settings), plus the
network delay model, so a simulated run and a real run are asked for the same way and give
the same kind of run folder.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from lclock.console import Console
from lclock.errors import error_line, fail, prefix
from lclock.lifecycle import NAMES, StopRequest, recording
from lclock.logfile import LogWriteError
from lclock.runfolder import RunFolderError
from lclock.setting_table import add_options, flags_of
from lclock.settings import (
    SettingsError,
    check_folder_name,
    check_output_dir,
    load_settings_file,
    resolve,
)
from lclock.sim.engine import SimStopped, resolve_network, run_sim


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, "sim")
    parser.add_argument(
        "--run-id", metavar="ID", help="name of the run folder, which must not exist (default: sim-<seed>-<hash>, "
        "with -2, -3, ... added when that exists: a run folder is never reused)"
    )
    parser.add_argument(
        "--twice", action="store_true",
        help="run the simulation twice and name the first line that differs: a seed repeats "
             "a run byte for byte when every program is deterministic (one that reads the "
             "time or its own random numbers is caught this way); exit 1 when they differ",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="accepted as in lclock run; sim never writes a report (use lclock report)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        file = load_settings_file(args.settings)
        flags = flags_of(args)
        settings = resolve(file, flags)
        net = resolve_network(file, flags)
        out_where = "--output" if args.output is not None else (
            file.where("output") if "output" in file.run else "output"
        )
        output = check_output_dir(settings.output, out_where)
        if args.run_id is not None:
            check_folder_name(args.run_id, "--run-id", "the run id")
    except SettingsError as exc:
        return fail("sim", exc)
    stop: StopRequest = getattr(args, "stop_request", None) or StopRequest()
    console = Console(settings.quiet)
    with recording(stop):
        if stop.requested:  # stopped while starting: nothing created
            return stop.exit_code()
        second: Path | None = None
        try:
            run_dir, machines, meta = run_sim(settings, net, output, run_id=args.run_id, stop=stop)
            if args.twice and meta["status"] != "failed":
                again = None if args.run_id is None else f"{args.run_id}-twice"
                same = replace(settings, seed=meta["seed"])  # a drawn seed: the same again
                second, _m, _meta2 = run_sim(same, net, output, run_id=again, stop=stop)
        except RunFolderError as exc:
            where = "--run-id" if args.run_id is not None else out_where
            return fail("sim", f"{where}: {exc}")
        except SimStopped:
            sys.stderr.write(f"{prefix('sim')}: stopped by {NAMES.get(stop.cause or '', 'a signal')}\n")
            return stop.exit_code()
        except LogWriteError as exc:
            sys.stderr.write(error_line("sim", f"the run failed: cannot write the machine logs: {exc}") + "\n")
            return 1
    console.summary(machines)
    console.always(f"run folder: {run_dir}")
    if meta["status"] == "failed":
        sys.stderr.write(error_line("sim", f"the run failed: {meta['reason']}") + "\n")
        return 1
    return _compare(run_dir, second, settings.machines, console) if second is not None else 0


def _compare(first: Path, second: Path, machines: int, console: Console) -> int:
    """--twice: the same run twice, or where they part (the second folder kept then)."""
    import shutil

    from lclock.impl.twice import first_difference

    diff = first_difference(first, second, machines)
    if diff is None:
        shutil.rmtree(second, ignore_errors=True)
        console.always("twice: the two runs are the same, line for line (deterministic)")
        return 0
    sys.stderr.write(f"{prefix('sim')}: {diff.describe()}\nsecond run folder: {second}\n")
    return 1
