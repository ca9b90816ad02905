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

ALL = (CASE_KIND, CASE_STATUS, CASE_REASON, CASE_CHANNEL, ORDER_ID, SKU, NEXT_DEADLINE)
