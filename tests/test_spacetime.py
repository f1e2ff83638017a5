"""The space-time figure of ``lclock report``: every message in the window has its arrow
(also when its send lies before the window or its receive after it), clock labels never
overlap, arrows that pass a lane are drawn under it, and a window without events is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from analysis_fixtures import make_run

from lclock.analysis.load import KIND_RECEIVE, KIND_SEND, load_run
from lclock.analysis.spacetime import fig_spacetime
from lclock.analysis.window import check_window
from lclock.errors import BadInput

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("st") / "five", rates=(2, 5, 1, 8, 3), duration=30.0)


def arrows(fig) -> list:  # type: ignore[no-untyped-def]
    ax = fig.axes[0]
    return [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]


def dashed(a) -> bool:  # type: ignore[no-untyped-def]
    return a.arrow_patch.get_linestyle() in ("--", "dashed")


def labels(fig) -> list:  # type: ignore[no-untyped-def]
    ax = fig.axes[0]
    return [t for t in ax.texts if getattr(t, "arrow_patch", None) is None and t.get_text()]


def test_every_receive_in_the_window_has_its_arrow(five: Path) -> None:
    run = load_run(five)
    lo, hi = 10.0, 13.0
    fig = fig_spacetime(run, (lo, hi))
    ypos = {i: k for k, i in enumerate(reversed(run.ids))}
    heads = {(round(a.xy[0], 9), a.xy[1]) for a in arrows(fig)}
    want_in, early = set(), 0
    for j, log in run.machines.items():
        t = log.ts - run.t0
        for k in np.flatnonzero((log.kind == KIND_RECEIVE) & (t >= lo) & (t <= hi)):
            want_in.add((round(float(t[k]), 9), ypos[j]))
            s = run.machines[int(log.frm[k])]
            sk = np.flatnonzero((s.kind == KIND_SEND) & (s.lclock == log.msg[k]))
            early += float(s.ts[sk[0]] - run.t0) < lo
    assert early > 0  # the window does cut messages
    assert want_in <= heads
    # messages sent in the window and handled after it leave by the right edge
    right = [a for a in arrows(fig) if a.xy[0] == hi and dashed(a) and a.xyann[0] >= lo]
    assert right and all(a.xy[1] in ypos.values() for a in right)
    n_late = 0
    for i, log in run.machines.items():
        t = log.ts - run.t0
        for k in np.flatnonzero((log.kind == KIND_SEND) & (t >= lo) & (t <= hi)):
            for j in log.recipients(int(k)):
                r = run.machines[j]
                rk = np.flatnonzero((r.kind == KIND_RECEIVE) & (r.frm == i) & (r.msg == log.lclock[k]))
                n_late += bool(len(rk)) and float(r.ts[rk[0]] - run.t0) > hi
    assert len(right) == n_late > 0


def test_clock_labels_never_overlap(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "fast", rates=(1, 9, 30), duration=10.0))
    fig = fig_spacetime(run, (0.0, 10.0))
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in labels(fig)]
    assert len(boxes) > 50
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b]), (labels(fig)[a].get_text(), labels(fig)[b].get_text())
    assert "left out where events are dense" in fig.axes[0].get_title()


def test_arrows_pass_under_the_lanes_they_cross(five: Path) -> None:
    run = load_run(five)
    fig = fig_spacetime(run, (10.0, 13.0))
    ax = fig.axes[0]
    expected = 0
    for a in arrows(fig):
        (_, y0), (_, y1) = a.xyann, a.xy
        expected += sum(1 for y in range(int(min(y0, y1)) + 1, int(np.ceil(max(y0, y1))))
                        if min(y0, y1) < y < max(y0, y1))
        if not dashed(a):
            assert a.arrow_patch.get_arrowstyle().__class__.__name__ == "CurveFilledB"
    gaps = [c for c in ax.collections if c.get_zorder() == 2.3]
    assert expected > 0 and sum(len(c.get_offsets()) for c in gaps) == expected
    lanes = [ln for ln in ax.lines if ln.get_zorder() == 2.4]
    assert len(lanes) == len(run.ids)
    assert all(a.get_zorder() < 2.3 for a in arrows(fig))


def test_window_past_the_end_or_empty_is_refused(five: Path, tmp_path: Path) -> None:
    run = load_run(five)
    with pytest.raises(BadInput, match="starts after the run's last event"):
        check_window(run, (100.0, 200.0))
    out = tmp_path / "rep"
    p = subprocess.run([sys.executable, "-m", "lclock", "report", str(five), "-o", str(out),
                        "--window", "100,200"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert "--window 100,200 starts after the run's last event" in p.stderr and "29." in p.stderr
    assert not out.exists()
    slow = make_run(tmp_path / "slow", rates=(1, 1), duration=10.0)
    p = subprocess.run([sys.executable, "-m", "lclock", "report", str(slow), "-o", str(out),
                        "--window", "3.2,3.4"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 2 and "holds no event" in p.stderr and not out.exists()


def test_the_key_names_each_senders_colour(five: Path) -> None:
    """The arrows are coloured by sender: the legend says which colour is which machine."""
    from matplotlib.colors import to_rgba

    from lclock.analysis.spacetime import arrow_color, sender_keys

    fig = fig_spacetime(load_run(five), (0.0, 3.0))
    legend = fig.axes[0].get_legend()
    keys = {t.get_text(): to_rgba(h.get_color()) for t, h in
            zip(legend.get_texts(), legend.legend_handles, strict=True)
            if t.get_text().startswith("from machine")}
    senders = {int(t.get_text().split()[-1]) for t in legend.get_texts()
               if t.get_text().startswith("from machine ")}
    assert len(senders) >= 2
    assert all(keys[f"from machine {i}"] == to_rgba(arrow_color(i)) for i in senders)
    drawn = {to_rgba(a.arrow_patch.get_edgecolor())[:3] for a in arrows(fig)}
    assert drawn and drawn <= {c[:3] for c in keys.values()}  # every arrow's colour is keyed
    assert sender_keys([1, 11, 2]) == [("tab:red", "from machines 1, 11"),
                                       ("tab:purple", "from machine 2")]
