"""Which file run.json digests for a program (SPEC 9.3: "the sha256 of the first file the
command names (the program or its script)"), whatever the script's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from lclock.impl.program import program_file


@pytest.mark.parametrize(("command", "named"), [
    (["perl", "vm.pl"], "vm.pl"),
    (["ruby", "-w", "vm.rb"], "vm.rb"),
    (["bash", "vm.sh"], "vm.sh"),
    (["node", "vm.mjs"], "vm.mjs"),
    (["python3", "-u", "vm.py", "--verbose"], "vm.py"),
    (["./vm"], "vm"),
    (["python3", "sub/vm.py"], "sub/vm.py"),
])
def test_the_script_is_the_file_named_whatever_its_extension(command: list[str], named: str,
                                                           tmp_path: Path) -> None:
    for name in ("vm.pl", "vm.rb", "vm.sh", "vm.mjs", "vm.py", "vm", "sub/vm.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    assert program_file(command, tmp_path) == tmp_path / named


def test_without_a_script_it_is_the_executable_on_path(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()  # a class folder is no file: java's own binary is digested
    found = program_file(["sh", "-c", "true"], tmp_path)
    assert found is not None and found.name == "sh"
    java_like = program_file(["sh", "out", "Vm"], tmp_path)
    assert java_like is not None and java_like.name == "sh"
    assert program_file(["no-such-program-19"], tmp_path) is None
