"""The events check's findings name, as marks of the explorer (kind ``finding``).

A finding names a machine log's line; its mark sits at that event's time on that machine's
lane, red, with the rule and the message as its tooltip: the page shows where the mistake
is, as ``lclock shrink``'s story.svg does on paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Findings marked at most (a run with thousands of findings is not read mark by mark).
MAX_FINDING_MARKS = 1000


def add_finding_marks(marks: dict[str, Any], findings: list[dict[str, Any]], lanes: dict[int, Any],
                      span: tuple[int, int] | None) -> int:
    """Append a mark per error finding that names an event shown; how many were added."""
    kind = marks["kinds"].index("finding")
    added = 0
    for f in findings:
        machine, line = f.get("machine"), f.get("line")
        if f.get("severity") != "error" or machine not in lanes or not isinstance(line, int) or line <= 0:
            continue
        lane = lanes[machine]
        at = np.flatnonzero(lane.log.line == line)
        if not at.size or added >= MAX_FINDING_MARKS:
            continue
        t = int(lane.t[at[0]])
        if span is not None and not span[0] <= t < span[1]:
            continue
        for key, value in (("lane", machine), ("t", t), ("kind", kind), ("line", line),
                           ("text", f"finding ({f.get('rule')}): {f.get('message')}")):
            marks[key].append(value)
        added += 1
    marks["n"] = len(marks["lane"])
    return added
