"""CloudWatch datapoints as AWS publishes them: one per metric per 60-second period, once the period is over.

A reader never sees a value for the minute it is in, nor a value computed at
the moment it asks: before each CloudWatch read through the sandbox's
clients, every period that has ended since the last publication is published
with the value the model had then (catalogue: elb.metrics-per-60-seconds-only-with-traffic,
rds.postgres-replica-lag-is-time-since-last-replay). Series come and go with
what they measure (a replica's ReplicaLag from its creation to its promotion).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

PERIOD_SECONDS = 60
PUT_BATCH = 20


@dataclass
class Series:
    region: str
    namespace: str
    name: str
    dimensions: Mapping[str, str]
    value_at: Callable[[datetime, datetime], float | None]
    """The period's value from its start and end; None publishes nothing for that period."""
    unit: str
    start: datetime
    end: datetime | None = None
    published_until: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
        return (self.region, self.namespace, self.name, tuple(sorted(self.dimensions.items())))


def period_start(at: datetime) -> datetime:
    return at.replace(microsecond=0) - timedelta(seconds=int(at.timestamp()) % PERIOD_SECONDS)


@dataclass
class Publisher:
    put: Callable[[str, str, list[dict[str, Any]]], None]
    """put(region, namespace, metric data) into moto."""
    region_up: Callable[[str, datetime], bool]
    series: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], Series] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, series: Series) -> None:
        """Start publishing a series (an existing one with the same metric and dimensions resumes)."""
        with self._lock:
            existing = self.series.get(series.key)
            if existing is not None and existing.end is None:
                return
            if existing is not None:
                series.published_until = existing.published_until
            self.series[series.key] = series

    def stop(self, region: str, namespace: str, name: str, dimensions: Mapping[str, str], at: datetime) -> None:
        with self._lock:
            found = self.series.get((region, namespace, name, tuple(sorted(dimensions.items()))))
            if found is not None and found.end is None:
                found.end = at

    def publish_until(self, now: datetime) -> None:
        """Publish every period that ended by `now` and was not published yet."""
        batches: dict[tuple[str, str], list[dict[str, Any]]] = {}
        with self._lock:
            for series in self.series.values():
                period = timedelta(seconds=PERIOD_SECONDS)
                cursor = series.published_until or period_start(series.start)
                limit = now if series.end is None else min(now, period_start(series.end) + period)
                while cursor + period <= limit:
                    end = cursor + period
                    value = series.value_at(cursor, end) if self.region_up(series.region, end) else None
                    if value is not None:
                        batches.setdefault((series.region, series.namespace), []).append(
                            {
                                "MetricName": series.name,
                                "Dimensions": [{"Name": k, "Value": v} for k, v in series.dimensions.items()],
                                "Timestamp": cursor,
                                "Value": value,
                                "Unit": series.unit,
                            }
                        )
                    cursor = end
                series.published_until = max(cursor, series.published_until or cursor)
        for (region, namespace), data in batches.items():
            # Small requests: botocore gzips larger PutMetricData bodies, which moto's server cannot route.
            for chunk in range(0, len(data), PUT_BATCH):
                self.put(region, namespace, data[chunk : chunk + PUT_BATCH])
