"""Calls to systems outside the workflow (activities) and the policy they share: retry
until they succeed, so an outage delays a case and never fails it. An outside system's
no (a refusal, or an answer its contract does not define) is not retried: `call_or_no`
hands it to the case as a typed `OutsideNo`, and the case takes that no's path."""

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.types import MethodAsyncSingleParam

from activities.outside import NoType, OutsideNo, outside_no

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


async def call_or_no(
    activity: MethodAsyncSingleParam[SelfT, ParamT, ResultT],
    arg: ParamT,
    *,
    summary: str,
    refused: NoType,
) -> ResultT | OutsideNo:
    """`call_outside`, or the outside system's no (`refused`, or an unknown answer)."""
    try:
        return await call_outside(activity, arg, summary=summary)
    except ActivityError as error:
        if (no := outside_no(error, refused)) is None:
            raise
        return no


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
