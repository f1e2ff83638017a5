"""The simulator: the pure model driven by a virtual clock and a simulated network.

Why a simulator at all: a real run of one minute takes one minute; exploring how jumps,
drift and queues depend on the rates and the dice needs hundreds of runs. The simulator
runs the very same ``lclock.model.Machine`` (not a copy) on the same absolute-deadline
schedule as the real runtime, but time is a number in a heap, not a wall clock, so an hour
of model time takes a fraction of a second and the same seed always gives the same bytes.

What is modelled, and what is not:

- ticks: machine i's tick k is due at ``(k - 1) / rate`` (SPEC 1.3), k = 1..ceil(rate*T)
  as in the real worker (when it runs: see scheduling below).
- the network: every message of a send event gets its own delay from a seeded generator
  (constant, uniform on 0..2*mean, or exponential), and channels are FIFO like a socket:
  a message never overtakes an earlier one on the same channel i->j.
- the real worker takes messages off its sockets "continuously" while it waits for the
  next deadline; here a message enters the queue at its arrival time. An arrival and a
  tick at exactly the same instant: the arrival goes first.
- scheduling: a real tick runs a little after its deadline (the process has to get a CPU),
  and when two machines have a deadline at the same instant (all of them at t0; rates 2
  and 4 every half second) that lateness decides whether a message sent at that instant
  is handled on this tick or the next. So each tick runs at ``deadline + J``, J drawn from
  an exponential of mean ``jitter`` (never before the previous tick; 0 = exactly on the
  deadline). The default is calibrated on real runs (NOTEBOOK.md, section 2).
- the end: every machine stops ticking at T; messages still in flight are then delivered
  into the queues and counted as ``unprocessed``, as in the real graceful stop.

NOTEBOOK.md measures how well this agrees with real runs.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import signal
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from lclock.logfmt import dumps, format_ts
from lclock.model import Machine, Message, machine_setup
from lclock.runfolder import base_run_json, machine_log_path, write_run_json
from lclock.settings import RunSettings, SettingsError, SettingsFile

#: Virtual time 0 of every simulated run: 2026-01-01T00:00:00Z. Fixed so that the logs of
#: a seed are byte-identical whenever and wherever the simulation runs.
SIM_EPOCH = 1_767_225_600.0

DELAY_MODELS = ("constant", "uniform", "exponential")
#: Default delay model: what real runs over socket pairs measure (see NOTEBOOK.md).
DEFAULT_DELAY = "exponential"
DEFAULT_DELAY_MEAN = 0.0002
MAX_DELAY_MEAN = 60.0
#: Default mean tick lateness: the value at which simulated runs resolve same-instant races
#: (a message sent at the deadline of the receiver's own tick) as often as real runs do.
DEFAULT_JITTER = 0.0007
MAX_JITTER = 1.0

#: Lines buffered per machine before one write: a write per line would dominate run time.
_FLUSH_LINES = 4096


@dataclass(frozen=True)
class NetworkSettings:
    """The simulated environment: how long a message takes from send to the receiver's
    queue, and how late a tick runs after its deadline."""

    delay: str = DEFAULT_DELAY
    delay_mean: float = DEFAULT_DELAY_MEAN
    #: Optional cap on every drawn delay (the exponential has a long tail); None = no cap.
    delay_max: float | None = None
    #: Mean of the exponential tick lateness in seconds; 0 = every tick exactly on time.
    jitter: float = DEFAULT_JITTER

    def to_json(self) -> dict[str, Any]:
        return {
            "delay": self.delay,
            "delay_mean": self.delay_mean,
            "delay_max": self.delay_max,
            "jitter": self.jitter,
        }


def resolve_network(file: SettingsFile, flags: dict[str, Any]) -> NetworkSettings:
    """Built-in defaults < the settings file's ``[sim]`` table < flags, validated.

    Kept here rather than in lclock.settings because only the simulator reads ``[sim]``;
    the error lines follow the same ``--flag`` / ``file:key`` convention.
    """
    table = file.tables.get("sim", {})
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for key in ("delay", "delay_mean", "delay_max", "jitter"):
        if key in table:
            values[key] = table[key]
            source[key] = file.where(f"sim.{key}")
        if flags.get(key) is not None:
            values[key] = flags[key]
            source[key] = "--" + key.replace("_", "-")
    delay = values.get("delay", DEFAULT_DELAY)
    if delay not in DELAY_MODELS:
        raise SettingsError(
            f"{source.get('delay', 'delay')}: must be one of {', '.join(DELAY_MODELS)} "
            f"(got {delay!r})"
        )
    mean = values.get("delay_mean", DEFAULT_DELAY_MEAN)
    if not math.isfinite(mean) or not 0 <= mean <= MAX_DELAY_MEAN:
        raise SettingsError(
            f"{source.get('delay_mean', 'delay_mean')}: must be a number of seconds from 0 "
            f"to {MAX_DELAY_MEAN:g} (got {mean!r})"
        )
    cap = values.get("delay_max")
    if cap is not None and (not math.isfinite(cap) or cap <= 0):
        raise SettingsError(
            f"{source.get('delay_max', 'delay_max')}: must be a number of seconds > 0 (got {cap!r})"
        )
    jitter = values.get("jitter", DEFAULT_JITTER)
    if not math.isfinite(jitter) or not 0 <= jitter <= MAX_JITTER:
        raise SettingsError(
            f"{source.get('jitter', 'jitter')}: must be a number of seconds from 0 to "
            f"{MAX_JITTER:g} (got {jitter!r})"
        )
    return NetworkSettings(delay=delay, delay_mean=float(mean), delay_max=cap, jitter=float(jitter))


def sim_run_id(seed: int, settings: RunSettings, net: NetworkSettings) -> str:
    """``sim-<seed>-<hash>``: deterministic, so re-running a simulation names the same folder.

    The hash covers exactly the settings that change the logs.
    """
    key = {
        "machines": settings.machines,
        "duration": settings.duration,
        "rate_min": settings.rate_min,
        "rate_max": settings.rate_max,
        "rates": list(settings.rates) if settings.rates else None,
        "dice_sides": settings.dice_sides,
        "vector_clocks": settings.vector_clocks,
        **net.to_json(),
    }
    digest = hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()[:8]
    return f"sim-{seed}-{digest}"


def _delay_fn(net: NetworkSettings, rng: random.Random) -> Any:
    """A function returning one message delay in seconds."""
    mean, cap = net.delay_mean, net.delay_max
    if net.delay == "constant" or mean == 0:
        d = mean if cap is None else min(mean, cap)
        return lambda: d
    if net.delay == "uniform":
        hi = 2 * mean
        draw = (lambda: rng.uniform(0.0, hi)) if cap is None else (lambda: min(rng.uniform(0.0, hi), cap))
        return draw
    lam = 1.0 / mean
    if cap is None:
        return lambda: rng.expovariate(lam)
    return lambda: min(rng.expovariate(lam), cap)


class Terminated(Exception):
    """SIGTERM during a simulation (``lclock sim`` turns the signal into this)."""


@dataclass
class MachineResult:
    """The end state of one simulated machine (what its ``stop`` line and run.json say)."""

    id: int
    rate: int
    ticks: int
    lclock: int
    sent: int
    received: int
    unprocessed: int
    max_queue: int
    unprocessed_from: dict[str, int]


def simulate(
    settings: RunSettings,
    net: NetworkSettings,
    seed: int,
    run_dir: Path,
    run_id: str,
    epoch: float = SIM_EPOCH,
) -> list[MachineResult]:
    """Simulate one run into ``run_dir`` (which must exist) and return each machine's end state.

    Only the machine log files are written here; run.json is the caller's (see ``run_sim``).
    """
    n = settings.machines
    duration = settings.duration
    machines: list[Machine] = []
    rates: list[int] = []
    for i in range(1, n + 1):
        rate, rng = machine_setup(seed, i, settings.rate_min, settings.rate_max, settings.rates)
        rates.append(rate)
        machines.append(Machine(i, n, rng, settings.dice_sides, vector=settings.vector_clocks))
    # The network has its own generator: changing the delay model never changes the dice.
    delay = _delay_fn(net, random.Random(f"lclock:net:{seed}"))
    # So has the scheduling jitter; with jitter 0 it is never used.
    jitter_rng = random.Random(f"lclock:jitter:{seed}")
    jitter_lam = 1.0 / net.jitter if net.jitter > 0 else 0.0
    expo = jitter_rng.expovariate
    last_tick = [0.0] * n

    queues: list[deque[Message]] = [deque() for _ in range(n)]
    max_queue = [0] * n
    last_arrival: dict[tuple[int, int], float] = {}
    buffers: list[list[bytes]] = [[] for _ in range(n)]
    files = [open(machine_log_path(run_dir, i), "wb") for i in range(1, n + 1)]  # noqa: SIM115
    try:
        for i in range(1, n + 1):
            buffers[i - 1].append(
                dumps(
                    {
                        "ts": format_ts(epoch),
                        "event": "start",
                        "level": "info",
                        "run_id": run_id,
                        "machine": i,
                        "rate": rates[i - 1],
                        "seed": seed,
                        "pid": 0,
                        "machines": n,
                        "dice_sides": settings.dice_sides,
                        "vector_clocks": settings.vector_clocks,
                        "peer_a": machines[i - 1].peer_a,
                        "peer_b": machines[i - 1].peer_b,
                    }
                )
            )
            # As in the real runtime: t0, the shared start instant, once all are connected.
            buffers[i - 1].append(
                dumps(
                    {
                        "ts": format_ts(epoch),
                        "event": "connected",
                        "level": "info",
                        "run_id": run_id,
                        "machine": i,
                        "peers": machines[i - 1].everyone,
                        "t0": format_ts(epoch),
                        "t0_epoch": epoch,
                    }
                )
            )
        # Heap entries: (time, kind, order, machine, payload). kind 0 = arrival, 1 = tick, so an
        # arrival at the same instant as a tick is queued first. ``order`` is a unique sequence
        # number for arrivals (keeps FIFO among equal times) and the machine id for ticks.
        heap: list[tuple[float, int, int, int, Any]] = []
        # The same count as the real worker: ticks due strictly before the end, at least one.
        limits = [max(1, math.ceil(r * duration - 1e-9)) for r in rates]
        for i in range(n):
            t1 = expo(jitter_lam) if jitter_lam else 0.0
            heap.append((t1, 1, i + 1, i, 1))
        heapq.heapify(heap)
        push, pop = heapq.heappush, heapq.heappop
        seq = 0
        while heap:
            t, kind, _order, idx, payload = pop(heap)
            if kind == 0:
                q = queues[idx]
                q.append(payload)
                if len(q) > max_queue[idx]:
                    max_queue[idx] = len(q)
                continue
            m = machines[idx]
            step = m.step(queues[idx])
            buf = buffers[idx]
            buf.append(
                dumps(
                    {
                        "ts": format_ts(epoch + t),
                        "event": step.event,
                        "level": "info",
                        "run_id": run_id,
                        "machine": idx + 1,
                        **step.log_fields(),
                    }
                )
            )
            if len(buf) >= _FLUSH_LINES:
                _write_whole(files[idx], buf)
                buf.clear()
            msg = step.message
            if msg is not None and step.to:
                src = idx + 1
                for dst in step.to:
                    arrival = t + delay()
                    prev = last_arrival.get((src, dst))
                    if prev is not None and prev > arrival:
                        arrival = prev
                    last_arrival[(src, dst)] = arrival
                    seq += 1
                    push(heap, (arrival, 0, seq, dst - 1, msg))
            last_tick[idx] = t
            k = payload + 1
            if k <= limits[idx]:
                due = (k - 1) / rates[idx]
                if jitter_lam:
                    due += expo(jitter_lam)
                    if due < t:  # a late tick never overtakes the previous one
                        due = t
                push(heap, (due, 1, idx + 1, idx, k))
        # The loop ran until the heap was empty: every message still in flight after the last
        # tick has been taken into its queue, unhandled, as in the real graceful stop.
        results = []
        for i in range(n):
            m = machines[i]
            left = queues[i]
            by_sender = {str(s): c for s, c in sorted(Counter(msg.sender for msg in left).items())}
            results.append(
                MachineResult(
                    id=i + 1,
                    rate=rates[i],
                    ticks=m.ticks,
                    lclock=m.lclock,
                    sent=m.sent,
                    received=m.received,
                    unprocessed=len(left),
                    max_queue=max_queue[i],
                    unprocessed_from=by_sender,
                )
            )
            buffers[i].append(
                dumps(
                    {
                        "ts": format_ts(epoch + max(duration, last_tick[i])),
                        "event": "stop",
                        "level": "info",
                        "run_id": run_id,
                        "machine": i + 1,
                        "reason": "duration",
                        "ticks": m.ticks,
                        "lclock": m.lclock,
                        "sent": m.sent,
                        "received": m.received,
                        "unprocessed": len(left),
                        "unprocessed_from": by_sender,
                        "max_queue": max_queue[i],
                    }
                )
            )
            _write_whole(files[i], buffers[i])
            buffers[i].clear()
    finally:
        # Interrupted: keep every whole line made so far (a stopped run is still readable).
        for i, fh in enumerate(files):
            if buffers[i]:
                _write_whole(fh, buffers[i])
            fh.close()
    return results


_BLOCK = (signal.SIGINT, signal.SIGTERM)


def _write_whole(fh: BinaryIO, lines: list[bytes]) -> None:
    """Write a batch of lines with Ctrl-C and SIGTERM held back until it is on disk.

    A signal handler that raises in the middle of a buffered write would leave half a line
    in the log; every log line must be complete JSON, whatever stops the run.
    """
    data = b"".join(lines)
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        fh.write(data)
        fh.flush()
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCK)
    try:
        fh.write(data)
        fh.flush()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def run_sim(
    settings: RunSettings,
    net: NetworkSettings,
    output: Path,
    run_id: str | None = None,
    epoch: float = SIM_EPOCH,
) -> tuple[Path, list[MachineResult], dict[str, Any]]:
    """Make the run folder ``output/<run_id>``, simulate into it, write run.json.

    Returns the run folder, the machines' end states and the run.json written. An existing
    folder of the same deterministic run_id is overwritten with the same content.
    """
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**31)
    settings_used = settings if settings.seed == seed else _with_seed(settings, seed)
    rid = run_id or sim_run_id(seed, settings_used, net)
    run_dir = output / rid
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in run_dir.glob("machine-*.jsonl"):
        old.unlink()
    wall0 = time.time()
    meta = base_run_json(rid, seed, settings_used.to_json(), epoch)
    meta["mode"] = "sim"
    meta["sim"] = {**net.to_json(), "epoch": format_ts(epoch)}
    write_run_json(run_dir, meta)
    status, code, reason = "interrupted", 130, "interrupted"
    results: list[MachineResult] = []
    try:
        results = simulate(settings_used, net, seed, run_dir, rid, epoch)
        status, code, reason = "completed", 0, "duration"
    except Terminated:
        code, reason = 143, "sigterm"
        raise
    finally:
        meta["status"] = status
        meta["exit_code"] = code
        meta["reason"] = reason
        meta["ended_at"] = format_ts(epoch + settings_used.duration)
        # The fields the real launcher records per machine (from each machine's stop line).
        meta["machines"] = [
            {
                "id": r.id,
                "rate": r.rate,
                "pid": 0,
                "exit_code": 0,
                "ticks": r.ticks,
                "lclock": r.lclock,
                "reason": "duration",
                "sent": r.sent,
                "received": r.received,
                "unprocessed": r.unprocessed,
                "unprocessed_from": r.unprocessed_from,
                "max_queue": r.max_queue,
            }
            for r in results
        ]
        meta["wall_seconds"] = round(time.time() - wall0, 3)
        write_run_json(run_dir, meta)
    return run_dir, results, meta


def _with_seed(settings: RunSettings, seed: int) -> RunSettings:
    from dataclasses import replace

    return replace(settings, seed=seed)
