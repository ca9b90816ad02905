"""Durable waits on absolute deadlines, so a run resumed after continue-as-new or a
deadline extension waits only for what is left."""

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow


async def wait_until(condition: Callable[[], bool], deadline: datetime, summary: str) -> bool:
    """Wait for `condition` or `deadline`, whichever comes first; True if the condition won."""
    remaining = deadline - workflow.now()
    if remaining <= timedelta(0):
        return condition()
    try:
        await workflow.wait_condition(condition, timeout=remaining, timeout_summary=summary)
    except TimeoutError:
        return condition()
    return True
