"""Bad input: one clear line naming the flag or file:key, exit 2, no traceback, nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import launcher_cmd, started

BAD_FLAGS = [
    (["--duration", "0"], "--duration"),
    (["--duration", "-5"], "--duration"),
    (["--duration", "abc"], "--duration"),
    (["--duration", "nan"], "--duration"),
    (["--machines", "1"], "--machines"),
    (["--machines", "100000"], "--machines"),
    (["--machines", "3.5"], "--machines"),
    (["--rates", "1,x,3"], "--rates"),
    (["--rates", "0,3,6"], "--rates"),
    (["--rates", "1,3,10001"], "--rates"),
    (["--rates", "1,3", "--machines", "3"], "--rates"),
    (["--rate-min", "7", "--rate-max", "3"], "--rate-min"),
    (["--rate-max", "0"], "--rate-max"),
    (["--dice-sides", "2"], "--dice-sides"),
    (["--seed", "-1"], "--seed"),
    (["--transport", "carrier-pigeon"], "--transport"),
    (["--settings", "does-not-exist.toml"], "does-not-exist.toml"),
    (["--frobnicate"], "--frobnicate"),
    (["--output", "afile/sub"], "--output"),
]

BAD_FILES = [
    ("machines = 3\nrate_maxx = 4\n", "settings.toml:rate_maxx", "did you mean 'rate_max'"),
    ("machines = true\n", "settings.toml:machines", "integer"),
    ("machines = '3'\n", "settings.toml:machines", "integer"),
    ("duration = -1\n", "settings.toml:duration", "> 0"),
    ("rates = [1, 2]\nmachines = 3\n", "settings.toml:rates", "2 rates given for 3 machines"),
    ("dice_sides = 1\n", "settings.toml:dice_sides", "from 3"),
    ("machines = [\n", "settings.toml", "invalid TOML"),
    ("[tcp]\nhost = 1\n", "settings.toml:tcp.host", "string"),
    ("[tcp]\nprots = [1]\n", "settings.toml:tcp.prots", "did you mean 'ports'"),
    ("[experiments.x]\nrate_mn = 1\n", "settings.toml:experiments.x.rate_mn", "did you mean 'rate_min'"),
    ("vector_clocks = 1\n", "settings.toml:vector_clocks", "true or false"),
    ("output = ''\n", "settings.toml:output", "folder"),
]


def _run(workdir: Path, *args: str) -> tuple[int, str, str]:
    with started(launcher_cmd(*args), workdir) as p:
        out, err = p.communicate(timeout=60)
    return p.returncode, out.decode(), err.decode()


def _nothing_created(workdir: Path) -> None:
    made = sorted(p.name for p in workdir.iterdir()) if workdir.exists() else []
    assert made in ([], ["afile"], ["settings.toml"]), made


@pytest.mark.parametrize(("args", "names"), BAD_FLAGS)
def test_bad_flag(workdir: Path, args: list[str], names: str) -> None:
    (workdir / "afile").write_text("a file, not a folder")
    code, out, err = _run(workdir, *args)
    assert code == 2, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) <= 2, err  # argparse adds its usage line; ours is one line
    assert names in lines[-1], err
    _nothing_created(workdir)
    assert not (workdir / "output").exists()


@pytest.mark.parametrize(("content", "where", "what"), BAD_FILES)
def test_bad_settings_file(workdir: Path, content: str, where: str, what: str) -> None:
    (workdir / "settings.toml").write_text(content)
    code, out, err = _run(workdir, "--duration", "1")
    assert code == 2, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert where in lines[0] and what in lines[0], err
    _nothing_created(workdir)


def test_unreadable_settings_file(workdir: Path) -> None:
    (workdir / "settings.toml").mkdir()
    code, _, err = _run(workdir, "--settings", "settings.toml")
    assert code == 2 and "settings.toml" in err and "Traceback" not in err


def test_not_utf8_settings_file(workdir: Path) -> None:
    (workdir / "settings.toml").write_bytes(b"machines = 3\n\xff\xfe = 1\n")
    code, _, err = _run(workdir)
    assert code == 2 and "settings.toml" in err and "Traceback" not in err


def test_a_command_raises_and_the_dispatcher_prints_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Commands only raise BadInput; lclock.cli turns it into the one error line, exit 2."""
    import argparse
    import sys
    import types

    from lclock import cli
    from lclock.errors import BadInput

    def main(args: argparse.Namespace) -> int:
        raise BadInput(f"{args.thing}: no such thing\nsecond line")

    fake = types.ModuleType("fake_commands")
    fake.cmd = types.SimpleNamespace(  # type: ignore[attr-defined]
        add_arguments=lambda p: p.add_argument("thing"), main=main)
    monkeypatch.setitem(sys.modules, "fake_commands", fake)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_commands:cmd", "a fake command"))
    assert cli.main(["fake", "x.json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "lclock fake: error: x.json: no such thing\\nsecond line\n"


def test_analysis_commands_share_the_error_line(tmp_path: Path) -> None:
    """check, analyze, report, export, trace, hb and cuts on a folder that is not a run: one line
    each, naming the folder, exit 2, no traceback, nothing created."""
    import subprocess
    import sys

    missing = tmp_path / "nothing"
    for args in (["check"], ["analyze"], ["report"], ["export"], ["trace", "1:1"], ["hb", "1:1", "2:1"],
                 ["cuts", "--count"], ["view"]):
        p = subprocess.run([sys.executable, "-m", "lclock", args[0], str(missing), *args[1:]],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, (args, p.stderr)
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"lclock {args[0]}: error: "), (args, lines)
        assert str(missing) in lines[0] and "Traceback" not in p.stderr
    assert list(tmp_path.iterdir()) == []
