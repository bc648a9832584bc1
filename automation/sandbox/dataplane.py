"""A simulated data plane: writes that must survive a failover, and what did.

Three kinds of data, each with timestamps on the sandbox's modelled clock:

- database rows, per RDS instance (`automation.sandbox.lineage`: PostgreSQL's
  replay, lag and read-only semantics);
- S3 objects, really put in moto and replicated the way S3 does
  (`automation.sandbox.objects`);
- Redis keys, per replication group, replicated through the global datastore
  model; a demoted primary that rejoins does a full sync.

The application writes through `serve` (users' requests, routed by DNS to a
region's load balancer) or, for tests, `write_batch` in a named region. Each
batch carries, besides ordinary writes, one from a transaction opened
`long_transaction_seconds` earlier and one from a session that set read-write
for itself, so that a write fence that only changes a default shows the
writes it lets through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from automation.sandbox.lineage import Detachment, Lineage, Write
from automation.sandbox.objects import RTC_LAG_SECONDS, WRITTEN_AT_METADATA, ObjectReplication
from automation.timings import REPLICATION, Op, latency

# catalogue: rds.idle-source-replays-every-few-minutes
RDS_HEARTBEAT_SECONDS = latency(Op.RDS_IDLE_REPLAY_INTERVAL)
LONG_TRANSACTION_SECONDS = 30.0


@dataclass(frozen=True)
class Survival:
    """What one kind of data in one region holds, against everything ever written."""

    kind: str
    region: str
    holder: str
    written: int
    survived: int
    lost: tuple[str, ...]
    oldest_lost_at: datetime | None
    newest_lost_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "region": self.region,
            "holder": self.holder,
            "written": self.written,
            "survived": self.survived,
            "lost": len(self.lost),
            "oldest_lost_at": self.oldest_lost_at.isoformat() if self.oldest_lost_at else None,
            "newest_lost_at": self.newest_lost_at.isoformat() if self.newest_lost_at else None,
        }


def _survival(kind: str, region: str, holder: str, written: list[Write], held: Iterable[Write]) -> Survival:
    kept = {write.key for write in held}
    lost = sorted((w for w in written if w.key not in kept), key=lambda w: w.written_at)
    return Survival(
        kind,
        region,
        holder,
        len(written),
        len(written) - len(lost),
        tuple(w.key for w in lost),
        lost[0].written_at if lost else None,
        lost[-1].written_at if lost else None,
    )


@dataclass
class Served:
    """What one batch of requests did: where each went, what was written."""

    requests: dict[str, int] = field(default_factory=dict)
    """Region (or "unanswered") -> requests that reached its load balancer."""
    written: dict[str, int] = field(default_factory=dict)
    """Region -> rows its database acknowledged."""
    keys: list[str] = field(default_factory=list)


class DataPlane:
    """Writes batches into the live platform and counts what survived where."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime],
        outputs: Callable[[], Mapping[str, Any]],
        s3_client: Callable[[str], Any],
        region_down: Callable[[str], bool],
        cache_primary: Callable[[], tuple[str, str] | None],
        objects: ObjectReplication,
        epoch: datetime,
    ) -> None:
        self._now = now
        self._outputs = outputs
        self._s3 = s3_client
        self._region_down = region_down
        self._cache_primary = cache_primary
        self.objects = objects
        self.database = Lineage(
            REPLICATION["rds-cross-region-replica"].typical_seconds,
            epoch=epoch,
            heartbeat_seconds=RDS_HEARTBEAT_SECONDS,
        )
        self.cache = Lineage(REPLICATION["elasticache-global-datastore"].typical_seconds, epoch=epoch)
        self._sequence = 0
        self._lock = threading.RLock()

    object_lag_seconds = RTC_LAG_SECONDS
    """How long after a write S3 with Replication Time Control typically has the copy."""

    # --- writing -----------------------------------------------------------------

    def _keys(self, count: int, prefix: str) -> list[str]:
        with self._lock:
            keys = [f"{prefix}-{self._sequence + index:06d}" for index in range(count)]
            self._sequence += count
        return keys

    def write_batch(
        self, region: str, count: int, *, at: datetime | None = None, prefix: str = "batch", sessions: bool = False
    ) -> list[str]:
        """The application in `region` writes `count` rows, objects and cache keys; returns the keys it stored.

        A row the database refuses is not stored anywhere (the request failed).
        With `sessions`, the batch adds a write from a long transaction and one
        from a session that overrode the read-only default.
        """
        if self._region_down(region):
            return []
        at = at or self._now()
        writes = [Write(key, at) for key in self._keys(count, prefix)]
        if sessions:
            long_key, override_key = self._keys(2, f"{prefix}-session")
            writes.append(Write(long_key, at, began_at=at - timedelta(seconds=LONG_TRANSACTION_SECONDS)))
            writes.append(Write(override_key, at, overrides_read_only=True))
        outputs = self._outputs()
        accepted = self.database.write(outputs["database"][region]["identifier"], writes)
        bucket = outputs["buckets"][region]["name"]
        s3 = self._s3(region)
        for write in accepted:
            s3.put_object(
                Bucket=bucket,
                Key=f"uploads/{write.key}",
                Body=write.key.encode(),
                Metadata={WRITTEN_AT_METADATA: write.written_at.isoformat()},
            )
            self.objects.written(bucket, f"uploads/{write.key}", write.written_at)
        primary = self._cache_primary()
        if primary is not None and primary[0] == region:
            self.cache.write(primary[1], accepted)
        return [write.key for write in accepted]

    def serve(self, route: Callable[[int], str | None], count: int, *, prefix: str, sessions: bool = False) -> Served:
        """Users' requests: request i goes where `route(i)` (their resolver's cached DNS answer) sends it."""
        served = Served()
        by_region: dict[str | None, int] = {}
        for index in range(count):
            region = route(index)
            by_region[region] = by_region.get(region, 0) + 1
        for region, number in sorted(by_region.items(), key=lambda item: str(item[0])):
            name = region or "unanswered"
            if region is None or self._region_down(region):
                served.requests[name] = served.requests.get(name, 0)
                continue
            served.requests[name] = number
            keys = self.write_batch(region, number, prefix=prefix, sessions=sessions)
            served.written[name] = len(keys)
            served.keys.extend(keys)
        return served

    def region_down(self, region: str, at: datetime) -> None:
        """The region's database and cache stop answering and feeding their replicas."""
        outputs = self._outputs()
        self.database.node_down(outputs["database"][region]["identifier"], at)
        self.cache.node_down(outputs["cache"]["groups"][region], at)

    def region_up(self, region: str, at: datetime) -> None:
        outputs = self._outputs()
        for entry in self._instances_in(region, outputs):
            self.database.node_up(entry, at)
        self.cache.node_up(outputs["cache"]["groups"][region], at)

    @staticmethod
    def _instances_in(region: str, outputs: Mapping[str, Any]) -> list[str]:
        entry = outputs["database"][region]
        return [entry["identifier"], *entry.get("retained", [])]

    # --- replication the sandbox performs -----------------------------------------------

    def replicate_objects(self, until: datetime | None = None) -> int:
        """Copy what S3 replication would have copied by `until`; returns how many objects were copied."""
        return self.objects.replicate(until or self._now())

    # --- counting ------------------------------------------------------------------

    def survivors(self, region: str) -> list[Survival]:
        """What the region's current writer, bucket and cache hold of everything ever written."""
        now = self._now()
        self.replicate_objects(now)
        outputs = self._outputs()
        writer = outputs["database"][region]["identifier"]
        results = [
            _survival("database-rows", region, writer, self.database.all_writes(), self.database.visible(writer, now))
        ]
        bucket = outputs["buckets"][region]["name"]
        written_objects = _unique(
            [Write(o.key.removeprefix("uploads/"), o.written_at) for o in self.objects.objects if o.deleted_at is None]
        )
        held_objects = [] if self._region_down(region) else self._listed(region, bucket)
        results.append(_survival("s3-objects", region, bucket, written_objects, held_objects))
        group = outputs["cache"]["groups"][region]
        results.append(_survival("cache-keys", region, group, self.cache.all_writes(), self.cache.visible(group, now)))
        return results

    def _listed(self, region: str, bucket: str) -> list[Write]:
        pages = self._s3(region).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="uploads/")
        return [
            Write(item["Key"].removeprefix("uploads/"), item["LastModified"])
            for page in pages
            for item in page.get("Contents", [])
        ]

    def data_loss_window(self) -> Detachment | None:
        """The latest database promotion: its window is the span of writes that only the old writer acknowledged."""
        return self.database.detachments[-1] if self.database.detachments else None


def _unique(writes: list[Write]) -> list[Write]:
    seen: dict[str, Write] = {}
    for write in writes:
        seen.setdefault(write.key, write)
    return list(seen.values())
