"""The explorer's script: the bundler that puts its ES modules into the page
(lclock/explorer/bundle.py), and the node unit tests of the pure modules (tests/js)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lclock.explorer import page
from lclock.explorer.bundle import (
    BundleError,
    bundle,
    explorer_script,
    explorer_sources,
    order,
    parse,
)

REPO = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Skipped where node is truly absent, never in CI: .ci/run installs it (apt-get install nodejs).
needs_node = pytest.mark.skipif(NODE is None and not IN_CI, reason=(
    "node is not installed: apt-get install -y nodejs (CI's .ci/run does this)"))


def run_node(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    if NODE is None:
        pytest.fail("CI: node is missing (.ci/run installs it with apt-get install nodejs)")
    return subprocess.run([NODE, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


# ---------------------------------------------------------------- the bundler

TOY = {
    "main.mjs": 'import { twice, NAME as who } from "./lib.mjs";\n'
                'import { hello } from "./greet.mjs";\n'
                "console.log(hello(who), twice(21));\n",
    "greet.mjs": 'import { NAME } from "./lib.mjs";\n'
                 "export function hello(x) { return `hello ${x} from ${NAME}`; }\n",
    "lib.mjs": "export const NAME = \"lib\", ANSWER = 42;\n"
               "const hidden = 2;\n"
               "export function twice(x) { return x * hidden; }\n",
    "unused.mjs": "export const X = 1;\n",
}


def test_modules_come_after_what_they_import_and_only_the_needed_ones() -> None:
    mods = {k: parse(k, v) for k, v in TOY.items()}
    assert order(mods, "main.mjs") == ["lib.mjs", "greet.mjs", "main.mjs"]
    assert mods["lib.mjs"].exports == ["NAME", "ANSWER", "twice"]
    assert mods["main.mjs"].imports == {"lib.mjs": [("twice", "twice"), ("NAME", "who")],
                                        "greet.mjs": [("hello", "hello")]}
    out = bundle(TOY, "main.mjs")
    assert "unused" not in out and "import " not in out and "export " not in out
    assert out == bundle(dict(reversed(list(TOY.items()))), "main.mjs"), "the same for the same sources"


@needs_node
def test_the_bundle_runs_as_the_modules_do(tmp_path: Path) -> None:
    (tmp_path / "bundle.js").write_text(bundle(TOY, "main.mjs"))
    for name, text in TOY.items():
        (tmp_path / name).write_text(text)
    as_bundle = run_node("bundle.js", cwd=tmp_path)
    as_modules = run_node("main.mjs", cwd=tmp_path)
    assert as_bundle.returncode == 0, as_bundle.stderr
    assert as_bundle.stdout == as_modules.stdout == "hello lib from lib 42\n"


@pytest.mark.parametrize(("sources", "message"), [
    ({"main.mjs": 'import { a } from "./a.mjs";\n', "a.mjs": 'import { b } from "./main.mjs";\nexport const a = 1;\n'},
     "import cycle: main.mjs -> a.mjs -> main.mjs"),
    ({"main.mjs": 'import { a } from "./nope.mjs";\n'}, "main.mjs imports nope.mjs, which does not exist"),
    ({"main.mjs": 'import { b } from "./a.mjs";\n', "a.mjs": "export const a = 1;\n"},
     "main.mjs imports b from a.mjs, which does not export it"),
    ({"main.mjs": "export default 3;\n"}, "main.mjs:1: only `export` in front of a declaration"),
    ({"main.mjs": "export { a };\n"}, "main.mjs:1: only `export` in front of a declaration"),
    ({"main.mjs": 'import a from "./a.mjs";\n'}, "main.mjs:1: only `import { a, b } from"),
    ({"main.mjs": "import {\n  a } from './a.mjs';\n"}, "main.mjs:1: only `import { a, b } from"),
])
def test_what_the_bundler_cannot_handle_is_an_error(sources: dict[str, str], message: str) -> None:
    with pytest.raises(BundleError) as e:
        bundle(sources, "main.mjs")
    assert message in str(e.value)


def test_every_declarator_of_an_exported_const_is_exported() -> None:
    mod = parse("m.mjs", 'export const A = f(1, 2), B = [3, 4], C = "x, D = 5", E = { a: 1, b: 2 };\n')
    assert mod.exports == ["A", "B", "C", "E"]


# ---------------------------------------------------------------- the explorer's script


def test_the_page_holds_every_module_of_the_explorer_and_no_module_syntax() -> None:
    script = explorer_script()
    names = sorted(explorer_sources())
    assert names == ["api.mjs", "causality.mjs", "colors.mjs", "cutdraw.mjs", "cuts.mjs", "data.mjs", "diff.mjs",
                     "draw.mjs", "hit.mjs", "layout.mjs", "main.mjs", "panel.mjs", "search.mjs", "text.mjs"]
    assert re.findall(r"^// ---- (\S+)$", script, re.M)[-1] == "main.mjs"
    assert sorted(re.findall(r"^// ---- (\S+)$", script, re.M)) == names
    assert not re.search(r"^\s*(import|export)\b", script, re.M)
    html = page.render([_tiny_run()]).decode()
    assert script.replace("</script", "<\\/script") in html
    assert "script-src 'unsafe-inline'" in html, "the page's policy is unchanged"


def test_each_module_stays_under_700_lines_and_the_pure_ones_touch_no_dom() -> None:
    pure = ("data.mjs", "layout.mjs", "causality.mjs", "search.mjs", "diff.mjs", "text.mjs", "panel.mjs",
            "colors.mjs", "hit.mjs", "cuts.mjs")
    for name, text in explorer_sources().items():
        assert len(text.splitlines()) < 700, name
        if name in pure:
            code = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)
            assert not re.search(r"\b(document|window|d3|ctx|getContext|Path2D|requestAnimationFrame)\b", code), name


@needs_node
def test_the_explorer_script_parses(tmp_path: Path) -> None:
    (tmp_path / "explorer.js").write_text(explorer_script())
    p = run_node("--check", "explorer.js", cwd=tmp_path)
    assert p.returncode == 0, p.stderr


# ---------------------------------------------------------------- node's unit tests


@needs_node
def test_node_unit_tests_of_the_pure_modules() -> None:
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests" / "js").glob("*.test.mjs"))
    assert len(files) >= 7, files
    p = run_node("--test", *files)
    counts = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", p.stdout, re.M))
    assert p.returncode == 0 and counts.get("fail") == "0", p.stdout[-4000:] + p.stderr[-2000:]
    assert int(counts["pass"]) >= 40 and counts["pass"] == counts["tests"], counts


def _tiny_run() -> dict[str, object]:
    enc0 = {"n": 0, "s": 0, "d": 0}
    lane = {"id": 1, "file": "machine-1.jsonl", "rate": 1, "n": 0, "first": 0, "total": 0, "line": enc0,
            "t": enc0, "tick": enc0, "kind": [], "L": enc0, "q": [], "dice": [], "frm": [], "msg": [],
            "to_n": [], "to": [], "vc": None, "pt": None, "hl": None, "hc": None, "mpt": None, "mhl": None,
            "mhc": None, "dup": [], "start": {}, "stop": None, "stop_line": None, "stopped": False}
    return {"run": {"id": "tiny", "clocks": ["real", "lamport"]}, "lanes": [lane],
            "msgs": {"n": 0, "s": enc0, "r": []}}


# ---------------------------------------------------------------- the page's decoder on extract's output

DECODE = """
import { readFileSync } from "node:fs";
import { decodeRuns } from "%s";
import { causalMsgs, causalVC } from "%s";
import { sameAsReal } from "%s";
const [run] = decodeRuns(JSON.parse(readFileSync(process.argv[2], "utf8")));
const lanes = run.lanes.map((ln) => ({ id: ln.id, L: [...ln.L], kind: [...ln.kind], tick: [...ln.tick] }));
const msgs = [];
for (let m = 0; m < run.M; m++) {
  const s = run.lanes[run.mSL[m]], r = run.lanes[run.mRL[m]], rk = run.mRI[m];
  msgs.push({ from: s.id, sendL: s.L[run.mSI[m]], to: r.id, carried: r.msg[r.recvRank[rk]], frm: r.frm[r.recvRank[rk]] });
}
let agree = 0, total = 0;
for (let li = 0; li < run.N; li++) for (let k = 0; k < run.lanes[li].n; k += 5) {
  const a = causalVC(run, li, k), b = causalMsgs(run, li, k);
  total++;
  if (a.pastEnd.join() === b.pastEnd.join() && a.futStart.join() === b.futStart.join()) agree++;
}
console.log(JSON.stringify({ lanes, msgs, agree, total, samePt: sameAsReal([run], "pt") }));
"""


@needs_node
@pytest.mark.parametrize("offsets", [None, (0.0, 150.0, -90.0)])
def test_the_page_decodes_what_extract_encodes(tmp_path: Path, offsets: tuple[float, ...] | None) -> None:
    """The JavaScript decoder against the Python encoder, on a run with drops and duplicates:
    the decoded lanes are the log's, every message joins a send to the receive that carried
    its Lamport value, and both ways of finding causality agree."""
    from explorer_fixtures import make_clock_run

    from lclock.explorer.extract import build

    run = make_clock_run(tmp_path / "r", seed=5, offsets_ms=offsets, loss=0.1, dup=0.2)
    data, _ = build(run)
    (tmp_path / "data.json").write_bytes(page.data_json({"runs": [data]}))
    js = REPO / "lclock" / "explorer" / "js"
    script = DECODE % tuple((js / f).as_uri() for f in ("data.mjs", "causality.mjs", "layout.mjs"))
    (tmp_path / "decode.mjs").write_text(script)
    p = run_node("decode.mjs", str(tmp_path / "data.json"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    for lane in got["lanes"]:
        log = [json.loads(x) for x in (run / f"machine-{lane['id']}.jsonl").read_text().splitlines()]
        ticks = [d for d in log if d.get("event") in ("internal", "send", "receive")]
        assert lane["L"] == [d["lclock"] for d in ticks]
        assert lane["tick"] == [d["tick"] for d in ticks]
        assert lane["kind"] == [("internal", "send", "receive").index(d["event"]) for d in ticks]
    assert len(got["msgs"]) > 10
    for m in got["msgs"]:
        assert m["frm"] == m["from"] and m["carried"] == m["sendL"], m
    assert got["total"] > 10 and got["agree"] == got["total"]
    assert got["samePt"] is (offsets is None)
