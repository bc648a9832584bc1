"""A simulated data plane: writes that must survive a failover, and what did.

Three kinds of data, each with timestamps on the sandbox's modelled clock:

- database rows, held per RDS instance. A replica holds what its source held
  `lag` seconds earlier; promotion freezes that and the instance takes writes of
  its own from then on, so the rows written in the last `lag` seconds before
  promotion exist only in the old writer: the data-loss window;
- S3 objects, really put in moto; the sandbox copies them to the replication
  destination `lag` seconds after they were written (moto stores the rule but
  copies nothing), only while the source region is reachable;
- Redis keys, per replication group, replicated the same way through the
  global datastore model.

Lags start at the typical figures of `automation.timings.REPLICATION`; the
`replica-lag` fault raises the database's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from automation.errors import DrctlError
from automation.timings import REPLICATION

WRITTEN_AT_METADATA = "written-at"


@dataclass(frozen=True)
class Write:
    key: str
    written_at: datetime


@dataclass(frozen=True)
class Detachment:
    """A replica that stopped replicating (promotion): when, and how far its copy had got."""

    node: str
    source: str
    promoted_at: datetime
    stopped_at: datetime
    """When replication stopped: the promotion, or earlier if the source's region went down first."""
    lag_seconds: float
    replicated_through: datetime

    @property
    def loss_window_seconds(self) -> float:
        """Writes acknowledged by the source in this span before replication stopped exist only there."""
        return (self.stopped_at - self.replicated_through).total_seconds()


class Lineage:
    """Nodes that take writes, or replicate from a source `lag_seconds` behind it.

    A writer made read-only (a switchover's read-only window) takes no more
    writes, so its replicas drain: their lag falls to 0 over `lag_seconds`.
    """

    def __init__(self, lag_seconds: float) -> None:
        self.lag_seconds = lag_seconds
        self._own: dict[str, list[Write]] = {}
        self._source: dict[str, str] = {}
        self._inherited: dict[str, list[Write]] = {}
        self._down_since: dict[str, datetime] = {}
        self._read_only_since: dict[str, datetime] = {}
        self.detachments: list[Detachment] = []
        self._lock = threading.RLock()

    def is_replica(self, node: str) -> bool:
        with self._lock:
            return node in self._source

    def write(self, node: str, writes: Iterable[Write]) -> None:
        with self._lock:
            if node in self._source:
                raise DrctlError(f"{node} is a read replica of {self._source[node]}: it does not accept writes")
            if node in self._read_only_since:
                raise DrctlError(f"{node} is read-only (writes stopped): it does not accept writes")
            self._own.setdefault(node, []).extend(writes)

    def read_only(self, node: str, at: datetime | None) -> None:
        """`node` stops taking writes from `at` (None: takes writes again)."""
        with self._lock:
            if at is None:
                self._read_only_since.pop(node, None)
            else:
                self._read_only_since.setdefault(node, at)

    def lag(self, node: str, at: datetime) -> float:
        """How far the replica `node` trails its source at `at`: it catches up once the source stops writing."""
        with self._lock:
            since = self._read_only_since.get(self._source.get(node, ""))
            if since is None:
                return self.lag_seconds
            return max(0.0, self.lag_seconds - (at - since).total_seconds())

    def attach(self, node: str, source: str) -> None:
        """A new replica: seeded from its source's snapshot, then replicating (what `visible` computes)."""
        with self._lock:
            self._source[node] = source

    def source_down(self, node: str, at: datetime | None) -> None:
        """`node`'s region is down from `at` (None: back up): its replicas stop receiving from then on."""
        with self._lock:
            if at is None:
                self._down_since.pop(node, None)
            else:
                self._down_since.setdefault(node, at)

    def _stopped(self, source: str, at: datetime) -> datetime:
        down = self._down_since.get(source)
        return min(at, down) if down is not None else at

    def detach(self, node: str, at: datetime) -> Detachment | None:
        """Stop replicating into `node` (promotion): it keeps what it had replicated when replication stopped."""
        with self._lock:
            source = self._source.get(node)
            if source is None:
                return None
            stopped = self._stopped(source, at)
            lag = self.lag(node, stopped)
            through = stopped - timedelta(seconds=lag)
            self._inherited[node] = self.visible(source, through)
            del self._source[node]
            detachment = Detachment(node, source, at, stopped, lag, through)
            self.detachments.append(detachment)
            return detachment

    def visible(self, node: str, at: datetime) -> list[Write]:
        """What `node` holds at `at`."""
        with self._lock:
            source = self._source.get(node)
            if source is not None:
                stopped = self._stopped(source, at)
                return self.visible(source, stopped - timedelta(seconds=self.lag(node, stopped)))
            own = [w for w in self._own.get(node, []) if w.written_at <= at]
            return [*self._inherited.get(node, []), *own]

    def all_writes(self) -> list[Write]:
        with self._lock:
            return [write for writes in self._own.values() for write in writes]


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
class _Objects:
    """Objects written by the application per bucket (replica copies are not re-replicated, as in S3)."""

    originals: dict[str, list[Write]] = field(default_factory=dict)
    copied: dict[str, set[str]] = field(default_factory=dict)


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
    ) -> None:
        self._now = now
        self._outputs = outputs
        self._s3 = s3_client
        self._region_down = region_down
        self._cache_primary = cache_primary
        self.database = Lineage(REPLICATION["rds-cross-region-replica"].typical_seconds)
        self.cache = Lineage(REPLICATION["elasticache-global-datastore"].typical_seconds)
        self.object_lag_seconds = REPLICATION["s3-replication-time-control"].typical_seconds
        self._objects = _Objects()
        self._sequence = 0
        self._lock = threading.RLock()

    # --- writing -----------------------------------------------------------------

    def write_batch(self, region: str, count: int, *, at: datetime | None = None, prefix: str = "batch") -> list[str]:
        """The application in `region` writes `count` rows, objects and cache keys at `at` (default: now)."""
        if self._region_down(region):
            raise DrctlError(f"the application in {region} cannot write: the region is down")
        at = at or self._now()
        outputs = self._outputs()
        with self._lock:
            keys = [f"{prefix}-{self._sequence + index:06d}" for index in range(count)]
            self._sequence += count
        writes = [Write(key, at) for key in keys]
        self.database.write(outputs["database"][region]["identifier"], writes)
        bucket = outputs["buckets"][region]["name"]
        s3 = self._s3(region)
        for write in writes:
            s3.put_object(
                Bucket=bucket,
                Key=f"uploads/{write.key}",
                Body=write.key.encode(),
                Metadata={WRITTEN_AT_METADATA: write.written_at.isoformat()},
            )
        with self._lock:
            self._objects.originals.setdefault(bucket, []).extend(writes)
        primary = self._cache_primary()
        if primary is not None and primary[0] == region:
            self.cache.write(primary[1], writes)
        return keys

    def region_down(self, region: str, at: datetime | None) -> None:
        """The region's database and cache stop (or, with None, resume) feeding their replicas."""
        outputs = self._outputs()
        self.database.source_down(outputs["database"][region]["identifier"], at)
        self.cache.source_down(outputs["cache"]["groups"][region], at)

    # --- replication the sandbox performs -----------------------------------------------

    def replicate_objects(self, until: datetime | None = None) -> int:
        """Copy what S3 replication would have copied by `until`; returns how many objects were copied."""
        until = until or self._now()
        outputs = self._outputs()
        copied = 0
        for region, bucket in ((region, entry["name"]) for region, entry in outputs["buckets"].items()):
            if self._region_down(region):
                continue  # nothing leaves a region that is down
            for destination_region, destination in self._destinations(region, bucket, outputs):
                if self._region_down(destination_region):
                    continue
                copied += self._copy(region, bucket, destination_region, destination, until)
        return copied

    def _destinations(self, region: str, bucket: str, outputs: Mapping[str, Any]) -> list[tuple[str, str]]:
        from botocore.exceptions import ClientError

        try:
            rules = self._s3(region).get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]["Rules"]
        except ClientError:
            return []
        by_name = {entry["name"]: other for other, entry in outputs["buckets"].items()}
        found = []
        for rule in rules:
            name = rule["Destination"]["Bucket"].rsplit(":", 1)[-1]
            if rule.get("Status") == "Enabled" and name in by_name:
                found.append((by_name[name], name))
        return found

    def _copy(self, region: str, bucket: str, destination_region: str, destination: str, until: datetime) -> int:
        due = timedelta(seconds=self.object_lag_seconds)
        with self._lock:
            originals = list(self._objects.originals.get(bucket, []))
            done = self._objects.copied.setdefault(destination, set())
        copied = 0
        for write in originals:
            if write.key in done or write.written_at + due > until:
                continue
            body = self._s3(region).get_object(Bucket=bucket, Key=f"uploads/{write.key}")
            self._s3(destination_region).put_object(
                Bucket=destination,
                Key=f"uploads/{write.key}",
                Body=body["Body"].read(),
                Metadata=body.get("Metadata", {}),
            )
            with self._lock:
                done.add(write.key)
            copied += 1
        return copied

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
        with self._lock:
            written_objects = [w for writes in self._objects.originals.values() for w in writes]
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
        """The latest database promotion: its window is promotion time minus how far the replica had got."""
        return self.database.detachments[-1] if self.database.detachments else None
