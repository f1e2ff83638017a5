"""lclock grade --cluster: a real Dask scheduler and two workers give the same grades, byte
for byte, as one submission at a time on this host (SPEC 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from grade_fixtures import REPO, grade, make_class

from tests.test_experiment_cluster import Cluster, cluster  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

QUICK = REPO / "tests" / "data" / "grade-quick-rubric.toml"


def test_the_cluster_grades_as_this_host_does(tmp_path: Path, cluster: Cluster) -> None:  # noqa: F811
    classdir = make_class(tmp_path / "class", ["good", "buggy", "logs-buggy", "no-config"])
    outs = {}
    for how in (["--jobs", "1"], ["--cluster", cluster.address]):
        out = tmp_path / how[0].strip("-")
        p = grade(str(classdir), "--rubric", str(QUICK), "--output", str(out), *how, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        outs[how[0]] = out
    files = sorted(p.relative_to(outs["--jobs"]) for p in outs["--jobs"].rglob("*")
                   if p.suffix in (".csv", ".json"))
    assert Path("grades.csv") in files and Path("buggy/results.json") in files
    for name in files:
        assert (outs["--jobs"] / name).read_bytes() == (outs["--cluster"] / name).read_bytes(), name
