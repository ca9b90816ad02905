"""Which status a case may go to from which, and under which rule: one table per kind of
case (and one for the carrier claim), read from what the workflows do. The case's one
place that changes its status (`workflows/steps/casebook.py`, `CaseBook.record`) and the
claim's (`CarrierClaim._record`) check every change against it, and docs/states.md is
drawn from it (`mermaid`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from domain.case import CaseKind
from domain.claim import ClaimStatus
from domain.rules import Rule
from domain.state import WITHDRAWABLE, CaseStatus

S = CaseStatus
# What moves a case that no rule of domain.md governs: the customer withdrew.
NO_RULE = None


@dataclass(frozen=True)
class Move:
    """One arrow of a table: from `source` to `target`, by any of `rules`."""

    source: StrEnum
    target: StrEnum
    rules: frozenset[Rule | None]


class UnlistedTransition(Exception):
    """A status change its kind's table lacks. Deliberately not an ApplicationError: the
    workflow task fails and the case waits, unchanged and with no command issued, for a
    build whose table (or code) is right, then goes on by replay; tests fail at once."""


def _move(source: StrEnum, target: StrEnum, *rules: Rule | None) -> Move:
    return Move(source, target, frozenset(rules))


# ---- what every kind shares ------------------------------------------------------------

_REVIEW = (
    _move(S.OPENED, S.AWAITING_EVIDENCE, Rule.R6),
    _move(S.AWAITING_EVIDENCE, S.UNDER_REVIEW, Rule.R6),
    _move(S.AWAITING_EVIDENCE, S.ABANDONED, Rule.R6),
    _move(S.UNDER_REVIEW, S.REJECTED, Rule.R20),
)
_ARBITRATION = (
    _move(S.REJECTED, S.IN_ARBITRATION, Rule.R19),
    _move(S.IN_ARBITRATION, S.REJECTED, Rule.R19),
    # The ruling's refund; R21 when nothing was left to refund.
    _move(S.IN_ARBITRATION, S.REFUNDED, Rule.R19, Rule.R21),
)
# Where an item comes back (returns, exchanges): the ship-back window to the inspection.
_ITEM_BACK = (
    _move(S.OPENED, S.REFUSED, Rule.R1),
    _move(S.OPENED, S.AWAITING_SHIP_BACK, Rule.R5),
    _move(S.UNDER_REVIEW, S.AWAITING_SHIP_BACK, Rule.R10, Rule.R11),
    _move(S.AWAITING_SHIP_BACK, S.IN_RETURN_TRANSIT, Rule.R12),
    _move(S.AWAITING_SHIP_BACK, S.ABANDONED, Rule.R12),
    # A dock (or inspection) scan before the shipping notice is the receipt (R26).
    _move(S.AWAITING_SHIP_BACK, S.AWAITING_INSPECTION, Rule.R26),
    _move(S.IN_RETURN_TRANSIT, S.AWAITING_INSPECTION, Rule.R26),
    _move(S.AWAITING_INSPECTION, S.REJECTED, Rule.R20),
)


def _withdrawals(waits_in: Iterable[CaseStatus]) -> tuple[Move, ...]:
    return tuple(
        _move(status, S.WITHDRAWN, NO_RULE) for status in waits_in if status in WITHDRAWABLE
    )


def _declined_payments(pays_in: Iterable[CaseStatus]) -> tuple[Move, ...]:
    """R21: a payment the provider declined waits for a person, then the case goes back
    to the status it was in (a compensation may be paid in any status a phase waits in)."""
    return tuple(
        move
        for status in pays_in
        for move in (
            _move(status, S.PAYMENT_DECLINED, Rule.R21),
            _move(S.PAYMENT_DECLINED, status, Rule.R21),
        )
    )


# ---- each kind -------------------------------------------------------------------------

# The statuses in which a phase waits and the desk applies compensations (R17) and
# withdrawals, by kind; arbitration pays the ruling's refund.
_RETURN_WAITS = (
    S.AWAITING_EVIDENCE, S.UNDER_REVIEW, S.AWAITING_DELIVERY, S.INTERCEPTING,
    S.AWAITING_SHIP_BACK, S.IN_RETURN_TRANSIT, S.AWAITING_INSPECTION, S.REFUND_DUE,
)  # fmt: skip
_EXCHANGE_WAITS = (
    S.AWAITING_EVIDENCE, S.UNDER_REVIEW, S.AWAITING_SHIP_BACK, S.IN_RETURN_TRANSIT,
    S.AWAITING_INSPECTION, S.EXCHANGE_DUE, S.AWAITING_REFUND_CONSENT, S.WAITING_FOR_STOCK,
)  # fmt: skip
_DAMAGE_CLAIM_WAITS = (S.AWAITING_EVIDENCE, S.UNDER_REVIEW, S.AWAITING_REMEDY_CHOICE)

_RETURN = (
    *_REVIEW,
    *_ITEM_BACK,
    # R3: not shipped yet, the warehouse stopped it; if it had left, R4 awaits it.
    _move(S.OPENED, S.REFUND_DUE, Rule.R3),
    _move(S.OPENED, S.AWAITING_DELIVERY, Rule.R4),
    _move(S.AWAITING_DELIVERY, S.DELIVERED, Rule.R4),
    _move(S.AWAITING_DELIVERY, S.INTERCEPTING, Rule.R4),
    _move(S.INTERCEPTING, S.REFUND_DUE, Rule.R4),
    # R9: a missing part's value refunded once approved, or the part sent.
    _move(S.UNDER_REVIEW, S.REFUND_DUE, Rule.R10, Rule.R11),
    _move(S.UNDER_REVIEW, S.REPLACED, Rule.R9),
    _move(S.AWAITING_INSPECTION, S.REFUND_DUE, Rule.R13),
    _move(S.REFUND_DUE, S.REFUNDED, Rule.R21),
    *_ARBITRATION,
    *_withdrawals(_RETURN_WAITS),
    *_declined_payments((*_RETURN_WAITS, S.IN_ARBITRATION)),
)
_EXCHANGE = (
    *_REVIEW,
    *_ITEM_BACK,
    _move(S.AWAITING_INSPECTION, S.EXCHANGE_DUE, Rule.R13),
    _move(S.EXCHANGE_DUE, S.EXCHANGED, Rule.R22),
    _move(S.EXCHANGE_DUE, S.AWAITING_REFUND_CONSENT, Rule.R22),
    _move(S.AWAITING_REFUND_CONSENT, S.WAITING_FOR_STOCK, Rule.R22),
    _move(S.WAITING_FOR_STOCK, S.WAITING_FOR_STOCK, Rule.R22),
    _move(S.WAITING_FOR_STOCK, S.EXCHANGED, Rule.R22),
    # The customer consented to a refund; R21 when nothing was left to refund.
    _move(S.AWAITING_REFUND_CONSENT, S.REFUNDED, Rule.R22, Rule.R21),
    _move(S.WAITING_FOR_STOCK, S.REFUNDED, Rule.R22, Rule.R21),
    *_ARBITRATION,
    *_withdrawals(_EXCHANGE_WAITS),
    *_declined_payments((*_EXCHANGE_WAITS, S.IN_ARBITRATION)),
)
_DAMAGE_CLAIM = (
    *_REVIEW,
    # A lost parcel leaves nothing to photograph: its review starts at once (R10); every
    # reason of the other kinds that is reviewed asks for photos first (R6).
    _move(S.OPENED, S.UNDER_REVIEW, Rule.R10),
    _move(S.UNDER_REVIEW, S.AWAITING_REMEDY_CHOICE, Rule.R10, Rule.R11),
    _move(S.AWAITING_REMEDY_CHOICE, S.REPLACED, Rule.R8),
    # A partial or full refund; R21 when nothing was left to refund.
    _move(S.AWAITING_REMEDY_CHOICE, S.REFUNDED, Rule.R8, Rule.R21),
    *_ARBITRATION,
    *_withdrawals(_DAMAGE_CLAIM_WAITS),
    *_declined_payments((*_DAMAGE_CLAIM_WAITS, S.IN_ARBITRATION)),
)

C = ClaimStatus
_CARRIER_CLAIM = (
    _move(C.FILING, C.AWAITING_CARRIER, Rule.R15),
    _move(C.FILING, C.DEADLINE_MISSED, Rule.R15),
    _move(C.FILING, C.DECLINED, Rule.R15),
    _move(C.AWAITING_CARRIER, C.SETTLED, Rule.R15),
    _move(C.AWAITING_CARRIER, C.DECLINED, Rule.R15),
)

CASE_TRANSITIONS: Mapping[CaseKind, tuple[Move, ...]] = {
    CaseKind.RETURN: _RETURN,
    CaseKind.EXCHANGE: _EXCHANGE,
    CaseKind.DAMAGE_CLAIM: _DAMAGE_CLAIM,
}
CLAIM_TRANSITIONS: tuple[Move, ...] = _CARRIER_CLAIM


def _check(
    table: Iterable[Move], what: str, source: StrEnum, target: StrEnum, rule: Rule | None
) -> None:
    for move in table:
        if move.source is source and move.target is target:
            if rule in move.rules:
                return
            listed = ", ".join(sorted(str(r) for r in move.rules))
            raise UnlistedTransition(
                f"{what}: {source} -> {target} is listed under {listed}, not {rule}"
            )
    raise UnlistedTransition(f"{what}: no transition {source} -> {target} ({rule})")


def check_case_transition(
    kind: CaseKind, source: CaseStatus, target: CaseStatus, rule: Rule | None
) -> None:
    """Raise `UnlistedTransition` unless the kind's table lists the move under `rule`."""
    _check(CASE_TRANSITIONS[kind], f"a {kind} case", source, target, rule)


def check_claim_transition(source: ClaimStatus, target: ClaimStatus, rule: Rule | None) -> None:
    _check(CLAIM_TRANSITIONS, "a carrier claim", source, target, rule)


# ---- the diagram -----------------------------------------------------------------------


def mermaid(table: Iterable[Move], start: StrEnum) -> str:
    """A Mermaid state diagram of `table`: each arrow labelled with its rules, and an end
    after each status nothing leaves but a dispute or a ruling."""
    lines = ["stateDiagram-v2", f"    [*] --> {start}"]
    ends: list[StrEnum] = []
    for move in sorted(table, key=_position):
        rules = ", ".join("no rule" if r is None else r for r in sorted(move.rules, key=_order))
        lines.append(f"    {move.source} --> {move.target}: {rules}")
        if _is_end(move.target) and move.target not in ends:
            ends.append(move.target)
    lines.extend(f"    {status} --> [*]" for status in ends)
    return "\n".join(lines)


def _is_end(status: StrEnum) -> bool:
    # A rejected case ends once the R19 dispute window passes, or a ruling upholds it.
    if isinstance(status, CaseStatus):
        return status.is_closed or status is CaseStatus.REJECTED
    return isinstance(status, ClaimStatus) and status.is_closed


def _position(move: Move) -> tuple[int, int]:
    """Arrows in the order the statuses are declared (roughly the order of a life)."""
    order = list(type(move.source))
    return order.index(move.source), order.index(move.target)


def _order(rule: Rule | None) -> int:
    return 0 if rule is None else int(rule.removeprefix("R"))


_TITLE = {
    CaseKind.RETURN: "A return",
    CaseKind.EXCHANGE: "An exchange",
    CaseKind.DAMAGE_CLAIM: "A damage claim",
}


def states_document() -> str:
    """docs/states.md: every kind's diagram, drawn from the tables above."""
    parts = [
        "# The case's states",
        "",
        "Generated from `domain/transitions.py` (the tables the workflows check every",
        "status change against); `tests/unit/test_states.py` fails when this page and the",
        "tables differ. Each arrow names the rules of `../shared/domain.md` that move the",
        "case along it (`no rule`: the customer withdrew). `payment_declined` (R21) returns",
        "to the status the declined payment was made in once a person resolves it.",
    ]
    kinds: list[tuple[str, str]] = [
        (f"{_TITLE[kind]} (`{kind.value}`)", mermaid(table, S.OPENED))
        for kind, table in CASE_TRANSITIONS.items()
    ]
    kinds.append(("A carrier claim (`CarrierClaim`, R15)", mermaid(CLAIM_TRANSITIONS, C.FILING)))
    for title, diagram in kinds:
        parts += ["", f"## {title}", "", "```mermaid", diagram, "```"]
    return "\n".join(parts) + "\n"
