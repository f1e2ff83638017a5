"""Hostile and absurd settings and flags (issue 9 section 7) for every command that reads settings.

Each case starts the real program and requires: exit status 2, one line on stderr naming
the flag or ``file:key``, no traceback, nothing created or changed in the working folder, and
an answer within seconds -- a FIFO, /dev/zero or a quadratic parse must never hang it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import LAUNCHER, started

Setup = Callable[[Path], str]  # makes what a case needs in the working folder; returns the path
LIMIT = 10.0  # seconds: the answer comes within a second on an idle machine (bench/bench_bounds.py); 3x this is a hang


def lclock(*args: str) -> list[str]:
    return [sys.executable, "-m", "lclock", *args]


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under root (links not followed) with its kind, size and mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def run_bad(workdir: Path, cmd: list[str]) -> str:
    """Run cmd in workdir; check the bad-input contract; return the one stderr line."""
    before = snapshot(workdir)
    with started(cmd, workdir) as p:
        try:
            _, err_b = p.communicate(timeout=LIMIT * 3)
        except Exception:
            pytest.fail(f"no answer within {LIMIT * 3} s (blocked?): {cmd[2:]}")
    err = err_b.decode(errors="replace")
    assert p.returncode == 2, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), err
    assert len(lines[0]) < 1000, lines[0][:300]
    assert lines[0].isprintable(), repr(lines[0])
    assert snapshot(workdir) == before, "something was created or changed"
    return lines[0]


# -- what the cases need ------------------------------------------------------------------


def fifo(w: Path) -> str:
    os.mkfifo(w / "fifo.toml")
    return "fifo.toml"


def symlink_loop(w: Path) -> str:
    os.symlink("loop-b.toml", w / "loop-a.toml")
    os.symlink("loop-a.toml", w / "loop-b.toml")
    return "loop-a.toml"


def dangling(w: Path) -> str:
    os.symlink("nowhere.toml", w / "dangling.toml")
    return "dangling.toml"


def folder(w: Path) -> str:
    (w / "folder.toml").mkdir()
    return "folder.toml"


def under_a_file(w: Path) -> str:
    (w / "afile").write_text("x")
    return "afile/settings.toml"


def sparse(w: Path) -> str:
    with open(w / "big.toml", "wb") as fh:
        fh.truncate(2_000_000)
    return "big.toml"


def content(data: bytes | str) -> Setup:
    def make(w: Path) -> str:
        raw = data.encode() if isinstance(data, str) else data
        (w / "s.toml").write_bytes(raw)
        return "s.toml"

    return make


LONG_HOST = "h" * 300
# (id, setup, words every one of which the line must contain)
PATHS: list[tuple[str, Setup, list[str]]] = [
    ("fifo", fifo, ["fifo.toml", "named pipe (FIFO)"]),
    ("dev-zero", lambda w: "/dev/zero", ["/dev/zero", "character device"]),
    ("dev-urandom", lambda w: "/dev/urandom", ["/dev/urandom", "character device"]),
    ("folder", folder, ["folder.toml", "a folder"]),
    ("symlink-loop", symlink_loop, ["loop-a.toml", "symlink loop"]),
    ("dangling-symlink", dangling, ["dangling.toml", "symbolic link to nothing"]),
    ("missing", lambda w: "missing.toml", ["missing.toml", "no such settings file"]),
    ("under-a-file", under_a_file, ["afile/settings.toml", "not a folder"]),
    ("name-too-long", lambda w: "x" * 300 + ".toml", ["too long"]),
    ("path-too-long", lambda w: "d/" * 2100 + "s.toml", ["too long"]),
    ("empty-path", lambda w: "", ["--settings"]),
    ("too-large", sparse, ["big.toml", "at most 100 kB"]),
]
CONTENTS: list[tuple[str, Setup, list[str]]] = [
    ("nested-arrays", content("rates = " + "[" * 5000 + "]" * 5000), ["s.toml", "nested too deeply"]),
    ("nested-tables", content("x = " + "{a=" * 3000 + "1" + "}" * 3000), ["s.toml", "nested too deeply"]),
    ("deep-dotted-key", content("a" + ".a" * 20000 + " = 1\n"), ["s.toml", "dotted key"]),
    ("utf16", content("machines = 3\n".encode("utf-16")), ["s.toml", "UTF-16", "save it as UTF-8"]),
    ("not-utf8", content(b"machines = 3\n\xff = 1\n"), ["s.toml", "not UTF-8", "line 2"]),
    ("nul-byte", content(b"machines = 3\x00\n"), ["s.toml", "NUL byte", "line 1"]),
    ("long-key", content("k" * 90000 + " = 1\n"), ["s.toml:", "unknown key"]),
    ("control-chars-in-key", content('"a\\nb\\u001b[31m" = 1\n'), ["s.toml:", "unknown key"]),
    ("long-string", content('output = "' + "o" * 5000 + '"\n'), ["s.toml:output", "at most 4096"]),
    ("nul-in-string", content('output = "a\\u0000b"\n'), ["s.toml:output", "NUL"]),
    ("long-host", content(f'[tcp]\nhost = "{LONG_HOST}"\n'), ["s.toml:tcp.host", "253"]),
    ("bad-host", content('[tcp]\nhost = "a b"\n'), ["s.toml:tcp.host", "host name"]),
    ("long-hosts", content(f'[tcp]\nhosts = ["{LONG_HOST}", "b"]\n'), ["s.toml:tcp.hosts", "253"]),
    ("huge-int", content("duration = " + "9" * 30 + "\n"), ["s.toml:duration", "out of range"]),
    ("huge-hex", content("machines = 0x" + "f" * 5000 + "\n"), ["s.toml:machines", "out of range"]),
    ("int-too-long", content("machines = " + "9" * 5000 + "\n"), ["s.toml", "invalid TOML"]),
    ("many-rates", content("rates = [" + "1," * 20000 + "]\n"), ["s.toml:rates", "from 2 to 128"]),
    ("experiment-path-name", content('[experiments."../../x"]\nmachines = 3\n'), ["s.toml:experiments.", "name"]),
    ("experiment-long-name", content(f"[experiments.{'e' * 300}]\nmachines = 3\n"), ["s.toml:experiments.", "name"]),
    ("experiment-huge-trials", content("[experiments.x]\ntrials = 0x" + "f" * 100 + "\n"), ["s.toml:experiments.x.trials", "out of range"]),
    ("experiment-long-description", content('[experiments.x]\ndescription = "' + "d" * 2000 + '"\n'), ["s.toml:experiments.x.description", "at most 1000"]),
    ("bom-then-typo", content("\ufeffmachinez = 3\n"), ["s.toml:machinez", "did you mean 'machines'"]),
]
SETTINGS_CASES = PATHS + CONTENTS

# Every command that reads settings, with what it needs besides them.
COMMANDS = {
    "run": ["run", "--duration", "1"],
    "sim": ["sim", "--duration", "1"],
    "vm": ["vm", "--machine-id", "1"],
    "experiment": ["experiment", "x", "--sim"],
}
# Every case runs against `run`; the others share the reading code, so they get a sample
# that covers each way of failing (path, size, bytes, parse, value).
SAMPLE = {"fifo", "dev-zero", "symlink-loop", "too-large", "nested-arrays", "utf16",
          "deep-dotted-key", "long-host", "experiment-path-name", "huge-int"}


def _settings_params() -> list[object]:
    out = []
    for command in COMMANDS:
        for case_id, setup, words in SETTINGS_CASES:
            if command == "run" or case_id in SAMPLE:
                out.append(pytest.param(command, setup, words, id=f"{command}-{case_id}"))
    return out


@pytest.mark.parametrize(("command", "setup", "words"), _settings_params())
def test_hostile_settings(workdir: Path, command: str, setup: Setup, words: list[str]) -> None:
    path = setup(workdir)
    line = run_bad(workdir, lclock(*COMMANDS[command], "--settings", path))
    for word in words:
        assert word in line, line
    assert line.startswith("lclock") and ": error: " in line, line


def test_default_settings_file_that_is_a_fifo(workdir: Path) -> None:
    """./settings.toml as a FIFO is refused, not opened (and not silently skipped)."""
    os.mkfifo(workdir / "settings.toml")
    for command in ("run", "sim"):
        line = run_bad(workdir, lclock(*COMMANDS[command]))
        assert "settings.toml: is a named pipe (FIFO)" in line, line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_settings_file(workdir: Path) -> None:
    (workdir / "s.toml").write_text("machines = 3\n")
    (workdir / "s.toml").chmod(0)
    line = run_bad(workdir, lclock("run", "--settings", "s.toml"))
    assert "s.toml" in line and "permission denied" in line, line


@pytest.mark.parametrize(
    "setup",
    [content(b"\xef\xbb\xbfmachines = 3\n"), lambda w: "/dev/null"],
    ids=["utf8-bom", "dev-null"],
)
def test_accepted_settings(workdir: Path, setup: Setup) -> None:
    """A UTF-8 byte-order mark is skipped; /dev/null is an empty settings file."""
    path = setup(workdir)
    with started(lclock("sim", "--settings", path, "--duration", "1", "--quiet",
                        "--output", "out"), workdir) as p:
        _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err.decode()
    assert len(list((workdir / "out").iterdir())) == 1


# -- flags ----------------------------------------------------------------------------------


def _afile(w: Path) -> str:
    (w / "afile").write_text("x")
    return "afile"


def _flag(*args: str) -> Callable[[Path], list[str]]:
    return lambda w: list(args)


def _with(setup: Setup, flag: str) -> Callable[[Path], list[str]]:
    return lambda w: [flag, setup(w)]


FLAGS: list[tuple[str, Callable[[Path], list[str]], list[str]]] = [
    ("rates-comma", _flag("--rates", ","), ["--rates"]),
    ("rates-empty-item", _flag("--rates", "1,,3"), ["--rates"]),
    ("rates-blank", _flag("--rates", " "), ["--rates"]),
    ("rates-word", _flag("--rates", "1,x,3"), ["--rates"]),
    ("duration-nan", _flag("--duration", "nan"), ["--duration"]),
    ("duration-inf", _flag("--duration", "inf"), ["--duration"]),
    ("duration-minus-inf", _flag("--duration", "-inf"), ["--duration"]),
    ("duration-1e400", _flag("--duration", "1e400"), ["--duration"]),
    ("duration-empty", _flag("--duration", ""), ["--duration"]),
    ("seed-negative", _flag("--seed", "-1"), ["--seed"]),
    ("seed-2-64", _flag("--seed", str(2**64)), ["--seed", "from 0"]),
    ("seed-expression", _flag("--seed", "2**64"), ["--seed"]),
    ("machines-huge", _flag("--machines", "9" * 40), ["--machines"]),
    ("machines-huger", _flag("--machines", "9" * 5000), ["--machines"]),
    ("output-file", _with(_afile, "--output"), ["--output", "not a folder"]),
    ("output-fifo", _with(fifo, "--output"), ["--output", "named pipe (FIFO)"]),
    ("output-loop", _with(symlink_loop, "--output"), ["--output", "symlink loop"]),
    ("output-dangling", _with(dangling, "--output"), ["--output", "symbolic link to nothing"]),
    ("output-name-too-long", _flag("--output", "o" * 300), ["--output", "too long"]),
    ("output-path-too-long", _flag("--output", "o/" * 3000), ["--output", "too long"]),
    ("output-empty", _flag("--output", ""), ["--output"]),
    ("unknown-flag", _flag("--frobnicate"), ["--frobnicate: unknown option"]),
    ("typo-flag", _flag("--duraton", "5"), ["--duraton: unknown option (did you mean --duration?)"]),
    ("typo-flag-equals", _flag("--rate-mim=3"), ["--rate-mim: unknown option (did you mean --rate-min?)"]),
    ("stray-argument", _flag("extra"), ["unexpected argument 'extra'"]),
    ("clocks-none-and-more", _flag("--clocks", "none,hlc"), ["--clocks", "cannot be listed"]),
    ("clocks-vector-and-no-vector", _flag("--clocks", "vector", "--no-vector-clocks"),
     ["--clocks vector and --no-vector-clocks disagree"]),
    ("nemesis-too-often", _flag("--nemesis", "pause", "--nemesis-interval", "0.01"),
     ["--nemesis-interval", "too often"]),
    ("partition-percent-outside", _flag("--partition", "50%-150%:1"), ["--partition", "inside the run"]),
]


# `sim` shares the flags' code with `run`: a sample of each kind of flag.
SIM_SAMPLE = {"rates-empty-item", "duration-nan", "seed-2-64", "output-fifo", "output-loop",
              "typo-flag"}


def _flag_params() -> list[object]:
    return [pytest.param(command, m, w, id=f"{command}-{i}")
            for command in ("run", "sim") for i, m, w in FLAGS
            if command == "run" or i in SIM_SAMPLE]


@pytest.mark.parametrize(("command", "make", "words"), _flag_params())
def test_hostile_flags(workdir: Path, command: str, make: Callable[[Path], list[str]],
                       words: list[str]) -> None:
    line = run_bad(workdir, lclock(*COMMANDS[command], *make(workdir)))
    for word in words:
        assert word in line, line


@pytest.mark.parametrize(("table", "words"), [
    ("duration = nan", ["s.toml:experiments.x.duration"]),
    ("duration = 1e400", ["s.toml:experiments.x.duration"]),
    ("trials = 0", ["s.toml:experiments.x.trials"]),
    ("machines = 100000", ["s.toml:experiments.x.machines"]),
    ("rates = [1, 2]\nmachines = 3", ["s.toml:experiments.x.rates"]),
    ("dice_sides = -1", ["s.toml:experiments.x.dice_sides"]),
    ("seed = -1", ["s.toml:experiments.x.seed"]),
])
def test_absurd_experiment_tables(workdir: Path, table: str, words: list[str]) -> None:
    (workdir / "s.toml").write_text(f"[experiments.x]\n{table}\n")
    line = run_bad(workdir, lclock("experiment", "x", "--sim", "--settings", "s.toml"))
    for word in words:
        assert word in line, line


@pytest.mark.parametrize(("args", "words"), [
    (["vm", "--machine-id", "1", "--rates", "1,,3"], ["--rates"]),
    (["vm", "--machine-id", "1", "--duration", "nan"], ["--duration"]),
    (["vm", "--machine-id", "1", "--duraton", "5"], ["did you mean --duration?"]),
    (["experiment", "--trails", "3"], ["did you mean --trials?"]),
    (["experiment", "x", "--sim", "--output", "o" * 300], ["--output"]),
    (["rnu"], ["unknown command 'rnu' (did you mean run?)"]),
    (["chekc", "x"], ["unknown command 'chekc' (did you mean check?)"]),
])
def test_hostile_flags_other_commands(workdir: Path, args: list[str], words: list[str]) -> None:
    (workdir / "settings.toml").write_text("[experiments.x]\nmachines = 3\n")
    line = run_bad(workdir, lclock(*args))
    for word in words:
        assert word in line, line


# -- one prefix for every error line --------------------------------------------------------

ALL_COMMANDS = ["run", "check", "analyze", "report", "export", "schema", "sim", "experiment",
                "vm", "merge", "shrink"]


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_usage_error_prefix(workdir: Path, command: str) -> None:
    line = run_bad(workdir, lclock(command, "--frobnicat"))
    assert line.startswith(f"lclock {command}: error: "), line


def test_launcher_prefix(workdir: Path) -> None:
    line = run_bad(workdir, [sys.executable, str(LAUNCHER), "--duraton", "5"])
    assert line == "launcher.py: error: --duraton: unknown option (did you mean --duration?)"


@pytest.mark.parametrize("command", [
    "run", "sim", "vm", "experiment",
])
def test_settings_error_prefix(workdir: Path, command: str) -> None:
    (workdir / "s.toml").write_text("machinez = 3\n")
    line = run_bad(workdir, lclock(*COMMANDS[command], "--settings", "s.toml"))
    assert line.startswith(f"lclock {command}: error: s.toml:machinez: unknown key"), line
