"""Logs as JSON lines: one object per record, with the case and the request it concerns.

`request_id` comes from the API (api/request_ids.py sets it for each request); `case_id`
from the activity running (its workflow id is the case id). Never
personal data: the ids are opaque, and the messages name ids and outcomes only
(docs/privacy.md)."""

from __future__ import annotations

import logging
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
case_id: ContextVar[str | None] = ContextVar("case_id", default=None)


class _CaseAndRequest(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.case_id = case_id.get() or (
            activity.info().workflow_id if activity.in_activity() else None
        )
        return True


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_CaseAndRequest())
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(case_id)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
