"""What moto lacks or gets wrong, simulated or corrected behind the sandbox's boto3 clients.

The sandbox's clients come from one boto3 session with botocore event hooks.
Before a call: a region marked down fails it at once with
`EndpointConnectionError`; APIs moto lacks are answered by in-process models;
calls AWS would refuse are refused with AWS's error code. After a call:
responses are corrected to what AWS reports at that moment of modelled time
(a promotion, reboot, parameter change or snapshot in progress; a node group
updating), and what the call changed is told to the models. Changes AWS
makes asynchronously complete when modelled time reaches them, whoever
waits on them: their duration is paid by whoever polls, never charged twice.

Every simulated behaviour is named in `SIMULATED`, which every report carries.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends

from automation import catalogue
from automation.sandbox.clock import LatencyClock
from automation.sandbox.compute import ComputeModel, Scaling
from automation.sandbox.server import RegionOutages
from automation.sandbox.traffic import ALARM_INGEST_SECONDS, TrafficModel, breaches
from automation.timings import Op, latency

SIMULATED = (
    "moto stands in for AWS in both regions; nothing reaches a real account",
    "outage mode: a failed region refuses every API call at once (EndpointConnectionError); Route53's and IAM's "
    "control planes stay up unless the fault says so; Route53's data plane always answers",
    "time is modelled from automation/timings.py durations (documented or estimated, see each charge's source), "
    "not measured",
    "RDS promotion, reboot, parameter changes and snapshots: moto completes them at once; the sandbox reports "
    "modifying/rebooting/applying/creating until their modelled duration has passed; a static parameter change "
    "leaves the group pending-reboot until the instance restarts (reboot or promotion); a reboot is refused unless "
    "the instance is available",
    "instant in moto and not modelled: cross-region snapshot copies, KMS, IAM, SNS, zone and record creation "
    "(record changes are charged the provider's INSYNC wait), cluster and replication-group creation",
    "RDS promote_read_replica: moto's instance corrected to a standalone writer when the promotion completes",
    "RDS ReplicaLag (time since the last replayed commit, RDS heartbeat every 300 s estimated) and "
    "OldestReplicationSlotLag: published per 60-s period from the data plane",
    "PostgreSQL sessions: default_transaction_read_only applies to new transactions; one long transaction and one "
    "session that overrides the default per batch; a reboot ends every session",
    "EKS node groups: UPDATING, then ACTIVE; nodes Ready after the modelled scale-up; ASG instances and ALB target "
    "health derived from Ready nodes",
    "ElastiCache Global Datastore create/describe/failover/disassociate: in-process model (moto lacks the APIs); "
    "a failover is refused while the primary's region does not answer (behaviour unconfirmed); a rejoining primary "
    "does a full sync",
    "S3 replication: objects copied by the sandbox after the rule's lag (RTC 15 s, without RTC 60 s), only objects "
    "written after the rule existed, SSE-KMS objects only with the opt-in, delete markers when enabled; rule "
    "metrics published per period; S3 Batch Replication jobs modelled (moto lacks S3 Batch Operations)",
    "Route53 health checks: HTTPS checks from what the endpoint returns (region up, Ready targets, faults), "
    "CLOUDWATCH_METRIC checks from the alarm's datapoints, CALCULATED checks from their children; failover "
    "answers resolved as Route53 does; resolvers cache answers for the TTL",
    "ALB metrics: RequestCount, HTTPCode_Target_5XX_Count and HTTPCode_ELB_5XX/503_Count per 60-s period from "
    "modelled traffic (1000 requests/minute over 20 resolvers); every request writes to its region's database",
    "database rows and Redis keys: an in-process data plane with modelled replication delay",
    "AWS Backup recovery points: moto lacks them; the daily plan's jobs are modelled as completing an hour after "
    "05:00 UTC each day in both vaults (the copy included); backup-verify uses RDS snapshots",
    "RDS LatestRestorableTime: the last 5-minute log upload before now for a writer with backups",
)

READ_ONLY_PARAMETER = "default_transaction_read_only"
Params = Mapping[str, Any]
Parsed = dict[str, Any]


@dataclass(frozen=True)
class ApiCall:
    """One call made through the sandbox's clients, refused or not: who was asked what, and when."""

    service: str
    operation: str
    region: str
    """The region the call was signed for (us-east-1 for Route53 and IAM, whatever the resource's region)."""
    at: datetime
    refused: bool


def client_error(operation: str, code: str, message: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


class _HttpStatus:
    status_code = 200


# --- RDS -----------------------------------------------------------------------------


def moto_instance(region: str, identifier: str) -> Any:
    return rds_backends[DEFAULT_ACCOUNT_ID][region].databases.get(identifier)


def correct_promotion(region: str, identifier: str) -> str | None:
    """Make moto's promoted instance a standalone writer; returns the source it was detached from.

    moto 5.2.5's `promote_read_replica` only flips `is_replica`: it leaves
    `ReadReplicaSourceDBInstanceIdentifier` set and the instance in its
    source's replica list, so every reader would still see a replica. AWS
    clears both once the promotion completes. The fix edits moto's backend
    objects in this process (the server runs in-process), including the
    source's list in a region that may be down.
    """
    instance = rds_backends[DEFAULT_ACCOUNT_ID][region].databases[identifier]
    source = instance.source_db_instance_identifier
    instance.source_db_instance_identifier = None
    instance.is_replica = False
    if source:
        for backend in rds_backends[DEFAULT_ACCOUNT_ID].values():
            for candidate in backend.databases.values():
                if source in (candidate.db_instance_arn, candidate.db_instance_identifier):
                    for entry in (instance.db_instance_arn, instance.db_instance_identifier):
                        if entry in candidate.replicas:
                            candidate.replicas.remove(entry)
    return source


@dataclass
class RdsModel:
    """RDS's asynchronous changes: until they complete, describe calls report them in progress."""

    promotions: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    """Identifier -> (region, when the promotion completes)."""
    reboots: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    applying: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    """Parameter group -> (requested, in sync) of each change."""
    static_changes: dict[str, datetime] = field(default_factory=dict)
    """Parameter group -> its last static change (ApplyMethod=pending-reboot): pending until an instance restarts."""
    restarts: dict[str, list[datetime]] = field(default_factory=dict)
    """Identifier -> when it came back from a reboot or a promotion: both apply static changes."""
    broken_groups: set[str] = field(default_factory=set)
    """Parameter groups in an invalid state (failed-to-apply), set by a test or a drill fault."""
    holds: dict[str, list[tuple[datetime, datetime, str]]] = field(default_factory=dict)
    """Identifier -> (from, until, status) of RDS's own work (backing-up, maintenance...), set by a fault."""
    snapshots: dict[str, datetime] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def status(self, identifier: str, at: datetime) -> str | None:
        due = self.promotions.get(identifier)
        if due is not None and at < due[1]:
            return "modifying"
        if any(start <= at < end for start, end in self.reboots.get(identifier, [])):
            return "rebooting"
        return next((held for start, end, held in self.holds.get(identifier, []) if start <= at < end), None)

    def apply_status(self, group: str, identifier: str, at: datetime) -> str:
        """catalogue: rds.parameter-apply-status"""
        if group in self.broken_groups:
            return "failed-to-apply"
        if any(start <= at < end for start, end in self.applying.get(group, [])):
            return "applying"
        changed = self.static_changes.get(group)
        if changed is not None and not any(changed < back <= at for back in self.restarts.get(identifier, [])):
            return "pending-reboot"
        return "in-sync"


# --- ElastiCache Global Datastore ------------------------------------------------


@dataclass
class GlobalDatastoreModel:
    """One global datastore: its member groups by region, which region is primary, a failover in progress."""

    global_id: str
    primary_region: str
    members: dict[str, str] = field(default_factory=dict)
    failing_over_to: tuple[str, datetime] | None = None
    failovers: list[tuple[str, datetime]] = field(default_factory=list)

    def status(self, at: datetime) -> str:
        return "modifying" if self.failing_over_to and at < self.failing_over_to[1] else "available"

    def describe(self, at: datetime) -> dict[str, Any]:
        return {
            "GlobalReplicationGroupId": self.global_id,
            "Status": self.status(at),
            "Members": [
                {
                    "ReplicationGroupId": group,
                    "ReplicationGroupRegion": region,
                    "Role": "PRIMARY" if region == self.primary_region else "SECONDARY",
                    "Status": "associated",
                }
                for region, group in sorted(self.members.items())
            ],
        }


# --- the hooks ------------------------------------------------------------------------


class SimulatedAws:
    """Registers the hooks on a boto3 session and holds the models they answer from."""

    def __init__(
        self,
        outages: RegionOutages,
        clock: LatencyClock,
        *,
        endpoint_url: str,
        compute: ComputeModel,
        traffic: Callable[[], TrafficModel],
        publish_metrics: Callable[[datetime], None],
        on_promoted: Callable[[str, str, datetime], None],
        on_replica_created: Callable[[str, str, str, datetime], None],
        on_cache_primary_changed: Callable[[str, str, datetime], None],
        on_cache_member_joined: Callable[[str, str, datetime], None],
        on_cache_member_left: Callable[[str, datetime], None],
        on_read_only: Callable[[str, str, bool, datetime], None],
        on_reboot: Callable[[str, datetime, datetime], None],
        on_replication_rules: Callable[[str, str, list[Mapping[str, Any]] | None, datetime], None],
        on_bucket_encryption: Callable[[str, bool], None],
        batch_jobs: Callable[[str, Mapping[str, Any]], dict[str, Any]],
        region_up_at: Callable[[str, datetime], bool],
    ) -> None:
        self.outages = outages
        self.clock = clock
        self.endpoint_url = endpoint_url
        self.compute = compute
        self._traffic = traffic
        self._publish_metrics = publish_metrics
        self._on_promoted = on_promoted
        self._on_replica_created = on_replica_created
        self._on_cache_primary_changed = on_cache_primary_changed
        self._on_cache_member_joined = on_cache_member_joined
        self._on_cache_member_left = on_cache_member_left
        self._on_read_only = on_read_only
        self._on_reboot = on_reboot
        self._on_replication_rules = on_replication_rules
        self._on_bucket_encryption = on_bucket_encryption
        self._batch_jobs = batch_jobs
        self._region_up_at = region_up_at
        self.rds = RdsModel()
        self.datastores: dict[str, GlobalDatastoreModel] = {}
        self.health_checks: dict[str, dict[str, Any]] = {}
        self.calls: list[ApiCall] = []
        self._lock = threading.RLock()

    def register(self, session: Any) -> None:
        events = session.events
        events.register("before-parameter-build", self._keep_params)
        events.register("before-call", self._before_call)
        events.register("after-call", self._after_call)

    # --- dispatch ---------------------------------------------------------------

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["sandbox_api_params"] = dict(params)

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        service, operation = model.service_model.service_name, model.name
        region = context.get("client_region") or ""
        now = self.clock.now()
        refused = self.outages.refuses(region, service)
        with self._lock:
            self.calls.append(ApiCall(service, operation, region, now, refused))
        # The round trip drctl waits for (a region that is down refuses at once: the outage's mode here).
        self.clock.charge(Op.AWS_API_CALL)
        now = self.clock.now()
        if refused:
            raise EndpointConnectionError(endpoint_url=f"https://{service}.{region}.amazonaws.com (sandbox outage)")
        self.settle(now)
        params = context.get("sandbox_api_params", {})
        if service == "cloudwatch" and operation in ("GetMetricStatistics", "GetMetricData"):
            self._publish_metrics(now)
        self._refuse(service, operation, region, params, now)
        answer = self._answer(service, operation, region, params, now)
        return (_HttpStatus(), {**answer, "ResponseMetadata": {"HTTPStatusCode": 200}}) if answer is not None else None

    def _refuse(self, service: str, operation: str, region: str, params: Mapping[str, Any], now: datetime) -> None:
        """Calls AWS refuses and moto accepts."""
        if (service, operation) == ("rds", "CreateDBInstanceReadReplica"):
            source = params.get("SourceDBInstanceIdentifier", "")
            source_region = source.split(":")[3] if source.startswith("arn:") else region
            instance = moto_instance(source_region, source.rsplit(":", 1)[-1])
            if instance is not None and getattr(instance, "manage_master_user_password", False):
                # catalogue: rds.replica-source-managed-password
                raise client_error(
                    operation, "InvalidParameterValue", catalogue.refusal("rds.replica-source-managed-password", source)
                )
        if (service, operation) == ("rds", "PromoteReadReplica"):
            # catalogue: rds.promote-needs-a-replica
            identifier = params["DBInstanceIdentifier"]
            instance = moto_instance(region, identifier)
            busy = self.rds.status(identifier, now)
            if instance is not None and not instance.source_db_instance_identifier:
                raise client_error(
                    operation, "InvalidDBInstanceState", f"DB Instance {identifier} is not a read replica."
                )
            if busy is not None:
                raise client_error(
                    operation, "InvalidDBInstanceState", f"DB instance {identifier} cannot be promoted while {busy}"
                )
        if (service, operation) == ("route53", "GetHealthCheckStatus"):
            with self._lock:
                kind = self.health_checks.get(params["HealthCheckId"], {}).get("Type")
            if kind == "CALCULATED":
                # catalogue: route53.health-check-status-api-not-for-calculated
                raise client_error(
                    operation,
                    "InvalidInput",
                    catalogue.refusal("route53.health-check-status-api-not-for-calculated", params["HealthCheckId"]),
                )
        if (service, operation) == ("rds", "RebootDBInstance"):
            # catalogue: rds.reboot-needs-available
            status = self.rds.status(params["DBInstanceIdentifier"], now)
            if status is not None:
                raise client_error(
                    operation, "InvalidDBInstanceState", f"DB instance is not available for reboot: {status}"
                )
        if (service, operation) == ("eks", "UpdateNodegroupConfig"):
            group = self.compute.group(region, params["clusterName"], params["nodegroupName"])
            if group is not None and group.status_at(now) == "UPDATING":
                # catalogue: eks.node-group-update-is-asynchronous
                raise client_error(
                    operation,
                    "ResourceInUseException",
                    f"Nodegroup {params['nodegroupName']} cannot be updated as it is currently at UPDATING state",
                )

    def _answer(
        self, service: str, operation: str, region: str, params: Mapping[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        if service == "elasticache":
            return self._elasticache(operation, region, params, now)
        if (service, operation) == ("route53", "GetHealthCheckStatus"):
            return self._health_check_status(params["HealthCheckId"], now)
        if (service, operation) == ("rds", "DescribeEvents"):
            return {"Events": self._events(params, now)}
        if service == "s3control" and operation in ("CreateJob", "DescribeJob", "ListJobs"):
            return self._batch_jobs(operation, {**params, "Region": region})
        if (service, operation) == ("autoscaling", "DescribeAutoScalingGroups"):
            return self._auto_scaling_groups(params, now)
        if (service, operation) == ("elbv2", "DescribeTargetHealth"):
            return self._target_health(params, region, now)
        if (service, operation) == ("backup", "ListRecoveryPointsByBackupVault"):
            return self._recovery_points(params, region, now)
        return None

    @staticmethod
    def _recovery_points(params: Params, region: str, now: datetime) -> dict[str, Any]:
        """The daily plan's recovery points (05:00 UTC, an hour to complete), newest first, within the filter."""
        day = now.replace(hour=6, minute=0, second=0, microsecond=0)
        completed = [day - timedelta(days=n) for n in range(3) if day - timedelta(days=n) <= now]
        after = params.get("ByCreatedAfter")
        vault = params["BackupVaultName"]
        points = [
            {
                "RecoveryPointArn": f"arn:aws:backup:{region}:123456789012:recovery-point:{vault}-{done:%Y%m%d}",
                "BackupVaultName": vault,
                "Status": "COMPLETED",
                "CreationDate": done - timedelta(hours=1),
                "CompletionDate": done,
            }
            for done in completed
            if after is None or done - timedelta(hours=1) >= after
        ]
        return {"RecoveryPoints": points}

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if getattr(http_response, "status_code", 500) >= 300:
            return
        service, operation = model.service_model.service_name, model.name
        region = context.get("client_region") or ""
        params = context.get("sandbox_api_params", {})
        now = self.clock.now()
        handler = _AFTER.get((service, operation))
        if handler is not None:
            handler(self, region, params, parsed, now)

    # --- asynchronous changes complete ------------------------------------------------------

    def settle(self, now: datetime) -> None:
        """Complete what modelled time has reached: promotions, datastore failovers."""
        with self._lock:
            promoted = [(i, r) for i, (r, due) in self.rds.promotions.items() if due <= now]
            for identifier, _ in promoted:
                del self.rds.promotions[identifier]
            switched = [m for m in self.datastores.values() if m.failing_over_to and m.failing_over_to[1] <= now]
            changes = []
            for datastore in switched:
                target, due = datastore.failing_over_to or ("", now)
                old = datastore.members[datastore.primary_region]
                datastore.primary_region, datastore.failing_over_to = target, None
                datastore.failovers.append((target, due))
                changes.append((old, datastore.members[target], due))
        for identifier, region in promoted:
            correct_promotion(region, identifier)
        for old, new, due in changes:
            self._on_cache_primary_changed(old, new, due)

    def promotion_due(self, identifier: str) -> datetime | None:
        with self._lock:
            found = self.rds.promotions.get(identifier)
            return found[1] if found else None

    # --- RDS ------------------------------------------------------------------------------------

    def _promoted(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        identifier = params["DBInstanceIdentifier"]
        instance = moto_instance(region, identifier)
        if instance is None or not instance.source_db_instance_identifier:
            return  # refused before the call (`_refuse`): nothing to model
        # catalogue: rds.promotion-is-asynchronous
        due = now + timedelta(seconds=latency(Op.RDS_PROMOTE_REPLICA))
        with self._lock:
            self.rds.promotions[identifier] = (region, due)
            # catalogue: rds.promotion-restarts-the-instance
            self.rds.restarts.setdefault(identifier, []).append(due)
        self._on_promoted(region, identifier, now)

    def _parameters_changed(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        group = params["DBParameterGroupName"]
        # catalogue: rds.parameter-change-applies-asynchronously
        applied = now + timedelta(seconds=latency(Op.RDS_PARAMETER_APPLY))
        with self._lock:
            self.rds.applying.setdefault(group, []).append((now, applied))
            # catalogue: rds.parameter-apply-status (a static parameter waits for a restart)
            if any(p.get("ApplyMethod") == "pending-reboot" for p in params.get("Parameters", [])):
                self.rds.static_changes[group] = now
        for parameter in params.get("Parameters", []):
            if parameter.get("ParameterName") == READ_ONLY_PARAMETER:
                read_only = str(parameter.get("ParameterValue", "0")).lower() in ("1", "on", "true")
                self._on_read_only(region, group, read_only, applied)

    def _rebooted(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        identifier = params["DBInstanceIdentifier"]
        # catalogue: rds.reboot-ends-every-session
        end = now + timedelta(seconds=latency(Op.RDS_REBOOT))
        with self._lock:
            self.rds.reboots.setdefault(identifier, []).append((now, end))
            self.rds.restarts.setdefault(identifier, []).append(end)
            self.rds.events.append(
                {
                    "SourceIdentifier": identifier,
                    "SourceType": "db-instance",
                    "Message": "DB instance restarted",
                    "EventCategories": ["availability"],
                    "Date": end,
                    "Region": region,
                }
            )
        self._on_reboot(identifier, now, end)

    def _snapshot_started(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        # catalogue: rds.snapshot-creation-is-asynchronous
        with self._lock:
            self.rds.snapshots[params["DBSnapshotIdentifier"]] = now + timedelta(seconds=latency(Op.RDS_SNAPSHOT))

    def _replica_created(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        self._on_replica_created(region, params["DBInstanceIdentifier"], params["SourceDBInstanceIdentifier"], now)

    def _describe_instances(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        with self._lock:
            for instance in parsed.get("DBInstances", []):
                if instance.get("BackupRetentionPeriod") and not instance.get("ReadReplicaSourceDBInstanceIdentifier"):
                    # Transaction logs reach S3 every 5 minutes: that is how far back a restore can reach.
                    instance["LatestRestorableTime"] = now - timedelta(seconds=int(now.timestamp()) % 300)
                status = self.rds.status(instance["DBInstanceIdentifier"], now)
                if status:
                    instance["DBInstanceStatus"] = status
                for group in instance.get("DBParameterGroups", []):
                    group["ParameterApplyStatus"] = self.rds.apply_status(
                        group["DBParameterGroupName"], instance["DBInstanceIdentifier"], now
                    )

    def _describe_snapshots(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        with self._lock:
            for snapshot in parsed.get("DBSnapshots", []):
                due = self.rds.snapshots.get(snapshot["DBSnapshotIdentifier"])
                if due is not None and now < due:
                    snapshot["Status"] = "creating"

    def _events(self, params: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
        start = params.get("StartTime") or now - timedelta(minutes=int(params.get("Duration", 60)))
        with self._lock:
            return [
                {k: v for k, v in event.items() if k != "Region"}
                for event in self.rds.events
                if event["Date"] <= now
                and event["Date"] >= start
                and params.get("SourceIdentifier") in (None, event["SourceIdentifier"])
            ]

    # --- EKS, Auto Scaling, ELB --------------------------------------------------------------

    def _node_group_created(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        group = parsed["nodegroup"]
        asg = group.get("resources", {}).get("autoScalingGroups", [{}])[0].get("name", f"eks-{uuid.uuid4().hex}")
        self.compute.created(
            region, group["clusterName"], group["nodegroupName"], asg, Scaling.from_api(group["scalingConfig"]), now
        )
        self._traffic().invalidate()

    def _node_group_updated(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        if "scalingConfig" in params:
            scaling = Scaling.from_api(params["scalingConfig"])
            self.compute.update(region, params["clusterName"], params["nodegroupName"], scaling, now)
            self._traffic().invalidate()

    def _describe_node_group(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        group = parsed.get("nodegroup", {})
        model = self.compute.group(region, group.get("clusterName", ""), group.get("nodegroupName", ""))
        if model is not None:
            # catalogue: eks.node-group-update-is-asynchronous
            group["status"] = model.status_at(now)

    def _auto_scaling_groups(self, params: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        groups = []
        for name in params.get("AutoScalingGroupNames", []):
            model = self.compute.by_auto_scaling_group(name)
            if model is None:
                continue
            scaling = model.scaling_at(now) or Scaling(0, 0, 0)
            ready = model.ready_nodes_at(now, self.compute.scale_up_seconds)
            instances = [
                {
                    "InstanceId": f"i-{model.name[-8:]}{index:04d}",
                    "LifecycleState": "InService" if index < ready else "Pending",
                    "HealthStatus": "Healthy",
                    "AvailabilityZone": f"{model.region}a",
                    "ProtectedFromScaleIn": False,
                }
                for index in range(max(ready, scaling.desired))
            ]
            groups.append(
                {
                    "AutoScalingGroupName": name,
                    "MinSize": scaling.min,
                    "MaxSize": scaling.max,
                    "DesiredCapacity": scaling.desired,
                    "Instances": instances,
                    "DefaultCooldown": 300,
                    "AvailabilityZones": [f"{model.region}a"],
                    "HealthCheckType": "EC2",
                    "CreatedTime": now,
                }
            )
        return {"AutoScalingGroups": groups}

    def _target_health(self, params: Mapping[str, Any], region: str, now: datetime) -> dict[str, Any]:
        # catalogue: eks.active-is-not-ready
        outcome = self._traffic().endpoint_outcome(region, now)
        ready = self.compute.ready_nodes(region, now)
        state = "healthy" if outcome == "ok" else "unhealthy"
        return {
            "TargetHealthDescriptions": [
                {
                    "Target": {"Id": f"10.0.{index}.10", "Port": 8080},
                    "TargetHealth": {"State": state},
                }
                for index in range(ready)
            ]
        }

    # --- S3, CloudWatch, Route53 ----------------------------------------------------------------

    def _replication_put(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        rules = params["ReplicationConfiguration"].get("Rules", [])
        self._on_replication_rules(region, params["Bucket"], rules, now)

    def _replication_deleted(
        self, region: str, params: Mapping[str, Any], parsed: dict[str, Any], now: datetime
    ) -> None:
        self._on_replication_rules(region, params["Bucket"], None, now)

    def _encryption_put(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        rules = params["ServerSideEncryptionConfiguration"].get("Rules", [])
        algorithm = (rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}).get("SSEAlgorithm", "")
        self._on_bucket_encryption(params["Bucket"], algorithm.startswith("aws:kms"))

    def _metric_put(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        self._traffic().invalidate()

    def _describe_alarms(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        """moto does not evaluate alarms: state from the latest datapoint, `ignore` keeping the last state."""
        traffic = self._traffic()
        # A datapoint counts once its period has ended and the alarm evaluated it.
        seen = now - timedelta(seconds=ALARM_INGEST_SECONDS)
        for alarm in parsed.get("MetricAlarms", []):
            found = traffic.alarm_points(region, alarm["AlarmName"], seen)
            if found is None:
                continue
            definition, points = found
            window = timedelta(seconds=int(definition["Period"]) * int(definition.get("EvaluationPeriods", 1)))
            recent = [p for p in points if p[0] > seen - window]
            latest = recent[-1] if recent else (points[-1] if points else None)
            # catalogue: cloudwatch.treat-missing-data-ignore-keeps-state
            if latest is None or (not recent and definition.get("TreatMissingData", "missing") == "missing"):
                alarm["StateValue"] = "INSUFFICIENT_DATA"
            else:
                alarm["StateValue"] = "ALARM" if breaches(definition, latest[1]) else "OK"

    def _health_check_created(
        self, region: str, params: Mapping[str, Any], parsed: dict[str, Any], now: datetime
    ) -> None:
        # moto drops AlarmIdentifier and InsufficientDataHealthStatus: keep the request's configuration.
        with self._lock:
            self.health_checks[parsed["HealthCheck"]["Id"]] = dict(params["HealthCheckConfig"])
        self._traffic().invalidate()

    def _health_check_updated(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        # catalogue: route53.disabled-check-is-healthy-inverted-unhealthy
        with self._lock:
            config = self.health_checks.get(params["HealthCheckId"])
            if config is not None:
                config.update({k: params[k] for k in ("Disabled", "Inverted") if k in params})
        self._traffic().invalidate()

    def _records_changed(self, region: str, params: Params, parsed: Parsed, now: datetime) -> None:
        self._traffic().invalidate()

    def _health_check_status(self, health_check_id: str, now: datetime) -> dict[str, Any]:
        # catalogue: route53.health-check-status-reports-success-or-failure
        reports = self._traffic().checker_reports(health_check_id, now)
        return {
            "HealthCheckObservations": [
                {
                    "Region": checker,
                    "IPAddress": "127.0.0.1",
                    "StatusReport": {
                        "Status": "Success: HTTP Status Code 200, OK"
                        if healthy
                        else "Failure: Connection timed out. The endpoint or the internet connection is down.",
                        "CheckedTime": now,
                    },
                }
                for checker, healthy in reports
            ]
        }

    # --- ElastiCache Global Datastore ------------------------------------------------------------

    def _elasticache(
        self, operation: str, region: str, params: Mapping[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        if operation == "CreateGlobalReplicationGroup":
            return {"GlobalReplicationGroup": self.create_datastore(params, region).describe(now)}
        if operation == "DescribeGlobalReplicationGroups":
            return {"GlobalReplicationGroups": [self._datastore(operation, params).describe(now)]}
        if operation == "FailoverGlobalReplicationGroup":
            return {"GlobalReplicationGroup": self._fail_over(operation, params, now).describe(now)}
        if operation == "DisassociateGlobalReplicationGroup":
            return {"GlobalReplicationGroup": self._disassociate(operation, params, now).describe(now)}
        return None

    def create_datastore(self, params: Mapping[str, Any], region: str) -> GlobalDatastoreModel:
        global_id = f"ldgnf-{params['GlobalReplicationGroupIdSuffix']}"
        with self._lock:
            model = self.datastores.setdefault(global_id, GlobalDatastoreModel(global_id, region))
            model.members[region] = params["PrimaryReplicationGroupId"]
            return model

    def join_datastore(self, global_id: str, region: str, group_id: str) -> None:
        """A secondary group joins (CreateReplicationGroup with GlobalReplicationGroupId)."""
        now = self.clock.now()
        with self._lock:
            model = self._datastore("CreateReplicationGroup", {"GlobalReplicationGroupId": global_id})
            model.members[region] = group_id
            primary_group = model.members[model.primary_region]
        self._on_cache_member_joined(group_id, primary_group, now)

    def _datastore(self, operation: str, params: Mapping[str, Any]) -> GlobalDatastoreModel:
        with self._lock:
            found = self.datastores.get(params["GlobalReplicationGroupId"])
        if found is None:
            raise client_error(
                operation, "GlobalReplicationGroupNotFoundFault", f"{params['GlobalReplicationGroupId']} not found", 404
            )
        return found

    def _fail_over(self, operation: str, params: Mapping[str, Any], now: datetime) -> GlobalDatastoreModel:
        model = self._datastore(operation, params)
        target_region, target_group = params["PrimaryRegion"], params["PrimaryReplicationGroupId"]
        with self._lock:
            if model.members.get(target_region) != target_group:
                raise client_error(
                    operation, "InvalidParameterValue", f"{target_group} in {target_region} is not a member", 400
                )
            if model.primary_region == target_region and not model.failing_over_to:
                return model
            # catalogue: elasticache.global-datastore-failover-needs-available
            if model.status(now) != "available":
                raise client_error(
                    operation, "InvalidGlobalReplicationGroupState", "The Global datastore is not available", 400
                )
            # catalogue: elasticache.global-datastore-failover-with-primary-region-down
            if not self._region_up_at(model.primary_region, now):
                raise client_error(
                    operation,
                    "InvalidGlobalReplicationGroupState",
                    f"the primary member in {model.primary_region} does not answer: the Global datastore is not "
                    "available for a failover",
                    400,
                )
            model.failing_over_to = (target_region, now + timedelta(seconds=latency(Op.GLOBAL_DATASTORE_FAILOVER)))
        return model

    def _disassociate(self, operation: str, params: Mapping[str, Any], now: datetime) -> GlobalDatastoreModel:
        model = self._datastore(operation, params)
        region, group = params["ReplicationGroupRegion"], params["ReplicationGroupId"]
        with self._lock:
            if model.members.get(region) != group or region == model.primary_region:
                raise client_error(operation, "InvalidParameterValue", f"{group} is not a secondary member", 400)
            del model.members[region]
        # catalogue: elasticache.disassociate-makes-standalone
        self._on_cache_member_left(group, now)
        return model

    def cache_primary(self) -> tuple[str, str] | None:
        """(region, group) where the application writes its keys: the datastore's primary, or a detached group."""
        with self._lock:
            model = next(iter(self.datastores.values()), None)
            return (model.primary_region, model.members[model.primary_region]) if model else None


_AFTER: dict[tuple[str, str], Callable[[SimulatedAws, str, Mapping[str, Any], dict[str, Any], datetime], None]] = {
    ("rds", "PromoteReadReplica"): SimulatedAws._promoted,
    ("rds", "ModifyDBParameterGroup"): SimulatedAws._parameters_changed,
    ("rds", "RebootDBInstance"): SimulatedAws._rebooted,
    ("rds", "CreateDBSnapshot"): SimulatedAws._snapshot_started,
    ("rds", "CreateDBInstanceReadReplica"): SimulatedAws._replica_created,
    ("rds", "DescribeDBInstances"): SimulatedAws._describe_instances,
    ("rds", "DescribeDBSnapshots"): SimulatedAws._describe_snapshots,
    ("eks", "CreateNodegroup"): SimulatedAws._node_group_created,
    ("eks", "UpdateNodegroupConfig"): SimulatedAws._node_group_updated,
    ("eks", "DescribeNodegroup"): SimulatedAws._describe_node_group,
    ("s3", "PutBucketReplication"): SimulatedAws._replication_put,
    ("s3", "DeleteBucketReplication"): SimulatedAws._replication_deleted,
    ("s3", "PutBucketEncryption"): SimulatedAws._encryption_put,
    ("cloudwatch", "PutMetricData"): SimulatedAws._metric_put,
    ("cloudwatch", "DescribeAlarms"): SimulatedAws._describe_alarms,
    ("route53", "CreateHealthCheck"): SimulatedAws._health_check_created,
    ("route53", "UpdateHealthCheck"): SimulatedAws._health_check_updated,
    ("route53", "ChangeResourceRecordSets"): SimulatedAws._records_changed,
}
