"""Custom search attributes every case keeps current, for operators' list filters.

None of them carries personal data: ids of orders and SKUs only, never a customer."""

from temporalio.common import SearchAttributeKey

CASE_KIND = SearchAttributeKey.for_keyword("CaseKind")
CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
CASE_REASON = SearchAttributeKey.for_keyword("CaseReason")
CASE_CHANNEL = SearchAttributeKey.for_keyword("CaseChannel")
ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
SKU = SearchAttributeKey.for_keyword("Sku")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
CARRIER = SearchAttributeKey.for_keyword("Carrier")
ESCALATION_LEVEL = SearchAttributeKey.for_keyword("EscalationLevel")
AUTO_APPROVED = SearchAttributeKey.for_bool("AutoApproved")
# An agent's staff id: an employee's handle, not a customer's personal data.
ASSIGNED_AGENT = SearchAttributeKey.for_keyword("AssignedAgent")

ALL = (
    CASE_KIND,
    CASE_STATUS,
    CASE_REASON,
    CASE_CHANNEL,
    ORDER_ID,
    SKU,
    NEXT_DEADLINE,
    CARRIER,
    ESCALATION_LEVEL,
    AUTO_APPROVED,
    ASSIGNED_AGENT,
)
