"""What the gateway answers when a case cannot take a request: each error names its field
and rule as data (domain/errors.py), for the API, the desk and the CLI alike."""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError

from domain.errors import FieldError
from domain.rules import Rule
from workflows.case_handlers import AUTHORITY_LIMIT, REFUSED
from workflows.case_inbox import NOT_APPLIED


class UnknownCaseError(FieldError, LookupError):
    pass


class CaseErasedError(UnknownCaseError):
    """The case's customer was erased (GDPR art. 17): its payloads cannot be read any
    more; its pseudonymised ledger rows remain in PostgreSQL."""


class WorkerUnavailableError(FieldError):
    """Temporal answers, but no worker answered a live query of the case."""

    def __init__(self, task_queue: str) -> None:
        super().__init__(
            f"no case worker answered on task queue {task_queue!r}: the case worker "
            "(worker.py) is down or busy; read the case without ?fresh=true, or send the "
            "request again once a worker runs"
        )


class RefusedInputError(FieldError, ValueError):
    """Input refused at the edge, naming the field and the rule."""


class ReceiptRefusedError(RefusedInputError):
    """An opening request refused at receipt (R1); `field` is None for the request as a
    whole."""


class RefusedDecisionError(FieldError, ValueError):
    """The case refused a decision: its validator, or the case once the decision's turn
    came (its kind is then in the ledger's `message_ignored` step). `rule` is the
    refusal's typed rule, None where no rule of domain.md refuses (the message says why)."""


# The Update failures that carry a typed refusal (rule and kind) in their details.
TYPED_REFUSALS = (REFUSED, NOT_APPLIED, AUTHORITY_LIMIT)


def refused_decision(error: WorkflowUpdateFailedError) -> RefusedDecisionError:
    """The Update's failure as the API hears it: the message and the case's typed rule."""
    cause = error.cause
    if not isinstance(cause, FailureError):
        return _decision_refusal(str(error), rule=None)
    # The case's typed refusal (workflows/case_inbox.py `refusal_details`).
    if isinstance(cause, ApplicationError) and cause.type in TYPED_REFUSALS and cause.details:
        return _decision_refusal(cause.message, rule=_rule_named(cause.details[0]["rule"]))
    # Any other failure names no rule: str() of a Temporal failure puts its Python type
    # in front ("ValueError: ..."), which says nothing to the caller.
    return _decision_refusal(cause.message, rule=None)


def _rule_named(rule_id: str | None) -> Rule | None:
    return None if rule_id is None else Rule(rule_id)


def _decision_refusal(text: str, *, rule: Rule | None) -> RefusedDecisionError:
    field, words = field_and_words(text)
    return RefusedDecisionError(words, field=field, rule=rule)


def field_and_words(text: str) -> tuple[str | None, str]:
    """A domain refusal's field and words. The workflows' and the policy's refusals carry
    their field only in their text (`field: words`, domain/refusal.py), over the wire and
    in recorded histories alike: it is read here, once, where the refusal enters the edge."""
    field, colon, words = text.strip().partition(": ")
    if colon and field.replace(".", "_").isidentifier() and not _is_rule_id(field):
        return field, words
    return None, text.strip()


def _is_rule_id(word: str) -> bool:
    return word.startswith("R") and word[1:].isdigit()


def unknown_case(case_id: str, *, open_only: bool = False) -> UnknownCaseError:
    return UnknownCaseError(f"no {'open ' if open_only else ''}case {case_id!r}", field="case_id")


def erased_case(case_id: str) -> CaseErasedError:
    return CaseErasedError(
        f"{case_id} was erased on the customer's request (GDPR art. 17): it takes no more "
        "messages; its pseudonymised ledger remains",
        field="case_id",
    )
