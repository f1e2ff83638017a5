"""The model with one classic bug of the catalogue (SPEC section 10), for ``--mutant NAME``.

A mutant is the built-in machine that makes one known mistake, so a teacher can show what
it looks like and the tests can show that ``check`` names it. The correct rules stay in
``lclock.core.model`` untouched (the hot path of every run); a mutant machine's tick comes
here instead, and each rule below differs from the correct one only where its bug does.
Two bugs are not about one tick's clocks: ``tick-drift`` is the node's schedule (``PACE``)
and ``several-per-tick`` the node handling a second message in the same tick.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from lclock.core.clocks import hlc_local, hlc_receive

if TYPE_CHECKING:
    from lclock.core.model import Machine, Message, Step

#: ``tick-drift``: every sleep is 1/rate after the last tick plus the work, taken as a
#: quarter of the period, so tick k is due at (k - 1) x 1.25 / rate.
PACE = 1.25


def lamport_receive(bug: str, L: int, m: int) -> int:
    if bug == "receive-ignores-message":
        return L + 1
    if bug == "receive-no-increment":
        return max(L, m)
    if bug == "receive-takes-message":
        return m + 1
    if bug == "receive-increment-inside-max":
        return max(L, m + 1)
    return max(L, m) + 1


def lamport_local(bug: str, L: int, internal: bool, recipients: int) -> int:
    """The clock after a send (to ``recipients``) or an internal event."""
    if internal:
        return L if bug == "internal-no-increment" else L + 1
    if bug == "send-no-increment":
        return L
    if bug == "send-per-recipient":
        return L + recipients
    return L + 1


def own_entry(bug: str, me: int, n: int) -> int:
    """The vector entry a machine (index ``me``) advances: its own, or its neighbour's."""
    return (me + 1) % n if bug == "vector-wrong-entry" else me


def vector_receive(bug: str, own: list[int], msg: tuple[int, ...] | None, me: int) -> None:
    if msg is not None and bug != "vector-no-merge":
        for i, v in enumerate(msg):
            if v > own[i]:
                own[i] = v
    if bug != "vector-no-own-increment":
        own[own_entry(bug, me, len(own))] += 1


def hlc_step(bug: str, l: int, c: int, pt: int, msg: tuple[int, int] | None  # noqa: E741
             ) -> tuple[int, int]:
    """The HLC after an event (``msg`` None: send or local), with the bug's mistake."""
    if bug == "hlc-ignores-pt":
        pt = 0
    if msg is None or bug == "hlc-receive-ignores-message":
        out = hlc_local(l, c, pt)
    else:
        out = hlc_receive(l, c, msg[0], msg[1], pt)
    if bug == "hlc-counter-not-reset" and out[1] == 0:
        return out[0], c + 1
    return out


def step(m: Machine, queue: deque[Message], pt: int | None) -> Step:
    """One tick of machine ``m`` with its bug ``m.mutant`` (SPEC 1.5 otherwise)."""
    from lclock.core.model import INTERNAL_EVENT, RECEIVE_EVENT, SEND_EVENT, Message, Step

    bug = m.mutant
    m.ticks += 1
    me = m.machine_id - 1
    if queue:
        msg = queue.popleft()
        m.lclock = lamport_receive(bug, m.lclock, msg.lclock)
        m.received += 1
        vc = None
        if m.vector:
            vector_receive(bug, m.vclock, msg.vclock, me)
            vc = list(m.vclock)
        hlc = None
        if m.hlc and pt is not None:
            m.hlc_l, m.hlc_c = hlc = hlc_step(bug, m.hlc_l, m.hlc_c, pt, msg.hlc or (0, 0))
        return Step(RECEIVE_EVENT, m.ticks, m.lclock, len(queue), vclock=vc, sender=msg.sender,
                    msg_lclock=msg.lclock, pt=pt, hlc=hlc, msg_pt=msg.pt, msg_hlc=msg.hlc,
                    send_tick=msg.send_tick)
    dice, to = m.roll()
    before = m.lclock
    m.lclock = lamport_local(bug, before, to is None, len(to or ()))
    shown = before if bug == "logs-clock-before-event" else m.lclock
    vc = None
    if m.vector:
        m.vclock[own_entry(bug, me, m.n)] += 1
        vc = list(m.vclock)
    hlc = None
    if m.hlc and pt is not None:
        m.hlc_l, m.hlc_c = hlc = hlc_step(bug, m.hlc_l, m.hlc_c, pt, None)
    if to is None:
        return Step(INTERNAL_EVENT, m.ticks, shown, 0, vclock=vc, dice=dice, pt=pt, hlc=hlc)
    m.sent += len(to)
    carried = shown - 1 if bug == "send-carries-old-clock" else shown
    message = Message(m.machine_id, carried, tuple(vc) if vc is not None else None, pt, hlc,
                      m.ticks)
    return Step(SEND_EVENT, m.ticks, shown, 0, vclock=vc, dice=dice, to=to, message=message,
                pt=pt, hlc=hlc)
