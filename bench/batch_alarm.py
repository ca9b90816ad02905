"""R24: the batch alarm on synthetic data with injected jumps of known size. Detection
rate (jumped batches flagged) and false alarms per 1,000 normal batches, by jump size.

`python -m bench.batch_alarm` prints the table; tests/unit/test_analytics_domain.py holds
the figures it quotes to their bounds."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from domain.analytics import BatchAlarmSettings, BatchCounts, judge_batches

SKUS = 1000
BATCHES_PER_SKU = 10
# Normal return rates of SKUs, and delivered units per batch: a shop's usual spread.
BASE_RATES = (0.01, 0.08)
UNITS = (300, 3000)


@dataclass(frozen=True)
class AlarmFigures:
    jump: float
    jumped_batches: int
    detected: int
    normal_batches: int
    false_alarms: int

    @property
    def detection_rate(self) -> float:
        return self.detected / self.jumped_batches if self.jumped_batches else 0.0

    @property
    def false_alarms_per_1000(self) -> float:
        return 1000 * self.false_alarms / self.normal_batches


def simulate(jump: float, settings: BatchAlarmSettings, *, seed: int = 24) -> AlarmFigures:
    """SKUS SKUs of BATCHES_PER_SKU batches; in each SKU the first batch returns at `jump`
    times the SKU's rate (jump 1: no batch is bad). Counts drawn from the binomial."""
    rng = np.random.default_rng(seed)
    counts = []
    jumped = set()
    for sku_number in range(SKUS):
        sku = f"SKU-{sku_number}"
        base = rng.uniform(*BASE_RATES)
        for batch_number in range(BATCHES_PER_SKU):
            units = int(rng.integers(*UNITS, endpoint=True))
            rate = base * jump if batch_number == 0 and jump != 1 else base
            returns = int(rng.binomial(units, min(rate, 1.0)))
            counts.append(
                BatchCounts(sku=sku, batch=f"B{batch_number}", units=units, returns=returns)
            )
            if rate != base:
                jumped.add((sku, f"B{batch_number}"))
    verdicts = judge_batches(counts, settings)
    detected = sum(1 for v in verdicts if v.flagged and (v.sku, v.batch) in jumped)
    false_alarms = sum(1 for v in verdicts if v.flagged and (v.sku, v.batch) not in jumped)
    return AlarmFigures(
        jump=jump, jumped_batches=len(jumped), detected=detected,
        normal_batches=len(verdicts) - len(jumped), false_alarms=false_alarms,
    )  # fmt: skip


def main() -> None:
    settings = BatchAlarmSettings()
    rows = []
    for jump in (1.0, 1.5, 2.0, 3.0):
        figures = simulate(jump, settings)
        rows.append(
            {
                "jump": jump,
                "detection_rate": round(figures.detection_rate, 3),
                "false_alarms_per_1000": round(figures.false_alarms_per_1000, 2),
                "batches": figures.jumped_batches + figures.normal_batches,
            }
        )
    print(json.dumps({"settings": settings.model_dump(), "figures": rows}, indent=2))


if __name__ == "__main__":
    main()
