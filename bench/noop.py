"""The bare-Temporal baselines: a workflow that does nothing but take a signal or an
update, so a ratio against it isolates what aftersales adds."""

from temporalio import workflow


@workflow.defn
class NoOp:
    def __init__(self) -> None:
        self._signals = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self._signals < 0)
        return self._signals

    @workflow.signal
    def poke(self) -> None:
        self._signals += 1

    @workflow.update
    def bump(self) -> int:
        self._signals += 1
        return self._signals
