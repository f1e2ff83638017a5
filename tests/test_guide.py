"""docs/GUIDE-own-implementation.md: its logging snippets really write run folders that
``lclock check`` accepts, in every language whose compiler or runtime is on this machine,
and its import example reads what it says it reads."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "GUIDE-own-implementation.md"


def snippet(lang: str) -> str:
    text = GUIDE.read_text()
    m = re.search(rf"<!-- snippet:{lang} -->\n```\w+\n(.*?)```", text, re.S)
    assert m, f"no {lang} snippet in the guide"
    return m.group(1)


def check(run: Path) -> subprocess.CompletedProcess[str]:
    (run / "run.json").write_text(json.dumps({
        "schema": 1, "run_id": "demo", "status": "completed",
        "machines": [{"id": 1}, {"id": 2}], "settings": {"machines": 2}}))
    return subprocess.run([sys.executable, "-m", "lclock", "check", str(run)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def assert_demo_run(run: Path) -> None:
    p = check(run)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 machines, 4 events, 1 message" in p.stdout and "warning" not in p.stdout
    first = json.loads((run / "machine-1.jsonl").read_text().splitlines()[0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["ts"])


def test_readme_links_the_guide() -> None:
    assert "docs/GUIDE-own-implementation.md" in (REPO / "README.md").read_text()


def test_python_snippet(tmp_path: Path) -> None:
    ns: dict[str, object] = {}
    exec(compile(snippet("python"), "guide-python", "exec"), ns)
    EventLog = ns["EventLog"]
    a = EventLog(str(tmp_path / "run"), "demo", 1)  # type: ignore[operator]
    b = EventLog(str(tmp_path / "run"), "demo", 2)  # type: ignore[operator]
    a.line("start", rate=1, seed=1, pid=1)
    b.line("start", rate=1, seed=1, pid=2)
    a.tick_event("send", 1, 0, vclock=[1, 0], dice=1, to=[2])
    b.tick_event("internal", 1, 0, vclock=[0, 1], dice=7)
    b.tick_event("receive", 2, 0, vclock=[1, 2], msg_lclock=1, **{"from": 1})
    a.tick_event("internal", 2, 0, vclock=[2, 0], dice=5)
    a.line("stop", reason="duration", ticks=a.tick, lclock=2, sent=1, received=0, unprocessed=0)
    b.line("stop", reason="duration", ticks=b.tick, lclock=2, sent=0, received=1, unprocessed=0)
    a.file.close()
    b.file.close()
    assert_demo_run(tmp_path / "run")


JAVA_DEMO = """
import java.io.File;
public class Demo {
    public static void main(String[] args) throws Exception {
        File dir = new File(args[0]);
        try (EventLog a = new EventLog(dir, "demo", 1); EventLog b = new EventLog(dir, "demo", 2)) {
            a.line("start", "\\"rate\\":1,\\"seed\\":1,\\"pid\\":1");
            b.line("start", "\\"rate\\":1,\\"seed\\":1,\\"pid\\":2");
            a.tickEvent("send", 1, 0, "\\"vclock\\":[1,0],\\"dice\\":1,\\"to\\":[2]");
            b.tickEvent("internal", 1, 0, "\\"vclock\\":[0,1],\\"dice\\":7");
            b.tickEvent("receive", 2, 0, "\\"vclock\\":[1,2],\\"from\\":1,\\"msg_lclock\\":1");
            a.tickEvent("internal", 2, 0, "\\"vclock\\":[2,0],\\"dice\\":5");
            a.line("stop", "\\"reason\\":\\"duration\\",\\"ticks\\":" + a.tick()
                + ",\\"lclock\\":2,\\"sent\\":1,\\"received\\":0,\\"unprocessed\\":0");
            b.line("stop", "\\"reason\\":\\"duration\\",\\"ticks\\":" + b.tick()
                + ",\\"lclock\\":2,\\"sent\\":0,\\"received\\":1,\\"unprocessed\\":0");
        }
    }
}
"""


@pytest.mark.skipif(not (shutil.which("javac") and shutil.which("java")), reason="no Java here")
def test_java_snippet(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "EventLog.java").write_text(snippet("java"))
    (src / "Demo.java").write_text(JAVA_DEMO)
    subprocess.run(["javac", "-d", str(src), str(src / "EventLog.java"), str(src / "Demo.java")],
                   check=True, timeout=300, capture_output=True)
    subprocess.run(["java", "-cp", str(src), "Demo", str(tmp_path / "run")], check=True,
                   timeout=300, capture_output=True)
    assert_demo_run(tmp_path / "run")


JS_DEMO = """
const { eventLog } = require("./eventlog.js");
const dir = process.argv[2];
const a = eventLog(dir, "demo", 1), b = eventLog(dir, "demo", 2);
a.line("start", { rate: 1, seed: 1, pid: 1 });
b.line("start", { rate: 1, seed: 1, pid: 2 });
a.tickEvent("send", 1, 0, { vclock: [1, 0], dice: 1, to: [2] });
b.tickEvent("internal", 1, 0, { vclock: [0, 1], dice: 7 });
b.tickEvent("receive", 2, 0, { vclock: [1, 2], from: 1, msg_lclock: 1 });
a.tickEvent("internal", 2, 0, { vclock: [2, 0], dice: 5 });
a.line("stop", { reason: "duration", ticks: a.ticks(), lclock: 2, sent: 1, received: 0, unprocessed: 0 });
b.line("stop", { reason: "duration", ticks: b.ticks(), lclock: 2, sent: 0, received: 1, unprocessed: 0 });
a.close(); b.close();
"""


@pytest.mark.skipif(not shutil.which("node"), reason="no Node.js here")
def test_javascript_snippet(tmp_path: Path) -> None:
    (tmp_path / "eventlog.js").write_text(snippet("js"))
    (tmp_path / "demo.js").write_text(JS_DEMO)
    subprocess.run(["node", "demo.js", str(tmp_path / "run")], cwd=tmp_path, check=True,
                   timeout=120, capture_output=True)
    assert_demo_run(tmp_path / "run")


GO_DEMO = """
package main

import (
	"os"

	"demo/eventlog"
)

func main() {
	a, _ := eventlog.New(os.Args[1], "demo", 1)
	b, _ := eventlog.New(os.Args[1], "demo", 2)
	a.Line("start", map[string]any{"rate": 1, "seed": 1, "pid": 1})
	b.Line("start", map[string]any{"rate": 1, "seed": 1, "pid": 2})
	a.TickEvent("send", 1, 0, map[string]any{"vclock": []int{1, 0}, "dice": 1, "to": []int{2}})
	b.TickEvent("internal", 1, 0, map[string]any{"vclock": []int{0, 1}, "dice": 7})
	b.TickEvent("receive", 2, 0, map[string]any{"vclock": []int{1, 2}, "from": 1, "msg_lclock": 1})
	a.TickEvent("internal", 2, 0, map[string]any{"vclock": []int{2, 0}, "dice": 5})
	a.Line("stop", map[string]any{"reason": "duration", "ticks": a.Tick, "lclock": 2, "sent": 1, "received": 0, "unprocessed": 0})
	b.Line("stop", map[string]any{"reason": "duration", "ticks": b.Tick, "lclock": 2, "sent": 0, "received": 1, "unprocessed": 0})
}
"""


@pytest.mark.skipif(not shutil.which("go"), reason="no Go here")
def test_go_snippet(tmp_path: Path) -> None:
    (tmp_path / "eventlog").mkdir()
    (tmp_path / "eventlog" / "eventlog.go").write_text(snippet("go"))
    (tmp_path / "main.go").write_text(GO_DEMO)
    (tmp_path / "go.mod").write_text("module demo\n\ngo 1.18\n")
    subprocess.run(["go", "run", ".", str(tmp_path / "run")], cwd=tmp_path, check=True,
                   timeout=600, capture_output=True)
    assert_demo_run(tmp_path / "run")


def test_the_guides_import_example(tmp_path: Path) -> None:
    text = GUIDE.read_text()
    rx = re.search(r"lclock import --regex '([^']+)' all.log", text)
    assert rx
    (tmp_path / "all.log").write_text(
        "2026-01-01T00:00:01Z m1 send 2 L=1\n"
        "2026-01-01T00:00:02Z m2 received 1 L=2\n"
        "2026-01-01T00:00:03Z m2 internal - L=3\n")
    p = subprocess.run([sys.executable, "-m", "lclock", "import", "--regex", rx.group(1), "all.log"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "imported 3 events of 2 machine(s)" in p.stdout
    out = re.search(r" into (output/import-\S+-all-[0-9a-f]{8})\n", p.stdout)
    assert out, p.stdout
    p = subprocess.run([sys.executable, "-m", "lclock", "check", out.group(1)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stdout


def test_readme_examples_match_the_guide_and_the_extras() -> None:
    readme = (REPO / "README.md").read_text()
    rx = re.search(r"lclock import --regex '([^']+)' all.log", readme)
    guide = re.search(r"lclock import --regex '([^']+)' all.log", GUIDE.read_text())
    assert rx and guide and rx.group(1) == guide.group(1)
    # the pandas and DuckDB examples name the extra that installs them
    assert "pip install -e '.[ingest]'" in readme
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {x.split(">")[0] for x in extras["ingest"]} == {"pandas", "duckdb"}
