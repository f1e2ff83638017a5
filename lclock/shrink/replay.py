"""The edge of ``lclock shrink``: a run folder's settings back, the finding to keep, and one
attempt (simulate a candidate into a scratch folder, check it, measure it).

A simulated run is replayed exactly (the same settings, network and seed give the same
bytes, with its mutant or its programs); a real run is replayed in the simulator with the
same settings, which shows the same kind of run, not the same one. An imported run has no
settings that made it: it cannot be replayed.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lclock.errors import BadInput
from lclock.lifecycle import StopRequest
from lclock.settings import RunSettings
from lclock.shrink.moves import NotReplayable, faults_count, settings_from_json
from lclock.shrink.search import Outcome, SearchInterrupted
from lclock.sim.engine import NetworkSettings, SimStopped, run_sim

#: How many times events the finding names are looked up for a shorter cut.
TIMES_KEPT = 5


class NothingToShrink(Exception):
    """The run shows no finding to keep (or not the one asked for), or its replay does not."""


@dataclass(frozen=True)
class Target:
    """The finding a smaller run must still show: its rule, and its bug where check names one."""

    rule: str
    bug: str | None = None
    #: The finding's wording, numbers aside (``--same-message``); None: any wording.
    wording: str | None = None

    def matches(self, finding: dict[str, Any]) -> bool:
        return (finding.get("severity") == "error" and finding.get("rule") == self.rule
                and (self.bug is None or finding.get("bug") == self.bug)
                and (self.wording is None or wording(str(finding.get("message"))) == self.wording))

    def __str__(self) -> str:
        return f"{self.rule} ({self.bug})" if self.bug else self.rule


def wording(message: str) -> str:
    """A finding's message with its numbers (and the length of its vectors) left out: two
    findings that say the same thing of other events read the same."""
    return re.sub(r"\[N(, N)*\]", "[N]", re.sub(r"-?\d+", "N", message))


@dataclass(frozen=True)
class Replay:
    """What the simulator needs to make the run again."""

    settings: RunSettings
    net: NetworkSettings
    mode: str
    notes: list[str] = field(default_factory=list)


def read_replay(run_dir: Path) -> Replay:
    """The run's settings from its run.json. BadInput names the file and key when the run
    cannot be replayed."""
    from lclock.runfolder import RunFolderError, read_run_json

    try:
        meta = read_run_json(run_dir)
    except RunFolderError as exc:
        raise BadInput(str(exc)) from None
    where = run_dir / "run.json"
    mode = str(meta.get("mode") or "real")
    if mode == "import":
        raise BadInput(f"{where}: an imported run cannot be replayed (its logs were written by "
                       "another program, with no settings lclock could run again)")
    data = meta.get("settings")
    if not isinstance(data, dict):
        raise BadInput(f"{where}: settings: missing, so the run cannot be replayed")
    try:
        settings = settings_from_json(data)
        net = _network(meta.get("sim"))
    except NotReplayable as exc:
        raise BadInput(f"{where}: {exc}") from None
    seed = meta.get("seed", settings.seed)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise BadInput(f"{where}: seed: missing, so the run cannot be replayed")
    return Replay(replace(settings, seed=seed, quiet=True), net, mode, changed_programs(meta))


def _network(data: Any) -> NetworkSettings:
    """The simulator's network of a simulated run; a real run gets the default one."""
    if not isinstance(data, dict):
        return NetworkSettings()
    names = {f.name for f in fields(NetworkSettings)}
    try:
        return NetworkSettings(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise NotReplayable(f"sim: cannot be read back ({exc})") from None


def changed_programs(meta: dict[str, Any]) -> list[str]:
    """Notes on the programs that are not, byte for byte, the ones the run ran (run.json
    keeps each one's sha256): the replay runs them as they are now."""
    from lclock.impl.program import ProgramSpec

    recorded = (meta.get("impl") or {}).get("machines") if isinstance(meta.get("impl"), dict) else None
    out = []
    for mid, entry in sorted((recorded or {}).items()):
        if not isinstance(entry, dict) or not entry.get("sha256") or not entry.get("command"):
            continue
        now = ProgramSpec(str(entry["command"])).identity()
        if now["file"] != entry.get("file"):
            out.append(f"machine {mid}'s program {entry.get('file')} is not found from here "
                       "(relative paths are the run's: start shrink where the run was started)")
        elif now["sha256"] != entry["sha256"]:
            out.append(f"machine {mid}'s program {now['file']} is not the one the run ran "
                       "(its sha256 differs): the replay runs it as it is now")
    return out


def findings_of(run_dir: Path) -> tuple[list[dict[str, Any]], Any]:
    """``check --json``'s findings of a run folder, and the loaded run."""
    from lclock.analysis.check import check_run, findings_json

    result = check_run(run_dir)
    return findings_json(result), result


def choose_target(findings: list[dict[str, Any]], rule: str | None,
                  same_message: bool = False) -> Target:
    """The first error finding (of ``rule`` when given), with its bug when check names one
    (and its wording when asked)."""
    errors = [f for f in findings if f.get("severity") == "error"]
    chosen = [f for f in errors if f.get("rule") == rule or (rule is None and not _of_files(f))]
    if not chosen:
        if rule is None and errors:
            raise NothingToShrink("check's errors here are only about the folder's files (run.json, "
                                  "an unreadable log, a broken line), which a replay writes anew "
                                  "(give --rule NAME to try one)")
        if rule is None:
            raise NothingToShrink("check finds no error in this run")
        known = sorted({str(f.get("rule")) for f in errors})
        raise NothingToShrink(f"--rule {rule}: check finds no error of that rule here"
                              + (f" (it finds: {', '.join(known)})" if known else ""))
    first = chosen[0]
    bug = first.get("bug")
    shape = _commonest([wording(str(f.get("message"))) for f in chosen
                        if f.get("rule") == first["rule"] and f.get("bug") == bug]
                       ) if same_message else None
    return Target(str(first["rule"]), str(bug) if bug else None, shape)


def _of_files(finding: dict[str, Any]) -> bool:
    """A finding about the folder's files rather than the run's events (run.json's keys, an
    unreadable log, a torn line): a replay writes its files anew, so it never shows again."""
    rule = str(finding.get("rule"))
    return finding.get("file") == "run.json" or rule.startswith(("meta-", "log-", "line-"))


def _commonest(texts: list[str]) -> str:
    """The wording most findings have (the first of those as common): the finding's typical
    case, not an edge case where two mistakes give the same clock."""
    counts = Counter(texts)
    return max(texts, key=lambda x: counts[x])


def outcome_of(settings: RunSettings, findings: list[dict[str, Any]], result: Any,
               target: Target) -> Outcome | None:
    """How big the run is, if it shows the finding; None if it does not."""
    hits = [f for f in findings if target.matches(f)]
    if not hits:
        return None
    counts = result.counts
    size = (int(counts.get("machines", 0)), faults_count(settings),
            int(counts.get("events", 0)), int(counts.get("messages", 0)))
    return Outcome(size, _times(hits, result.run), _rates(result.run))


def _times(hits: list[dict[str, Any]], run: Any) -> tuple[float, ...]:
    """Seconds since the start of the events the matching findings cite, earliest first."""
    out = []
    for f in hits:
        log = run.machines.get(f.get("machine")) if run is not None else None
        if log is None or not f.get("line"):
            continue
        at = (log.line == f["line"]).nonzero()[0]
        if len(at):
            out.append(round(float(log.ts[at[0]]) - float(run.t0), 6))
    return tuple(sorted(out)[:TIMES_KEPT])


def _rates(run: Any) -> tuple[int, ...]:
    if run is None:
        return ()
    entries = sorted((m for m in run.meta.get("machines", []) if isinstance(m, dict)),
                     key=lambda m: m.get("id", 0))
    rates = tuple(m.get("rate") for m in entries)
    return rates if all(isinstance(r, int) for r in rates) else ()  # type: ignore[return-value]


def possible(s: RunSettings) -> bool:
    """Whether the model takes these settings (a cut run keeps its faults inside it, but a
    crash at the very end, or two machines left of three, can still be refused)."""
    from lclock.setting_checks import Run, SettingsError
    from lclock.setting_schedules import check_schedule

    try:
        check_schedule(s.faults, {}, Run(s.machines, s.duration))
    except SettingsError:
        return False
    return True


class Replayer:
    """Runs candidates in a scratch folder, one at a time, each folder removed once judged."""

    def __init__(self, replay: Replay, target: Target, scratch: Path, stop: StopRequest) -> None:
        self.replay, self.target, self.scratch, self.stop = replay, target, scratch, stop
        self.failed = 0  # candidates that could not run at all (settings the model refuses)
        self.last_failure: str | None = None  # why the last run that ran failed (a program)

    def attempt(self, settings: RunSettings) -> Outcome | None:
        if self.stop.requested:
            raise SearchInterrupted
        if not possible(settings):
            self.failed += 1
            return None
        try:
            run_dir, _machines, meta = run_sim(settings, self.replay.net, self.scratch, stop=self.stop)
        except SimStopped:
            raise SearchInterrupted from None
        except (ValueError, TypeError, KeyError, IndexError):
            self.failed += 1  # a combination the model refuses: not a smaller run
            return None
        try:
            if meta.get("status") != "completed":
                self.last_failure = str(meta.get("reason"))
                return None
            findings, result = findings_of(run_dir)
            return outcome_of(settings, findings, result, self.target)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
