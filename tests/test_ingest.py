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
