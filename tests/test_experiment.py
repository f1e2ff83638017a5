"""The experiment runner: the arithmetic across trials, planning, and --sim end to end."""

from __future__ import annotations

import io
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from conftest import session_members, started, wait_for

from lclock.experiment.real import _stop_child, real_command
from lclock.experiment.records import Experiment, Trial
from lclock.experiment.report import summary_markdown
from lclock.experiment.runner import plan, settings_toml, summarize_experiment
from lclock.experiment.stats import fmt_ci, mean_ci, t975
from lclock.settings import SettingsError, parse_settings_file, resolve

REPO = Path(__file__).resolve().parent.parent


# -- the arithmetic ---------------------------------------------------------------------


def test_t_quantiles() -> None:
    assert t975(1) == 12.706
    assert t975(4) == 2.776
    assert t975(30) == 2.042
    assert t975(35) == 2.021
    assert t975(1000) == 1.960
    with pytest.raises(ValueError):
        t975(0)


def test_mean_ci_by_hand() -> None:
    ci = mean_ci([1, 2, 3, 4, 5])
    sd = math.sqrt(2.5)
    assert ci["n"] == 5 and ci["mean"] == 3
    assert ci["sd"] == pytest.approx(sd)
    assert ci["half"] == pytest.approx(2.776 * sd / math.sqrt(5))
    assert ci["lo"] == pytest.approx(3 - ci["half"]) and ci["hi"] == pytest.approx(3 + ci["half"])
    assert fmt_ci(ci) == "3.00 ± 1.96"


def test_mean_ci_edge_cases() -> None:
    assert mean_ci([])["mean"] is None
    one = mean_ci([4.0])
    assert one["mean"] == 4.0 and one["half"] is None
    assert fmt_ci(one) == "4.00" and fmt_ci(mean_ci([])) == "–"
    same = mean_ci([2, 2, 2])
    assert same["half"] == 0 and same["lo"] == same["hi"] == 2
    assert mean_ci([1, None, float("nan"), 3])["n"] == 2  # type: ignore[list-item]


def test_interval_covers_the_true_mean_about_95_percent() -> None:
    """The interval's promise, checked by simulation: n = 5 normal samples."""
    import random

    rng = random.Random(1)
    hits = 0
    for _ in range(4000):
        ci = mean_ci([rng.gauss(10, 3) for _ in range(5)])
        hits += ci["lo"] <= 10 <= ci["hi"]
    assert 0.93 < hits / 4000 < 0.97


# -- planning ---------------------------------------------------------------------------


def settings_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "settings.toml"
    p.write_text(text)
    return p


EXPS = """
duration = 30
[experiments.a]
description = "A"
rate_min = 2
rate_max = 4
[experiments.b]
rates = [1, 3, 6]
dice_sides = 5
trials = 2
"""


def test_plan_resolves_tables_and_flags(tmp_path: Path) -> None:
    f = parse_settings_file(settings_file(tmp_path, EXPS))
    a, b = plan(f, [], True, None, None)
    assert (a.name, a.description, a.trials) == ("a", "A", 5)
    assert (a.settings.rate_min, a.settings.rate_max, a.settings.duration) == (2, 4, 30.0)
    assert b.trials == 2 and b.settings.rates == (1, 3, 6) and b.settings.dice_sides == 5
    (b2,) = plan(f, ["b"], False, 7, 12.5)
    assert b2.trials == 7 and b2.settings.duration == 12.5


@pytest.mark.parametrize(
    "names, run_all, trials, fragment",
    [
        (["nope"], False, None, "no experiment named 'nope'"),
        (["a"], True, None, "--all"),
        ([], False, None, "NAME"),
        (["a", "a"], False, None, "given twice"),
        (["a"], False, 0, "--trials"),
    ],
)
def test_plan_errors(tmp_path: Path, names, run_all, trials, fragment) -> None:
    f = parse_settings_file(settings_file(tmp_path, EXPS))
    with pytest.raises(SettingsError, match=fragment):
        plan(f, names, run_all, trials, None)


def test_plan_names_the_bad_key(tmp_path: Path) -> None:
    p = settings_file(tmp_path, "[experiments.x]\nrate_min = 9\nrate_max = 2\n")
    with pytest.raises(SettingsError, match=r"experiments\.x\.rate_"):
        plan(parse_settings_file(p), ["x"], False, None, None)


def test_trial_settings_file_round_trips(tmp_path: Path) -> None:
    f = parse_settings_file(settings_file(tmp_path, EXPS))
    for exp in plan(f, [], True, None, None):
        p = tmp_path / f"{exp.name}.toml"
        p.write_text(settings_toml(exp.settings))
        again = resolve(parse_settings_file(p), {})
        for key in ("machines", "duration", "rate_min", "rate_max", "rates", "dice_sides",
                    "vector_clocks"):
            assert getattr(again, key) == getattr(exp.settings, key), key


def test_real_command(tmp_path: Path) -> None:
    f = parse_settings_file(settings_file(tmp_path, EXPS))
    a, b = plan(f, [], True, None, None)
    cmd = real_command(a.settings, 42, tmp_path / "t", quiet=True, report=False)
    assert cmd[:4] == [sys.executable, "-m", "lclock", "run"]
    joined = " ".join(cmd)
    for part in ("--quiet", "--no-report", "--seed 42", "--rate-min 2", "--rate-max 4",
                 "--dice-sides 10", "--duration 30.0", f"--output {tmp_path / 't'}",
                 f"--settings {os.devnull}"):
        assert part in joined
    assert "--rates 1,3,6" in " ".join(real_command(b.settings, 1, tmp_path))
    live = real_command(b.settings, 1, tmp_path, quiet=False, report=True)
    assert "--quiet" not in live and "--no-report" not in live


@pytest.mark.timeout(60)
def test_stop_child_interrupts_then_kills(tmp_path: Path) -> None:
    """A child that ignores SIGINT and SIGTERM is still gone after _stop_child."""
    code = "import signal,time;signal.signal(2,signal.SIG_IGN);signal.signal(15,signal.SIG_IGN);print('up',flush=True);time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    import lclock.experiment.real as runner

    _stop_child(proc, waits=(0.5, 0.5, 5.0))
    assert proc.poll() is not None
    gentle = subprocess.Popen([sys.executable, "-c", "import time;time.sleep(60)"],
                              start_new_session=True)
    time.sleep(0.3)
    _stop_child(gentle)
    assert gentle.returncode is not None
    assert runner.REAL_TRIAL_GRACE > 0


def test_summary_arithmetic(tmp_path: Path) -> None:
    """Slowest/fastest are picked by rate; the interval is over trials."""
    f = parse_settings_file(settings_file(tmp_path, EXPS))
    (exp,) = plan(f, ["a"], False, 3, None)
    trials = []
    for k, (slow_q, fast_q) in enumerate([(10, 1), (20, 2), (30, 3)], start=1):
        t = Trial("a", k, 100 + k, status="completed", exit_code=0, run_dir=tmp_path / f"r{k}")
        t.rates = [4, 2, 3]
        mk = lambda i, r, q: {"id": i, "rate": r, "mean_jump": q / 10, "max_jump": q,  # noqa: E731
                              "drift_mean": q, "drift_max": q, "max_queue": q, "ticks": 1}
        t.metrics = {"machines": [mk(1, 4, fast_q), mk(2, 2, slow_q), mk(3, 3, 0)],
                     "spread_mean": k, "spread_max": 2 * k}
        trials.append(t)
    trials.append(Trial("a", 4, 104, status="failed", exit_code=1, error="boom"))
    s = summarize_experiment(exp, trials, tmp_path)
    assert s["completed"] == 3 and s["trials"] == 3
    assert s["slowest"]["max_queue"]["mean"] == 20
    assert s["slowest"]["max_queue"]["half"] == pytest.approx(4.303 * 10 / math.sqrt(3))
    assert s["fastest"]["max_queue"]["mean"] == 2
    assert s["run"]["spread_max"]["mean"] == 4
    assert [r["slowest"]["id"] for r in s["runs"][:3]] == [2, 2, 2]
    assert s["runs"][3]["status"] == "failed" and s["runs"][3]["error"] == "boom"
    md = summary_markdown({"experiments": [s], "mode": "real", "command": ["x"]})
    assert "| a | 2 | " in md and "boom" in md


# -- end to end, simulated --------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lclock", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_sim_experiment_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    r = cli("experiment", "baseline", "low-internal", "--sim", "--trials", "3",
            "--duration", "20", "--seed", "4", "--output", str(out), "--no-report")
    assert r.returncode == 0, r.stderr
    assert "low-internal/trial-3 (seed 6): done" in r.stdout and "experiment folder:" in r.stdout
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["status"] == "completed" and summary["mode"] == "sim"
    assert summary["base_seed"] == 4
    base, low = summary["experiments"]
    assert (base["name"], low["name"]) == ("baseline", "low-internal")
    assert base["completed"] == 3 and low["settings"]["dice_sides"] == 5
    assert [r["seed"] for r in base["runs"]] == [4, 5, 6]
    # same seeds and the same rate range: the two experiments are paired trial by trial
    assert [r["rates"] for r in base["runs"]] == [r["rates"] for r in low["runs"]]
    for e in (base, low):
        for role in ("slowest", "fastest"):
            for metric in ("mean_jump", "max_jump", "drift_mean", "drift_max", "max_queue"):
                ci = e[role][metric]
                # a machine that received nothing has no jumps: fewer values then
                assert ci["n"] == 3 or (metric.endswith("_jump") and ci["n"] >= 1)
                if ci["n"] >= 2:
                    assert ci["lo"] <= ci["mean"] <= ci["hi"]
        for k, run in enumerate(e["runs"], start=1):
            # the trial folder is the run folder: no extra level
            assert run["run_dir"] == f"{e['name']}/trial-{k}"
            run_dir = out / run["run_dir"]
            assert (run_dir / "run.json").is_file() and (run_dir / "machine-1.jsonl").is_file()
            assert not (run_dir / "report.html").exists() and run["report"] is False
            assert run["slowest"]["rate"] == min(run["rates"])
            assert run["fastest"]["rate"] == max(run["rates"])
        assert (out / e["name"] / "settings.toml").is_file()
    md = (out / "summary.md").read_text()
    assert "## The slowest machine of each trial" in md and "comparison.png" in md
    assert (out / "comparison.png").stat().st_size > 10_000
    meta = orjson.loads((out / "experiment.json").read_bytes())
    assert meta["status"] == "completed" and meta["jobs"] >= 1
    assert set(meta["timing"]) == {f"{n}/trial-{k}" for n in ("baseline", "low-internal")
                                   for k in (1, 2, 3)}
    # reproducible: the same command gives the same numbers
    out2 = tmp_path / "exp2"
    r = cli("experiment", "baseline", "low-internal", "--sim", "--trials", "3", "--duration",
            "20", "--seed", "4", "--output", str(out2), "--quiet", "--no-plots", "--no-report")
    assert r.returncode == 0 and r.stdout == ""
    assert (out2 / "summary.json").read_bytes() == (out / "summary.json").read_bytes()
    assert not (out2 / "comparison.png").exists()
    # --summarize recomputes the same summary from the run folders alone
    (out2 / "summary.md").unlink()
    (out2 / "summary.json").unlink()
    r = cli("experiment", "--summarize", str(out2), "--quiet")
    assert r.returncode == 0, r.stderr
    assert (out2 / "summary.json").read_bytes() == (out / "summary.json").read_bytes()
    assert (out2 / "summary.md").is_file() and (out2 / "comparison.png").is_file()


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p, "not an experiment folder"),
    (lambda p: p / "nope", "no such folder"),
    (lambda p: (p / "run.json").write_text("{}") and p, "a run folder"),
    (lambda p: (p / "experiment.json").write_text("{oops") and p, "not valid JSON"),
    (lambda p: (p / "experiment.json").write_text("{}") and p, "no list of experiments"),
])  # fmt: skip
def test_summarize_a_folder_that_is_not_an_experiment(tmp_path: Path, make, fragment: str) -> None:
    """One clear line and exit status 2, never a traceback (it was a KeyError)."""
    target = make(tmp_path)
    r = cli("experiment", "--summarize", str(target))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and fragment in r.stderr and "--summarize" in r.stderr
    assert not (tmp_path / "summary.md").exists()


@pytest.mark.slow
def test_default_folder_and_all(tmp_path: Path) -> None:
    p = settings_file(tmp_path, f'output = "{tmp_path / "o"}"\n' + EXPS)
    # --all is every preset too (46 trials): without their reports (about 3 minutes of
    # matplotlib, past the timeout on a busy machine); what --all makes is the same.
    r = cli("experiment", "--all", "--sim", "--trials", "2", "--duration", "5", "--settings",
            str(p), "--quiet", "--no-report")
    assert r.returncode == 0, r.stderr
    (folder,) = (tmp_path / "o" / "experiments").iterdir()
    assert folder.name.endswith("-all-sim")
    assert {x.name for x in folder.iterdir()} >= {"a", "b", "summary.json", "summary.md"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["nope", "--sim"], "no experiment named 'nope'"),
        (["--sim"], "NAME"),
        (["baseline", "--all", "--sim"], "--all"),
        (["baseline", "--sim", "--trials", "0"], "--trials"),
        (["baseline", "--sim", "--duration", "-1"], "--duration"),
        (["baseline", "--sim", "--trials", "x"], "--trials"),
        (["baseline", "--sim", "--settings", "/nonexistent.toml"], "/nonexistent.toml"),
    ],
)
def test_bad_input(tmp_path: Path, args: list[str], fragment: str) -> None:
    out = tmp_path / "exp"
    r = cli("experiment", *args, "--output", str(out))
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr
    assert not out.exists()


def test_output_must_be_new_or_empty(tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "x").write_text("keep me")
    r = cli("experiment", "baseline", "--sim", "--output", str(tmp_path / "exp"))
    assert r.returncode == 2 and "--output" in r.stderr
    assert (tmp_path / "exp" / "x").read_text() == "keep me"


def test_summary_survives_a_failed_trial(tmp_path: Path) -> None:
    exp = Experiment("x", "", resolve(parse_settings_file(settings_file(tmp_path, EXPS)), {}), 1)
    s = summarize_experiment(exp, [Trial("x", 1, 1, status="failed", error="no")], tmp_path)
    assert s["completed"] == 0 and s["slowest"]["max_queue"]["mean"] is None


def test_an_experiment_whose_trials_failed_does_not_say_completed() -> None:
    from lclock.experiment.runner import tried_status

    def trials(*statuses: str) -> list[Trial]:
        return [Trial("x", k, k, status=st) for k, st in enumerate(statuses, start=1)]

    assert tried_status(trials("completed", "completed")) == "completed"
    assert tried_status(trials("completed", "failed")) == "incomplete"
    assert tried_status(trials("failed", "failed")) == "failed"


@pytest.mark.slow
def test_real_experiment_short(tmp_path: Path) -> None:
    """Two real trials of 2 s through the real launcher."""
    out = tmp_path / "exp"
    r = cli("experiment", "baseline", "--trials", "2", "--duration", "2", "--seed", "9",
            "--output", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    # the launcher's own display of each trial: its end table
    assert r.stdout.count("max queue") >= 2 and "baseline/trial-2 (seed 10): done" in r.stdout
    summary = orjson.loads((out / "summary.json").read_bytes())
    (e,) = summary["experiments"]
    assert summary["mode"] == "real" and e["completed"] == 2
    for k, run in enumerate(e["runs"], start=1):
        assert run["run_dir"] == f"baseline/trial-{k}" and run["report"] is True
        meta = orjson.loads((out / run["run_dir"] / "run.json").read_bytes())
        assert meta["status"] == "completed" and meta["seed"] == run["seed"]
        assert (out / run["run_dir"] / "report.html").is_file()
    assert sorted(p.name for p in (out / "baseline").iterdir()) == [
        "settings.toml", "trial-1", "trial-2"]
    # every path it printed is where it says, not in the staging folder it was renamed from
    printed = [Path(line.split(": ", 1)[1]) for line in r.stdout.splitlines()
               if line.startswith(("report: ", "run folder: ", "summary: "))]  # fmt: skip
    assert len(printed) >= 5 and ".running" not in r.stdout, r.stdout
    assert all(p.exists() for p in printed), printed


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(2, 130), (15, 143)])
def test_real_experiment_stops_on_a_signal(tmp_path: Path, sig: int, code: int) -> None:
    """Ctrl-C (or SIGTERM) during a real trial: the launcher stops gracefully, the trial is
    recorded as interrupted, the summary is written, and no process is left behind."""
    import signal

    import psutil

    out = tmp_path / "exp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lclock", "experiment", "baseline", "--trials", "2",
         "--duration", "20", "--seed", "3", "--output", str(out)],
        cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not list(out.glob("baseline/.trial-1.running/*/machine-*.jsonl")):
            assert time.monotonic() < deadline, "the first trial never started"
            time.sleep(0.2)
        time.sleep(1.0)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the launcher should be running"
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        assert "partial results" in err
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"left behind: {alive}"
    finally:
        with __import__("contextlib").suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["status"] == "interrupted"
    run, pending = summary["experiments"][0]["runs"]
    assert run["status"] == "interrupted" and run["run_dir"] == "baseline/trial-1"
    assert pending["status"] == "interrupted" and pending["run_dir"] is None
    meta = orjson.loads((out / run["run_dir"] / "run.json").read_bytes())
    assert meta["status"] == "interrupted"
    assert (out / "summary.md").is_file()


def test_comparison_figure_with_a_negative_mean_drift(tmp_path: Path) -> None:
    """A slow machine can be ahead of the fastest on average: the plot must not crash
    (matplotlib refuses negative error bars) nor hide the negative bar."""
    from lclock.experiment.report import comparison_figure

    def ci(m: float, h: float) -> dict[str, float | int]:
        return {"n": 5, "mean": m, "sd": 1.0, "lo": m - h, "hi": m + h, "half": h}

    role = {k: ci(1.5, 0.3) for k in ("mean_jump", "max_jump", "max_queue")}
    role["drift_mean"] = ci(-0.4, 0.6)
    summary = {"experiments": [{"name": "x", "slowest": role, "fastest": role, "runs": [],
                                "completed": 5}]}
    out = comparison_figure(summary, tmp_path / "c.png")
    assert out.exists() and out.stat().st_size > 1000


def test_a_sigkilled_experiment_leaves_no_worker_behind(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``lclock experiment --sim --jobs 2`` SIGKILLed (the OOM killer, ``kill -9``): its
    workers, forked from the forkserver (which lives as long as they do), went on with
    their trials and then waited for the next one for ever, with the forkserver and the
    resource tracker. Now each worker ends when the experiment does."""
    out = tmp_path / "exp"
    cmd = [sys.executable, "-m", "lclock", "experiment", "baseline", "--sim", "--trials", "20",
           "--duration", "200000", "--seed", "1", "--jobs", "2", "--no-report", "--output",
           str(out)]
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with started(cmd, REPO) as proc:
        assert wait_for(lambda: len(session_members(proc.pid)) >= 5, 60, 0.1), \
            session_members(proc.pid)  # the experiment, tracker, forkserver, 2 workers
        proc.kill()
        proc.wait(timeout=10)
        assert wait_for(lambda: session_members(proc.pid) == [], 15, 0.1), \
            session_members(proc.pid)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_while_the_workers_start_is_not_lost(
        tmp_path: Path, sig: int, code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while ``experiment --jobs 2`` started its workers (about 0.15 to 0.45 s
    after the start here) was lost: Ctrl-C was ignored then, and the mask meant to keep
    it pending was undone by multiprocessing starting its resource tracker. The experiment
    ran to its end with exit 0. The signal is sent from inside the first submit, so the
    test does not race the clock."""
    code_text = (
        "import os, runpy, signal, sys\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "real = ProcessPoolExecutor.submit\n"
        "def submit(self, *a, **k):\n"
        f"    os.kill(os.getpid(), {int(sig)})\n"
        "    ProcessPoolExecutor.submit = real\n"
        "    return real(self, *a, **k)\n"
        "ProcessPoolExecutor.submit = submit\n"
        "runpy.run_module('lclock', run_name='__main__', alter_sys=True)\n"
    )
    out = tmp_path / "exp"
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with started([sys.executable, "-c", code_text, "experiment", "baseline", "--sim",
                  "--trials", "6", "--duration", "3000", "--seed", "1", "--jobs", "2",
                  "--no-report", "--output", str(out)], REPO, text=True) as proc:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        assert "stopped" in err and "Traceback" not in err
        assert wait_for(lambda: session_members(proc.pid) == [], 15), session_members(proc.pid)
    assert orjson.loads((out / "summary.json").read_bytes())["status"] == "interrupted"


def test_the_live_display_shows_the_final_paths(tmp_path: Path) -> None:
    """Lines cut anywhere by the pipe still come out whole, with the staging folder's run
    folder shown as the trial folder; other text passes as it is."""
    from lclock.experiment.relabel import copy_lines, rewriter

    staging, dest = tmp_path / ".trial-1.running", tmp_path / "trial-1"
    text = (f"run folder: {staging}/20260101T000000Z-ab12\nmachine  rate\n"
            f"report: {staging}/20260101T000000Z-ab12/report.html\nno newline at the end").encode()
    read_fd, write_fd = os.pipe()
    out = io.BytesIO()
    copier = threading.Thread(target=copy_lines, args=(read_fd, out, rewriter(staging, dest)))
    copier.start()
    for i in range(0, len(text), 7):
        os.write(write_fd, text[i:i + 7])
    os.close(write_fd)
    copier.join()
    assert out.getvalue().decode() == (f"run folder: {dest}\nmachine  rate\n"
                                       f"report: {dest}/report.html\nno newline at the end")


def test_experiments_of_the_same_second_get_folders_of_their_own(tmp_path: Path) -> None:
    """The default folder is named after the second and the experiments: a loop that starts
    several (``&``) gave them one folder, and a trial of the second failed on the first's."""
    from lclock.experiment.experiment_cmd import root_folder

    root = tmp_path / "output" / "experiments" / "20260101T000000Z-baseline-sim"
    got = [root_folder(root, own=False) for _ in range(3)]
    assert got == [root, root.with_name(f"{root.name}-2"), root.with_name(f"{root.name}-3")]
    assert all(p.is_dir() and not any(p.iterdir()) for p in got)
    mine = tmp_path / "mine"
    mine.mkdir()
    assert root_folder(mine, own=True) == mine  # the user's own empty --output is kept
