"""Every expression ``lclock import`` ships reads any line in time linear in its length.

A student's log may hold anything: a line of a megabyte of blanks, digits, a keyword
repeated. An expression that backtracks quadratically (``\\s*#?\\s*`` before 16,000 blanks
was 16,000^2 tries, 7 s; a 1 MB line would take hours) turns such a line into a hang. The
lines here put long runs of every kind of character after every piece of each preset's
example (where a keyword is followed by a run: the places backtracking happens), and
before and after the example. A quadratic expression takes hours on them; the timeout
marker catches it (no wall-clock assertion: a loaded machine only makes them slower).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lclock.ingest.build import Names, parse_time
from lclock.ingest.presets import PRESETS
from lclock.ingest.textlog import Scan, compile_spec, kind_of, scan

REPO = Path(__file__).resolve().parents[1]
MB = 1 << 20

FILLS = {
    "blanks": " ",
    "tabs": "\t",
    "digits": "7",
    "letters": "a",
    "punctuation": ".,:;=#-_()[]{}'/\\",
    "unicode": "\u00e9\u20ac\U0001f600\u00a0\u2003\u0663",
    "quotes": '"',
    "brackets": "[",
    "braces": "{",
    "text keywords": " send to machine 1 and machine 2, msg clock 3 clock is 4 L=",
    "machine words": "machine #",
    "machine letters": "M1 vm1 P-1 ",
    "clock words": "clock is ",
    "queue words": "Queue length: queue_len=queue size is ",
    "peer lists": "1, ",
    "logfmt keys": 'ts=" machine= event= to= vc=[ lclock= msg_clock= tick= queue= dice= ',
    "shiviz keys": "send to message L=1 L= tick= ts= dice queue ",
}


def _pieces(line: str) -> list[str]:
    """The line cut wherever a word starts or ends: each keyword is one piece."""
    return [p for p in re.split(r"(\w+)", line) if p]


def _fill(chunk: str, size: int) -> str:
    return (chunk * (size // len(chunk) + 1))[:size]


def _lines(preset: str, size: int) -> list[str]:
    """Adversarial lines of about ``size`` characters for one preset: a run after each piece of
    the example alone (a keyword directly followed by the run), the run between all pieces
    at once, and the run before and after the whole example."""
    example = PRESETS[preset].example.split("\n")[0]
    pieces = _pieces(example)
    out = []
    for chunk in FILLS.values():
        run = _fill(chunk, size)
        for k in range(len(pieces) + 1):
            out.append("".join(pieces[:k]) + run + "x")
        out.append(_fill(chunk, size // len(pieces)).join(pieces))
        out.append(run + example)
    return out


def _search_all(preset: str, lines: list[str]) -> None:
    spec = compile_spec(PRESETS[preset].regex, need_machine=False)
    rest = PRESETS[preset].example.split("\n")[1:]
    for line in lines:
        text = "\n".join([line, *rest])  # the ShiViz layout's second line, for the two-line form
        if spec.multiline:
            list(spec.pattern.finditer(text))
        else:
            spec.pattern.search(line)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_read_short_adversarial_lines(preset: str) -> None:
    _search_all(preset, _lines(preset, 2048))


@pytest.mark.timeout(60)
def test_text_preset_after_a_keyword_and_32000_blanks() -> None:
    # the reported case: 32,000 blanks after "send L" took 27 s, doubling them four times more
    spec = compile_spec(PRESETS["text"].regex, need_machine=False)
    for line in ("2026-01-01 12:00:00 machine 1 send L" + " " * 32_000,
                 "1 machine" + " " * 32_000, "1 machine 1 send clock" + "\t" * 32_000):
        assert spec.pattern.search(line) is None


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_read_megabyte_lines(preset: str) -> None:
    example = PRESETS[preset].example.split("\n")[0]
    pieces = _pieces(example)
    lines = []
    for chunk in FILLS.values():
        lines.append(_fill(chunk, MB // len(pieces)).join(pieces))
        lines.append("".join(pieces[:-1]) + _fill(chunk, MB) + "x")
    _search_all(preset, lines)


@pytest.mark.timeout(120)
def test_the_rest_of_import_reads_long_values_in_linear_time() -> None:
    """What import does with a matched value: machine names, peers, times, event words."""
    for chunk in FILLS.values():
        value = _fill(chunk, MB // 4)
        names = Names({value, value + "x", "1" * (MB // 4) + "x", "node-2"})
        names.peers(value)
        Names({"1", "2"}).peers(value)
        with pytest.raises(ValueError):
            parse_time(value + "x", None)
        spec = compile_spec(PRESETS["logfmt"].regex, need_machine=False)
        kind_of(spec, value)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("preset", ["text", "logfmt"])
def test_import_of_a_log_of_megabyte_lines(tmp_path: Path, preset: str) -> None:
    """The whole import, as a user runs it: the long lines are reported, the example imported."""
    example = PRESETS[preset].example
    log = tmp_path / "machine-1.log"
    with open(log, "w", encoding="utf-8") as fh:
        fh.write(example + "\n")
        for chunk in FILLS.values():
            fh.write(_fill(chunk, MB) + "\n")
    p = subprocess.run([sys.executable, "-m", "lclock", "import", "--preset", preset, str(log),
                        "-o", str(tmp_path / "out"), "--date", "2026-01-01"],
                       capture_output=True, text=True, cwd=REPO, timeout=880)
    assert p.returncode == 0, p.stderr
    assert "imported 1 event" in p.stdout
    s = Scan(str(log))
    with open(log, encoding="utf-8") as fh:
        spec = compile_spec(PRESETS[preset].regex, need_machine=False)
        found = list(scan(spec, s, fh))
    blank = sum(1 for chunk in FILLS.values() if not chunk.strip())
    assert found and s.lines == 1 + len(FILLS) == s.matched + s.unmatched_count + blank
