"""``lclock sim --impl``: the command line of SPEC 9, as a user types it.

The whole command as a subprocess: a reference program's run checks, ``--twice`` tells a
deterministic program from one that is not (and says where), a broken program's run exits 1
with its reason, and bad input is one line, exit 2, nothing created.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.impl_programs import IMPL, ROOT

pytestmark = pytest.mark.timeout(120)
PY_REF = f"{sys.executable} {IMPL / 'python' / 'vm.py'}"


def lclock(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], cwd=cwd, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, start_new_session=True,
                          timeout=110)


@pytest.mark.parametrize("seed", [["--seed", "3"], []], ids=["seed-given", "seed-drawn"])
def test_a_reference_program_twice_is_the_same_run_and_checks(tmp_path: Path,
                                                              seed: list[str]) -> None:
    out = tmp_path / "out"
    done = lclock("sim", "--impl", PY_REF, "--duration", "20", *seed, "--loss", "0.1",
                  "--clock-skew", "50", "--output", str(out), "--twice", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "same, line for line" in done.stdout
    (run,) = list(out.iterdir())  # the second, identical run is not kept
    check = lclock("check", str(run))
    assert check.returncode == 0, check.stdout + check.stderr


def test_twice_names_where_a_program_that_rolls_its_own_dice_parts(tmp_path: Path) -> None:
    prog = tmp_path / "rand.py"
    prog.write_text(
        "import json, random, sys\nlc = 0\n"
        "for line in sys.stdin:\n"
        "    r = json.loads(line)\n"
        "    if r['type'] == 'init': print(json.dumps({'type': 'init_ok', 'clocks': "
        "['lamport']}), flush=True); continue\n"
        "    if r['type'] == 'stop': print(json.dumps({'type': 'stop_ok'}), flush=True); break\n"
        "    lc = (max(lc, r['msg']['lclock']) if r['do'] == 'receive' else lc) + "
        "random.choice([1, 1, 2])\n"
        "    d = {'type': 'done', 'tick': r['tick'], 'lclock': lc}\n"
        "    if r['do'] == 'send': d['msg'] = {'lclock': lc}\n"
        "    print(json.dumps(d), flush=True)\n")
    out = tmp_path / "out"
    done = lclock("sim", "--impl", f"2={sys.executable} {prog}", "--duration", "30", "--seed",
                  "1", "--output", str(out), "--twice", "--quiet")
    assert done.returncode == 1
    assert "differ first at machine-2.jsonl line" in done.stderr
    assert "random numbers" in done.stderr
    assert len(list(out.iterdir())) == 2


def test_a_broken_program_fails_the_run_with_exit_1(tmp_path: Path) -> None:
    prog = tmp_path / "quits.py"
    prog.write_text("import sys\nsys.stdin.readline()\nprint('{\"type\": \"init_ok\"}', "
                    "flush=True)\nsys.stdin.readline()\nsys.exit(4)\n")
    done = lclock("sim", "--impl", f"{sys.executable} {prog}", "--duration", "5",
                  "--output", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 1
    assert "the run failed: machine 1: exited with code 4" in done.stderr
    (run,) = list((tmp_path / "out").iterdir())
    checked = lclock("check", str(run))
    assert "run.json:" not in checked.stdout, checked.stdout  # the record is true to the logs
    assert "exited with code 4" in checked.stdout


def test_an_argv_list_in_a_settings_file_is_told_to_be_one_string(tmp_path: Path) -> None:
    """``impl = ["python3", "vm.py"]`` read as two --impl flags said only "given twice"."""
    cfg = tmp_path / "settings.toml"
    cfg.write_text('impl = ["python3", "vm.py"]\n')
    done = lclock("sim", "--settings", str(cfg), "--duration", "1", "--output", str(tmp_path / "o"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "one string: 'python3 vm.py', not a list" in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--impl="], "--impl: the command is empty"),
    (["--impl", "5=./vm"], "--impl: machine 5 does not exist (the run has 3 machines)"),
    (["--impl", "a", "--impl", "b"], "--impl: a program for every machine is given twice"),
    (["--impl", "1=a", "--impl", "1=b"], "--impl: machine 1 is given twice"),
    (["--impl", "'open"], "--impl: cannot split"),
    (["--impl-limits", "disk=5"], "--impl-limits: 'disk=5': expected cpu=S"),
    (["--impl-limits", "mem=0"], "--impl-limits: 'mem=0': the value must be a whole number"),
    (["--impl-timeout", "0"], "--impl-timeout: must be a number of seconds"),
])
def test_bad_program_settings_are_one_line_and_create_nothing(tmp_path: Path, args: list[str],
                                                              message: str) -> None:
    out = tmp_path / "out"
    done = lclock("sim", *args, "--duration", "1", "--output", str(out))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert not out.exists()


def test_the_guides_skeleton_runs_fails_check_as_the_guide_says_and_passes_once_fixed(
        tmp_path: Path) -> None:
    import re

    guide = (ROOT / "docs" / "GUIDE-own-implementation.md").read_text()
    found = re.search(r"<!-- snippet:impl-skeleton -->\n```python\n(.*?)```", guide, re.S)
    assert found, "the guide's skeleton is marked"
    (tmp_path / "my_vm.py").write_text(found.group(1))
    run = lclock("sim", "--impl", "2=python3 my_vm.py", "--duration", "60", "--seed", "1",
                 cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    folder = re.search(r"run folder: (\S+)", run.stdout)
    assert folder and f"lclock check {folder.group(1)}" in guide
    checked = lclock("check", folder.group(1), cwd=tmp_path)
    assert checked.returncode == 1
    summary = checked.stdout.strip().splitlines()[-1]
    assert summary in guide  # the run folder is relative: output/ in the folder lclock ran in
    shown = [line for line in checked.stdout.splitlines() if line.startswith("machine-")][:2]
    assert "\n".join(f"    {line}" for line in shown) in guide  # the first two, in their order
    assert ": bug receive-ignores-message:" in shown[1]
    fixed = found.group(1).replace("lclock = lclock + 1  # BUG: the message's clock is ignored",
                                   'lclock = max(lclock, req["msg"]["lclock"]) + 1')
    assert fixed != found.group(1)
    (tmp_path / "my_vm.py").write_text(fixed)
    again = lclock("sim", "--impl", "2=python3 my_vm.py", "--duration", "60", "--seed", "1",
                   "--output", "fixed", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    folder = re.search(r"run folder: (\S+)", again.stdout)
    assert folder is not None
    assert lclock("check", folder.group(1), cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("form", ["string", "table"])
def test_settings_toml_examples_of_impl_work_uncommented(form: str, tmp_path: Path) -> None:
    """The repository's settings.toml shows ``impl`` (a command, or a table by machine id),
    ``impl_timeout`` and ``impl_limits`` commented out: uncommented as they stand (a command
    of the examples put in), they run."""
    text = (ROOT / "settings.toml").read_text()
    on = ["# impl_timeout = 1", '# impl_limits = "cpu=600,mem=1024,procs=64,fsize=256"',
          *(['# impl = "python3 vm.py"'] if form == "string" else ["# [impl]", '# 2 = "./vm"'])]
    for line in on:
        assert line in text, line
        text = text.replace(line, line.removeprefix("# "))
    text = text.replace('"python3 vm.py"', f'"{PY_REF}"').replace('"./vm"', f'"{PY_REF}"')
    (tmp_path / "settings.toml").write_text(text)
    done = lclock("sim", "--duration", "2", "--quiet", "--output", str(tmp_path / "out"),
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (run_json,) = (tmp_path / "out").rglob("run.json")
    machines = orjson.loads(run_json.read_bytes())["impl"]["machines"]
    assert list(machines) == (["1", "2", "3"] if form == "string" else ["2"])
