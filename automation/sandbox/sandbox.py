"""The offline sandbox: moto for both regions, the program's declared state applied to it, faults on demand.

    with Sandbox.open(config) as sandbox:
        sandbox.provision()                      # steady state, applied to moto
        sandbox.data.write_batch(primary, 100)   # data that must survive
        sandbox.inject("region-failure")
        ...run a runbook with sandbox.stack, sandbox.clients, sandbox.clock...
        sandbox.data.survivors(dr)               # what survived, and the loss window
        sandbox.report()                         # simulation label, modelled RTO, what was simulated

Nothing leaves the machine: the endpoint is asserted to be loopback and the
credentials are dummies. A runbook must use `sandbox.clients` (their hooks
fail calls to a region that is down at once, simulate what moto lacks and
report AWS's asynchronous changes in progress); clients built from the
environment still reach moto, and still find a down region refusing them (the
server's guard), but bypass the models.

The models (`automation.sandbox.lineage`, `objects`, `compute`, `traffic`,
`metrics`) are functions of modelled time; this module wires them to moto and
to each other, and injects the faults.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.exceptions import ClientError
from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.route53.models import route53_backends

from automation.aws.clients import AwsClients, Timeouts
from automation.errors import DrctlError
from automation.evaluate import stack_file_config
from automation.sandbox.apply import MotoApplier
from automation.sandbox.clock import DEFAULT_SCALE, LatencyClock
from automation.sandbox.compute import ComputeModel
from automation.sandbox.dataplane import DataPlane
from automation.sandbox.lineage import Write
from automation.sandbox.metrics import Publisher, Series
from automation.sandbox.objects import WRITTEN_AT_METADATA, ObjectReplication
from automation.sandbox.server import DUMMY_CREDENTIALS, MotoSandboxServer
from automation.sandbox.simulated import SIMULATED, SimulatedAws
from automation.sandbox.stack import SandboxStack, SimulatedCrash
from automation.sandbox.traffic import FenceAuthorityModel, RecordSet, Timeline, TrafficModel
from automation.stack import namespaced
from automation.stack_standin import StandInStack
from components.config import parse_config
from components.naming import load_balancer_name
from components.traffic import FENCE_METRIC, FENCE_NAMESPACE

SANDBOX_STACK = "organization/dr-platform/sandbox"
ALB_METRICS = ("RequestCount", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "HTTPCode_ELB_503_Count")
S3_METRICS = {
    "ReplicationLatency": "Seconds",
    "OperationsPendingReplication": "Count",
    "OperationsFailedReplication": "Count",
}
BATCH_OPERATIONS_PRINCIPAL = "batchoperations.s3.amazonaws.com"
SLOW_UPDATE_SECONDS = 3 * 3600
"""switch-timeout: longer than any step timeout a stack update gets."""


class Scenario(StrEnum):
    REGION_FAILURE = "region-failure"
    REPLICA_LAG = "replica-lag"
    DR_UNHEALTHY = "dr-unhealthy"
    CRASH_RESUME = "crash-resume"
    CRASH_MID_PROMOTION = "crash-mid-promotion"
    FAILBACK_ROLLBACK = "failback-rollback"
    SWITCH_TIMEOUT = "switch-timeout"


def load_balancer_dimension(cfg: Any, region: str) -> str:
    """The `LoadBalancer` metric dimension the sandbox publishes ALB metrics under (`app/<name>/<id>`)."""
    return f"app/{load_balancer_name(cfg, cfg.role_of(region))}/sandbox"


def _aware(at: datetime) -> datetime:
    """moto keeps datapoint timestamps naive, in UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _dimension_pairs(dimensions: Any) -> set[tuple[str, str]]:
    pairs = set()
    for dimension in dimensions or []:
        if isinstance(dimension, Mapping):
            pairs.add(
                (dimension.get("Name") or dimension.get("name"), dimension.get("Value") or dimension.get("value"))
            )
        else:
            pairs.add((dimension.name, dimension.value))
    return pairs


CLOUDWATCH_SERVICES = frozenset({"cloudwatch", "monitoring"})
"""boto3's name and the signing name of CloudWatch's API."""


class Sandbox:
    def __init__(
        self, server: MotoSandboxServer, config: Mapping[str, str], *, scale: float, start: datetime | None
    ) -> None:
        self.server = server
        self.raw_config = namespaced(config)
        self.cfg = parse_config(self.raw_config)
        self.clock = LatencyClock(self.cfg, start=start, scale=scale)
        self.outage_log = Timeline()
        self.fault_log = Timeline()
        self.compute = ComputeModel(self.cfg)
        self.publisher = Publisher(put=self._put_metrics, region_up=self._cloudwatch_up)
        self.fence_authority = FenceAuthorityModel()
        self._alb_periods: dict[tuple[str, datetime], dict[str, float]] = {}
        self.simulated = SimulatedAws(
            server.outages,
            self.clock,
            endpoint_url=server.endpoint_url,
            compute=self.compute,
            traffic=lambda: self.traffic,
            publish_metrics=self.publish_metrics,
            on_promoted=lambda region, identifier, at: self._promoted(region, identifier, at),
            on_replica_created=self._replica_created,
            on_cache_primary_changed=self._cache_primary_changed,
            on_cache_member_joined=lambda group, primary, at: self.data.cache.attach(group, primary, at),
            on_cache_member_left=lambda group, at: self.data.cache.detach(group, at),
            on_read_only=self._read_only_changed,
            on_reboot=lambda identifier, start, end: self.data.database.restart(identifier, start, end),
            on_replication_rules=self._replication_rules,
            on_bucket_encryption=lambda bucket, kms: self.objects.encrypt_with_kms(bucket, kms),
            batch_jobs=self._batch_jobs,
            region_up_at=lambda region, at: not self.down_at(region, at),
        )
        session = _session()
        self.simulated.register(session)
        # One attempt: a down region must fail a call at once, not after the SDK's backoff.
        self.clients = AwsClients(server.endpoint_url, session=session, timeouts=Timeouts(max_attempts=1))
        # The sandbox's own calls (publishing metrics, copying objects) are AWS's work: no hooks, no models.
        self._internal = AwsClients(server.endpoint_url, session=_session())
        self.applier = MotoApplier(self.clients, self.simulated, self.cfg, self.clock)
        self.stack = SandboxStack(
            StandInStack(self.raw_config, name=SANDBOX_STACK, deployed=False), self.applier, self.clock, self._rewrite
        )
        self.objects = ObjectReplication(
            put_object=self._copy_object,
            delete_object=lambda bucket, key: self._internal.client(
                "s3", self._bucket_region(bucket) or ""
            ).delete_object(Bucket=bucket, Key=key),
            region_of_bucket=self._bucket_region,
            region_down=self.down_at,
        )
        self.data = DataPlane(
            now=self.clock.now,
            outputs=self.stack.current_outputs,
            s3_client=lambda region: self._internal.client("s3", region),
            region_down=lambda region: region in server.outages.down,
            cache_primary=self.simulated.cache_primary,
            objects=self.objects,
            epoch=self.clock.start,
        )
        self.traffic = TrafficModel(
            self.cfg,
            outages=self.outage_log,
            faults=self.fault_log,
            ready_nodes=self.compute.ready_nodes,
            write_refusal=self._write_refusal,
            health_checks=self.simulated.health_checks,
            endpoint_regions=self._endpoint_regions,
            records=self._records,
            alarm_datapoints=self._alarm_datapoints,
        )
        self.faults: list[str] = []
        self._crash_steps: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    @contextmanager
    def open(
        cls,
        config: Mapping[str, str] | None = None,
        *,
        server: MotoSandboxServer | None = None,
        scale: float = DEFAULT_SCALE,
        start: datetime | None = None,
    ) -> Iterator[Sandbox]:
        """A fresh sandbox: starts moto (or resets the given server), sets the environment, enters the clock."""
        own_server = server is None
        moto = server or MotoSandboxServer()
        if own_server:
            moto.start()
        else:
            moto.reset()
        try:
            with moto.environment():
                sandbox = cls(moto, config or stack_file_config("prod"), scale=scale, start=start)
                with sandbox.clock:
                    yield sandbox
        finally:
            if own_server:
                moto.stop()

    # --- provisioning ---------------------------------------------------------------

    def provision(self) -> dict[str, Any]:
        """Apply the config's state to an empty moto (a whole-stack update); returns the stack outputs."""
        self.stack.up(None, message="sandbox: provision")
        for region in (self.cfg.primary_region, self.cfg.dr_region):
            dimensions = {"LoadBalancer": load_balancer_dimension(self.cfg, region)}
            for name in ALB_METRICS:
                self.publisher.add(
                    Series(
                        region,
                        "AWS/ApplicationELB",
                        name,
                        dimensions,
                        lambda start, end, r=region, n=name: self._alb_value(r, start, n),
                        "Count",
                        self.clock.now(),
                    )
                )
        self._start_fence_publisher()
        return self.stack.current_outputs()

    def _start_fence_publisher(self) -> None:
        """The fence publisher (components/fence_publisher.py) and the authority it reads, as `drctl state init`
        leaves it: the stack's DR keys, the fence following drState."""
        from automation.dr_state import DrStateRecord, dr_keys

        now = self.clock.now()
        keys = dr_keys(self.stack.get_config())
        self.fence_authority.write(
            now, DrStateRecord(SANDBOX_STACK, keys, "provision", "sandbox", now.isoformat()).to_dict()
        )
        self.publisher.add(
            Series(
                self.cfg.dr_region,
                FENCE_NAMESPACE,
                FENCE_METRIC,
                {"Record": self.cfg.app_fqdn},
                lambda start, end: self.fence_authority.value_for_minute(start),
                "Count",
                now,
            )
        )

    def record_traffic_fence(self, raised: bool, run_id: str) -> None:
        """What drctl's fence steps write into the DR state authority (in the DR region's control store)."""
        from automation.aws.clients import RegionUnreachableError
        from automation.dr_state import DrStateRecord, dr_keys

        now = self.clock.now()
        if self.down_at(self.cfg.dr_region, now):
            raise RegionUnreachableError(self.cfg.dr_region, OSError("sandbox: the control store's region is down"))
        fence = "raised" if raised else "lowered"
        keys = dr_keys(self.stack.get_config())
        record = DrStateRecord(SANDBOX_STACK, keys, run_id, "sandbox", now.isoformat(), fence)
        self.fence_authority.write(now, record.to_dict())

    def authoritative_answer(self, name: str, rdtype: str, name_servers: Any) -> str | None:
        """What the zone's name servers answer now (Route53's data plane: up whatever the regions do)."""
        if name.rstrip(".") != self.cfg.app_fqdn or rdtype != "CNAME":
            return None
        now = self.clock.now()
        self.publish_metrics(now)  # the datapoints Route53's checkers have read by now
        region = self.traffic.answer(now)
        return {r: h for h, r in self._endpoint_regions().items()}.get(region) if region else None

    @staticmethod
    def zone_name_servers(zone_name: str) -> list[str]:
        return [f"ns-1.awsdns-sandbox.{zone_name}"]

    def _rewrite(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """Stack outputs as a real engine would report them: the ids and ARNs moto assigned."""
        rewritten = self.applier.ids.translate(dict(outputs))
        zone_ids = [real for urn, real in self.applier.ids.real_ids.items() if "aws:route53/zone:Zone" in urn]
        if zone_ids and "dns" in rewritten:
            rewritten["dns"]["zoneId"] = zone_ids[0]
        for region, entry in (rewritten.get("database") or {}).items():
            if region in self.server.outages.down:
                continue
            found = self._internal.client("rds", region).describe_db_instances()["DBInstances"]
            instance = next((i for i in found if i["DBInstanceIdentifier"] == entry["identifier"]), None)
            if instance is not None:
                endpoint = instance.get("Endpoint") or {}
                entry["endpoint"] = f"{endpoint.get('Address')}:{endpoint.get('Port')}"
        self.traffic.invalidate()
        return rewritten

    # --- time and regions -----------------------------------------------------------------

    def down_at(self, region: str, at: datetime) -> bool:
        return self.outage_log.holds(region, at)

    def _cloudwatch_up(self, region: str, at: datetime) -> bool:
        """Whether the region's CloudWatch takes datapoints (the publishers' PutMetricData) at `at`."""
        return not self.down_at(region, at) and not self.fault_log.holds(f"cloudwatch-impaired:{region}", at)

    def publish_metrics(self, now: datetime | None = None) -> None:
        self.publisher.publish_until(now or self.clock.now())

    def _put_metrics(self, region: str, namespace: str, data: list[dict[str, Any]]) -> None:
        self._internal.client("cloudwatch", region).put_metric_data(Namespace=namespace, MetricData=data)

    def _alb_value(self, region: str, start: datetime, name: str) -> float | None:
        # catalogue: elb.metrics-per-60-seconds-only-with-traffic
        key = (region, start)
        with self._lock:
            counts = self._alb_periods.get(key)
        if counts is None:
            counts = self.traffic.period_counts(region, start)
            with self._lock:
                self._alb_periods[key] = counts
        return counts[name] or None

    def _endpoint_regions(self) -> dict[str, str]:
        endpoints = (self.stack.current_outputs().get("dns") or {}).get("endpoints") or {}
        return {hostname.rstrip("."): region for region, hostname in endpoints.items()}

    def _records(self) -> list[RecordSet]:
        """The zones' records as Route53's data plane serves them (read in-process: no control plane needed)."""
        backend = route53_backends[DEFAULT_ACCOUNT_ID]["global"]
        found = []
        for zone in list(backend.zones.values()):
            for record in list(zone.rrsets):
                values = [v.get("Value", "") if isinstance(v, Mapping) else str(v) for v in record.records or []]
                found.append(
                    RecordSet(
                        record.name,
                        record.failover,
                        values[0] if values else "",
                        int(record.ttl or 0),
                        record.health_check_id,
                    )
                )
        return found

    def _alarm_datapoints(
        self, region: str, name: str, until: datetime
    ) -> tuple[Mapping[str, Any], list[tuple[datetime, float]]] | None:
        """An alarm's definition and its metric's datapoints up to `until` (None: no such alarm).

        Route53's checkers keep what they read: while the alarm's region is down they see no new
        datapoints (none is published), not a different status.
        """
        if not region:
            return None
        backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region]
        alarm = backend.alarms.get(name)
        if alarm is None:
            return None
        wanted = _dimension_pairs(alarm.dimensions)
        points = sorted(
            (_aware(datum.timestamp), float(datum.value))
            for datum in list(backend.metric_data)
            if datum.namespace == alarm.namespace
            and datum.name == alarm.metric_name
            and _dimension_pairs(datum.dimensions) == wanted
            and _aware(datum.timestamp) <= until
        )
        definition = {
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "Threshold": alarm.threshold,
            "ComparisonOperator": alarm.comparison_operator,
            "TreatMissingData": alarm.treat_missing_data or "missing",
        }
        return definition, points

    # --- the data plane's view of AWS ------------------------------------------------------------

    def _write_refusal(self, region: str, at: datetime) -> str | None:
        entry = (self.stack.current_outputs().get("database") or {}).get(region)
        if entry is None:
            return "no database"
        return self.data.database.refusal(entry["identifier"], Write("request", at))

    def _promoted(self, region: str, identifier: str, at: datetime) -> None:
        self.data.database.detach(identifier, at)
        self.publisher.stop(region, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": identifier}, at)

    def _replica_created(self, region: str, identifier: str, source: str, at: datetime) -> None:
        source_id = source.rsplit(":", 1)[-1]
        source_region = source.split(":")[3] if source.startswith("arn:") else region
        self.data.database.attach(identifier, source_id, at)
        lineage = self.data.database
        self.publisher.add(
            Series(
                region,
                "AWS/RDS",
                "ReplicaLag",
                {"DBInstanceIdentifier": identifier},
                lambda start, end: lineage.replica_lag(identifier, end) if lineage.is_replica(identifier) else None,
                "Seconds",
                at,
            )
        )
        self.publisher.add(
            Series(
                source_region,
                "AWS/RDS",
                "OldestReplicationSlotLag",
                {"DBInstanceIdentifier": source_id},
                lambda start, end: lineage.slot_lag_bytes(source_id, end),
                "Bytes",
                at,
            )
        )

    def _read_only_changed(self, region: str, parameter_group: str, read_only: bool, at: datetime) -> None:
        """`default_transaction_read_only` changed: the instances of the region that use the group follow."""
        found = self._internal.client("rds", region).describe_db_instances()["DBInstances"]
        for instance in found:
            if any(group["DBParameterGroupName"] == parameter_group for group in instance.get("DBParameterGroups", [])):
                self.data.database.read_only(instance["DBInstanceIdentifier"], at if read_only else None)
        self.traffic.invalidate()

    def _cache_primary_changed(self, old_group: str, new_group: str, at: datetime) -> None:
        self.data.cache.detach(new_group, at)
        self.data.cache.attach(old_group, new_group, at)

    def _bucket_region(self, bucket: str) -> str | None:
        buckets = self.stack.current_outputs().get("buckets") or {}
        return next((region for region, entry in buckets.items() if entry["name"] == bucket), None)

    def _copy_object(self, destination: str, key: str, source: str, written_at: datetime) -> None:
        region = self._bucket_region(destination) or ""
        self._internal.client("s3", region).put_object(
            Bucket=destination, Key=key, Body=key.encode(), Metadata={WRITTEN_AT_METADATA: written_at.isoformat()}
        )

    def _replication_rules(self, region: str, bucket: str, rules: list[Mapping[str, Any]] | None, at: datetime) -> None:
        if rules is None:
            self.objects.remove(bucket)
            return
        self.objects.configure(bucket, list(rules), at)
        for rule in self.objects.rules.get(bucket, []):
            dimensions = {"SourceBucket": bucket, "DestinationBucket": rule.destination_bucket, "RuleId": rule.rule_id}
            for name, unit in S3_METRICS.items():
                self.publisher.add(
                    Series(
                        region,
                        "AWS/S3",
                        name,
                        dimensions,
                        lambda start, end, r=rule, n=name: (self.objects.rule_metrics(bucket, r, start, end) or {}).get(
                            n
                        ),
                        unit,
                        at,
                    )
                )

    def _batch_jobs(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """S3 Batch Operations (catalogue: s3.batch-replication-job), answered from the object model."""
        now = self.clock.now()
        self.data.replicate_objects(now)
        if operation == "ListJobs":
            return {
                "Jobs": [
                    {
                        "JobId": job.job_id,
                        "Description": job.description,
                        "Status": job.status_at(now),
                        "CreationTime": job.created_at,
                        "Operation": "S3ReplicateObject",
                        "ProgressSummary": job.progress(now),
                    }
                    for job in self.objects.jobs.values()
                    if job.created_at <= now
                ]
            }
        if operation == "DescribeJob":
            job = self.objects.jobs.get(params["JobId"])
            if job is None:
                raise ClientError({"Error": {"Code": "NotFoundException", "Message": "no such job"}}, operation)
            status = job.status_at(now)
            return {
                "Job": {
                    "JobId": job.job_id,
                    "Status": status,
                    "CreationTime": job.created_at,
                    "RoleArn": job.role_arn,
                    "FailureReasons": [{"FailureCode": "ManifestGenerationFailed", "FailureReason": job.failure}]
                    if job.failure and status == "Failed"
                    else [],
                    "ProgressSummary": job.progress(now),
                    "Report": job.report,
                }
            }
        generator = params["ManifestGenerator"]["S3JobManifestGenerator"]
        source = generator["SourceBucket"].rsplit(":", 1)[-1]
        failure = self._batch_role_problem(params["RoleArn"])
        job = self.objects.create_job(
            f"sandbox-{uuid.uuid4().hex[:12]}",
            params["ClientRequestToken"],
            params.get("Description", ""),
            source,
            params["RoleArn"],
            failure,
            now,
            report=dict(params.get("Report") or {}),
        )
        return {"JobId": job.job_id}

    def _batch_role_problem(self, role_arn: str) -> str | None:
        name = role_arn.rsplit("/", 1)[-1]
        try:
            role = self._internal.client("iam", "us-east-1").get_role(RoleName=name)["Role"]
        except ClientError:
            return f"the role {role_arn} does not exist"
        document = role["AssumeRolePolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        principals = json.dumps(document)
        if BATCH_OPERATIONS_PRINCIPAL not in principals:
            return f"the role {role_arn} does not trust {BATCH_OPERATIONS_PRINCIPAL}"
        return None

    # --- faults ------------------------------------------------------------------------

    def inject(self, scenario: Scenario | str, *, step: str | None = None) -> str:
        """Start a scenario's fault now; returns what was done (also listed in `report()`)."""
        scenario = Scenario(scenario)
        if scenario is Scenario.REGION_FAILURE:
            return self.fail_region(self.cfg.primary_region)
        if scenario is Scenario.REPLICA_LAG:
            return self.set_replica_lag(self.cfg.rpo_seconds + 120)
        if scenario is Scenario.DR_UNHEALTHY:
            return self.make_unhealthy(self.cfg.dr_region)
        if scenario is Scenario.CRASH_RESUME:
            if not step:
                raise DrctlError("the crash-resume scenario needs the step to crash at")
            return self.crash_once_at(step)
        if scenario is Scenario.CRASH_MID_PROMOTION:
            self.stack.kill_next_update_after_promotion()
            return self._fault("the runner dies during the next stack update, right after RDS accepts a promotion")
        if scenario is Scenario.SWITCH_TIMEOUT:
            return self.hold_next_update(SLOW_UPDATE_SECONDS)
        return self.set_error_rate(self.cfg.primary_region, 0.2)

    def hold_next_update(self, seconds: float) -> str:
        """The next stack update keeps running for `seconds` (modelled) before it applies, holding the stack."""
        self.stack.hold_next_update(seconds)
        return self._fault(f"the next stack update runs for {seconds:g} s before it applies anything")

    def _fault(self, description: str) -> str:
        with self._lock:
            self.faults.append(description)
        self.traffic.invalidate()
        return description

    def fail_region(self, region: str, *, global_control_planes: bool = False) -> str:
        """Every API of `region` stops answering; what S3 replicated until now stays replicated."""
        now = self.clock.now()
        self.publish_metrics(now)
        self.data.replicate_objects(now)
        self.data.region_down(region, now)
        self.outage_log.begin(region, now)
        self.server.outages.fail(region, global_control_planes=global_control_planes)
        scope = " (Route53 and IAM control planes too)" if global_control_planes else ""
        return self._fault(f"region {region} unreachable from {now.isoformat()}{scope}")

    def impair_cloudwatch(self, region: str) -> str:
        """The region's CloudWatch stops answering (its API and its datapoints); every other service works."""
        now = self.clock.now()
        self.publish_metrics(now)
        self.fault_log.begin(f"cloudwatch-impaired:{region}", now)
        self.server.outages.impair(region, CLOUDWATCH_SERVICES)
        return self._fault(f"CloudWatch of {region} impaired from {now.isoformat()}")

    def restore_cloudwatch(self, region: str) -> str:
        now = self.clock.now()
        self.server.outages.unimpair(region, CLOUDWATCH_SERVICES)
        self.fault_log.end(f"cloudwatch-impaired:{region}", now)
        return self._fault(f"CloudWatch of {region} answers again from {now.isoformat()}")

    def restore_region(self, region: str) -> str:
        now = self.clock.now()
        self.server.outages.restore(region)
        self.outage_log.end(region, now)
        self.data.region_up(region, now)
        return self._fault(f"region {region} reachable again from {now.isoformat()}")

    def set_replica_lag(self, seconds: float) -> str:
        """The database replica falls `seconds` behind its source (streaming delay)."""
        self.publish_metrics()
        self.data.database.lag_seconds = seconds
        return self._fault(f"database replica streaming delay {seconds:g}s (RPO {self.cfg.rpo_seconds}s)")

    def make_unhealthy(self, region: str) -> str:
        """The region's endpoint fails its health path (503) from now on."""
        self.fault_log.begin(f"unhealthy:{region}", self.clock.now())
        return self._fault(f"endpoint of {region} answers its health path with 503")

    def set_error_rate(self, region: str, ratio: float) -> str:
        """The region's application answers `ratio` of requests with a 5xx from now on."""
        self.fault_log.begin(f"errors:{region}", self.clock.now(), ratio)
        return self._fault(f"{ratio:.0%} of requests in {region} fail with 5xx")

    def crash_once_at(self, step: str) -> str:
        with self._lock:
            self._crash_steps.add(step)
        return self._fault(f"runner crashes once at step {step}")

    def crash_point(self, step: str) -> None:
        """Call at the start of a step's action: raises `SimulatedCrash` the first time for a crash step."""
        with self._lock:
            if step not in self._crash_steps:
                return
            self._crash_steps.discard(step)
        raise SimulatedCrash(f"simulated crash of the runner at step {step}")

    # --- users -------------------------------------------------------------------------------

    def serve(self, count: int, *, prefix: str, sessions: bool = False) -> Any:
        """`count` users' requests now, spread over the resolvers, each to the region its resolver's cache says."""
        now = self.clock.now()
        return self.data.serve(
            lambda index: self.traffic.resolver_region(index % self.traffic.resolvers, now),
            count,
            prefix=prefix,
            sessions=sessions,
        )

    # --- reporting -------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The sandbox's part of any report: the simulation label, what was simulated, faults, modelled time."""
        window = self.data.data_loss_window()
        return {
            "mode": "sandbox",
            "simulation": True,
            "simulated": list(SIMULATED),
            "faults": list(self.faults),
            "latency": self.clock.summary(),
            "data_loss_window_seconds": window.loss_window_seconds if window else None,
            "applied": [change.to_dict() for change in self.stack.applied],
        }


# Service models parsed once for every sandbox of the process: a fresh loader per session re-reads them (~0.1 s a
# client). Sessions stay separate, so one sandbox's hooks never reach another's clients.
_LOADER = botocore.loaders.create_loader()


def _session() -> boto3.session.Session:
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(
        botocore_session=core,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
