"""The reference programs of examples/impl/ (SPEC 9.7), built once and started as a test asks.

Shared by the tests that drive them: each entry is a command line that starts one machine.
Compiled languages are built into a folder of the test session's, never into the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMPL = ROOT / "examples" / "impl"
LANGUAGES = ("python", "node", "c", "java")


def build(language: str, into: Path) -> list[str]:
    """The command that runs ``language``'s reference program, built into ``into`` if needed."""
    if language == "python":
        return [sys.executable, str(IMPL / "python" / "vm.py")]
    if language == "node":
        return [_tool("node"), str(IMPL / "node" / "vm.js")]
    if language == "c":
        exe = into / "vm"
        subprocess.run([_tool("cc"), "-O2", "-o", str(exe), str(IMPL / "c" / "vm.c")], check=True)
        return [str(exe)]
    if language == "java":
        subprocess.run([_tool("javac"), "-d", str(into), str(IMPL / "java" / "Vm.java")],
                       check=True)
        return [_tool("java"), "-Xss512k", "-XX:+UseSerialGC", "-cp", str(into), "Vm"]
    raise ValueError(language)


def lamport_program(tmp_path: Path, body: str, head: str = "", pad: int = 0) -> str:
    """A Python program that answers like a Lamport-only reference one, except where ``body``
    says (run at each tick, before the answer); ``head`` runs once at the start; ``pad``
    characters of a ``note`` ride along in each message."""
    script = tmp_path / "prog.py"
    msg = '{"lclock": lc' + (f', "note": "x" * {pad}' if pad else "") + "}"
    script.write_text(textwrap.dedent("""\
        import json, os, signal, subprocess, sys, time
        lc = 0
        def send(obj):
            sys.stdout.write(json.dumps(obj) + "\\n"); sys.stdout.flush()
    """) + textwrap.dedent(head) + textwrap.dedent("""\
        for line in sys.stdin:
            req = json.loads(line)
            if req["type"] == "init":
                send({"type": "init_ok", "clocks": ["lamport"]}); continue
            if req["type"] == "stop":
                send({"type": "stop_ok"}); break
            lc = max(lc, req["msg"]["lclock"]) + 1 if req["do"] == "receive" else lc + 1
            done = {"type": "done", "tick": req["tick"], "lclock": lc}
            if req["do"] == "send":
                done["msg"] = MSG
    """).replace("MSG", msg) + textwrap.indent(textwrap.dedent(body), "    ") + "\n    send(done)\n")
    return f"{sys.executable} {script}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # the project's machines have every one (SPEC 9.7); say which is missing
        raise RuntimeError(f"{name} is not on PATH: the reference programs need it")
    return path


def sim_settings(*flags: str) -> Any:
    """RunSettings as ``lclock sim FLAGS`` resolves them (no settings file), for the tests
    that call the simulator's API directly."""
    import argparse
    import tempfile

    from lclock.setting_table import flags_of
    from lclock.settings import load_settings_file, resolve
    from lclock.sim import sim_cmd

    parser = argparse.ArgumentParser()
    sim_cmd.add_arguments(parser)
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as empty:
        args = parser.parse_args([*flags, "--settings", empty.name])
        return resolve(load_settings_file(args.settings), flags_of(args))
