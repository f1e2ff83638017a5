"""The analysis commands against what testers threw at them, started as the real programs.

Hostile JSON types on any line (an ``event`` that is an object, a null vector clock, a list
for a time, integers beyond 64 bits in a drop line) are findings or skipped lines, never a
traceback; a folder with only run.json is one clear line; ``lclock view`` holds no line of
a log in memory twice; an empty ``--window`` writes nothing; the messages of every bad
input start with ``lclock <command>: error:``; every README example of trace, hb and view
works on a run like the README's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import started

pytestmark = pytest.mark.slow  # long real-process runs: once, on py311 (tox.ini)

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ("check", "analyze", "report", "export", "view", "trace", "hb")


def lclock(*args: str, cwd: Path = REPO, timeout: float = 120) -> tuple[int, str, str]:
    with started([sys.executable, "-m", "lclock", *args], cwd) as p:
        out, err = p.communicate(timeout=timeout)
    return p.returncode, out.decode(), err.decode()


def one_clear_line(err: str) -> None:
    assert "Traceback" not in err, err
    assert err.count("\n") == 1, err


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated run with every kind of line: ticks with pt and hlc, duplicates, drops,
    a partition's fault lines, a pause and its resume, a crash, stops."""
    out = tmp_path_factory.mktemp("sim")
    rc, _, err = lclock("sim", "--rates", "1,3,6", "--duration", "30", "--seed", "7",
                        "--loss", "0.1", "--duplicate", "0.1", "--partition", "10-20:1",
                        "--pause", "2@5+5", "--crash", "3@25", "--clock-skew", "100",
                        "--quiet", "--no-report", "--output", str(out))
    assert rc == 0, err
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def spoil(src: Path, dest: Path, event: str, key: str, value: Any) -> Path:
    """A copy of ``src`` whose first ``event`` line has ``key`` set to ``value``."""
    shutil.copytree(src, dest)
    for log in sorted(dest.glob("machine-*.jsonl")):
        lines = log.read_text().splitlines()
        for k, line in enumerate(lines):
            d = json.loads(line)
            if d.get("event") == event:
                d[key] = value
                lines[k] = json.dumps(d)
                log.write_text("\n".join(lines) + "\n")
                return dest
    raise AssertionError(f"no {event} line in {src}")


def command(name: str, run: Path, out: Path) -> list[str]:
    return {
        "check": ["check", str(run)],
        "analyze": ["analyze", str(run), "--no-write"],
        "report": ["report", str(run), "--output", str(out / "report")],
        "export": ["export", "--format", "csv", str(run), "--output", str(out / "e.csv")],
        "view": ["view", str(run), "--output", str(out / "v.html")],
        "trace": ["trace", str(run), "1:t3"],
        "hb": ["hb", str(run), "1:t3", "2:t9"],
    }[name]


# Each of these once ended in a traceback in every command (TypeError at load.py: an
# unhashable event; ValueError: a null vector clock, a list for a time; OverflowError: a
# drop line's integers beyond 63 bits).
HOSTILE = [
    ("send", "event", {"a": 1}),
    ("stop", "event", [1, 2]),
    ("connected", "event", {"kind": "send"}),
    ("internal", "vclock", None),
    ("pause", "ts", [1, 2]),
    ("drop", "to", 10**19),
    ("drop", "msg_lclock", 2**63),
]


@pytest.mark.parametrize(("event", "key", "value"), HOSTILE,
                         ids=[f"{e}-{k}-{type(v).__name__}" for e, k, v in HOSTILE])
def test_hostile_types_are_findings_not_tracebacks(faulty: Path, tmp_path: Path, event: str,
                                                   key: str, value: Any) -> None:
    run = spoil(faulty, tmp_path / "run", event, key, value)
    for name in COMMANDS:
        rc, out, err = lclock(*command(name, run, tmp_path))
        assert "Traceback" not in err, f"{name}: {err}"
        assert rc in ((0, 1) if name == "check" else (0,)), f"{name} exited {rc}: {err}"
    rc, out, _ = lclock("check", str(run))
    assert rc == 1 and "machine-" in out  # check names the line


def test_every_field_of_every_line_with_wrong_types(faulty: Path, tmp_path: Path) -> None:
    """The whole matrix, in one process for speed: every field of the first line of each
    kind set to an object, a list, a bool, null and integers beyond 63 bits (orjson reads
    up to 64; beyond that a line is not JSON to it), read by the
    loader both ways (check's validation, the tools' fast path) and by the explorer."""
    script = r"""
import io, json, shutil, sys, contextlib
from pathlib import Path
from lclock import cli
src, work = Path(sys.argv[1]), Path(sys.argv[2])
firsts = {}
for log in sorted(src.glob("machine-*.jsonl")):
    for k, line in enumerate(log.read_text().splitlines()):
        d = json.loads(line)
        firsts.setdefault(d["event"] + ("-dup" if d.get("dup") else ""), (log.name, k, d))
bad = [{"a": 1}, [1, 2], True, None, 10**19, -2**63]
failures = []
for kind, (name, k, d) in sorted(firsts.items()):
    for key in list(d):
        for value in bad:
            run = work / "run"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(src, run)
            lines = (run / name).read_text().splitlines()
            lines[k] = json.dumps(dict(d, **{key: value}))
            (run / name).write_text("\n".join(lines) + "\n")
            for argv in (["check", str(run)], ["analyze", str(run), "--no-write"],
                         ["view", str(run), "-o", str(work / "v.html")]):
                try:
                    with contextlib.redirect_stdout(io.StringIO()), \
                            contextlib.redirect_stderr(io.StringIO()):
                        cli.main(argv)
                except BaseException as exc:
                    failures.append(f"{argv[0]} {kind}.{key}={value!r:.20}: {exc!r:.200}")
print(json.dumps(failures))
"""
    with started([sys.executable, "-c", script, str(faulty), str(tmp_path)], REPO) as p:
        out, err = p.communicate(timeout=900)
    assert p.returncode == 0, err.decode()
    assert json.loads(out) == []


def test_a_folder_with_only_run_json(faulty: Path, tmp_path: Path) -> None:
    """What lclock's own runs interrupted during start-up leave: one clear line, exit 2,
    nothing written (report once raised ZeroDivisionError after writing four PNGs)."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(faulty / "run.json", run / "run.json")
    for name, args, words in (
            ("report", ["report", str(run)], "no machine logs to report on"),
            ("analyze", ["analyze", str(run)], "no machine logs to analyse"),
            ("view", ["view", str(run)], "no machine logs to show"),
            ("export", ["export", "--format", "shiviz", str(run)], "no machine logs to export"),
            ("export", ["export", "--format", "csv", str(run)], "no machine logs to export"),
            ("trace", ["trace", str(run), "1:t1"], "no tick events"),
            ("hb", ["hb", str(run), "1:t1", "2:t1"], "no tick events")):
        rc, _, err = lclock(*args)
        assert rc == 2, err
        one_clear_line(err)
        assert err.startswith(f"lclock {name}: error: ") and words in err, err
        assert "vector_clocks" not in err
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]


def test_view_memory_is_bounded_by_the_longest_line(tmp_path: Path, faulty: Path) -> None:
    """A 128 MB line cost the explorer 6 times its size (a second pass over the file held
    it whole, then copied it); now it is skipped as the loader skips it."""
    run = tmp_path / "run"
    shutil.copytree(faulty, run)
    with open(run / "machine-1.jsonl", "ab") as fh:
        fh.write(b'{"event":"note","x":"' + b"a" * (128 << 20) + b'"}\n')
    probe = ("import resource, subprocess, sys; "
             "r = subprocess.run([sys.executable, '-m', 'lclock', 'view', sys.argv[1], '-o', "
             "sys.argv[2]], capture_output=True); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    with started([sys.executable, "-c", probe, str(run), str(tmp_path / "v.html")], REPO) as p:
        out, err = p.communicate(timeout=300)
    rc, kb = map(int, out.split())
    assert rc == 0, err
    assert kb < 400_000, f"lclock view peaked at {kb / 1000:.0f} MB on a 128 MB line"
    assert (tmp_path / "v.html").stat().st_size < 10 << 20


def test_view_keeps_the_clocks_and_marks(faulty: Path, tmp_path: Path) -> None:
    """The explorer's data come from the loader now: the clocks and the marked lines of a
    run with faults are all there."""
    rc, _, err = lclock("view", str(faulty), "-o", str(tmp_path / "v.html"))
    assert rc == 0, err
    page = (tmp_path / "v.html").read_text()
    data = json.loads(re.search(r'id="lclock-data">(.*?)</script>', page, re.S)
                      .group(1).replace("\\u003c", "<"))
    run = data["runs"][0]
    assert {"hlc", "pt"} <= set(run["run"]["clocks"])
    kinds = {run["marks"]["kinds"][k] for k in run["marks"]["kind"]}
    assert {"pause", "resume", "fault", "stop"} <= kinds
    assert run["drops"]["n"] > 0
    assert any(len(lane["dup"]) for lane in run["lanes"])


def test_view_window_without_events_writes_nothing(faulty: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(faulty, run)
    (run / "explorer.html").write_text("an earlier page")
    for window in ("60,90", "29.99999,29.999999"):
        rc, _, err = lclock("view", str(run), "--window", window)
        assert rc == 2, err
        one_clear_line(err)
        assert err.startswith("lclock view: error: ") and f"--window {window}" in err, err
    assert (run / "explorer.html").read_text() == "an earlier page"
    rc, _, err = lclock("report", str(run), "--window", "60,90")
    assert rc == 2 and "--window 60,90 starts after the run's last event" in err, err


@pytest.mark.parametrize(("args", "command"), [
    (["trace", "{run}", "9:t1"], "trace"),
    (["trace", "{run}", "nonsense"], "trace"),
    (["hb", "{run}", "1:t1"], "hb"),
    (["hb", "{run}", "1:t1", "2:t99999"], "hb"),
    (["hb", "{run}", "--lamport-lies", "--examples", "-1"], "hb"),
    (["check", "{missing}"], "check"),
    (["analyze", "{missing}"], "analyze"),
    (["report", "{missing}"], "report"),
    (["export", "{missing}"], "export"),
    (["view", "{missing}"], "view"),
    (["import", "--preset", "text", "{missing}"], "import"),
    (["merge", "{missing}"], "merge"),
])
def test_bad_input_lines_share_one_shape(faulty: Path, tmp_path: Path, args: list[str],
                                         command: str) -> None:
    filled = [a.format(run=faulty, missing=tmp_path / "nothing") for a in args]
    rc, _, err = lclock(*filled)
    assert rc == 2, err
    one_clear_line(err)
    assert err.startswith(f"lclock {command}: error: "), err


def readme_section(name: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"<!-- {name}:start -->(.*?)<!-- {name}:end -->", text, re.S)
    assert m, name
    return m.group(1)


def test_readme_examples_work_on_the_readmes_run(tmp_path: Path) -> None:
    """The README's run is ``launcher.py --duration 60`` with rates drawn from 1 to 6: a
    machine may tick only once a second, so it has ticks 1 to 60 (the example ``hb RUN
    1:t5 3:t100`` once failed on it). Every trace, hb and view example of the README runs
    here on the slowest such run."""
    rc, _, err = lclock("sim", "--rates", "1,1,1", "--duration", "60", "--seed", "3", "--quiet",
                        "--no-report", "--output", str(tmp_path / "out"))
    assert rc == 0, err
    (run,) = (tmp_path / "out").iterdir()
    text = (REPO / "README.md").read_text(encoding="utf-8")
    examples = sorted({m.group(1).strip() for m in re.finditer(
        r"^\s*lclock ((?:trace|hb|view) RUN\b[^#\n]*)", text, re.M)})
    assert any(e.startswith("hb RUN 1:t") for e in examples), examples
    assert any(e.startswith("view RUN --window") for e in examples), examples
    for example in examples:
        args = [str(run) if a == "RUN" else a for a in example.split()]
        if args[0] == "view":
            args += ["--output", str(tmp_path / "v.html")]
        rc, out, err = lclock(*args)
        assert rc == 0, f"README example lclock {example}: {err}"


def test_report_drift_figure_measures_behind_the_leader(tmp_path: Path) -> None:
    """The figure once plotted "behind the fastest machine", which goes negative whenever a
    slower machine's clock leads; the analyze table measures behind the leader (never
    negative). Both now say the same: the figure's curves are the table's numbers."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    from lclock.analysis.analyze import compute
    from lclock.analysis.figures import fig_drift
    from lclock.analysis.load import load_run

    rc, _, err = lclock("sim", "--rates", "2,5,6", "--duration", "60", "--seed", "11", "--quiet",
                        "--no-report", "--output", str(tmp_path / "out"))
    assert rc == 0, err
    (run_dir,) = (tmp_path / "out").iterdir()
    run = load_run(run_dir)
    summary, series = compute(run)
    assert any(series.lag[i].min() < 0 for i in run.ids), "no machine ever leads the fastest"
    fig = fig_drift(run, series)
    lower = fig.axes[1]
    curves = {line.get_label(): line.get_ydata() for line in lower.get_lines()}
    assert len(curves) == len(run.ids)
    behind = summary["drift"]["behind_leader"]
    for i in run.ids:
        (y,) = [v for k, v in curves.items() if k.startswith(f"machine {i} ")]
        assert y.min() >= 0
        assert int(y.max()) == behind[str(i)]["max"] and int(y[-1]) == behind[str(i)]["final"]
    assert "leading" in lower.get_title()
