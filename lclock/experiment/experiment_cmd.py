"""``lclock experiment NAME... | --all``: several trials of named settings, summarised.

The exercise asks for at least five one-minute runs of each variant and a write-up of what
changes; this command is that procedure, made repeatable (seeds base..base+trials-1) and
written to one folder that ``lclock analyze``/``report``/``compare`` can open trial by trial.
Simulated trials use every core (``--jobs``) or a Dask cluster (``--cluster``); real
trials run one at a time, or are planned (``--plan``) for a batch system.
"""

from __future__ import annotations

import argparse
import errno
import random
import sys
import time
from pathlib import Path
from typing import Any

from lclock.lifecycle import current

EPILOG = """\
The experiments are the presets shipped with lclock (baseline, small-variation,
low-internal, small-variation-low-internal) and the [experiments.NAME] tables of the
settings file, which add to them (see --list).

examples:
  lclock experiment --all --sim                        every experiment, simulated, all cores
  lclock experiment baseline low-internal              real processes, 5 trials x 60 s each
  lclock experiment --all --sim --cluster tcp://head:8786
  lclock experiment --all --seed 1000 --output runs/four --plan > jobs.txt
  lclock experiment --summarize runs/four              gather and summarise what came back

exit status: 0 done, 1 a trial failed, 2 bad input, 130 Ctrl-C, 143 SIGTERM.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("names", nargs="*", metavar="NAME", help="experiments to run")
    parser.add_argument("--all", action="store_true", help="run every known experiment")
    parser.add_argument("--list", action="store_true", help="list the known experiments and exit")
    parser.add_argument("--trials", type=int, metavar="N", help="trials per experiment (default 5)")
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="length of each trial (default: settings)"
    )
    parser.add_argument("--sim", action="store_true", help="simulated runs instead of real ones")
    parser.add_argument(
        "--seed", type=int, metavar="INT", help="base seed: trial k uses seed + k - 1"
    )
    parser.add_argument(
        "--settings", metavar="PATH",
        help="settings file whose [experiments.NAME] add to the presets (default ./settings.toml if present)",
    )  # fmt: skip
    parser.add_argument(
        "--output", metavar="DIR", help="experiment folder (default: output/experiments/<time>-<names>)"
    )
    parser.add_argument(
        "--jobs", type=int, metavar="N",
        help="simulated trials at a time on this host (default: the number of cores, or 1 for "
        "a sweep so small that starting worker processes would cost more than it saves)",
    )  # fmt: skip
    parser.add_argument(
        "--cluster", metavar="tcp://HOST:PORT",
        help="run the simulated trials on this Dask scheduler's workers",
    )  # fmt: skip
    parser.add_argument(
        "--plan", action="store_true",
        help="real trials: make the folder and print one self-contained command per trial "
        "(for a Slurm job array, GNU parallel, ...) instead of running them",
    )  # fmt: skip
    parser.add_argument("--no-report", action="store_true", help="no report.html per trial")
    parser.add_argument("--no-plots", action="store_true", help="skip the comparison figure")
    parser.add_argument("--quiet", action="store_true", help="print nothing while running")
    parser.add_argument(
        "--summarize",
        metavar="DIR",
        help="gather the trials of an experiment folder and rewrite its summary and figure",
    )


def _error(text: str) -> int:
    sys.stderr.write(f"lclock experiment: error: {text}\n")
    return 2


def summarize_main(args: argparse.Namespace) -> int:
    from lclock.experiment.gather import NotAnExperiment
    from lclock.experiment.report import write_outputs
    from lclock.experiment.runner import resummarize

    if args.names or args.all:
        return _error("--summarize: give no experiment names")
    root = Path(args.summarize)
    try:
        summary = resummarize(root)
        meta = _read_meta(root)
    except NotAnExperiment as exc:
        return _error(f"--summarize: {exc}")
    for path in write_outputs(summary, root, plots=not args.no_plots, meta=meta):
        if not args.quiet:
            print(f"wrote {path}")
    missing = summary.get("missing") or []
    if missing:
        sys.stderr.write(f"lclock experiment: {len(missing)} trial(s) not back (yet): "
                         f"{', '.join(missing)}\n")  # fmt: skip
    return 0


def _read_meta(root: Path) -> dict[str, Any]:
    import orjson

    path = root / "experiment.json"
    if not path.is_file():
        return {}
    data = orjson.loads(path.read_bytes())
    return data if isinstance(data, dict) else {}


def _install_signals(args: argparse.Namespace) -> int | None:
    """From now on a stop signal unwinds the experiment (``lclock.lifecycle``: it is one
    call stack, whose ``finally`` clauses stop the trials and write the summary).

    ``lclock.cli`` only records stop signals while a process-owning command imports; a
    signal that came in that window means "stop", before anything is created.
    """
    stop = getattr(args, "stop_request", None) or current()
    if stop.requested:
        return int(stop.exit_code())
    stop.unwind = True
    return None


def _check_modes(args: argparse.Namespace) -> None:
    from lclock.settings import SettingsError

    if args.jobs is not None and args.jobs < 1:
        raise SettingsError(f"--jobs: must be an integer >= 1 (got {args.jobs})")
    if args.cluster is not None and not args.sim:
        raise SettingsError("--cluster: only simulated trials (--sim) run on a Dask cluster; "
                            "plan real trials with --plan")  # fmt: skip
    if args.cluster is not None and args.jobs is not None:
        raise SettingsError("--jobs: give either --jobs or --cluster, not both")
    if args.jobs not in (None, 1) and not args.sim:
        raise SettingsError("--jobs: real trials run one at a time (they measure timing, so "
                            "they must not share cores); spread them over hosts with --plan")  # fmt: skip
    if args.plan and args.sim:
        raise SettingsError("--plan: is for real trials; simulated ones use --jobs or --cluster")


def _first_record(root: Path, file: Any) -> dict[str, Any]:
    """experiment.json as the experiment starts."""
    return {"schema": 2, "name": root.name, "command": list(sys.argv),
            "settings_file": str(file.path) if file.path else None,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _seed(args: argparse.Namespace, file: Any) -> int:
    """The experiment's seed: --seed, else the settings file's, else a random one."""
    from lclock.settings import SettingsError

    if args.seed is not None and not 0 <= args.seed <= 2**62:
        raise SettingsError(f"--seed: must be an integer from 0 to 2**62 (got {args.seed})")
    seed = args.seed if args.seed is not None else file.run.get("seed")
    return seed if seed is not None else random.SystemRandom().randrange(2**31)


def _folder(args: argparse.Namespace, file: Any, label: str) -> Path:
    from lclock.settings import SettingsError, check_output_dir

    if args.output is not None:
        root = check_output_dir(args.output, "--output")
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise SettingsError(f"--output: {root} exists and is not an empty folder")
        return root
    base = file.run.get("output", "output")
    where = file.where("output") if "output" in file.run else "output"
    check_output_dir(base, where)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path(base) / "experiments" / f"{stamp}-{label}{'-sim' if args.sim else ''}"


def root_folder(root: Path, own: bool) -> Path:
    """Make the experiment folder. The user's own ``--output`` may be an empty folder already;
    the default one (named after the second and the experiments) is claimed with an atomic
    mkdir, a suffix ``-2``, ``-3``... if taken: two experiments started in the same second
    (a loop of ``&``) were given one folder and wrote into each other's."""
    if own:
        root.mkdir(parents=True, exist_ok=True)
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        folder = root if k == 1 else root.with_name(f"{root.name}-{k}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(errno.EEXIST, "every name of this second is taken", str(root))


def main(args: argparse.Namespace) -> int:
    # imported while signals are only recorded: an exception raised inside the start of a
    # C extension (orjson's) can crash the interpreter
    from lclock.experiment.runner import Interrupted, plan, with_presets
    from lclock.settings import SettingsError, load_settings_file
    from lclock.sim.engine import resolve_network

    early = _install_signals(args)
    if early is not None:
        return early
    if args.summarize is not None:
        return summarize_main(args)

    client = None
    try:
        _check_modes(args)
        file = load_settings_file(args.settings)
        origin = with_presets(file)
        if args.list:
            from lclock.experiment.runner import describe_experiments

            print("\n".join(describe_experiments(file, origin)))
            return 0
        experiments = plan(file, list(args.names), args.all, args.trials, args.duration, origin)
        net = resolve_network(file, {})
        seed = _seed(args, file)
        label = "all" if args.all else "+".join(e.name for e in experiments)
        root = _folder(args, file, label)
        if args.cluster is not None:
            from lclock.experiment.cluster import connect

            client = connect(args.cluster)
        try:
            root = root_folder(root, own=args.output is not None)
        except OSError as exc:
            where = "--output" if args.output is not None else "output"
            raise SettingsError(f"{where}: cannot create folder {root}: {exc.strerror}") from None
    except SettingsError as exc:
        if client is not None:
            client.close()
        return _error(str(exc))

    meta = _first_record(root, file)
    if args.plan:
        return plan_main(args, experiments, root, seed, meta)
    try:
        return _run(args, experiments, root, seed, net, meta, client)
    except Interrupted as exc:  # a SIGTERM after the summary was written
        return exc.code
    except KeyboardInterrupt:
        return 130
    finally:
        if client is not None:
            client.close()


def _run(
    args: argparse.Namespace, experiments: list[Any], root: Path, seed: int, net: Any,
    meta: dict[str, Any], client: Any,
) -> int:  # fmt: skip
    import orjson

    from lclock.experiment.pool import auto_jobs, default_jobs
    from lclock.experiment.report import write_outputs
    from lclock.experiment.runner import Interrupted, Sweep, run_experiments

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    jobs = args.jobs if args.jobs is not None else (
        auto_jobs(experiments, not args.no_report, default_jobs()) if args.sim else 1
    )
    sweep = Sweep(sim=args.sim, net=net, report=not args.no_report, jobs=jobs, client=client,
                  live=not args.quiet)  # fmt: skip
    code = 0
    summary: dict[str, Any] | None
    try:
        summary, trials = run_experiments(experiments, root, seed, sweep, meta, progress)
    except (KeyboardInterrupt, Interrupted) as exc:
        code = exc.code if isinstance(exc, Interrupted) else 130
        sys.stderr.write(f"lclock experiment: stopped; partial results in {root}\n")
        summary_path = root / "summary.json"
        summary = orjson.loads(summary_path.read_bytes()) if summary_path.exists() else None
        trials = []
    if summary is not None:
        write_outputs(summary, root, plots=not args.no_plots, meta=_read_meta(root))
    if code:
        return code
    failed = [t for t in trials if t.status != "completed"]
    progress(f"experiment folder: {root}")
    progress(f"summary: {root / 'summary.md'}")
    if failed:
        sys.stderr.write(f"lclock experiment: {len(failed)} trial(s) failed; see summary.md\n")
        return 1
    return 0


def plan_main(
    args: argparse.Namespace, experiments: list[Any], root: Path, seed: int, meta: dict[str, Any]
) -> int:
    """Make the experiment folder, write plan.txt, print its commands (nothing runs)."""
    from lclock.experiment.real import plan_lines
    from lclock.experiment.runner import code_version, experiment_meta, prepare_folder

    meta = {**meta, "status": "planned", "base_seed": seed, "mode": "real",
            "code": code_version(), **experiment_meta(experiments)}  # fmt: skip
    prepare_folder(root, experiments, meta)
    lines = plan_lines(experiments, root, seed, report=not args.no_report)
    (root / "plan.txt").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")
    if not args.quiet:
        sys.stderr.write(
            f"lclock experiment: {len(lines)} trial commands in {root / 'plan.txt'} (line k = "
            "Slurm array task k); run each on a host of its own, then: "
            f"lclock experiment --summarize {root}\n"
        )
    return 0
