"""The table of settings: what is generated from it (options, keys, checks, read-back flags)
matches the settings a run keeps, and a setting read back as flags is the same setting."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lclock import setting_checks, setting_table
from lclock.core.clocks import Bump, ClockSettings
from lclock.core.faults import Crash, FaultSettings, LinkSettings, Partition, Pause
from lclock.setting_table import TABLE, Key, add_options, field_of, flags_of, keys_of, to_flags
from lclock.settings import (
    RunSettings,
    SettingsError,
    SettingsFile,
    parse_settings_file,
    resolve,
    resolve_table,
)


def parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lclock", exit_on_error=False)
    add_options(p, command)
    return p


def options(command: str) -> dict[str, argparse.Action]:
    return {o: a for a in parser(command)._actions for o in a.option_strings if o not in ("-h", "--help")}


def test_every_field_of_the_settings_is_one_entry() -> None:
    """Each value a run keeps (run.json's settings) has its key in the table, once."""
    fields = {f.name for f in dataclasses.fields(RunSettings)} - {"faults", "clocks"}
    fields |= {f"faults.{f.name}" for f in dataclasses.fields(FaultSettings)} - {"faults.default"}
    fields |= {f"faults.default.{f.name}" for f in dataclasses.fields(LinkSettings)}
    fields |= {f"clocks.{f.name}" for f in dataclasses.fields(ClockSettings)} - {"clocks.hlc"}
    in_table = [k.field for k in TABLE if k.field]
    assert sorted(set(in_table)) == sorted(in_table)
    # vector_clocks and hlc are said by --clocks (its read-back); tcp's keys have no flags
    assert fields - set(in_table) == {"vector_clocks", "tcp_host", "tcp_ports"}
    assert set(in_table) <= fields
    paths = [k.path for k in TABLE if k.path]
    assert len(paths) == len(set(paths))


@pytest.mark.parametrize("command", ["run", "sim", "vm"])
def test_the_options_of_each_command_come_from_the_table(command: str) -> None:
    opts = options(command)
    wanted = {k.flag for k in TABLE if k.flag and command in k.commands}
    assert set(opts) == wanted
    for k in TABLE:
        if k.flag in opts:
            assert opts[k.flag].dest == k.name
            assert "{default}" not in (opts[k.flag].help or "")


def test_each_command_takes_only_its_own_options() -> None:
    assert "--transport" in options("run") and "--transport" not in options("vm")
    assert "--delay" in options("sim") and "--delay" not in options("run")
    assert options("run")["--no-report"].help != options("vm")["--no-report"].help


def test_a_help_text_shows_the_builtin_default() -> None:
    opts = options("run")
    assert opts["--duration"].help == f"length of the run (default {RunSettings().duration:g})"
    assert opts["--nemesis-interval"].help.endswith(f"(default {FaultSettings().nemesis_interval:g})")


def test_the_flags_given_are_the_settings_by_name() -> None:
    args = parser("run").parse_args(["--loss", "0.5", "--machines", "4", "--no-report"])
    flags = flags_of(args)
    assert flags["loss"] == 0.5 and flags["machines"] == 4 and flags["report"] is False
    assert flags["duration"] is None and "settings" not in flags


def test_a_settings_file_accepts_the_table_keys_and_suggests_them(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("machines = 4\nduration = 5.0\n[faults]\nloss = 0.25\n[clocks]\nskew_ms = 3\n")
    s = resolve(parse_settings_file(path), {})
    assert (s.machines, s.duration, s.faults.default.loss, s.clocks.skew_ms) == (4, 5.0, 0.25, 3.0)
    for table in ("", "faults", "clocks", "sim", "tcp"):
        key = keys_of(table)[0].key
        header = f"[{table}]\n" if table else ""
        path.write_text(f"{header}{key}x = 1\n")
        with pytest.raises(SettingsError) as exc:
            parse_settings_file(path)
        where = f"{table}.{key}x" if table else f"{key}x"
        assert str(exc.value) == f"{path}:{where}: unknown key (did you mean '{key}'?)"


def test_a_new_key_is_one_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One Key: the option, the settings key, its check and its error line follow."""
    new = Key("bounce", "sim.bounce", setting_checks.within(0, 1, "a number from 0 to 1"), "float",
              "--bounce", arg=float, help="how far (default 0)", commands=frozenset({"sim"}))
    monkeypatch.setattr(setting_table, "TABLE", (*TABLE, new))
    monkeypatch.setitem(setting_table.KEYS, "bounce", new)
    assert options("sim")["--bounce"].dest == "bounce"
    path = tmp_path / "s.toml"
    path.write_text("[sim]\nbounce = 0.5\n")
    file = parse_settings_file(path)
    assert resolve_table("sim", file, {})["bounce"] == 0.5
    with pytest.raises(SettingsError, match=r"^--bounce: must be a number from 0 to 1 \(got 2.0\)$"):
        resolve_table("sim", file, flags_of(parser("sim").parse_args(["--bounce", "2"])))


def test_a_late_run_key_is_checked_against_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run key such as a schedule (``ID@TIME;...``; a made-up key, ``probes``) sees the machines and the
    length of the run, as resolved from every other key (here the rates decide machines)."""
    seen: list[setting_checks.Run] = []

    def check(value: Any, where: str, run: setting_checks.Run) -> Any:
        seen.append(run)
        if value == "bad":
            raise SettingsError(f"{where}: no probe")
        return value

    new = Key("probes", "probes", check, "any", "--probes", late=True)
    monkeypatch.setattr(setting_table, "TABLE", (*TABLE, new))
    resolve(SettingsFile(), {"rates": (1, 2, 3, 4), "duration": 9.0, "probes": "1@2"})
    assert seen == [setting_checks.Run(4, 9.0)]
    with pytest.raises(SettingsError, match="^--probes: no probe$"):
        resolve(SettingsFile(), {"probes": "bad"})


# -- read-back: settings -> flags -> settings ----------------------------------------------------

N = 3
links = st.builds(LinkSettings, latency_ms=st.floats(0, 500),
                  latency_dist=st.sampled_from(["constant", "uniform", "exponential"]),
                  loss=st.floats(0, 1), duplicate=st.floats(0, 1))
schedules = st.builds(
    FaultSettings,
    default=links,
    links=st.lists(st.tuples(st.sampled_from([(1, 2), (2, 1), (3, 1)]), links), max_size=2,
                   unique_by=lambda x: x[0]).map(lambda xs: tuple(sorted(xs))),
    reorder=st.booleans(),
    partitions=st.sampled_from([(), (Partition(1.5, 2.25, ((1,), (2, 3))),)]),
    pauses=st.sampled_from([(), (Pause(2, 0.125, 1.0),), (Pause(1, 3.0, 0.5), Pause(3, 3.0, 0.5))]),
    crashes=st.sampled_from([(), (Crash(3, 5.5),)]),
)
nemeses = st.builds(FaultSettings, default=links, nemesis=st.sampled_from([("pause",), ("crash", "partition")]),
                    nemesis_interval=st.floats(0.2, 100))


def per_machine(bound: float) -> st.SearchStrategy[tuple[float, ...] | None]:
    return st.none() | st.lists(st.floats(-bound, bound), min_size=N, max_size=N).map(tuple)


clocks = st.builds(ClockSettings, skew_ms=st.floats(0, setting_checks.MAX_SKEW_MS),
                   drift_ppm=st.floats(0, setting_checks.MAX_DRIFT_PPM), hlc=st.booleans(),
                   offsets_ms=per_machine(setting_checks.MAX_SKEW_MS),
                   drifts_ppm=per_machine(setting_checks.MAX_DRIFT_PPM),
                   bumps=st.sampled_from([(), (Bump(2, 3.0, -250.0), Bump(1, 4.5, 10.0))]))
rates = st.none() | st.lists(st.integers(1, setting_checks.MAX_RATE), min_size=N, max_size=N).map(tuple)


@st.composite
def run_settings(draw: Any) -> RunSettings:
    lo = draw(st.integers(1, setting_checks.MAX_RATE))
    return RunSettings(
        machines=N, duration=draw(st.floats(10, 1000)), seed=draw(st.integers(0, 2**63 - 1)),
        rate_min=lo, rate_max=draw(st.integers(lo, setting_checks.MAX_RATE)), rates=draw(rates),
        dice_sides=draw(st.integers(3, 1_000_000)), vector_clocks=draw(st.booleans()),
        output=draw(st.text(st.characters(codec="utf-8", exclude_characters="\0"), min_size=1, max_size=20)),
        quiet=draw(st.booleans()), report=draw(st.booleans()),
        faults=draw(schedules | nemeses), clocks=draw(clocks))


@given(s=run_settings())
@settings(max_examples=150, deadline=None)
def test_settings_read_back_as_flags_are_the_same_settings(s: RunSettings) -> None:
    """A planned trial is one command: its flags must give exactly the experiment's settings."""
    args = parser("run").parse_args(to_flags(s))
    assert resolve(SettingsFile(), flags_of(args)) == s


def test_the_defaults_read_back_as_the_flags_a_trial_always_says() -> None:
    flags = to_flags(RunSettings())
    assert flags == ["--duration", "60.0", "--machines", "3", "--rate-min", "1", "--rate-max", "6",
                     "--dice-sides", "10", "--output", "output", "--transport", "socketpair"]
    assert field_of(RunSettings(), "faults.default.loss") == 0.0


@pytest.mark.parametrize(("value", "kept"), [
    ("lamport", ()), ("none", ()), ("lamport,vector", ("vector",)),
    ("vector, lamport ,hlc", ("vector", "hlc")), ("hlc,hlc", ("hlc",)),
])
def test_clocks_may_name_lamports_which_is_always_kept(value: str, kept: tuple[str, ...]) -> None:
    from lclock.setting_schedules import clock_names

    assert clock_names(value, "--clocks", None) == kept  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "words"), [
    ("none,vector", "'none' .* cannot be listed with other clocks"),
    ("vectr", "did you mean 'vector'"),
])
def test_clocks_that_cannot_be_kept_are_named(value: str, words: str) -> None:
    from lclock.setting_checks import SettingsError
    from lclock.setting_schedules import clock_names

    with pytest.raises(SettingsError, match=words):
        clock_names(value, "--clocks", None)  # type: ignore[arg-type]
