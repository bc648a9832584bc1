"""A small model of both regions for the DR runbook tests, at the `DrAws` boundary.

`World` holds what AWS would say (replica lag, health, the cache's primary,
node group sizes, read-only flags); `FakeAws` answers the runbooks' readings
and actions from it and records every call with the region it would reach
(Route53 calls are recorded at us-east-1, where its control plane is).
Databases are read from the stand-in stack's state: an instance declared
without `replicateSourceDb` has been promoted. `WorldStack` is a `StandInStack`
whose updates can fail the way an impaired Route53 control plane makes them fail.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from automation.aws.actions import AwsActionError, Outcome, batch_job_problem
from automation.aws.clients import AwsClients, RegionUnreachableError
from automation.aws.readiness import (
    DatabaseInstance,
    GlobalDatastore,
    GlobalDatastoreMember,
    LagSample,
    LoadBalancerMetrics,
    Reading,
    Status,
)
from automation.aws.waiting import WaitTimeoutError
from automation.errors import DrctlError
from automation.journal import LocalDirectoryStore, local_store
from automation.runbook import RunbookEngine
from automation.runbooks.context import DrContext, RunbookSettings
from automation.stack import OutputCallback, UpdateResult
from automation.stack_standin import StandInStack
from components import naming
from components.config import PlatformConfig, parse_config
from tests.conftest import prod_config
from tests.fake_clock import FakeClock, fixed_clock

STACK = "organization/dr-platform/prod"
PRIMARY, DR = "us-east-1", "us-west-2"
ACCOUNT = "123456789012"
SETTINGS = RunbookSettings(poll_seconds=1, error_rate_window_seconds=60, convergence_updates=2)


@dataclass
class World:
    lag_seconds: float = 3.0
    down: set[str] = field(default_factory=set)
    unhealthy: set[str] = field(default_factory=set)
    error_rate: dict[str, float] = field(default_factory=dict)
    cache_primary: str = PRIMARY
    cache_failover_fails: bool = False
    settings_lag: int = 0
    """Updates after the promoting one before a promoted instance shows its backups and secret (#4419)."""
    node_desired: dict[str, int] = field(default_factory=lambda: {PRIMARY: 3, DR: 1})
    read_only: dict[str, bool] = field(default_factory=lambda: {PRIMARY: False, DR: False})
    route53_down: bool = False
    fence_raised: bool = False
    fence_in_authority: bool | None = None
    fence_pinned: bool = False
    """The fence checks pinned raised through Route53's control plane (disabled, `lowered` inverted)."""
    cloudwatch_impaired: set[str] = field(default_factory=set)
    """Regions whose CloudWatch answers nothing (its API nor its datapoints); every other service works."""
    """What drctl last wrote into the DR state authority's traffic_fence (None: never)."""
    fenced_writers: list[str] = field(default_factory=list)
    healthy_targets: dict[str, int] = field(default_factory=dict)
    """Region -> healthy targets; default one per node the group asks for, as the sandbox registers them."""
    final_sync_fails: bool = False
    batch_jobs: dict[str, str] = field(default_factory=dict)
    """Job description -> status."""
    batch_job_fails: bool = False
    slot_wal_bytes: dict[str, float] = field(default_factory=dict)
    """Instance -> WAL its replication slots keep (OldestReplicationSlotLag)."""
    batch_failed_tasks: int = 0
    """Tasks the next Complete job reports failed."""
    batch_tokens: dict[str, str] = field(default_factory=dict)
    """ClientRequestToken -> job id: S3 answers a token it knows with the same job."""
    batch_job_states: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Job id -> (status, failed tasks) as DescribeJob reports them."""
    stale_backups: set[str] = field(default_factory=set)
    no_traffic: set[str] = field(default_factory=set)
    """Regions whose load balancer reports no datapoint at all."""
    slot_lag_high: bool = False
    snapshots: list[str] = field(default_factory=list)
    notifications: list[tuple[str, str]] = field(default_factory=list)
    promoted_updates: dict[str, int] = field(default_factory=dict)

    def after_update(self, stack: StandInStack) -> None:
        for resource in stack.state.values():
            if resource.type == "aws:rds/instance:Instance" and "replicateSourceDb" not in resource.inputs:
                identifier = resource.inputs["identifier"]
                self.promoted_updates[identifier] = self.promoted_updates.get(identifier, -1) + 1


class WorldStack(StandInStack):
    def __init__(self, config: Mapping[str, str], world: World) -> None:
        super().__init__(config, name=STACK)
        self.world = world
        world.after_update(self)
        world.promoted_updates = dict.fromkeys(world.promoted_updates, 99)  # deployed long ago: converged

    def up(
        self,
        targets: Sequence[str] | None,
        *,
        exclude: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        message: str | None = None,
    ) -> UpdateResult:
        if self.world.route53_down and (targets is None or any("aws:route53/" in urn for urn in targets)):
            raise DrctlError(f"cannot update for {STACK}: route53.amazonaws.com: connection timed out")
        result = super().up(targets, exclude=exclude, on_output=on_output, message=message)
        self.world.after_update(self)
        return result


class FakeAws:
    """Answers `DrAws`'s methods from the world and the stack state; records (method, region) of each call."""

    def __init__(self, world: World, stack: WorldStack, clock: FakeClock) -> None:
        self.world, self.stack, self.clock = world, stack, clock
        self.calls: list[tuple[str, str]] = []
        self._mutex = threading.Lock()

    def _call(self, method: str, region: str) -> None:
        with self._mutex:
            self.calls.append((method, region))
        if region in self.world.down:
            raise RegionUnreachableError(region, OSError("connect timeout"))

    def _reading(self, method: str, region: str, check: str, subject: str, measure: Any) -> Reading:
        try:
            self._call(method, region)
        except RegionUnreachableError as error:
            return Reading(check, region, subject, Status.UNREACHABLE, None, "", str(error))
        return measure()

    # --- databases ------------------------------------------------------------------

    def _instance(self, region: str, identifier: str) -> DatabaseInstance:
        declared = [r for r in self.stack.state.values() if r.inputs.get("identifier") == identifier]
        if not declared or declared[0].region != region:
            raise AwsActionError("describe", identifier, region, "DBInstanceNotFound: not found")
        inputs = declared[0].inputs
        source = inputs.get("replicateSourceDb")
        converged = self.world.promoted_updates.get(identifier, -1) >= self.world.settings_lag
        return DatabaseInstance(
            identifier=identifier,
            region=region,
            arn=f"arn:aws:rds:{region}:{ACCOUNT}:db:{identifier}",
            status="available",
            source=source,
            replicas=(),
            replication_status="replicating" if source else None,
            replication_normal=True,
            replication_message=None,
            parameter_groups={inputs.get("parameterGroupName", ""): "in-sync"},
            backup_retention_days=inputs.get("backupRetentionPeriod", 0) if not source and converged else 0,
            latest_restorable_time=self.clock.now(),
            master_user_secret_arn=(
                f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:rds!{identifier}"
                if not source and converged
                else None
            ),
        )

    def describe_database(self, region: str, identifier: str) -> DatabaseInstance:
        self._call("describe_database", region)
        return self._instance(region, identifier)

    def database_role(
        self, region: str, identifier: str, expected_role: str, expected_source: str | None = None
    ) -> Reading:
        def measure() -> Reading:
            try:
                instance = self._instance(region, identifier)
            except AwsActionError as error:
                return Reading("database-role", region, identifier, Status.FAILING, None, "", str(error))
            ok = instance.role == expected_role and (not expected_source or instance.source == expected_source)
            status = Status.OK if ok else Status.FAILING
            return Reading("database-role", region, identifier, status, instance.role, "", f"is a {instance.role}")

        return self._reading("database_role", region, "database-role", identifier, measure)

    def replica_lag(self, region: str, identifier: str, cfg: PlatformConfig) -> Reading:
        def measure() -> Reading:
            lag = self.world.lag_seconds
            status = Status.FAILING if lag > cfg.rpo_seconds else Status.OK
            return Reading("replica-lag", region, identifier, status, lag, "s", f"lag up to {lag:g}s")

        return self._reading("replica_lag", region, "replica-lag", identifier, measure)

    def data_loss_window(self, region: str, replica: str, cfg: PlatformConfig) -> Reading:
        def measure() -> Reading:
            lag = self.world.lag_seconds
            status = Status.FAILING if lag > cfg.rpo_seconds else Status.OK
            return Reading("data-loss-window", region, replica, status, lag, "s", f"lag up to {lag:g}s")

        return self._reading("data_loss_window", region, "data-loss-window", replica, measure)

    def wal_retention(self, region: str, identifier: str, *, serves_replicas: bool) -> Reading:
        def measure() -> Reading:
            kept = self.world.slot_wal_bytes.get(identifier, 0.0)
            status = Status.WARNING if kept and not serves_replicas else Status.OK
            return Reading("wal-retention", region, identifier, status, kept, "bytes", f"slot keeps {kept:g} bytes")

        return self._reading("wal_retention", region, "wal-retention", identifier, measure)

    def point_in_time_recovery(self, region: str, identifier: str, cfg: PlatformConfig) -> Reading:
        return self._reading(
            "pitr", region, "pitr", identifier, lambda: Reading("pitr", region, identifier, Status.OK, 30, "s", "30s")
        )

    def wait_until_caught_up(self, region: str, replica: str, since: datetime, max_lag_seconds: float) -> LagSample:
        self._call("wait_until_caught_up", region)
        if self.world.lag_seconds > max_lag_seconds:
            raise WaitTimeoutError(f"replica {replica} to catch up", 900, f"ReplicaLag {self.world.lag_seconds:g}s")
        return LagSample(self.world.lag_seconds, self.clock.now())

    def wait_until_replica_has_everything(self, source_region: str, source: str, since: datetime) -> LagSample:
        self._call("wait_until_replica_has_everything", source_region)
        if self.world.final_sync_fails:
            raise WaitTimeoutError(f"every replica of {source} to have received all WAL", 900, "slot lag 4096 bytes")
        return LagSample(0, self.clock.now())

    def wait_until_slot_lag_below(self, source_region: str, source: str) -> LagSample:
        self._call("wait_until_slot_lag_below", source_region)
        if self.world.slot_lag_high:
            raise WaitTimeoutError(f"the replicas of {source} to come close", 900, "OldestReplicationSlotLag 2 GiB")
        return LagSample(0, self.clock.now())

    def fence_writer(
        self, region: str, parameter_group: str, writer: str, since: datetime, *, revert_if_not_fenced: bool = False
    ) -> dict[str, Any]:
        self._call("fence_writer", region)
        self.world.read_only[region] = True
        if writer not in self.world.fenced_writers:
            self.world.fenced_writers.append(writer)
        return {"writer": writer, "changed": True}

    def wait_until_writer(self, region: str, identifier: str) -> DatabaseInstance:
        instance = self.describe_database(region, identifier)
        if instance.role != "writer":
            raise WaitTimeoutError(f"{identifier} to be a writer", 1800, f"replica of {instance.source}")
        return instance

    def wait_until_replica_available(self, region: str, identifier: str, source_arn: str) -> DatabaseInstance:
        instance = self.describe_database(region, identifier)
        if instance.role != "replica":
            raise WaitTimeoutError(f"{identifier} to be a replica", 3600, instance.role)
        return instance

    def verify_fence(self, region: str, parameter_group: str, writer: str, since: datetime) -> str:
        self._call("verify_fence", region)
        if writer not in self.world.fenced_writers:
            raise AwsActionError("verify the write fence of", writer, region, "default_transaction_read_only is 0")
        return "read-only, restarted"

    def allow_writes(self, region: str, parameter_group: str, writer: str) -> Outcome:
        return self._set_read_only("allow_writes", region, writer, False)

    def _set_read_only(self, method: str, region: str, writer: str, value: bool) -> Outcome:
        self._call(method, region)
        changed = self.world.read_only[region] != value
        self.world.read_only[region] = value
        return Outcome(method, writer, region, changed, f"read-only={value}", None)

    def snapshot_before_replacement(self, region: str, identifier: str) -> Outcome:
        self._call("snapshot_before_replacement", region)
        snapshot = naming.pre_replacement_snapshot_identifier(identifier)
        changed = snapshot not in self.world.snapshots
        if changed:
            self.world.snapshots.append(snapshot)
        return Outcome("snapshot", identifier, region, changed, "available", snapshot)

    # --- traffic, cache, compute, storage, backups ---------------------------------------

    def health_check(self, region: str, health_check_id: str) -> Reading:
        def measure() -> Reading:
            status = Status.FAILING if region in self.world.unhealthy else Status.OK
            return Reading("health-check", region, health_check_id, status, 1.0, "ratio", f"{status.value} checkers")

        return self._reading(
            "health_check", AwsClients.api_region("route53", region), "health-check", health_check_id, measure
        )

    def error_rate(self, region: str, metrics: LoadBalancerMetrics) -> Reading:
        def measure() -> Reading:
            if region in self.world.no_traffic:
                return Reading("error-rate", region, "alb", Status.UNKNOWN, None, "ratio", "no requests reported")
            rate = self.world.error_rate.get(region, 0.001)
            status = Status.FAILING if rate > 0.05 else Status.OK
            return Reading("error-rate", region, "alb", status, rate, "ratio", f"{rate:.2%} of requests failed")

        return self._reading("error_rate", region, "error-rate", "alb", measure)

    def target_health(self, region: str, target_group_arn: str, expected: int = 1) -> Reading:
        def measure() -> Reading:
            healthy = self.world.healthy_targets.get(region, self.world.node_desired[region])
            healthy = 0 if region in self.world.unhealthy else healthy
            status = Status.FAILING if not healthy else Status.WARNING if healthy < expected else Status.OK
            detail = f"{healthy} healthy" + (f", expected {expected}" if 0 < healthy < expected else "")
            return Reading("target-health", region, target_group_arn, status, healthy, "targets", detail)

        return self._reading("target_health", region, "target-health", target_group_arn, measure)

    def traffic_fence(self, fence: Mapping[str, Any]) -> Reading:
        region = fence["region"]

        def measure() -> Reading:
            if region in self.world.cloudwatch_impaired:
                return Reading("traffic-fence", region, fence["alarmName"], Status.UNREACHABLE, None, "", "no alarm")
            value = "raised" if self.world.fence_raised else "lowered"
            return Reading("traffic-fence", region, fence["alarmName"], Status.OK, value, "", f"fence {value}")

        return self._reading("traffic_fence", region, "traffic-fence", fence["alarmName"], measure)

    def route53_answer(self, dns_output: Mapping[str, Any], expected_region: str, *, use_api: bool = True) -> Reading:
        def measure() -> Reading:
            # The fence (its data, or a pin through Route53's API) decides where Route53 answers.
            region = DR if self.world.fence_raised or self.world.fence_pinned else PRIMARY
            status = Status.OK if region == expected_region else Status.FAILING
            return Reading("route53-answer", expected_region, "app", status, region, "", f"Route53 answers {region}")

        # Route53's API lives in us-east-1; the name servers' answer needs no region.
        return self._reading("route53_answer", "us-east-1" if use_api else DR, "route53-answer", "app", measure)

    def wait_for_traffic_fence(self, fence: Mapping[str, Any], *, raised: bool, since: Any) -> Outcome:
        """The fence publisher puts what the authority says: the wait ends once it does."""
        self._call("wait_for_traffic_fence", fence["region"])
        if self.world.fence_in_authority is not raised:
            raise AssertionError("drctl waited for a fence it did not write into the DR state authority")
        if fence["region"] in self.world.cloudwatch_impaired:
            raise AwsActionError("wait for the traffic fence", fence["alarmName"], fence["region"], "no CloudWatch")
        changed = self.world.fence_raised != raised
        self.world.fence_raised = raised
        return Outcome("fence", fence["alarmName"], fence["region"], changed, "fence", "ALARM" if raised else "OK")

    def pin_traffic_fence(self, fence: Mapping[str, Any], *, raised: bool) -> Outcome:
        self._call("pin_traffic_fence", "us-east-1")
        if self.world.route53_down:
            raise RegionUnreachableError("us-east-1", OSError("route53.amazonaws.com: connect timeout"))
        changed = self.world.fence_pinned != raised
        self.world.fence_pinned = raised
        return Outcome("pin", fence["alarmName"], "us-east-1", changed, "pin", "pinned" if raised else "data")

    def traffic_fence_pinned(self, fence: Mapping[str, Any]) -> bool:
        self._call("traffic_fence_pinned", "us-east-1")
        if self.world.route53_down:
            raise RegionUnreachableError("us-east-1", OSError("route53.amazonaws.com: connect timeout"))
        return self.world.fence_pinned

    def wait_until_nodes_ready(self, region: str, cluster: str, node_group: str, desired: int) -> int:
        self._call("wait_until_nodes_ready", region)
        return self.world.node_desired[region]

    def start_batch_replication(
        self, region: str, source_bucket_arn: str, role_arn: str, token: str, description: str
    ) -> str:
        self._call("start_batch_replication", region)
        job_id = self.world.batch_tokens.setdefault(token, f"job-{len(self.world.batch_tokens) + 1}")
        self.world.batch_jobs[description] = "Failed" if self.world.batch_job_fails else "Complete"
        failed = 0 if self.world.batch_job_fails else self.world.batch_failed_tasks
        self.world.batch_job_states.setdefault(job_id, (self.world.batch_jobs[description], failed))
        return job_id

    def _batch_job(self, job_id: str) -> dict[str, Any]:
        status, failed = self.world.batch_job_states[job_id]
        progress = {"TotalNumberOfTasks": 3, "NumberOfTasksSucceeded": 3 - failed, "NumberOfTasksFailed": failed}
        return {"JobId": job_id, "Status": status, "ProgressSummary": progress, "CreationTime": self.clock.now()}

    def describe_batch_job(self, region: str, job_id: str) -> dict[str, Any]:
        self._call("describe_batch_job", region)
        return self._batch_job(job_id)

    def wait_for_batch_job(self, region: str, job_id: str) -> dict[str, Any]:
        self._call("wait_for_batch_job", region)
        job = self._batch_job(job_id)
        problem = batch_job_problem(job)
        if problem:
            raise AwsActionError("wait for S3 Batch Replication job", job_id, region, problem)
        return job

    def find_batch_job(self, region: str, description: str) -> dict[str, Any] | None:
        self._call("find_batch_job", region)
        status = self.world.batch_jobs.get(description)
        if not status:
            return None
        newest = list(self.world.batch_job_states)[-1]
        return {**self._batch_job(newest), "Status": status}

    def _datastore(self, global_id: str) -> GlobalDatastore:
        members = tuple(
            GlobalDatastoreMember(
                group, region, "PRIMARY" if region == self.world.cache_primary else "SECONDARY", "associated"
            )
            for region, group in ((PRIMARY, "acme-drp-use1-redis"), (DR, "acme-drp-usw2-redis"))
        )
        return GlobalDatastore(global_id, "available", members)

    def describe_global_datastore(self, region: str, global_id: str) -> GlobalDatastore:
        self._call("describe_global_datastore", region)
        return self._datastore(global_id)

    def global_datastore(self, region: str, global_id: str, expected_primary_region: str) -> Reading:
        def measure() -> Reading:
            where = self.world.cache_primary
            status = Status.OK if where == expected_primary_region else Status.FAILING
            return Reading("global-datastore", region, global_id, status, where, "", f"primary in {where}")

        return self._reading("global_datastore", region, "global-datastore", global_id, measure)

    def fail_over_global_datastore(self, global_id: str, region: str, group_id: str) -> Outcome:
        self._call("fail_over_global_datastore", region)
        if self.world.cache_failover_fails:
            raise AwsActionError("fail over global datastore", global_id, region, "InvalidGlobalReplicationGroupState")
        changed = self.world.cache_primary != region
        self.world.cache_primary = region
        return Outcome("fail over", global_id, region, changed, f"primary in {region}", self._datastore(global_id))

    def wait_until_member_associated(self, region: str, global_id: str, group_id: str) -> GlobalDatastore:
        self._call("wait_until_member_associated", region)
        return self._datastore(global_id)

    def scale_node_group(self, region: str, cluster: str, node_group: str, size: Any) -> Outcome:
        self._call("scale_node_group", region)
        changed = self.world.node_desired[region] != size.desired
        self.world.node_desired[region] = size.desired
        return Outcome("scale", f"{cluster}/{node_group}", region, changed, "ACTIVE", None)

    def node_group(self, region: str, cluster: str, node_group: str, expected_desired: int | None) -> Reading:
        def measure() -> Reading:
            desired = self.world.node_desired[region]
            status = Status.WARNING if expected_desired and desired < expected_desired else Status.OK
            return Reading("node-group", region, f"{cluster}/{node_group}", status, desired, "nodes", f"{desired}")

        return self._reading("node_group", region, "node-group", node_group, measure)

    def s3_replication(self, region: str, source_bucket: str, destination_arn: str, cfg: PlatformConfig) -> Reading:
        return self._reading(
            "s3_replication",
            region,
            "s3-replication",
            source_bucket,
            lambda: Reading("s3-replication", region, source_bucket, Status.OK, 2, "s", "latency up to 2s"),
        )

    def recovery_point_age(self, region: str, vault_name: str) -> Reading:
        def measure() -> Reading:
            if region in self.world.stale_backups:
                return Reading("backup", region, vault_name, Status.FAILING, 200000, "s", "2 days, 7:33:20 old")
            return Reading("backup", region, vault_name, Status.OK, 3600, "s", "1:00:00 old")

        return self._reading("recovery_point_age", region, "backup", vault_name, measure)

    def notify(self, region: str, topic_arn: str, subject: str, message: Mapping[str, Any]) -> str:
        self._call("notify", region)
        self.world.notifications.append((region, subject))
        return f"message-{len(self.world.notifications)}"


@dataclass
class Dr:
    """One test's platform: stack, world, fake AWS, clock, journal, and engines over them."""

    root: Path
    world: World = field(default_factory=World)
    config: dict[str, str] = field(default_factory=prod_config)
    clock: FakeClock = field(default_factory=fixed_clock)
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stack = WorldStack(self.config, self.world)
        self.aws = FakeAws(self.world, self.stack, self.clock)
        self.ctx = DrContext(self.stack, self.aws, self.clock, settings=SETTINGS)  # type: ignore[arg-type]
        self.ctx.record_traffic_fence = self._record_traffic_fence

    def _record_traffic_fence(self, run: Any, raised: bool) -> None:
        self.aws._call("record_traffic_fence", self.cfg.dr_region)
        self.world.fence_in_authority = raised

    @property
    def cfg(self) -> PlatformConfig:
        return parse_config(self.stack.get_config())

    def store(self) -> LocalDirectoryStore:
        return local_store(STACK, root=self.root)

    def engine(self) -> RunbookEngine:
        """A fresh engine on the same journal: what a new drctl process builds."""
        return RunbookEngine(STACK, self.store(), clock=self.clock, output=self.lines.append)

    def regions_called(self) -> set[str]:
        return {region for _, region in self.aws.calls}


def identifier(cfg: PlatformConfig, role: str, generation: int) -> str:
    return naming.db_identifier(cfg, role, generation)
