"""Ingestion: the JSON Schema accepts real logs and rejects broken lines; the README's jq,
pandas and DuckDB examples are extracted from README.md and run, so they cannot drift."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from analysis_fixtures import make_run, read_lines

from lclock.analysis.schema import LOG_LINE_SCHEMA

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).resolve().parent / "data" / "foreign-run-1-3-6"
PLACEHOLDER = "output/20261125T184001Z-3f9a"


def analysis_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- analysis:start -->")
    end = text.index("<!-- analysis:end -->")
    return text[start:end]


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", analysis_section(), flags=re.S)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("ingest") / "run", rates=(1, 3, 6), duration=20.0)


def validator() -> object:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(LOG_LINE_SCHEMA)
    return jsonschema.Draft202012Validator(LOG_LINE_SCHEMA)


def test_schema_command_prints_the_schema() -> None:
    p = subprocess.run([sys.executable, "-m", "lclock", "schema"], capture_output=True,
                       text=True, cwd=REPO, timeout=60)
    assert p.returncode == 0
    assert json.loads(p.stdout) == LOG_LINE_SCHEMA


def test_schema_accepts_generated_and_foreign_logs(run: Path) -> None:
    v = validator()
    folders = [run] + ([SAMPLE] if SAMPLE.exists() else [])
    n = 0
    for folder in folders:
        for path in folder.glob("machine-*.jsonl"):
            for line in read_lines(path):
                errors = [e.message for e in v.iter_errors(line)]  # type: ignore[attr-defined]
                assert not errors, (path, line, errors)
                n += 1
    assert n > 300


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda d: d.pop("ts"), "'ts' is a required property"),
        (lambda d: d.update(ts="2026-01-01 00:00:00"), "does not match"),
        (lambda d: d.pop("lclock"), "'lclock' is a required property"),
        (lambda d: d.update(tick="3"), "is not of type 'integer'"),
        (lambda d: d.update(to=[]), "should be non-empty"),
        (lambda d: d.update(level="loud"), "is not one of"),
    ],
)
def test_schema_rejects_broken_lines(run: Path, change: object, fragment: str) -> None:
    v = validator()
    line = next(d for d in read_lines(run / "machine-3.jsonl") if d.get("event") == "send")
    change(line)  # type: ignore[operator]
    messages = " | ".join(e.message for e in v.iter_errors(line))  # type: ignore[attr-defined]
    assert fragment in messages or (fragment == "should be non-empty" and "too short" in messages)


def test_readme_has_the_three_examples() -> None:
    sh = blocks("sh")
    py = blocks("python")
    assert any("jq " in b for b in sh)
    assert any("import pandas" in b for b in py)
    assert any("import duckdb" in b for b in py)


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed")
def test_readme_jq_example_runs(run: Path) -> None:
    for block in blocks("sh"):
        script = block.replace(PLACEHOLDER, str(run))
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        out = p.stdout.splitlines()
        receives = [json.loads(x) for x in out if x.startswith("{")]
        assert receives and all(set(r) == {"machine", "tick", "lclock", "from", "msg_lclock"}
                                for r in receives)
        last = [d["lclock"] for d in read_lines(run / "machine-1.jsonl") if "tick" in d][-1]
        assert out[-1] == str(last)


@pytest.mark.parametrize("library", ["pandas", "duckdb"])
def test_readme_python_examples_run(run: Path, library: str) -> None:
    pytest.importorskip(library)
    block = next(b for b in blocks("python") if f"import {library}" in b)
    script = block.replace(PLACEHOLDER, str(run))
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert p.returncode == 0, p.stderr
    counts = {}
    for i in (1, 2, 3):
        for d in read_lines(run / f"machine-{i}.jsonl"):
            if "tick" in d:
                counts[(i, d["event"])] = counts.get((i, d["event"]), 0) + 1
    # every (machine, event) count of the log appears in the printed table
    for (i, ev), n in counts.items():
        if library == "duckdb":
            assert re.search(rf"│\s+{i} │ {ev}\s+│\s+{n} │", p.stdout), (i, ev, n, p.stdout)
        else:
            assert re.search(rf"^{i}\s", p.stdout, flags=re.M)
    if library == "pandas":
        from lclock.analysis.analyze import analyze_run

        for m in analyze_run(run)["machines"]:
            if m["jumps"]["count"]:
                row = re.search(rf"^{m['id']}\s+([0-9.]+)\s+([0-9.]+)$", p.stdout, flags=re.M)
                assert row, p.stdout
                assert float(row.group(1)) == pytest.approx(m["jumps"]["mean"], abs=1e-3)
                assert float(row.group(2)) == m["jumps"]["max"]


# ------------------------------------------------------------------ faults and clocks


def _validate_folder(run_dir: Path) -> int:
    v = validator()
    n = 0
    for path in sorted(run_dir.glob("machine-*.jsonl")):
        for line in read_lines(path):
            errors = [e.message for e in v.iter_errors(line)]  # type: ignore[attr-defined]
            assert not errors, (path, line, errors)
            n += 1
    return n


def test_schema_accepts_faulty_sim_logs(tmp_path: Path) -> None:
    """Every line the simulator writes with faults and wrong clocks (SPEC 6 and 7)."""
    from test_check_faults import FAULTY
    from test_consistency import sim

    run_dir = sim(tmp_path, *FAULTY)
    text = "".join(p.read_text() for p in run_dir.glob("machine-*.jsonl"))
    for word in ('"event":"drop"', '"event":"fault"', '"event":"pause"', '"event":"resume"',
                 '"dup":true', '"dup_to":', '"msg_hlc":', '"dropped_to":'):
        assert word in text, word
    assert _validate_folder(run_dir) > 300


def test_schema_accepts_a_real_faulty_run(tmp_path: Path) -> None:
    """A real run with every fault and wrong clocks: its logs are schema version 1."""
    from conftest import started

    cmd = [sys.executable, "-m", "lclock", "run", "--duration", "4", "--machines", "3",
           "--seed", "5", "--rate-min", "20", "--rate-max", "40", "--latency", "5", "--loss",
           "0.1", "--duplicate", "0.1", "--partition", "1-2:1", "--pause", "2@2+0.5",
           "--crash", "3@3", "--clock-skew", "50", "--clock-bump", "1@1.5:-20", "--quiet",
           "--no-report", "--output", str(tmp_path)]
    with started(cmd, REPO) as proc:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_dir = next(d for d in tmp_path.iterdir() if (d / "run.json").exists())
    assert _validate_folder(run_dir) > 100


@pytest.mark.parametrize(
    "event, change, fragment",
    [
        ("send", lambda d: d.update(hlc=[1]), "is too short"),
        ("send", lambda d: d.update(pt=-1), "less than the minimum"),
        ("send", lambda d: d.update(dup_to=[]), "should be non-empty"),
        ("receive", lambda d: d.update(dup="yes"), "is not of type 'boolean'"),
        ("receive", lambda d: d.update(msg_hlc=[1, "2"]), "is not of type 'integer'"),
        ("drop", lambda d: d.update(reason="gremlins"), "is not one of"),
        ("drop", lambda d: d.pop("msg_lclock"), "'msg_lclock' is a required property"),
        ("fault", lambda d: d.update(kind="split"), "is not one of"),
        ("resume", lambda d: d.pop("skipped"), "'skipped' is a required property"),
        ("stop", lambda d: d.update(dropped_to={"2": -1}), "less than the minimum"),
    ],
)
def test_schema_rejects_broken_fault_and_clock_fields(event: str, change: object,
                                                      fragment: str) -> None:
    v = validator()
    base = {"ts": "2026-01-01T00:00:00.000000Z", "event": event, "level": "info",
            "run_id": "r", "machine": 1}
    extra: dict[str, dict[str, object]] = {
        "send": {"tick": 1, "lclock": 1, "queue_len": 0, "dice": 1, "to": [2],
                 "pt": 1767225600000000, "hlc": [1767225600000000, 0], "dup_to": [2]},
        "receive": {"tick": 2, "lclock": 3, "queue_len": 0, "from": 2, "msg_lclock": 1,
                    "msg_pt": 1, "msg_hlc": [1, 0], "dup": True},
        "drop": {"to": 2, "msg_lclock": 1, "reason": "loss", "tick": 1},
        "fault": {"kind": "partition", "groups": [[1], [2]], "start": 1.0, "end": 2.0},
        "resume": {"skipped": 3, "paused_s": 1.0},
        "stop": {"reason": "duration", "ticks": 1, "lclock": 1, "sent": 0, "received": 0,
                 "unprocessed": 0, "dropped_to": {"2": 1}, "dup_to": {"2": 0}},
    }
    line = {**base, **extra[event]}
    assert not list(v.iter_errors(line))  # type: ignore[attr-defined]
    change(line)  # type: ignore[operator]
    messages = " | ".join(e.message for e in v.iter_errors(line))  # type: ignore[attr-defined]
    assert fragment in messages, messages
