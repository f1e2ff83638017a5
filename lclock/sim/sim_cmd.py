"""``lclock sim``: the model in virtual time, with the run options of ``lclock run``.

The options and their validation are those of ``lclock run`` (lclock.settings), plus the
network delay model, so a simulated run and a real run are asked for the same way and give
the same kind of run folder.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from lclock.options import add_run_options, run_flags
from lclock.settings import SettingsError, check_output_dir, load_settings_file, resolve
from lclock.sim.engine import DELAY_MODELS, MachineResult, Terminated, resolve_network, run_sim


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_options(parser)
    parser.add_argument(
        "--delay",
        choices=DELAY_MODELS,
        help="network delay model (default from [sim], else exponential)",
    )
    parser.add_argument(
        "--delay-mean", type=float, metavar="SECONDS", help="mean one-way delay (default 0.0002)"
    )
    parser.add_argument(
        "--delay-max", type=float, metavar="SECONDS", help="cap on every drawn delay"
    )
    parser.add_argument(
        "--jitter",
        type=float,
        metavar="SECONDS",
        help="mean lateness of a tick after its deadline (default 0.0007; 0 = exactly on time)",
    )
    parser.add_argument(
        "--run-id", metavar="ID", help="name of the run folder (default: sim-<seed>-<hash>)"
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="accepted as in lclock run; sim never writes a report (use lclock report)",
    )


def print_summary(run_dir: Path, results: list[MachineResult], out: Any = None) -> None:
    out = out or sys.stdout
    out.write(f"{'machine':>7} {'rate':>5} {'ticks':>7} {'lclock':>7} {'sent':>6} "
              f"{'recv':>6} {'unproc':>6} {'maxq':>5}\n")
    for r in results:
        out.write(
            f"{r.id:>7} {r.rate:>5} {r.ticks:>7} {r.lclock:>7} {r.sent:>6} {r.received:>6} "
            f"{r.unprocessed:>6} {r.max_queue:>5}\n"
        )
    out.write(f"run folder: {run_dir}\n")


def main(args: argparse.Namespace) -> int:
    try:
        file = load_settings_file(args.settings)
        settings = resolve(file, run_flags(args))
        net = resolve_network(
            file,
            {
                "delay": args.delay,
                "delay_mean": args.delay_mean,
                "delay_max": args.delay_max,
                "jitter": args.jitter,
            },
        )
        out_where = "--output" if args.output is not None else (
            file.where("output") if "output" in file.run else "output"
        )
        output = check_output_dir(settings.output, out_where)
        if args.run_id is not None and (
            not args.run_id or "/" in args.run_id or args.run_id in (".", "..")
        ):
            raise SettingsError(f"--run-id: must be a plain folder name (got {args.run_id!r})")
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"{out_where}: cannot create folder {output}: {exc.strerror}") from None
    except SettingsError as exc:
        sys.stderr.write(f"lclock sim: error: {exc}\n")
        return 2
    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        run_dir, results, _meta = run_sim(settings, net, output, run_id=args.run_id)
    except KeyboardInterrupt:
        sys.stderr.write("lclock sim: interrupted\n")
        return 130
    except Terminated:
        sys.stderr.write("lclock sim: terminated\n")
        return 143
    except OSError as exc:
        sys.stderr.write(f"lclock sim: error: {exc}\n")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not settings.quiet:
        print_summary(run_dir, results)
    return 0
