"""``lclock experiment NAME... | --all``: several trials of named settings, summarised.

The exercise asks for at least five one-minute runs of each variant and a write-up of what
changes; this command is that procedure, made repeatable (seeds base..base+trials-1) and
written to one folder that ``lclock analyze``/``report`` can open run by run.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from lclock.experiment.report import write_outputs
from lclock.experiment.runner import Interrupted, plan, resummarize, run_experiments
from lclock.settings import SettingsError, check_output_dir, load_settings_file
from lclock.sim.engine import resolve_network


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="experiments of settings.toml")
    parser.add_argument("--all", action="store_true", help="run every [experiments.NAME]")
    parser.add_argument("--trials", type=int, metavar="N", help="trials per experiment (default 5)")
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="length of each trial (default: settings)"
    )
    parser.add_argument("--sim", action="store_true", help="simulated runs instead of real ones")
    parser.add_argument(
        "--seed", type=int, metavar="INT", help="base seed: trial k uses seed + k - 1"
    )
    parser.add_argument(
        "--settings", metavar="PATH", help="settings file (default: ./settings.toml if present)"
    )
    parser.add_argument(
        "--output", metavar="DIR", help="experiment folder (default: output/experiments/<time>-<names>)"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the comparison figure")
    parser.add_argument("--quiet", action="store_true", help="print nothing while running")
    parser.add_argument(
        "--summarize",
        metavar="DIR",
        help="recompute summary.json, summary.md and the plots of an experiment folder",
    )


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(128 + signum)


def summarize_main(args: argparse.Namespace) -> int:
    root = Path(args.summarize)
    if not (root / "summary.json").is_file():
        sys.stderr.write(f"lclock experiment: error: --summarize: {root} has no summary.json\n")
        return 2
    if args.names or args.all:
        sys.stderr.write("lclock experiment: error: --summarize: give no experiment names\n")
        return 2
    summary = resummarize(root)
    for path in write_outputs(summary, root, plots=not args.no_plots):
        if not args.quiet:
            print(f"wrote {path}")
    return 0


def _install_signals(args: argparse.Namespace) -> int | None:
    """Ctrl-C raises KeyboardInterrupt, SIGTERM and SIGHUP raise Interrupted, from now on.

    ``lclock.cli`` only records stop signals while a process-owning command imports; a
    signal that came in that window means "stop", before anything is created.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    signal.signal(signal.SIGHUP, _raise_on_sigterm)
    stop = getattr(args, "stop_request", None)
    if stop is not None and stop.requested:
        return int(stop.exit_code())
    return None


def main(args: argparse.Namespace) -> int:
    early = _install_signals(args)
    if early is not None:
        return early
    if args.summarize is not None:
        return summarize_main(args)
    try:
        file = load_settings_file(args.settings)
        experiments = plan(file, list(args.names), args.all, args.trials, args.duration)
        net = resolve_network(file, {})
        if args.seed is not None and not 0 <= args.seed <= 2**62:
            raise SettingsError(f"--seed: must be an integer from 0 to 2**62 (got {args.seed})")
        seed = args.seed
        if seed is None:
            seed = file.run.get("seed")
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        if args.output is not None:
            root = check_output_dir(args.output, "--output")
            if root.exists() and (not root.is_dir() or any(root.iterdir())):
                raise SettingsError(f"--output: {root} exists and is not an empty folder")
        else:
            base = file.run.get("output", "output")
            where = file.where("output") if "output" in file.run else "output"
            check_output_dir(base, where)
            label = "all" if args.all else "+".join(e.name for e in experiments)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            root = Path(base) / "experiments" / f"{stamp}-{label}{'-sim' if args.sim else ''}"
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = "--output" if args.output is not None else "output"
            raise SettingsError(f"{where}: cannot create folder {root}: {exc.strerror}") from None
    except SettingsError as exc:
        sys.stderr.write(f"lclock experiment: error: {exc}\n")
        return 2

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    meta: dict[str, Any] = {
        "schema": 1,
        "name": root.name,
        "command": list(sys.argv),
        "names": [e.name for e in experiments],
        "trials": {e.name: e.trials for e in experiments},
        "settings_file": str(file.path) if file.path else None,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    code = 0
    try:
        summary, trials = run_experiments(
            experiments, root, seed, args.sim, net, meta, progress
        )
    except (KeyboardInterrupt, Interrupted) as exc:
        code = exc.code if isinstance(exc, Interrupted) else 130
        sys.stderr.write(f"lclock experiment: stopped; partial results in {root}\n")
        import orjson

        summary_path = root / "summary.json"
        summary = orjson.loads(summary_path.read_bytes()) if summary_path.exists() else None
        trials = []
    if summary is not None:
        write_outputs(summary, root, plots=not args.no_plots)
    if code:
        return code
    failed = [t for t in trials if t.status != "completed"]
    progress(f"experiment folder: {root}")
    progress(f"summary: {root / 'summary.md'}")
    if failed:
        sys.stderr.write(f"lclock experiment: {len(failed)} trial(s) failed; see summary.md\n")
        return 1
    return 0
