"""What the program declares, per region, evaluated offline."""

from __future__ import annotations

from collections import Counter

from automation.evaluate import Evaluation


def inventory(evaluation: Evaluation) -> dict[str, dict[str, int]]:
    """Count declared cloud resources by region and type (`global` when regionless)."""
    counts: dict[str, Counter[str]] = {}
    for resource in evaluation.resources:
        if not resource.custom or resource.type.startswith("pulumi:providers:"):
            continue
        counts.setdefault(resource.region or "global", Counter())[resource.type] += 1
    return {region: dict(sorted(c.items())) for region, c in sorted(counts.items())}
