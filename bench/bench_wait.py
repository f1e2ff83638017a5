#!/usr/bin/env python3
"""The cost of one turn of the driver's wait (``RealTimeDriver.poll_io(0)``), in-process.

    PYTHONPATH=TREE python bench/bench_wait.py [--calls 200000] [--repeat 7]

One such turn is made per tick (10,000 a second at the highest rate), so it is the part of
the tick loop that the injected ``Waiter`` could slow down. It is measured on a machine
with two peers over socket pairs and a local control, nothing readable: the best of
``--repeat`` timings of ``--calls`` calls (the minimum is the figure least disturbed by a
busy machine), in CPU time of this process (a process
waiting for a core is not charged). Run it with ``PYTHONPATH`` naming each tree to compare, in turn.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
import timeit
from pathlib import Path

from lclock.core.node import MachinePlan, Node
from lclock.lifecycle import StopRequest
from lclock.logfile import LogFile
from lclock.runtime.control import LocalControl
from lclock.runtime.driver import RealTimeDriver
from lclock.transport.socketpair import SocketPairLinks, socketpair_mesh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    mesh = socketpair_mesh(3)
    wake_r, wake_w = socket.socketpair()
    with tempfile.TemporaryDirectory() as d:
        log = LogFile.create(Path(d) / "m.jsonl")
        control = LocalControl(0.0, wake_r, StopRequest())
        driver = RealTimeDriver(Node(MachinePlan(1, 3, "bench", 1, 1.0)), log,
                                SocketPairLinks(mesh[1]), control)
        assert driver._connect()
        best = min(timeit.repeat(lambda: driver.poll_io(0.0), number=a.calls, repeat=a.repeat,
                                 timer=time.process_time))
        log.close()
    import lclock

    print(f"{Path(lclock.__file__).parent.parent}: poll_io(0) {best / a.calls * 1e6:.3f} µs CPU "
          f"(best of {a.repeat} x {a.calls} calls)", file=sys.stdout)


if __name__ == "__main__":
    main()
