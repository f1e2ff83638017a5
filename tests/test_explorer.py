"""``lclock view``: the data it embeds, the page it writes, and bad input (no browser here;
tests/test_explorer_browser.py drives the page in Chromium)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from analysis_fixtures import make_run
from explorer_fixtures import make_clock_run

from lclock.explorer import extract, page
from lclock.explorer.extract import ViewError, build, enc
from lclock.explorer.plan import fault_plan

REPO = Path(__file__).resolve().parents[1]
TICKS = ("send", "receive", "internal")


def dec(e: dict[str, Any]) -> list[int]:
    """The inverse of ``enc``, written apart from the page's decoder."""
    if e["n"] == 0:
        return []
    if "v" in e:
        return list(np.concatenate(([e["s"]], e["s"] + np.cumsum(e["v"]))).astype(int))
    return [e["s"] + k * e["d"] for k in range(e["n"])]


def lines(run: Path, mid: int) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / f"machine-{mid}.jsonl").read_text().splitlines() if x]


def ticks(run: Path, mid: int) -> list[dict[str, Any]]:
    return [d for d in lines(run, mid) if d.get("event") in TICKS]


def view(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", "view", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120, env=env)


def embedded(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="lclock-data">(.*?)</script>', text, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


@pytest.mark.parametrize("a", [[], [5], [3, 3], [1, 2, 3, 4], [10, 7, 7, 20, -4], [2**40, 2**40 + 9]])
def test_enc_round_trip(a: list[int]) -> None:
    e = json.loads(orjson.dumps(enc(np.array(a, np.int64)), option=orjson.OPT_SERIALIZE_NUMPY))
    assert dec(e) == a
    if len(a) > 1 and len(set(np.diff(a))) == 1:
        assert "v" not in e  # a constant step is one number


def test_columns_are_the_log(tmp_path: Path) -> None:
    run = make_clock_run(tmp_path / "r", dup=0.3, seed=3)
    data, notes = build(run)
    assert data["run"]["clocks"] == ["real", "lamport", "hlc", "pt"] and not notes
    t0 = data["run"]["t0_us"]
    for lane in data["lanes"]:
        want = ticks(run, lane["id"])
        assert lane["n"] == len(want)
        assert dec(lane["L"]) == [d["lclock"] for d in want]
        assert dec(lane["tick"]) == [d["tick"] for d in want]
        assert [x + t0 for x in dec(lane["pt"])] == [d["pt"] for d in want]
        assert [x + t0 for x in dec(lane["hl"])] == [d["hlc"][0] for d in want]
        assert list(lane["hc"]) == [d["hlc"][1] for d in want]
        vcs = [dec(c) for c in lane["vc"]]
        assert [list(v) for v in zip(*vcs, strict=True)] == [d["vclock"] for d in want]
        recv = [d for d in want if d["event"] == "receive"]
        assert list(lane["frm"]) == [d["from"] for d in recv]
        assert [x + t0 for x in dec(lane["mpt"])] == [d["msg_pt"] for d in recv]
        assert [[lv + t0, c] for lv, c in zip(dec(lane["mhl"]), lane["mhc"], strict=True)] == [
            d["msg_hlc"] for d in recv]
        assert list(lane["dup"]) == [k for k, d in enumerate(want) if d.get("dup")]
        # line numbers point at the very lines
        raw = (run / lane["file"]).read_text().splitlines()
        assert [json.loads(raw[n - 1]) for n in dec(lane["line"])] == want
    assert sum(len(lane["dup"]) for lane in data["lanes"]) > 0, "the fixture made no duplicate"


def test_a_clock_stepping_back_keeps_the_order_and_the_lines(tmp_path: Path) -> None:
    run = make_clock_run(tmp_path / "r")
    rows = lines(run, 2)
    k = next(q for q, d in enumerate(rows) if d.get("tick") == 10)
    rows[k]["ts"] = rows[k - 3]["ts"]  # an NTP step: this line's time is earlier than the last
    (run / "machine-2.jsonl").write_text("".join(json.dumps(d) + "\n" for d in rows))
    data, _ = build(run)
    lane = data["lanes"][1]
    t, raw = dec(lane["t"]), dec(lane["traw"])
    assert t == sorted(t) and raw != t and raw[9] < raw[8] and t[9] == t[8]
    assert "traw" not in data["lanes"][0]


def test_messages_matched_and_accounted(tmp_path: Path) -> None:
    run = make_clock_run(tmp_path / "r", loss=0.15, partition=(2.0, 4.0, [[1], [2, 3]]),
                         pause=(3, 5.0, 1.0), crash=(2, 6.5), seed=5)
    data, _ = build(run)
    lanes = {ln["id"]: ln for ln in data["lanes"]}
    off, acc = {}, 0
    for ln in data["lanes"]:
        off[ln["id"]] = acc
        acc += ln["n"]
    glob = {}  # global index -> (machine, line dict)
    for mid in lanes:
        for k, d in enumerate(ticks(run, mid)):
            glob[off[mid] + k] = (mid, d)
    s, r = dec(data["msgs"]["s"]), list(data["msgs"]["r"])
    assert data["msgs"]["n"] == len(s) == len(r)
    receives = sum(1 for mid in lanes for d in ticks(run, mid) if d["event"] == "receive")
    assert len(r) == receives and len(set(r)) == receives
    for gs, gr in zip(s, r, strict=True):
        (sm, sd), (rm, rd) = glob[gs], glob[gr]
        assert sd["event"] == "send" and rd["event"] == "receive"
        assert rd["from"] == sm and rd["msg_lclock"] == sd["lclock"] and rm in sd["to"]
    drops = [(mid, d) for mid in lanes for d in lines(run, mid) if d["event"] == "drop"]
    assert data["drops"]["n"] == len(drops) > 0
    assert set(data["drops"]["reasons"]) >= {d["reason"] for _, d in drops}
    assert {"loss", "partition", "crashed"} <= {d["reason"] for _, d in drops}
    for g in data["drops"]["s"]:
        assert glob[g][1]["event"] == "send"
    # every message of every send is handled, dropped or never handled
    sent = sum(len(d["to"]) for mid in lanes for d in ticks(run, mid) if d["event"] == "send")
    handled = sum(1 for mid in lanes for d in ticks(run, mid) if d["event"] == "receive" and not d.get("dup"))
    assert handled + len(drops) + data["pending"]["n"] == sent
    kinds = [data["marks"]["kinds"][k] for k in data["marks"]["kind"]]
    assert kinds.count("pause") == 1 and kinds.count("resume") == 1
    assert kinds.count("fault") == 2 * len(lanes)  # partition and heal, before the crash
    assert not lanes[2]["stopped"] and lanes[1]["stopped"]
    assert data["plan"]["partitions"] == [{"start_s": 2.0, "end_s": 4.0, "groups": [[1], [2, 3]]}]


def test_a_machine_without_events_keeps_the_clocks(tmp_path: Path) -> None:
    run = make_clock_run(tmp_path / "r")
    log = run / "machine-3.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n")  # crashed before its first tick
    data, _ = build(run)
    assert data["run"]["clocks"] == ["real", "lamport", "hlc", "pt"]
    assert data["lanes"][2]["n"] == 0 and not data["lanes"][2]["stopped"]


def test_runs_without_the_new_clocks(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", rates=(2, 3, 5), duration=10.0, vector=False)
    data, _ = build(run)
    assert data["run"]["clocks"] == ["real", "lamport"]
    assert not data["run"]["vector"] and all(ln["vc"] is None and ln["pt"] is None for ln in data["lanes"])


def test_window_and_too_large(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", rates=(20, 30, 50), duration=10.0)
    full, _ = build(run)
    total = full["run"]["events"]
    part, notes = build(run, window=(2.0, 5.0))
    assert 0 < part["run"]["events"] < total
    assert all("cross the edges" in n for n in notes)
    for ln in part["lanes"]:
        t = dec(ln["t"])
        assert min(t) >= 2_000_000 and max(t) < 5_000_000
    cut, notes = build(run, max_events=300)
    assert cut["run"]["events"] == 300 and cut["run"]["events_total"] == total
    assert "--window" in notes[0] and f"{total:,}" in notes[0]
    with pytest.raises(ViewError, match="--window"):
        build(run, window=(0.0, 10.0), max_events=300)


def test_vector_clocks_left_out_when_huge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path / "r", rates=(20, 30, 50), duration=3.0)
    monkeypatch.setattr(extract, "MAX_VC_ENTRIES", 30)
    data, notes = build(run)
    assert data["run"]["vector"] and not data["run"]["vc_embedded"]
    assert any("matched messages" in n for n in notes)


def test_fault_plan_is_read_from_run_json() -> None:
    from lclock.core.faults import Crash, FaultSettings, Partition, Pause, resolve_plan

    plan = resolve_plan(FaultSettings(partitions=(Partition(10, 20, ((1,),)),),
                                      pauses=(Pause(2, 15, 5),), crashes=(Crash(3, 20),)), 3, 60, 1)
    assert fault_plan({"faults": {"plan": plan.to_json()}}) == {
        "partitions": [{"start_s": 10.0, "end_s": 20.0, "groups": [[1]]}],
        "pauses": [{"machine": 2, "start_s": 15.0, "end_s": 20.0}],
        "crashes": [{"machine": 3, "at_s": 20.0}]}
    for junk in ("garbage", {"plan": "x"}, {"plan": {"partitions": [{"start": "x"}]}},
                 {"plan": {"pauses": [{"machine": None}]}}, {"plan": {"crashes": 5}}):
        assert fault_plan({"faults": junk}) == {"partitions": [], "pauses": [], "crashes": []}


def test_page_is_one_file_that_loads_nothing(tmp_path: Path) -> None:
    run = make_clock_run(tmp_path / "r")
    p = view(str(run))
    assert p.returncode == 0, p.stderr
    out = run / "explorer.html"
    assert f"explorer written to {out}" in p.stdout
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"""<(script|link|img|iframe)[^>]*\b(src|href)\s*=""", text, re.I)
    assert "default-src 'none'" in text  # the browser itself refuses any request
    assert "d3js.org v7.9.0" in text
    assert embedded(out)["runs"][0]["run"]["id"] == "r"


def test_hostile_strings_stay_inside_the_data(tmp_path: Path) -> None:
    run = make_clock_run(tmp_path / "r")
    with open(run / "machine-1.jsonl", "a") as fh:
        fh.write(json.dumps({"ts": "2026-01-01T00:00:09.000000Z", "event": "note", "level": "warning",
                             "run_id": "r", "machine": 1, "text": "</script><script>alert(1)</script>"}) + "\n")
    data, _ = build(run)
    html = page.render([data]).decode()
    assert html.count("</script>") == 3 and "alert(1)</script>" not in html
    texts = embedded_text(html)["runs"][0]["marks"]["text"]
    assert any(t.endswith("alert(1)</script>\"}") for t in texts)


def embedded_text(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="lclock-data">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


def test_two_runs_default_name(tmp_path: Path) -> None:
    a = make_clock_run(tmp_path / "a")
    b = make_clock_run(tmp_path / "b", loss=0.2)
    p = view(str(a), str(b))
    assert p.returncode == 0, p.stderr
    out = a / "explorer-vs-b.html"
    assert [r["run"]["id"] for r in embedded(out)["runs"]] == ["a", "b"]
    p = view(str(a), str(b), "--output", str(tmp_path / "cmp.html"), "--window", "1,3")
    assert p.returncode == 0 and (tmp_path / "cmp.html").is_file()


def test_too_large_prints_a_note(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", rates=(20, 30, 50), duration=10.0)
    p = view(str(run), "--max-events", "200")
    assert p.returncode == 0, p.stderr
    assert "note: This run has" in p.stdout and "--window START,END" in p.stdout
    assert embedded(run / "explorer.html")["runs"][0]["run"]["events"] == 200


def test_open_uses_the_browser(tmp_path: Path) -> None:
    run = make_clock_run(tmp_path / "r")
    seen = tmp_path / "opened"
    env = dict(os.environ, BROWSER=f"{sys.executable} -c \"import sys; open('{seen}', 'w').write(sys.argv[1])\" %s")
    p = view(str(run), "--open", env=env)
    assert p.returncode == 0, p.stderr
    assert seen.read_text() == (run / "explorer.html").resolve().as_uri()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize("case", ["missing", "file", "empty", "fifo_run_json", "fifo_log",
                                  "huge_claim", "bad_window", "window_order", "output_dir",
                                  "output_parent", "max_events"])
def test_bad_input_one_line_exit_2(tmp_path: Path, case: str) -> None:
    run = make_clock_run(tmp_path / "r")
    args = [str(run)]
    expect = ""
    if case == "missing":
        args, expect = [str(tmp_path / "nope")], "No such file"
    elif case == "file":
        args, expect = [str(run / "run.json")], "not a folder"
    elif case == "empty":
        (tmp_path / "e").mkdir()
        args, expect = [str(tmp_path / "e")], "not a run folder"
    elif case == "fifo_run_json":
        (run / "run.json").unlink()
        _fifo(run / "run.json")
        expect = "run.json is not a regular file"
    elif case == "fifo_log":
        _fifo(run / "machine-4.jsonl")
        expect = "machine-4.jsonl: a machine log is not a regular file"
    elif case == "huge_claim":
        meta = json.loads((run / "run.json").read_text())
        meta["settings"]["machines"] = 10**12
        (run / "run.json").write_text(json.dumps(meta))
        expect = "claims 1,000,000,000,000 machines"
    elif case == "bad_window":
        args, expect = [str(run), "--window", "3"], "START,END"
    elif case == "window_order":
        args, expect = [str(run), "--window", "5,2"], "START < END"
    elif case == "output_dir":
        args, expect = [str(run), "--output", str(tmp_path)], "is a folder"
    elif case == "output_parent":
        args, expect = [str(run), "--output", str(tmp_path / "no" / "x.html")], "does not exist"
    elif case == "max_events":
        args, expect = [str(run), "--max-events", "0"], "at least 1"
    before = sorted(p.name for p in run.iterdir())
    p = subprocess.run([sys.executable, "-m", "lclock", "view", *args], capture_output=True,
                       text=True, cwd=REPO, timeout=60)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert expect in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not p.stdout
    assert sorted(x.name for x in run.iterdir()) == before  # nothing created


def test_unwritable_output(tmp_path: Path) -> None:
    run = make_clock_run(tmp_path / "r")
    if os.geteuid() == 0:  # root writes anywhere but in /proc
        p = view(str(run), "--output", "/proc/lclock-explorer.html")
    else:
        os.chmod(run, 0o555)
        try:
            p = view(str(run))
        finally:
            os.chmod(run, 0o755)
    assert p.returncode == 2 and "cannot write" in p.stderr and "Traceback" not in p.stderr


def test_report_after_run_links_the_explorer(tmp_path: Path) -> None:
    from lclock.analysis.report import report_after_run

    run = make_run(tmp_path / "r", rates=(1, 3, 6), duration=20.0)
    report_after_run(run)
    assert (run / "explorer.html").is_file()
    assert "<a href='explorer.html'>Explore this run</a>" in (run / "report.html").read_text()


def test_big_logs_say_what_is_going_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from lclock.cli import main
    from lclock.explorer import view_cmd

    run = make_clock_run(tmp_path / "r")
    monkeypatch.setattr(view_cmd, "BIG_LOGS", 1000)
    assert main(["view", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("reading ") and out[0].endswith(" MB of logs...")
    assert out[1].startswith("explorer written to")
