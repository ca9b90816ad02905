"""bench/results.png: every figure of results.json beside its target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen here
import matplotlib.pyplot as plt  # after use(): the backend must be chosen first

from bench.table import OPENING_RATIO, SCAN_P99_RATIO, SCANS_RATIO, WORKER_KIB_PER_CASE


def plot(results: dict[str, Any], out: Path) -> None:
    figure, ((rates, latency), (memory, events)) = plt.subplots(2, 2, figsize=(13, 9))
    figure.suptitle(f"aftersales benchmarks ({results['run']['measured_at'][:16]} UTC)")

    if "intake" in results:
        intake = results["intake"]
        ratios = {
            "open via API\n/ bare start": intake["opening_rate"]["ratio"],
            "scans, 1 per request\n/ bare signal": intake["scan_ingest_rate"][
                "ratio_one_scan_per_request"
            ],
            "scans, batches of 10\n/ bare signal": intake["scan_ingest_rate"][
                "ratio_batches_of_10"
            ],
        }
        targets = {"target open": OPENING_RATIO, "target scans": SCANS_RATIO}
        _bars(rates, ratios, "rate ratio (higher is better)", targets)

    if "latency" in results:
        found = results["latency"]
        ratios = {
            f"{mode.replace('_', ' ')}\n{seen}": found[mode][f"p99_ratio_{seen}"]
            for mode in ("one_at_a_time", "20_concurrent")
            for seen in ("query", "read_model")
        }
        _bars(latency, ratios, "scan -> visible p99 / bare update p99 (lower is better)",
              {"target": SCAN_P99_RATIO})  # fmt: skip

    if "scale" in results:
        scale = results["scale"]
        per_case = {
            "worker per\ncached case": scale["worker_kib_per_cached_case"],
            "server per case": scale["server_kib_per_case"],
            "PostgreSQL\nper case": scale["database_kib_per_case"],
        }
        _bars(memory, per_case, "KiB (lower is better)", {"worker target": WORKER_KIB_PER_CASE,
                                                          "server/db target": 50})  # fmt: skip

    if "histories" in results:
        found = results["histories"]
        sizes = {name.replace("_", " "): s["events"] for name, s in
                 found["per_case_at_close"].items()}  # fmt: skip
        sizes["90-day carrier claim\n(largest run)"] = found["carrier_claim_90_days"]["largest_run"]
        events.barh(list(sizes), list(sizes.values()), color="tab:blue")
        events.axvline(4000, color="tab:red", linestyle="--", label="target 4000")
        events.set_xlabel("history events at close")
        events.tick_params(axis="y", labelsize=7)
        events.legend()

    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def _bars(axes: Any, values: dict[str, float], label: str, targets: dict[str, float]) -> None:
    axes.bar(list(values), list(values.values()), color="tab:blue")
    for (name, target), style in zip(targets.items(), ("--", ":"), strict=False):
        axes.axhline(target, color="tab:red", linestyle=style, label=f"{name} {target}")
    axes.set_ylabel(label)
    axes.tick_params(axis="x", labelsize=8)
    axes.legend()
