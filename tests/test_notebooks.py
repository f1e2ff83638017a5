"""The notebooks of docs/notebooks run top to bottom (SPEC 13), so they never rot.

Each is executed by nbclient in a fresh Jupyter kernel in its own folder, as a reader would
run it; a cell that raises fails the test and names the cell. The notebooks are committed
without outputs (checked here too, so a run in Jupyter is not committed by mistake).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

FOLDER = Path(__file__).resolve().parent.parent / "docs" / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))


def test_there_are_three_notebooks_without_outputs() -> None:
    assert [p.name for p in NOTEBOOKS] == ["assignment-questions.ipynb",
                                           "check-your-implementation.ipynb",
                                           "faults-and-clocks.ipynb"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), path


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path) -> None:
    repo = str(FOLDER.parent.parent)
    # Each notebook runs in a folder of its own, laid out as the repository is (its relative
    # paths, ../../examples, reach the real examples), so that what one leaves behind is
    # its own: with a pytest worker per core, the others run at the same time.
    (tmp_path / "examples").symlink_to(FOLDER.parent.parent / "examples")
    here = tmp_path / "docs" / "notebooks"
    here.mkdir(parents=True)
    # the kernel imports this checkout's lclock, and draws without a display
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [repo, *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(here)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert list(here.iterdir()) == [], "the notebook left files in its folder"
