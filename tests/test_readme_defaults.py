"""The README's option tables, the --help texts and the built-in defaults say the same thing."""

from __future__ import annotations

import argparse
import re
from typing import Any

import pytest
from conftest import ROOT

from lclock.experiment import runner
from lclock.experiment.experiment_cmd import add_arguments as experiment_arguments
from lclock.runtime.launcher import add_arguments as run_arguments
from lclock.settings import DEFAULT_SETTINGS_FILE, RunSettings, parse_settings_file
from lclock.sim import engine
from lclock.sim.sim_cmd import add_arguments as sim_arguments

README = (ROOT / "README.md").read_text()
# README words for defaults that are not numbers or paths.
WORDS: dict[str, Any] = {"random": None, "drawn": None, "kept": True, "off": False,
                         "writes it": True, "built in": None, "the defaults": "", "none": (),
                         "no bug": ""}


def table(header: str) -> list[list[str]]:
    """The rows of the README table whose header line is ``header``."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == header)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        rows.append([c.strip().replace("\\|", "|") for c in cells])
    assert rows, header
    return rows


def flags(cell: str) -> list[str]:
    return re.findall(r"--[a-z][a-z-]*", cell)


def helps(add: Any) -> dict[str, argparse.Action]:
    p = argparse.ArgumentParser()
    add(p)
    return {o: a for a in p._actions for o in a.option_strings if o.startswith("--") and o != "--help"}


def help_default(action: argparse.Action) -> str | None:
    m = re.search(r"\(default:? ([^)]*)\)", action.help or "")
    return m.group(1) if m else None


def as_value(text: str) -> Any:
    if text in WORDS:
        return WORDS[text]
    try:
        return float(text)
    except ValueError:
        return text.removeprefix("./")


RUN_ROWS = table("| option | meaning | default |")


def _run_cases() -> list[Any]:
    out = []
    for cells in RUN_ROWS:
        names = flags(cells[0])
        defaults = [d.strip() for d in cells[2].split(",")] if len(names) > 1 else [cells[2]]
        assert len(defaults) == len(names), cells
        out += [pytest.param(n, d, id=n) for n, d in zip(names, defaults)]
    return out


@pytest.mark.parametrize(("flag", "readme"), _run_cases())
def test_run_table(flag: str, readme: str) -> None:
    action = helps(run_arguments)[flag]
    builtin = DEFAULT_SETTINGS_FILE if action.dest == "settings" else getattr(RunSettings(), action.dest)
    assert as_value(readme) == builtin, (flag, readme, builtin)
    in_help = help_default(action)
    if in_help is not None:
        assert in_help.startswith(readme), (flag, readme, action.help)


FAULT_ROWS = table("| flag | `[faults]` key | meaning | default |")
CLOCK_ROWS = table("| flag | `[clocks]` key | meaning | default |")


def test_run_table_lists_every_option() -> None:
    in_readme = {f for rows in (RUN_ROWS, FAULT_ROWS, CLOCK_ROWS) for cells in rows
                 for f in flags(cells[0])}
    assert set(helps(run_arguments)) == in_readme


@pytest.mark.parametrize("cells", FAULT_ROWS + CLOCK_ROWS, ids=lambda c: flags(c[0])[0])
def test_fault_and_clock_tables(cells: list[str]) -> None:
    """Each flag's settings key and default are the built-in ones."""
    from lclock.core.clocks import ClockSettings
    from lclock.core.faults import FaultSettings, LinkSettings

    flag, key, default = flags(cells[0])[0], cells[1].strip("`"), cells[3]
    action = helps(run_arguments)[flag]
    assert action.dest == key, (flag, action.dest, key)
    builtin: Any = {**vars(LinkSettings()), **{k: v for k, v in vars(FaultSettings()).items()},
                    **vars(ClockSettings())}.get(key)
    if key == "clocks":
        assert default == "vector,hlc" and RunSettings().vector_clocks and ClockSettings().hlc
    elif default == "none":
        assert builtin in ((), None), (flag, builtin)
    elif default == "off":
        assert builtin is False
    else:
        assert as_value(default) == builtin, (flag, default, builtin)
    in_help = help_default(action)
    if in_help is not None:
        assert in_help.startswith(default), (flag, default, action.help)


def test_sim_table() -> None:
    rows = {flags(c[0])[0]: c[2] for c in table("| option | settings.toml `[sim]` | meaning |")}
    actions = helps(sim_arguments)
    for flag, builtin in (("--delay-mean", engine.DEFAULT_DELAY_MEAN), ("--jitter", engine.DEFAULT_JITTER)):
        readme = re.search(r"\(default ([0-9.]+)", rows[flag])
        assert readme is not None and float(readme.group(1)) == builtin, rows[flag]
        assert float((help_default(actions[flag]) or "").split(";")[0]) == builtin
    readme_delay = re.search(r"(\w+) \(default\)", rows["--delay"])
    assert readme_delay is not None and readme_delay.group(1) == engine.DEFAULT_DELAY
    assert (help_default(actions["--delay"]) or "").endswith(engine.DEFAULT_DELAY)
    assert set(rows) <= set(actions)


def test_experiment_table() -> None:
    rows = {flags(c[0])[0]: c[1] for c in table("| option | meaning |") if flags(c[0])}
    actions = helps(experiment_arguments)
    trials = re.search(r"else (\d+)\)", rows["--trials"])
    assert trials is not None and int(trials.group(1)) == runner.DEFAULT_TRIALS
    assert help_default(actions["--trials"]) == str(runner.DEFAULT_TRIALS)
    duration = re.search(r"duration, ([0-9.]+)\)", rows["--duration"])
    assert duration is not None and float(duration.group(1)) == RunSettings().duration
    assert set(rows) <= set(actions)



def test_the_presets_the_readme_names_are_the_shipped_ones() -> None:
    """The experiments section names every preset and says how many there are: `--all`
    (and its cost as real runs) depends on it."""
    shipped = set(parse_settings_file(runner.PRESETS).experiments)
    section = README.split("<!-- experiments:start -->")[1].split("<!-- experiments:end -->")[0]
    para = next(p for p in section.split("\n\n") if "lclock ships" in p)
    named = set(re.findall(r"`([a-z0-9-]+)`", para))
    assert shipped <= named, shipped - named
    assert f"lclock ships {len(shipped)}," in " ".join(para.split())
    assert f"`--all` runs all {len(shipped)}" in " ".join(para.split())
