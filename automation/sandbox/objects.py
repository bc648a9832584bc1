"""S3 replication as S3 does it, for the objects the simulated application writes (moto stores rules only).

- Live replication copies an object only if a rule that selects it existed when
  it was written; objects written before (for instance to the DR bucket while
  failed over, before failback reversed the rule) stay unreplicated until an
  S3 Batch Replication job copies them (catalogue:
  s3.live-replication-skips-existing-objects, s3.batch-replication-job).
- SSE-KMS objects are replicated only by a rule that opts in with
  `SseKmsEncryptedObjects` and names a replica KMS key (catalogue:
  s3.replication-of-sse-kms-needs-opt-in).
- A rule with Replication Time Control replicates in seconds (15 s typical);
  without it, in about a minute and without a bound (automation.timings).
- Delete markers are replicated only by a rule that enables it (catalogue:
  s3.delete-marker-replication).
- Each object's replication status (PENDING, COMPLETED, FAILED) is kept, so a
  Batch Replication job can select NONE and FAILED, and the rule's metrics
  (ReplicationLatency, OperationsPendingReplication,
  OperationsFailedReplication) can be published per minute (catalogue:
  s3.rtc-and-replication-metrics).

Nothing leaves or enters a region that is down; a copy due meanwhile waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from automation.timings import REPLICATION, Op, latency

WRITTEN_AT_METADATA = "written-at"
BATCH_OBJECTS_PER_SECOND = 200
"""Estimate (catalogue: s3.batch-replication-job): what a Batch Replication job copies once active."""
RTC_LAG_SECONDS = REPLICATION["s3-replication-time-control"].typical_seconds
PLAIN_LAG_SECONDS = REPLICATION["s3-replication"].typical_seconds


@dataclass(frozen=True)
class Rule:
    """One rule of a bucket's replication configuration, as PutBucketReplication stored it."""

    rule_id: str
    destination_bucket: str
    prefix: str
    enabled: bool
    rtc: bool
    metrics: bool
    kms_opt_in: bool
    replica_kms_key: str | None
    delete_markers: bool
    created_at: datetime

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], at: datetime) -> Rule:
        destination = raw.get("Destination", {})
        criteria = raw.get("SourceSelectionCriteria", {}).get("SseKmsEncryptedObjects", {})
        return cls(
            rule_id=raw.get("ID", ""),
            destination_bucket=destination.get("Bucket", "").rsplit(":", 1)[-1],
            prefix=(raw.get("Filter") or {}).get("Prefix", raw.get("Prefix", "")) or "",
            enabled=raw.get("Status") == "Enabled",
            rtc=destination.get("ReplicationTime", {}).get("Status") == "Enabled",
            metrics=destination.get("Metrics", {}).get("Status") == "Enabled",
            kms_opt_in=criteria.get("Status") == "Enabled",
            replica_kms_key=destination.get("EncryptionConfiguration", {}).get("ReplicaKmsKeyID"),
            delete_markers=raw.get("DeleteMarkerReplication", {}).get("Status") == "Enabled",
            created_at=at,
        )

    @property
    def lag_seconds(self) -> float:
        return RTC_LAG_SECONDS if self.rtc else PLAIN_LAG_SECONDS

    def selects(self, key: str, kms_encrypted: bool) -> bool:
        # catalogue: s3.replication-of-sse-kms-needs-opt-in
        if not self.enabled or not key.startswith(self.prefix):
            return False
        return not kms_encrypted or (self.kms_opt_in and bool(self.replica_kms_key))


@dataclass
class StoredObject:
    bucket: str
    key: str
    written_at: datetime
    kms_encrypted: bool
    status: str = "NONE"
    """S3's replication status of the source object: NONE, PENDING, COMPLETED or FAILED."""
    rule: Rule | None = None
    due_at: datetime | None = None
    replicated_at: datetime | None = None
    deleted_at: datetime | None = None
    delete_replicated: bool = False


@dataclass
class BatchJob:
    """An S3 Batch Replication job (moto lacks S3 Batch Operations): its life as DescribeJob reports it."""

    job_id: str
    token: str
    description: str
    source_bucket: str
    role_arn: str
    created_at: datetime
    statuses: list[tuple[datetime, str]]
    failure: str | None = None
    selected: list[StoredObject] = field(default_factory=list)
    applied: bool = False
    report: dict[str, Any] = field(default_factory=dict)
    """The CreateJob Report configuration, echoed by DescribeJob."""

    def status_at(self, at: datetime) -> str:
        return next((status for since, status in reversed(self.statuses) if since <= at), "New")

    def progress(self, at: datetime) -> dict[str, int]:
        """ProgressSummary: a Complete job counts each object it could not copy as a failed task
        (catalogue: s3.batch-job-complete-is-not-success)."""
        if self.status_at(at) != "Complete":
            return {"TotalNumberOfTasks": len(self.selected), "NumberOfTasksSucceeded": 0, "NumberOfTasksFailed": 0}
        failed = sum(1 for stored in self.selected if stored.status == "FAILED")
        return {
            "TotalNumberOfTasks": len(self.selected),
            "NumberOfTasksSucceeded": len(self.selected) - failed,
            "NumberOfTasksFailed": failed,
        }

    @property
    def finished_at(self) -> datetime:
        return self.statuses[-1][0]


class ObjectReplication:
    """The application's objects per bucket and what S3 replication has done with them."""

    def __init__(
        self,
        *,
        put_object: Callable[[str, str, str, datetime], None],
        delete_object: Callable[[str, str], None],
        region_of_bucket: Callable[[str], str | None],
        region_down: Callable[[str, datetime], bool],
    ) -> None:
        self._put = put_object
        self._delete = delete_object
        self._region_of = region_of_bucket
        self._region_down = region_down
        self.rules: dict[str, list[Rule]] = {}
        self.kms_buckets: set[str] = set()
        self.objects: list[StoredObject] = []
        self.jobs: dict[str, BatchJob] = {}
        self.batch_task_failures: set[str] = set()
        """Keys a batch job's task fails on (an object its role cannot read, say): a drill or test fault."""
        self._lock = threading.RLock()

    # --- what the hooks record -----------------------------------------------------------

    def configure(self, bucket: str, rules: list[Mapping[str, Any]], at: datetime) -> None:
        """PutBucketReplication: the rules exist from `at` (an unchanged rule keeps its creation time)."""
        with self._lock:
            previous = {rule.rule_id: rule for rule in self.rules.get(bucket, [])}
            updated = []
            for raw in rules:
                rule = Rule.from_api(raw, at)
                kept = previous.get(rule.rule_id)
                if kept is not None and kept == Rule.from_api(raw, kept.created_at):
                    rule = kept
                updated.append(rule)
            self.rules[bucket] = updated

    def remove(self, bucket: str) -> None:
        with self._lock:
            self.rules.pop(bucket, None)

    def encrypt_with_kms(self, bucket: str, kms: bool) -> None:
        with self._lock:
            (self.kms_buckets.add if kms else self.kms_buckets.discard)(bucket)

    # --- the application ----------------------------------------------------------------

    def written(self, bucket: str, key: str, at: datetime) -> StoredObject:
        """An object the application put: PENDING under a rule that existed then, otherwise never replicated."""
        with self._lock:
            stored = StoredObject(bucket, key, at, kms_encrypted=bucket in self.kms_buckets)
            rule = self._rule_for(stored, at)
            if rule is not None:
                # catalogue: s3.live-replication-skips-existing-objects
                stored.status, stored.rule = "PENDING", rule
                stored.due_at = at + timedelta(seconds=rule.lag_seconds)
            self.objects.append(stored)
            return stored

    def deleted(self, bucket: str, key: str, at: datetime) -> None:
        """A DELETE without a version id: a delete marker, replicated only if the rule says so."""
        with self._lock:
            for stored in self.objects:
                if stored.bucket == bucket and stored.key == key and stored.deleted_at is None:
                    stored.deleted_at = at

    def _rule_for(self, stored: StoredObject, at: datetime) -> Rule | None:
        return next(
            (
                rule
                for rule in self.rules.get(stored.bucket, [])
                if rule.created_at <= at and rule.selects(stored.key, stored.kms_encrypted)
            ),
            None,
        )

    # --- what S3 does by `until` ---------------------------------------------------------------

    def replicate(self, until: datetime) -> int:
        """Copy what is due by `until` and reachable; returns how many objects were copied."""
        copied = 0
        with self._lock:
            pending = [o for o in self.objects if o.status == "PENDING" and o.due_at and o.due_at <= until]
            markers = [
                o
                for o in self.objects
                if o.deleted_at is not None
                and not o.delete_replicated
                and o.status == "COMPLETED"
                and o.rule is not None
                and o.rule.delete_markers
                and o.deleted_at + timedelta(seconds=o.rule.lag_seconds) <= until
            ]
        for stored in pending:
            if self._copy(stored, until):
                copied += 1
        for stored in markers:
            # catalogue: s3.delete-marker-replication
            destination = stored.rule.destination_bucket if stored.rule else ""
            if self._reachable(stored.bucket, destination, until):
                self._delete(destination, stored.key)
                with self._lock:
                    stored.delete_replicated = True
        self._finish_jobs(until)
        return copied

    def _reachable(self, source: str, destination: str, at: datetime) -> bool:
        regions = (self._region_of(source), self._region_of(destination))
        return all(region is not None and not self._region_down(region, at) for region in regions)

    def _copy(self, stored: StoredObject, at: datetime) -> bool:
        rule = stored.rule
        if rule is None or not self._reachable(stored.bucket, rule.destination_bucket, at):
            return False
        self._put(rule.destination_bucket, stored.key, stored.bucket, stored.written_at)
        due = stored.due_at or at
        with self._lock:
            stored.status = "COMPLETED"
            # Done when due, unless a region was down then: then when it came back (here, when noticed).
            stored.replicated_at = due if self._reachable(stored.bucket, rule.destination_bucket, due) else at
        return True

    # --- metrics -------------------------------------------------------------------------------

    def rule_metrics(self, bucket: str, rule: Rule, start: datetime, end: datetime) -> dict[str, float] | None:
        """One minute of the rule's replication metrics, or None when the rule publishes none."""
        if not (rule.metrics or rule.rtc):
            return None
        with self._lock:
            mine = [o for o in self.objects if o.bucket == bucket and o.rule == rule]
            done = [o for o in mine if o.replicated_at and start <= o.replicated_at < end]
            pending = [o for o in mine if o.written_at < end and (o.replicated_at is None or o.replicated_at >= end)]
            failed = [o for o in mine if o.status == "FAILED"]
        latency = max(((o.replicated_at - o.written_at).total_seconds() for o in done if o.replicated_at), default=0)
        return {
            "ReplicationLatency": latency,
            "OperationsPendingReplication": float(len(pending)),
            "OperationsFailedReplication": float(len(failed)),
        }

    # --- S3 Batch Replication -----------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        token: str,
        description: str,
        source_bucket: str,
        role_arn: str,
        failure: str | None,
        at: datetime,
        report: dict[str, Any] | None = None,
    ) -> BatchJob:
        """CreateJob with a manifest generated from the bucket: objects never replicated or failed (idempotent:
        a known token gets its job back, whatever became of it; catalogue: s3.batch-job-token-is-idempotent)."""
        with self._lock:
            existing = next((job for job in self.jobs.values() if job.token == token), None)
            if existing is not None:
                return existing
            if failure is None and not self.rules.get(source_bucket):
                failure = f"the bucket {source_bucket} has no replication configuration"
            selected = [
                o
                for o in self.objects
                if o.bucket == source_bucket
                and o.written_at <= at
                and o.status in ("NONE", "FAILED")
                and o.deleted_at is None
                and any(r.selects(o.key, o.kms_encrypted) for r in self.rules.get(source_bucket, []))
            ]
            # The job's phases over its duration (automation.timings), then a few hundred objects a second.
            duration = latency(Op.S3_BATCH_REPLICATION)
            preparing = at + timedelta(seconds=duration / 4)
            active = at + timedelta(seconds=duration * 3 / 4)
            done = at + timedelta(seconds=duration + len(selected) / BATCH_OBJECTS_PER_SECOND)
            statuses = [(at, "New"), (preparing, "Preparing")]
            statuses += [(active, "Failed")] if failure else [(active, "Active"), (done, "Complete")]
            job = BatchJob(
                job_id,
                token,
                description,
                source_bucket,
                role_arn,
                at,
                statuses,
                failure,
                selected,
                report=report or {},
            )
            self.jobs[job_id] = job
            return job

    def _finish_jobs(self, until: datetime) -> None:
        with self._lock:
            due = [j for j in self.jobs.values() if not j.applied and not j.failure and j.finished_at <= until]
        for job in due:
            rules = self.rules.get(job.source_bucket, [])
            for stored in job.selected:
                stored.rule = next((r for r in rules if r.selects(stored.key, stored.kms_encrypted)), None)
                stored.due_at = job.finished_at
                if stored.key in self.batch_task_failures or not self._copy(stored, until):
                    stored.status = "FAILED"
            job.applied = True
