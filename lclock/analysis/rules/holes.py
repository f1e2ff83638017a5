"""Messages of an imported log that does not say everything (run.json ``not_logged`` lists
``to``, ``from`` or ``msg_lclock``): a send without recipients, a receive without its sender
or without its message's clock cannot be matched by channel order, so FIFO, loss and
duplicates are not checked for them. What can still be checked is: a receive that names the
clock its message carried is matched by that clock to a send of its sender (or, without a
sender, of any machine) that names it or names no recipient (``lclock.analysis.matching``,
the matching trace, hb, cuts and the API use too), or shown to match none; the Lamport rules
of every line are checked as usual (``lclock.analysis.rules.machine``). Check says what it
could not do once, as a note, not once per line.
"""

from __future__ import annotations

import numpy as np

from lclock.analysis.load import MachineLog
from lclock.analysis.matching import Matched
from lclock.analysis.rules import Context
from lclock.analysis.rules.messages import Channel, Sends


def match_blind(ctx: Context, log: MachineLog, sl: Sends, c: Channel) -> None:
    """The receives of a channel whose sender logged sends without recipients: each must
    carry the clock of one of its sends to this machine or without recipients."""
    if sl.log.unusable.size:
        return  # the send may be on a line that could not be read: reported there
    for k in ctx.each(log, "match", c.send < 0):
        ci = int(log.msg[c.recv[k]])
        ctx.finding(log, log.line[c.recv[k]], f"receive from {c.s} with msg_lclock {ci} "
                                              f"matches no send of machine {c.s} to {c.j} "
                                              "(nor any of its sends without recipients)",
                    "match")


def unordered(ctx: Context, sends: dict[int, Sends], matches: dict[int, Matched]) -> None:
    """Receives without a sender matched by their message's clock; the one note."""
    no_from = no_msg = no_to = 0
    usable = not any(v.unusable.size for v in ctx.views.values())
    for j, m in matches.items():
        log = ctx.views[j]
        no_to += len(sends[j].unnamed)
        clocks, frm = log.msg[m.receive], log.frm[m.receive]
        no_msg += int(np.count_nonzero(clocks < 0))
        no_from += int(np.count_nonzero(frm == 0))
        if not usable:
            continue  # the send may be on a line that could not be read: reported there
        for k in ctx.each(log, "match", (frm == 0) & (clocks >= 0) & (m.send < 0)):
            i = int(m.receive[k])
            ctx.finding(log, log.line[i], f"receive with msg_lclock {int(log.msg[i])} (its "
                                          "sender not logged) matches no send of any machine "
                                          f"to {j} (nor any send without recipients)", "match")
    parts = [f"{n} {what}" for n, what in ((no_to, "send(s) without recipients"),
                                           (no_from, "receive(s) without a sender"),
                                           (no_msg, "receive(s) without their message's clock"))
             if n]
    if parts:
        ctx.notes.append(f"the logs have {', '.join(parts)}: those messages cannot be matched "
                         "by channel order (FIFO, loss and duplicates not checked for them); "
                         "a receive that logs its message's clock was matched by that clock")
