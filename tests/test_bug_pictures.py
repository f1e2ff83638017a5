"""docs/GUIDE-bugs.md shows every bug of the catalogue (SPEC 10): a bug added to
lclock/analysis/bugs.py without a picture (or an honest reason why none) fails here, and so
does a picture whose caption does not name its bug. The guide itself is made by
docs/make_bug_pictures.py (slow: it simulates and shrinks a run per bug); these tests read
what it made and drive its pure parts."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from lclock.analysis.bugs import NAMES

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "GUIDE-bugs.md"
PICTURES = REPO / "docs" / "bugs"


def sections() -> dict[str, str]:
    """The guide's section of each bug, by the name in its heading."""
    parts = re.split(r"^## `([^`]+)`$", GUIDE.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


@pytest.fixture(scope="module")
def maker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_bug_pictures",
                                                  REPO / "docs" / "make_bug_pictures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_guide_has_a_section_for_every_catalogue_bug() -> None:
    assert sorted(sections()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_bug_is_pictured_with_check_naming_it_or_says_why_not(name: str) -> None:
    text = sections()[name]
    picture = f"![{name}](bugs/{name}.svg)"
    if picture not in text:
        assert re.search(r"^Not (shown|small)[^\n]+", text, re.M), f"{name}: no picture, no reason"
        return
    svg = (PICTURES / f"{name}.svg").read_text()
    assert svg.lstrip().startswith("<svg") and "</svg>" in svg
    said = re.search(r"^check said: `[^`]*: bug ([a-z0-9-]+):", text, re.M)
    assert said is not None and said.group(1) == name, f"{name}: the caption names {said}"


def test_no_picture_is_left_of_a_bug_the_catalogue_dropped() -> None:
    assert {p.stem for p in PICTURES.glob("*.svg")} <= set(NAMES)


def test_every_broken_program_still_changes_the_reference_program(maker: ModuleType) -> None:
    """The program bugs are made by replacing a line of examples/impl/python/vm.py: if that
    file changes, the line must still be there (else the guide cannot be made again)."""
    assert set(maker.PROGRAM_BUGS) <= set(NAMES)
    for name in maker.PROGRAM_BUGS:
        assert maker.broken(name) != maker.REFERENCE, name


def test_a_mutant_run_changes_and_drops_options_of_the_common_run(maker: ModuleType) -> None:
    common = maker.run_options(7)
    assert common[common.index("--seed") + 1] == "7"
    changed = maker.run_options(7, {"--machines": "2", "--clock-skew": "", "--rates": "6,1"})
    assert changed[changed.index("--machines") + 1] == "2"
    assert "--clock-skew" not in changed and changed[-2:] == ["--rates", "6,1"]
    assert set(maker.MUTANT_RUN) <= set(NAMES) - set(maker.PROGRAM_BUGS)


def test_the_catalogue_read_from_check_bugs_is_every_bug(maker: ModuleType, tmp_path: Path) -> None:
    bugs = maker.catalogue(tmp_path)
    assert list(bugs) == list(NAMES)
    assert all(what and not what.startswith("e.g.") for what in bugs.values())
