"""Which send each receive handled: the one matching of SPEC section 5 and its 5.1 addendum.

``check`` (``lclock.analysis.rules.messages`` and ``.holes``), the causal index behind
``trace``, ``hb`` and ``cuts`` (``lclock.analysis.causal``), the API's ``messages`` frame, the
explorer's arrows and cut verdicts, ``analyze``'s delays and clock comparison, and the
diagnosis of bugs all ask this module, so they cannot disagree about a message: before, a receive
whose sender an imported log does not say was matched by check and left unmatched by the
rest, and a cut that split it was called consistent.

A receive that logs the clock its message carried (``msg_lclock``) is matched to a send with
that Lamport clock of its sender that names the receiver; failing that, to one of its
sender's sends that name no recipient (a log with holes). A receive whose sender is not
logged is matched the same way to any other machine's send: first a send naming the
receiver, then one naming no one, each by machine id. Among equal candidates of one machine
the first in its log wins. A receive without ``msg_lclock`` matches nothing: nothing in the
logs says which message it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lclock.analysis.load import KIND_RECEIVE, KIND_SEND, MachineLog


@dataclass(frozen=True)
class _ByClock:
    """Send events sorted by their Lamport clock (stable: log order among equal clocks)."""

    lclock: np.ndarray
    event: np.ndarray

    @classmethod
    def of(cls, lclock: np.ndarray, event: np.ndarray) -> _ByClock:
        order = np.argsort(lclock, kind="stable")
        return cls(np.asarray(lclock[order], np.int64), np.asarray(event[order], np.int64))

    def find(self, clocks: np.ndarray) -> np.ndarray:
        """Per clock, the first send event with it (-1: none)."""
        n = len(self.lclock)
        if not n:
            return np.full(len(clocks), -1, np.int64)
        p = np.searchsorted(self.lclock, clocks, side="left")
        pc = np.minimum(p, n - 1)
        return np.where((p < n) & (self.lclock[pc] == clocks), self.event[pc], -1)


class SendTable:
    """One machine's sends: flattened to a row per (send event, recipient), and searchable
    by Lamport clock per recipient and among the sends that name no recipient."""

    def __init__(self, log: MachineLog) -> None:
        self.log = log
        isd = np.flatnonzero(log.kind == KIND_SEND)
        counts = (log.to_ptr[1:] - log.to_ptr[:-1])[isd]
        event = np.repeat(isd, counts)
        ok = len(event) == len(log.to_ids)  # a reader that lost recipients: match none
        self.event = event if ok else event[:0]  # index of the send event, per row
        self.to = log.to_ids.astype(np.int64) if ok else np.zeros(0, np.int64)
        self.lclock = log.lclock[self.event]
        self.unnamed = isd[counts == 0]  # the send events that name no recipient
        self.open = _ByClock.of(log.lclock[self.unnamed], self.unnamed)
        self._to: dict[int, _ByClock] = {}

    def to_machine(self, j: int) -> _ByClock:
        """The sends naming ``j``, by clock."""
        if j not in self._to:
            rows = np.flatnonzero(self.to == j)
            self._to[j] = _ByClock.of(self.lclock[rows], self.event[rows])
        return self._to[j]


@dataclass(frozen=True)
class Matched:
    """The receives of one machine and the sends they handled."""

    receive: np.ndarray  # the receive events, in log order
    sender: np.ndarray  # per receive: the machine whose send it handled (0: none)
    send: np.ndarray  # per receive: that send's event index (-1: none)


def match_receives(log: MachineLog, tables: Mapping[int, SendTable]) -> Matched:
    """Every receive of ``log`` matched to its send, as the module docstring says."""
    rk = np.flatnonzero(log.kind == KIND_RECEIVE)
    frm = log.frm[rk].astype(np.int64)
    clocks = log.msg[rk].astype(np.int64)
    sender = np.zeros(len(rk), np.int64)
    send = np.full(len(rk), -1, np.int64)
    others = sorted(m for m in tables if m != log.id)
    for s in np.unique(frm[clocks >= 0]).tolist():
        if s != 0 and s not in tables:
            continue  # its log is missing
        sel = np.flatnonzero((frm == s) & (clocks >= 0))
        for m, table in _candidates(tables, [s] if s else others, log.id):
            left = sel[send[sel] < 0]
            if not len(left):
                break
            hit = table.find(clocks[left])
            got = hit >= 0
            send[left[got]] = hit[got]
            sender[left[got]] = m
    return Matched(rk, sender, send)


def _candidates(tables: Mapping[int, SendTable], machines: list[int], j: int
                ) -> list[tuple[int, _ByClock]]:
    """Where to look, in order: the machines' sends naming ``j``, then those naming no one."""
    return ([(m, tables[m].to_machine(j)) for m in machines]
            + [(m, tables[m].open) for m in machines if len(tables[m].unnamed)])
