"""docs/API.md's examples run as they stand (SPEC 13: the examples are tested).

Every ```python block of the page runs, in order, in one namespace, as a reader pasting them
into one notebook would; ``RUN`` is a run folder that ``lclock sim`` has just made, and the
working folder is a fresh one holding a link to the checkout's examples (the page's
``examples/impl/python/vm.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "API.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_page_has_examples() -> None:
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 8
    assert all("lclock" in b or "run" in b or "sim" in b for b in blocks)


@pytest.mark.timeout(180)
def test_every_example_runs(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    out = subprocess.run([sys.executable, "-m", "lclock", "sim", "--settings", "/dev/null",
                          "--quiet", "--rates", "1,2,3", "--duration", "20", "--seed", "11",
                          "--loss", "0.05", "--output", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(work)
    namespace: dict[str, Any] = {"RUN": str(run_dir)}
    for k, block in enumerate(python_blocks(PAGE.read_text())):
        try:
            exec(compile(block, f"docs/API.md block {k + 1}", "exec"), namespace)
        except Exception as exc:  # name the block that failed
            pytest.fail(f"docs/API.md block {k + 1} failed: {exc!r}\n{block}")
    printed = capsys.readouterr().out
    assert "did you mean 'loss'" in printed
    assert "True False" in printed  # a message's send happened before its receive
    assert (work / "output").is_dir()  # output= kept the folder, as the page says


def test_the_readme_example_runs(capsys: Any) -> None:
    readme = (REPO / "README.md").read_text()
    block = next(b for b in python_blocks(readme) if "import lclock" in b)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "unprocessed" in printed and printed.rstrip().endswith("True")
