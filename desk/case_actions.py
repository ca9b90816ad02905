"""What a case offers the person looking at it now: the decision forms their role may
send in the case's state (no others are shown, and no others are taken), and the money
they see (paid, refunded, what remains, their own authority, R17 and R21).

Each decision the desk takes is a `DeskAction`, named once in `DESK_ACTIONS` with the
Update handler it goes to, the form fields it collects, the message they become, its
label and when a case offers it; who may send it is the registry's authority for that
handler (infra/case_messages.py `AUTHORITY`, which the grants check too), not a list of
the desk's own. The router dispatches by it and the case page draws its forms from it
(templates/actions/<action>.html)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from desk.forms import (
    AssignForm,
    CompensationForm,
    ExplainedForm,
    ExtendForm,
    FormFields,
    PaymentResolutionForm,
    ReviewForm,
    RulingForm,
    amount_of,
    bad_form,
)
from domain.case import (
    ArbitrationRuling,
    Assignment,
    CallRequest,
    CompensationOffer,
    DeadlineExtension,
    EscalationRequest,
    PaymentResolution,
    ReviewDecision,
    Role,
)
from domain.money import Money
from domain.policy import refund_limit
from domain.policy_settings import PolicySettings
from domain.state import EXTENDABLE, CaseStatus, EscalationLevel, reimbursable_postage
from domain.view import CaseView
from infra.case_messages import AUTHORITY, UpdateHandler
from infra.security.identity import Caller
from workflows.case_handlers import CaseHandlers


@dataclass(frozen=True)
class MoneyPanel:
    paid: Money
    refunded: Money
    limit: Money  # R21: the most this case may ever refund
    remaining: Money
    # R17: what this person may grant alone; None where only the refund limit binds.
    authority: Money | None


def money_panel(view: CaseView, caller: Caller, policy: PolicySettings) -> MoneyPanel:
    postage = view.shipped_back.postage if view.shipped_back else None
    limit = refund_limit(
        view.paid,
        reimbursable_postage(
            postage, view.paid, merchant_pays=view.merchant_pays_shipping, policy=policy
        ),
    )
    authority = (
        Money(amount_minor=policy.agent_compensation_limit_minor, currency=view.paid.currency)
        if caller.role is Role.AGENT
        else None
    )
    return MoneyPanel(
        paid=view.paid,
        refunded=view.refunded_total,
        limit=limit,
        remaining=limit.minus_floored_at_zero(view.refunded_total),
        authority=authority,
    )


class DeskAction(StrEnum):
    """A decision the desk takes: its form's name on the case page (`form-<action>`), the
    last segment of the path it is posted to, and what the page says was done."""

    APPROVE = "approve"
    REJECT = "reject"
    COMPENSATE = "compensate"
    RESOLVE_PAYMENT = "resolve_payment"
    ESCALATE = "escalate"
    CALL = "call"
    ASSIGN = "assign"
    EXTEND = "extend"
    RULE = "rule"


@dataclass(frozen=True)
class Decider:
    """Who sends a form, under the action id its page made, and the case's currency
    (the forms' amounts are typed without it)."""

    action_id: str
    caller: Caller
    currency: str

    def who(self) -> dict[str, Any]:
        """The fields every operator's message carries (R23)."""
        return {"action_id": self.action_id, "actor": self.caller.actor, "role": self.caller.role}


F = TypeVar("F", bound=FormFields)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ActionForm(Generic[F, M]):
    """A decision's form: the Update `handler` it goes to, the `fields` it collects and
    the `message` they become, its `label` on the case page, and whether `offered` on
    this case now (besides the role and an open case)."""

    handler: UpdateHandler[M]
    fields: type[F]
    message: Callable[[F, Decider], M]
    label: str
    offered: Callable[[CaseView, Caller, PolicySettings], bool]
    # Drawn open: what the case waits for a person to decide (R10, R19, R21).
    drawn_open: bool = False
    # It may pay, so its answer may be a payment the provider declined (R21).
    pays: bool = False

    @property
    def roles(self) -> tuple[Role, ...]:
        """Who may send it: the authority the registry gives its Update (infra/case_messages.py)."""
        return AUTHORITY[self.handler]

    def decision(self, fields: Mapping[str, str | None], decider: Decider) -> M:
        """The Update's message from the posted fields; BadForm naming the field (and the
        rule, where the case's own models name one) when a value cannot be taken."""
        try:
            return self.message(self.fields.model_validate(fields), decider)
        except ValidationError as error:
            raise bad_form(error) from error


def _review(approve: bool) -> Callable[[ReviewForm, Decider], ReviewDecision]:
    def message(form: ReviewForm, by: Decider) -> ReviewDecision:
        return ReviewDecision(**by.who(), approve=approve, **form.model_dump())

    return message


def _compensation(form: CompensationForm, by: Decider) -> CompensationOffer:
    amount = amount_of(form.amount or "", by.currency, "amount")
    return CompensationOffer(**by.who(), amount=amount, reason=form.reason)


def _resolution(form: PaymentResolutionForm, by: Decider) -> PaymentResolution:
    return PaymentResolution(**by.who(), **form.model_dump())


def _escalation(form: ExplainedForm, by: Decider) -> EscalationRequest:
    return EscalationRequest(**by.who(), reason=form.reason)


def _call(form: ExplainedForm, by: Decider) -> CallRequest:
    return CallRequest(**by.who(), purpose=form.reason)


def _assignment(form: AssignForm, by: Decider) -> Assignment:
    return Assignment(**by.who(), agent=form.agent)


def _extension(form: ExtendForm, by: Decider) -> DeadlineExtension:
    return DeadlineExtension(**by.who(), deadline=form.deadline,
                             extend_by=timedelta(days=form.days), reason=form.reason)  # fmt: skip


def _ruling(form: RulingForm, by: Decider) -> ArbitrationRuling:
    refund = amount_of(form.refund, by.currency, "refund") if form.refund else None
    return ArbitrationRuling(**by.who(), favour_customer=form.favour_customer == "yes",
                             reason=form.reason, refund=refund)  # fmt: skip


def _under_review(view: CaseView, _: Caller, __: PolicySettings) -> bool:
    return view.status is CaseStatus.UNDER_REVIEW


def _money_remains(view: CaseView, caller: Caller, policy: PolicySettings) -> bool:
    # While a declined payment waits, no other money moves (the case refuses it, R21).
    return (
        view.declined_payment is None
        and money_panel(view, caller, policy).remaining.amount_minor > 0
    )


def _payment_declined(view: CaseView, _: Caller, __: PolicySettings) -> bool:
    return view.declined_payment is not None


def _below_the_top(view: CaseView, _: Caller, __: PolicySettings) -> bool:
    return view.escalation.level is not EscalationLevel.MANAGER


def _calls_left(view: CaseView, _: Caller, policy: PolicySettings) -> bool:
    return view.calls_scheduled < policy.max_calls_per_case


def _always(_: CaseView, __: Caller, ___: PolicySettings) -> bool:
    return True


def _deadline_extendable(view: CaseView, _: Caller, __: PolicySettings) -> bool:
    return any(runs_in is view.status for runs_in, _ in EXTENDABLE.values())


def _in_arbitration(view: CaseView, _: Caller, __: PolicySettings) -> bool:
    return view.status is CaseStatus.IN_ARBITRATION


# Every decision the desk takes, in the order a person weighs them on the case page.
DESK_ACTIONS: Mapping[DeskAction, ActionForm[Any, Any]] = {
    DeskAction.APPROVE: ActionForm(CaseHandlers.decide, ReviewForm, _review(approve=True),
                                   "Approve (R10)", _under_review, drawn_open=True, pays=True),
    DeskAction.REJECT: ActionForm(CaseHandlers.decide, ReviewForm, _review(approve=False),
                                  "Reject (R10, R20)", _under_review, drawn_open=True),
    DeskAction.COMPENSATE: ActionForm(CaseHandlers.offer_compensation, CompensationForm,
                                      _compensation, "Compensation (R17)", _money_remains,
                                      pays=True),
    DeskAction.RESOLVE_PAYMENT: ActionForm(CaseHandlers.resolve_declined_payment,
                                           PaymentResolutionForm, _resolution,
                                           "Resolve the declined payment (R21)",
                                           _payment_declined, drawn_open=True, pays=True),
    DeskAction.ESCALATE: ActionForm(CaseHandlers.escalate, ExplainedForm, _escalation,
                                    "Escalate (R18)", _below_the_top),
    DeskAction.CALL: ActionForm(CaseHandlers.request_call, ExplainedForm, _call,
                                "Call the customer (R16)", _calls_left),
    DeskAction.ASSIGN: ActionForm(CaseHandlers.assign, AssignForm, _assignment, "Assign",
                                  _always),
    DeskAction.EXTEND: ActionForm(CaseHandlers.extend_deadline, ExtendForm, _extension,
                                  "Extend a deadline", _deadline_extendable),
    DeskAction.RULE: ActionForm(CaseHandlers.apply_ruling, RulingForm, _ruling,
                                "Rule on the dispute (R19)", _in_arbitration, drawn_open=True,
                                pays=True),
}  # fmt: skip


def actions_of_role(role: Role) -> list[DeskAction]:
    """The forms a role may send at all. Whether the case takes one now is the case's to
    judge (its validators); a form sent twice (the same action id) gets the first answer
    even once the case has moved on, so the desk does not second-guess that."""
    return [action for action, form in DESK_ACTIONS.items() if role in form.roles]


def available_actions(view: CaseView, caller: Caller, policy: PolicySettings) -> list[DeskAction]:
    """The forms shown, in the order a person weighs them; the case's validators still
    judge each one sent (R10, R16, R17, R18, R19, R21)."""
    if view.status.is_closed:
        return []
    return [action for action in actions_of_role(caller.role)
            if DESK_ACTIONS[action].offered(view, caller, policy)]  # fmt: skip
