"""The input of every case workflow run, including runs after continue-as-new."""

from pydantic import BaseModel, Field, field_validator

from domain.case import OpenCaseRequest
from domain.policy_settings import PolicySettings, shared_policy
from domain.state import CaseState


class CaseRun(BaseModel):
    request: OpenCaseRequest
    # The policy in force when the case opened; the case keeps it for life.
    policy: PolicySettings = Field(default_factory=PolicySettings)
    # Set only by continue-as-new: the state the previous run handed over.
    carried_state: CaseState | None = None
    # Continue-as-new once the history has this many events (the server's own
    # suggestion also triggers it). Tests lower it to exercise the hand-over.
    history_events_before_continue: int = Field(default=2_000, ge=10)

    @field_validator("policy")
    @classmethod
    def _one_instance_per_policy(cls, policy: PolicySettings) -> PolicySettings:
        return shared_policy(policy)
