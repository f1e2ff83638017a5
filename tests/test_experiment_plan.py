"""Real trials on many hosts (``--plan`` then ``--summarize``), the presets from any
folder, and the combinations of flags that make no sense."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def lclock(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=ENV)  # fmt: skip


def test_plan_then_summarize_what_came_back(tmp_path: Path) -> None:
    out = tmp_path / "four"
    r = lclock("experiment", "baseline", "small-variation", "--trials", "2", "--duration", "1",
               "--seed", "70", "--output", str(out), "--plan", "--no-report")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4 and (out / "plan.txt").read_text().splitlines() == lines
    assert "plan.txt" in r.stderr and f"--summarize {out}" in r.stderr
    for line, (name, k) in zip(lines, [("baseline", 1), ("baseline", 2),
                                       ("small-variation", 1), ("small-variation", 2)]):
        cmd = shlex.split(line)
        assert cmd[:2] == ["lclock", "run"]
        assert cmd[cmd.index("--seed") + 1] == str(69 + k)
        assert cmd[cmd.index("--output") + 1] == str(out / name / f"trial-{k}")
        assert cmd[cmd.index("--settings") + 1] == os.devnull and "--no-report" in cmd
    meta = orjson.loads((out / "experiment.json").read_bytes())
    assert meta["status"] == "planned" and meta["base_seed"] == 70
    assert not any(p.name.startswith("trial-") for p in (out / "baseline").iterdir())

    # nothing came back yet: every trial named, not fatal
    r = lclock("experiment", "--summarize", str(out))
    assert r.returncode == 0, r.stderr
    assert "4 trial(s) not back (yet)" in r.stderr and "small-variation/trial-2" in r.stderr

    # two jobs run "elsewhere": from a folder whose settings.toml would change a trial, if
    # the command were not self-contained
    host = tmp_path / "host"
    host.mkdir()
    (host / "settings.toml").write_text("machines = 7\nrate_min = 9\nrate_max = 9\n")
    for line in (lines[0], lines[3]):
        cmd = [sys.executable, "-m", "lclock", *shlex.split(line)[1:]]
        done = subprocess.run(cmd, cwd=host, capture_output=True, text=True, timeout=120, env=ENV)
        assert done.returncode == 0, done.stderr
    r = lclock("experiment", "--summarize", str(out))
    assert r.returncode == 0, r.stderr
    assert "2 trial(s) not back (yet): baseline/trial-2, small-variation/trial-1" in r.stderr
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["status"] == "incomplete"
    assert summary["missing"] == ["baseline/trial-2", "small-variation/trial-1"]
    base, small = summary["experiments"]
    assert [r["status"] for r in base["runs"]] == ["completed", "missing"]
    assert base["completed"] == 1 and small["completed"] == 1
    run = base["runs"][0]
    assert run["seed"] == 70 and len(run["rates"]) == 3 and all(1 <= x <= 6 for x in run["rates"])
    assert run["run_dir"].startswith("baseline/trial-1/")
    assert all(5 <= x <= 6 for x in small["runs"][1]["rates"])
    md = (out / "summary.md").read_text()
    assert "**missing trials** (2): baseline/trial-2, small-variation/trial-1" in md
    # and compare reads the same folder
    assert "1 of 2 runs completed" in lclock("compare", str(out)).stdout


def test_presets_from_any_folder(tmp_path: Path) -> None:
    """No settings.toml here: the README's experiments still exist; --settings adds to them."""
    r = lclock("experiment", "--list", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert names[:4] == ["baseline", "small-variation", "low-internal", "small-variation-low-internal"]
    assert {"latency-50", "pause-fastest", "pause-slowest", "partition", "skew-1000"} <= set(names)
    assert all(line.endswith("[preset]") for line in r.stdout.splitlines())
    out = tmp_path / "exp"
    r = lclock("experiment", "low-internal", "--sim", "--trials", "1", "--duration", "5",
               "--no-report", "--output", str(out), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert orjson.loads((out / "summary.json").read_bytes())["experiments"][0]["settings"]["dice_sides"] == 5
    mine = tmp_path / "mine.toml"
    mine.write_text('[experiments.fast]\nrates = [8, 9, 10]\n'
                    '[experiments.baseline]\ndescription = "my own"\nrate_min = 2\nrate_max = 3\n')
    r = lclock("experiment", "--list", "--settings", str(mine), cwd=tmp_path)
    listed = {line.split()[0]: line for line in r.stdout.splitlines()}
    assert set(listed) == set(names) | {"fast"}
    assert "my own" in listed["baseline"] and str(mine) in listed["fast"]
    out2 = tmp_path / "exp2"
    r = lclock("experiment", "fast", "baseline", "--sim", "--trials", "1", "--duration", "5",
               "--settings", str(mine), "--no-report", "--output", str(out2), "--quiet")
    assert r.returncode == 0, r.stderr
    fast, base = orjson.loads((out2 / "summary.json").read_bytes())["experiments"]
    assert fast["runs"][0]["rates"] == [8, 9, 10] and base["settings"]["rate_max"] == 3


@pytest.mark.parametrize("args, fragment", [
    (["baseline", "--jobs", "2"], "--jobs: real trials run one at a time"),
    (["baseline", "--sim", "--jobs", "0"], "--jobs: must be an integer >= 1"),
    (["baseline", "--sim", "--plan"], "--plan: is for real trials"),
    (["baseline", "--sim", "--jobs", "2", "--cluster", "tcp://127.0.0.1:1"], "--jobs: give either"),
])  # fmt: skip
def test_modes_that_make_no_sense(tmp_path: Path, args: list[str], fragment: str) -> None:
    out = tmp_path / "exp"
    r = lclock("experiment", *args, "--output", str(out))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and fragment in r.stderr, r.stderr
    assert not out.exists()


def test_the_readme_slurm_script_runs_a_planned_trial(tmp_path: Path) -> None:
    """The README's array script, run as Slurm would run array task 2 (without Slurm)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (script,) = [b for b in readme.split("```sh\n") if "#SBATCH --array" in b]
    script = script.split("```")[0]
    (tmp_path / "trials.sh").write_text(script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "lclock"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lclock "$@"\n')
    shim.chmod(0o755)
    r = lclock("experiment", "baseline", "--trials", "2", "--duration", "1", "--seed", "3",
               "--output", "runs/four", "--plan", "--no-report", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    env = {**ENV, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": "2"}
    done = subprocess.run(["bash", "trials.sh"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    r = lclock("experiment", "--summarize", "runs/four", cwd=tmp_path)
    assert r.returncode == 0 and "not back (yet): baseline/trial-1" in r.stderr, r.stderr
    runs = orjson.loads((tmp_path / "runs/four/summary.json").read_bytes())["experiments"][0]["runs"]
    assert [x["status"] for x in runs] == ["missing", "completed"] and runs[1]["seed"] == 4


def test_fault_and_clock_presets_run_with_their_plans(tmp_path: Path) -> None:
    """The presets of the fault and clock sweeps reach their trials, simulated and planned."""
    out = tmp_path / "exp"
    r = subprocess.run([sys.executable, "-m", "lclock", "experiment", "pause-fastest", "skew-100-bump",
                        "--sim", "--trials", "1", "--duration", "60", "--seed", "4", "--no-report",
                        "--no-plots", "--quiet", "--output", str(out)], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pause = orjson.loads((out / "pause-fastest" / "trial-1" / "run.json").read_bytes())
    # the preset's 3@25%+25%, in seconds of this 60 s run
    assert pause["faults"]["plan"]["pauses"] == [{"machine": 3, "start": 15.0, "length": 15.0}]
    bump = orjson.loads((out / "skew-100-bump" / "trial-1" / "run.json").read_bytes())
    assert bump["clocks"]["plan"]["bumps"] == [{"machine": 2, "time": 30.0, "ms": -500.0}]
    plan = subprocess.run([sys.executable, "-m", "lclock", "experiment", "partition", "skew-100-bump",
                           "--plan", "--trials", "1", "--output", str(tmp_path / "p")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    lines = [x for x in plan.stdout.splitlines() if x.startswith("lclock run")]
    assert "--partition 15.0-30.0:3" in lines[0]
    assert "--clock-skew 100.0" in lines[1] and "--clock-bump 2@30.0:-500.0" in lines[1]


def test_presets_with_a_schedule_fit_a_short_run(tmp_path: Path) -> None:
    """Schedules in percent of the run: a 4 s sweep of the scheduled presets is valid."""
    out = tmp_path / "exp"
    r = subprocess.run([sys.executable, "-m", "lclock", "experiment", "partition", "pause-slowest",
                        "skew-100-bump", "--sim", "--trials", "1", "--duration", "4", "--seed", "4",
                        "--no-report", "--no-plots", "--quiet", "--output", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    part = orjson.loads((out / "partition" / "trial-1" / "run.json").read_bytes())
    assert part["faults"]["plan"]["partitions"][0]["start"] == 1.0
    bump = orjson.loads((out / "skew-100-bump" / "trial-1" / "run.json").read_bytes())
    assert bump["clocks"]["plan"]["bumps"][0]["time"] == 2.0


@pytest.mark.parametrize("kind", ["fifo", "not-json", "list"])
def test_summarize_refuses_an_experiment_json_it_must_not_read(tmp_path: Path, kind: str) -> None:
    """An experiment.json that is a FIFO, not JSON or not an object: one line, exit 2,
    never a read that blocks."""
    out = tmp_path / "exp"
    out.mkdir()
    path = out / "experiment.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("{" if kind == "not-json" else "[]")
    r = lclock("experiment", "--summarize", str(out))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert {"fifo": "experiment.json", "not-json": "not valid JSON", "list": "not a JSON object"}[kind] \
        in r.stderr
