"""Calls to systems outside the workflow (activities) and the policy they share: retry
until they succeed, so an outage delays a case and never fails it."""

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.types import MethodAsyncSingleParam

INFRASTRUCTURE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
INFRASTRUCTURE_CALL_TIMEOUT = timedelta(seconds=30)

SelfT = TypeVar("SelfT")
ParamT = TypeVar("ParamT")
ResultT = TypeVar("ResultT")


async def call_outside(
    activity: MethodAsyncSingleParam[SelfT, ParamT, ResultT], arg: ParamT, *, summary: str
) -> ResultT:
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=INFRASTRUCTURE_CALL_TIMEOUT,
        retry_policy=INFRASTRUCTURE_RETRY,
        summary=summary,
    )


async def call_local(
    activity: MethodAsyncSingleParam[SelfT, ParamT, ResultT], arg: ParamT, *, summary: str
) -> ResultT:
    """A short, idempotent step run by the worker inside the workflow task (a local
    activity): no scheduling round trips through the server, one marker in the history."""
    return await workflow.execute_local_activity_method(
        activity,
        arg,
        start_to_close_timeout=INFRASTRUCTURE_CALL_TIMEOUT,
        retry_policy=INFRASTRUCTURE_RETRY,
        summary=summary,
    )
