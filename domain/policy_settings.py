"""The numbers marked *(policy)* in shared/domain.md, as one versioned value.

A case pins the settings it opened under (they travel in its state), so a later change
of policy never moves a running case's deadlines.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, Field(min_length=1, max_length=64)] = "2026-11-default"
    return_window: timedelta = timedelta(days=7)  # R1
    ship_back_window: timedelta = timedelta(days=7)  # R12
    ship_back_reminders: tuple[timedelta, ...] = (timedelta(days=3), timedelta(days=6))  # R12
    # R5: share of the price kept for a changed-mind return, in basis points (0 = none).
    changed_mind_handling_fee_bp: Annotated[int, Field(ge=0, le=10_000)] = 0

    @model_validator(mode="after")
    def _reminders_inside_window(self) -> PolicySettings:
        if any(not timedelta(0) < r < self.ship_back_window for r in self.ship_back_reminders):
            raise ValueError("ship_back_reminders must fall strictly inside ship_back_window (R12)")
        if list(self.ship_back_reminders) != sorted(self.ship_back_reminders):
            raise ValueError("ship_back_reminders must be in ascending order (R12)")
        return self
