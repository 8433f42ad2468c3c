"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — statuses and transitions.

A campaign: draft → scheduled (runs in its window) ⇄ paused, → ended (staff, or its window closed);
the settle tick moves it to settled once the final price is fixed and the differences are paid back.
An entry (one order in the campaign): pending (placed) → paid (counted) → settled (difference refunded,
or none due); pending → void (cancelled); paid → void (wholly refunded before the end)."""

from __future__ import annotations

from enum import StrEnum

from siyu.core.states import Transitions


class LadderStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PAUSED = "paused"
    ENDED = "ended"
    SETTLED = "settled"


L = LadderStatus
LADDER_MACHINE = Transitions(LadderStatus, {
    L.DRAFT: frozenset({L.SCHEDULED, L.ENDED}),
    L.SCHEDULED: frozenset({L.DRAFT, L.PAUSED, L.ENDED, L.SETTLED}),
    L.PAUSED: frozenset({L.SCHEDULED, L.ENDED, L.SETTLED}),
    L.ENDED: frozenset({L.SETTLED}),
    L.SETTLED: frozenset(),
}, message="This ladder campaign cannot move from {old} to {new}.")

LADDER_LABELS = {L.DRAFT: "Draft", L.SCHEDULED: "Scheduled", L.PAUSED: "Paused", L.ENDED: "Ended",
                 L.SETTLED: "Settled"}


class EntryStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SETTLED = "settled"
    VOID = "void"


E = EntryStatus
ENTRY_MACHINE = Transitions(EntryStatus, {
    E.PENDING: frozenset({E.PAID, E.VOID}),
    E.PAID: frozenset({E.SETTLED, E.VOID}),
    E.SETTLED: frozenset(),
    E.VOID: frozenset(),
}, message="This ladder entry cannot move from {old} to {new}.")

ENTRY_LABELS = {E.PENDING: "Awaiting payment", E.PAID: "Paid", E.SETTLED: "Settled", E.VOID: "Void"}


def assert_ladder_transition(old: str, new: str) -> None:
    LADDER_MACHINE.check(old, new)


def assert_entry_transition(old: str, new: str) -> None:
    ENTRY_MACHINE.check(old, new)
