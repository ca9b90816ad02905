"""The merchant's policy file (TOML): defaults, per-category and per-carrier overrides.

Read when a case opens; the resolved `PolicySettings` is pinned in the case, so editing
the file changes new cases only."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.analytics import BatchAlarmSettings
from domain.policy_settings import PolicySettings

# R15 makes these per carrier; nothing else may differ between carriers.
CARRIER_KEYS = frozenset(
    {"carrier_claim_deadline", "carrier_chase_interval", "carrier_silence_escalation"}
)


class PolicyFileError(ValueError):
    pass


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    defaults: dict[str, Any] = Field(default_factory=dict)
    categories: dict[str, dict[str, Any]] = Field(default_factory=dict)
    carriers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # R24: read by the batch alarm when it runs, not pinned in cases.
    batch_alarm: BatchAlarmSettings = BatchAlarmSettings()

    def resolve(self, category: str, carrier: str | None = None) -> PolicySettings:
        values = {**self.defaults, **self.categories.get(category, {})}
        if carrier is not None:
            values.update(self.carriers.get(carrier, {}))
        label = "/".join(part for part in (self.version, category, carrier) if part)
        return PolicySettings.model_validate({**values, "version": label})


def load_policy_file(path: Path) -> PolicyFile:
    """Parse and check the whole file up front: every category and carrier must resolve."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PolicyFileError(f"policy file {path}: {error}") from error
    try:
        policy = PolicyFile.model_validate(raw)
    except ValidationError as error:
        raise PolicyFileError(f"policy file {path}: {_describe(error)}") from error
    for name, overrides in policy.carriers.items():
        extra = sorted(set(overrides) - CARRIER_KEYS)
        if extra:
            raise PolicyFileError(
                f"policy file {path}: carriers.{name}: {', '.join(extra)} cannot differ "
                f"by carrier (R15 allows {', '.join(sorted(CARRIER_KEYS))})"
            )
    sections: list[tuple[str, str, str | None]] = [("defaults", "general", None)]
    sections += [(f"categories.{c}", c, None) for c in policy.categories]
    sections += [(f"carriers.{c}", "general", c) for c in policy.carriers]
    for section, category, carrier in sections:
        try:
            policy.resolve(category, carrier)
        except ValidationError as error:
            raise PolicyFileError(f"policy file {path}: {section}: {_describe(error)}") from error
    return policy


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in error.errors()
    )
