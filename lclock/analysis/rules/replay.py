"""Replay each machine's dice from the recorded seed (SPEC 1.7).

A machine's generator is ``lclock.model.machine_setup(seed, id, rate_min, rate_max, rates)``
(the rate is always drawn first), then one ``randint(1, dice_sides)`` per tick that handled
no message, in tick order. So in a run lclock wrote, the logged dice are determined by the
seed, and a dice value that differs means the log was edited or the machine did not follow
the model. Folders lclock did not write have no such guarantee: the replay is skipped, with
a note saying why, not a finding.
"""

from __future__ import annotations

import random

import numpy as np

from lclock.analysis.load import KIND_RECEIVE, MachineLog
from lclock.analysis.rules import Context, run_rule


def _fast_rolls(rng: random.Random, count: int, sides: int) -> np.ndarray:
    """``count`` values of ``rng.randint(1, sides)``, from the generator's raw 32-bit words.

    CPython's randint(1, n) takes k = n.bit_length() bits per try (the top bits of one
    32-bit word) and retries while the value is >= n; getrandbits(32 * m) hands out the
    same words in order. The caller checks the first values against randint itself.
    """
    k = sides.bit_length()
    out: list[np.ndarray] = []
    got = 0
    while got < count:
        m = int((count - got) * (1 << k) / sides * 1.05) + 64
        words = np.frombuffer(rng.getrandbits(32 * m).to_bytes(4 * m, "little"), "<u4")
        vals = (words >> np.uint32(32 - k)).astype(np.int64)
        vals = vals[vals < sides]
        out.append(vals)
        got += len(vals)
    return np.concatenate(out)[:count] + 1 if out else np.zeros(0, np.int64)


def rolls(seed: int, mid: int, rate_min: int, rate_max: int, rates: tuple[int, ...] | None,
          sides: int, count: int) -> tuple[int, np.ndarray]:
    """The machine's rate and its first ``count`` dice, as the model draws them."""
    from lclock.core.model import machine_setup

    rate, rng = machine_setup(seed, mid, rate_min, rate_max, rates)
    if 1 <= sides.bit_length() <= 32:
        state = rng.getstate()
        fast = _fast_rolls(rng, count, sides)
        probe = random.Random()
        probe.setstate(state)
        head = [probe.randint(1, sides) for _ in range(min(count, 64))]
        if fast[: len(head)].tolist() == head:
            return rate, fast
        rng.setstate(state)
    return rate, np.array([rng.randint(1, sides) for _ in range(count)], np.int64)


def _why_not(ctx: Context) -> str | None:
    f = ctx.run.facts
    if "dice" in f.not_logged:
        return "run.json says the dice are not logged (not_logged)"
    if not f.lclock:
        return "run.json does not name an lclock version, so the dice need not follow the seed"
    missing = [k for k, v in (("seed", f.seed), ("settings.rate_min", f.rate_min),
                              ("settings.rate_max", f.rate_max),
                              ("settings.dice_sides", f.dice_sides)) if v is None]
    if missing:
        return f"run.json gives no {', '.join(missing)}"
    if f.fixed_rates is not None and len(f.fixed_rates) < ctx.run.n:
        return "settings.rates does not give every machine's rate"
    return None


@run_rule
def dice_follow_the_seed(ctx: Context) -> None:
    why = _why_not(ctx)
    if why is not None:
        ctx.notes.append(f"dice not replayed from the seed: {why}")
        return
    f = ctx.run.facts
    assert f.seed is not None and f.rate_min is not None and f.rate_max is not None
    assert f.dice_sides is not None
    fixed = tuple(f.fixed_rates) if f.fixed_rates is not None else None
    for mid in ctx.run.ids:
        log = ctx.views[mid]
        rolled = np.flatnonzero(log.kind != KIND_RECEIVE)
        rate, want = rolls(f.seed, mid, f.rate_min, f.rate_max, fixed, f.dice_sides, len(rolled))
        _compare(ctx, log, rolled, want)
        said = f.rates.get(mid)
        if fixed is None and said is not None and said != rate:
            ctx.meta(f"machine {mid}: rate {said}, but seed {f.seed} draws rate {rate} from "
                     f"{f.rate_min}..{f.rate_max}", "replay-rate")
    ctx.notes.append(f"dice replayed from seed {f.seed} for {len(ctx.run.ids)} machine(s)")


def _compare(ctx: Context, log: MachineLog, rolled: np.ndarray, want: np.ndarray) -> None:
    got = log.dice[rolled]
    differ = np.flatnonzero(got != want)
    if not differ.size:
        return
    k = int(differ[0])
    ev = int(rolled[k])
    ctx.finding(log, log.line[ev], f"dice {int(got[k])} on tick {int(log.tick[ev])}, but seed "
                                   f"{ctx.run.facts.seed} rolls {int(want[k])} for machine "
                                   f"{log.id}'s roll {k + 1}; {differ.size} of {len(rolled)} "
                                   "roll(s) differ from the seed's sequence", "replay",
                count=int(differ.size))
