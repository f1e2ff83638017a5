"""``lclock shrink RUN_DIR``: the smallest run that still shows the run's finding (SPEC 10.2).

The run is replayed in the simulator with its settings (its mutant, its programs), then
made smaller step by step (lclock.shrink.search) within a budget of attempts; the smallest
is simulated once more into ``--output``, with its explorer, and the events that tell the
finding's story are printed. Exit status: 0 written; 2 bad input (no run.json, a run that
cannot be replayed); 3 nothing to shrink (no error finding, not the ``--rule`` asked for,
or a replay that does not show it); 1 the written run no longer shows it (a program that is
not deterministic) or could not be written; 130/143/129 when stopped (the smallest run found
so far is still written, unless the stop came while writing it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from lclock.errors import BadInput, error_line, prefix
from lclock.lifecycle import StopRequest, recording
from lclock.settings import RunSettings, SettingsError, check_output_dir
from lclock.shrink import moves
from lclock.shrink.replay import (
    NothingToShrink,
    Replay,
    Replayer,
    Target,
    choose_target,
    findings_of,
    read_replay,
)
from lclock.shrink.search import STOPPED, Outcome, SearchInterrupted, Shrunk, describe, search

EXIT_NOTHING = 3


class ReplayFailed(Exception):
    """The run's replay failed (a program that cannot start now, or fails at once)."""
DEFAULT_BUDGET = 150


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit status: 0 the smallest run written; 1 it no longer shows the finding, "
                     "or it (or its pictures) could not be written; 2 bad input; 3 nothing to "
                     "shrink; 130/143/129 stopped (the smallest run so far is written)")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder whose finding to show small")
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="where the smallest run's folder goes (default ./output)")
    parser.add_argument("--rule", metavar="NAME", default=None,
                        help="the rule of the finding to keep (default: the first error's)")
    parser.add_argument("--same-message", action="store_true",
                        help="the finding must also read as the commonest finding of its rule "
                             "does, numbers aside (check's hint of the mistake included): a "
                             "smaller run of the same rule that says something else is not taken")
    parser.add_argument("--budget", metavar="N", type=_positive, default=DEFAULT_BUDGET,
                        help=f"at most N simulated attempts (default {DEFAULT_BUDGET})")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the line 'run folder: PATH', not the progress and the story")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of attempts (got {text!r})") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 100000 (got {value})")
    return value


def main(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"{args.run_dir}: not a folder")
    try:
        output = check_output_dir(args.output or "output", "--output" if args.output else "output")
    except SettingsError as exc:
        raise BadInput(str(exc)) from None
    replay = read_replay(run_dir)
    say = (lambda _line: None) if args.quiet else _say
    stop: StopRequest = getattr(args, "stop_request", None) or StopRequest()
    try:
        findings = _findings(run_dir)
        target = choose_target(findings, args.rule, args.same_message)
        _name_the_bug_left(findings, target)
        with recording(stop), tempfile.TemporaryDirectory(prefix="lclock-shrink-") as scratch:
            replayer = Replayer(replay, target, Path(scratch), stop)
            result = _shrink(replay, replayer, target, args.budget, say)
    except NothingToShrink as exc:
        sys.stderr.write(f"{prefix('shrink')}: nothing to shrink: {exc}\n")
        return EXIT_NOTHING
    except SearchInterrupted:
        sys.stderr.write(f"{prefix('shrink')}: stopped before the run's replay ended: nothing written\n")
        return stop.exit_code()
    except ReplayFailed as exc:
        why = "; ".join([str(exc), *replay.notes])
        raise BadInput(f"{args.run_dir}: its replay in the simulator failed: {why}") from None
    return _write(replay, result, target, output, stop, args.quiet)


def _name_the_bug_left(findings: list[dict[str, Any]], target: Target) -> None:
    """Say so when check names a classic bug the kept finding does not carry: the smallest
    run of a rule's finding is smaller than one that names the bug (a bug is named only from
    several telling events), and the student should know which story they are shown."""
    if target.bug is not None:
        return
    bugs = sorted({str(f["bug"]) for f in findings
                   if f.get("severity") == "error" and f.get("bug")})
    if bugs:
        sys.stderr.write(f"{prefix('shrink')}: note: check names the bug {', '.join(bugs)} in this "
                         f"run; this keeps the {target.rule} finding alone (--rule bug keeps "
                         f"the bug: a larger run, as a bug is named from several telling events)\n")


def _findings(run_dir: Path) -> list[dict[str, Any]]:
    from lclock.runfolder import RunFolderError

    try:
        return findings_of(run_dir)[0]
    except RunFolderError as exc:
        raise BadInput(str(exc)) from None


def _shrink(replay: Replay, replayer: Replayer, target: Target, budget: int,
            say: Any) -> Shrunk[RunSettings]:
    """The first replay (other seeds where a real run's replay does not show the finding),
    then the search."""
    say(f"replaying the run in the simulator (its {replay.mode} settings, seed {replay.settings.seed})")
    start, first, tried = _first_replay(replay.settings, replayer)
    for note in replay.notes:
        sys.stderr.write(f"{prefix('shrink')}: note: {note}\n")
    say(f"shrinking {target}: {describe(first.size)} (seed {start.seed}); "
        f"budget {budget} attempts")
    return search(start, first, moves.neighbours, replayer.attempt, budget, say, spent=tried)


def _first_replay(settings: RunSettings, replayer: Replayer) -> tuple[RunSettings, Outcome, int]:
    seed = settings.seed or 0
    for k in range(moves.SEEDS_PER_STEP + 1):
        candidate = replace(settings, seed=seed + k)
        try:
            outcome = replayer.attempt(candidate)
        except SearchInterrupted:
            raise  # before there is any run to keep
        if outcome is not None:
            return candidate, outcome, k + 1
        if replayer.last_failure is not None:  # a program that cannot run now: no replay
            raise ReplayFailed(replayer.last_failure)
        if replayer.replay.mode == "sim":  # a simulated run is replayed exactly: no other seed
            break
    raise NothingToShrink(f"the simulator's replay of this run does not show {replayer.target} "
                          "(a program that is not deterministic, or a real run's finding that "
                          "the simulator does not reproduce)")


def _write(replay: Replay, result: Shrunk[RunSettings], target: Target, output: Path,
           stop: StopRequest, quiet: bool) -> int:
    """Simulate the smallest run once more into ``output``, with its explorer; tell its story."""
    from lclock.runfolder import RunFolderError
    from lclock.sim.engine import SimStopped, run_sim

    again = StopRequest() if result.ended == STOPPED else stop
    try:
        with recording(again):
            best = replace(result.best, output=str(output))  # run.json says where it went
            run_dir, _m, meta = run_sim(best, replay.net, output, stop=again)
    except SimStopped:
        sys.stderr.write(f"{prefix('shrink')}: stopped while writing the smallest run\n")
        return again.exit_code()
    except (RunFolderError, OSError) as exc:
        sys.stderr.write(error_line("shrink", f"--output {output}: cannot write the run: {exc}") + "\n")
        return 1
    findings, _ = findings_of(run_dir)
    shown = next((f for f in findings if target.matches(f) and f.get("line")), None) or next(
        (f for f in findings if target.matches(f)), None)
    pictures = _pictures(run_dir, shown, result.best.machines, findings)
    if not quiet:
        _report(result, run_dir, shown, meta)
    print(f"run folder: {run_dir}")
    if shown is None:
        sys.stderr.write(error_line("shrink", f"the run written no longer shows {target}: "
                                    "a program that is not deterministic?") + "\n")
        return 1
    if result.ended == STOPPED:
        return stop.exit_code()
    return 0 if pictures else 1


def _pictures(run_dir: Path, shown: dict[str, Any] | None, machines: int,
              findings: list[dict[str, Any]]) -> bool:
    """explorer.html and story.svg in the run folder; False (and said) where one could not
    be written (the run stays)."""
    from lclock.explorer.view_cmd import write_explorer
    from lclock.outfile import OutputFailed, OutputRefused
    from lclock.shrink.story import write_picture

    ok = True
    try:
        write_explorer([run_dir], run_dir / "explorer.html", findings=[findings])
    except BadInput as exc:
        sys.stderr.write(error_line("shrink", f"explorer.html not written: {exc}") + "\n")
        ok = False
    try:
        write_picture(run_dir, shown, machines)
    except (OutputFailed, OutputRefused, OSError) as exc:
        sys.stderr.write(error_line("shrink", f"story.svg not written: {exc}") + "\n")
        ok = False
    return ok


def _report(result: Shrunk[RunSettings], run_dir: Path, shown: dict[str, Any] | None,
            meta: dict[str, Any]) -> None:
    from lclock.shrink.story import tell

    s = result.best
    print(f"smallest run: {describe(result.outcome.size)}; seed {s.seed}, {s.duration:g} s, "
          f"rates {','.join(str(m.get('rate')) for m in meta.get('machines', []))} "
          f"({result.steps} steps, {result.attempts} attempts, {result.ended})")
    if shown is not None:
        for line in tell(run_dir, shown, s.machines, str(meta.get("started_at", ""))):
            print(line)
    print(f"pictures: {run_dir / 'explorer.html'} (to explore), {run_dir / 'story.svg'}")


def _say(line: str) -> None:
    print(f"shrink: {line}", flush=True)
