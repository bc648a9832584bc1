"""What moto lacks or gets wrong, simulated or corrected behind the sandbox's boto3 clients.

The sandbox's clients come from one boto3 session with botocore event hooks:

- a region marked down fails every call at once with `EndpointConnectionError`
  (what an impaired region looks like to the SDK; `automation.aws.clients`
  turns it into `RegionUnreachableError`);
- ElastiCache Global Datastore APIs (create, describe, failover), which moto
  does not implement, are answered by `GlobalDatastoreModel`;
- Route53 health-check status, which moto always reports healthy, follows the
  sandbox's view of each region's endpoint (down region or injected fault);
- CloudWatch reads first publish the metrics AWS would have emitted by then
  (RDS `ReplicaLag` from the data plane's lag, ALB request and 5xx counts);
- after moto's `PromoteReadReplica`, the instance is corrected (see
  `correct_promotion`), the data plane stops replicating into it and the
  clock is charged the promotion's documented duration.

Every simulated behaviour is named in `SIMULATED`, which every report carries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends

from automation.sandbox.clock import LatencyClock
from automation.sandbox.server import RegionOutages
from automation.timings import Op

SIMULATED = (
    "moto stands in for AWS in both regions; nothing reaches a real account",
    "time is modelled from automation/timings.py durations, not measured",
    "ElastiCache Global Datastore create/describe/failover: in-process model (moto lacks the APIs)",
    "RDS promote_read_replica: moto's instance corrected to a standalone writer after promotion",
    "S3 replication: objects copied by the sandbox with the modelled lag (moto stores the rule only)",
    "Route53 health-check status: derived from region outages and injected faults (moto always reports healthy)",
    "CloudWatch ReplicaLag and ALB metrics: published by the sandbox's model",
    "database rows and Redis keys: an in-process data plane with modelled replication lag",
    "default_transaction_read_only: the data plane stops writes to the writer and its replicas' lag drains to 0",
)

# Calls that cost modelled time when they succeed, with the operation they wait for.
CHARGED_CALLS: Mapping[tuple[str, str], Op] = {
    ("rds", "PromoteReadReplica"): Op.RDS_PROMOTE_REPLICA,
    ("rds", "CreateDBInstanceReadReplica"): Op.RDS_CREATE_CROSS_REGION_REPLICA,
    ("eks", "UpdateNodegroupConfig"): Op.NODE_GROUP_SCALE_UP,
    ("elasticache", "FailoverGlobalReplicationGroup"): Op.GLOBAL_DATASTORE_FAILOVER,
    ("route53", "ChangeResourceRecordSets"): Op.RECORD_PROPAGATION,
    ("rds", "ModifyDBParameterGroup"): Op.RDS_READ_ONLY_SWITCH,
}
READ_ONLY_PARAMETER = "default_transaction_read_only"


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


# --- ElastiCache Global Datastore ------------------------------------------------


@dataclass
class GlobalDatastoreModel:
    """One global datastore: its member groups by region and which region is primary."""

    global_id: str
    primary_region: str
    members: dict[str, str] = field(default_factory=dict)
    status: str = "available"
    failovers: list[tuple[str, datetime]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "GlobalReplicationGroupId": self.global_id,
            "Status": self.status,
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


class _HttpStatus:
    status_code = 200


# --- RDS correction ---------------------------------------------------------------


def correct_promotion(region: str, identifier: str) -> str | None:
    """Make moto's promoted instance a standalone writer; returns the source it was detached from.

    moto 5.2.5's `promote_read_replica` only flips `is_replica`: it leaves
    `ReadReplicaSourceDBInstanceIdentifier` set and the instance in its
    source's replica list, so every reader would still see a replica. AWS
    clears both. The fix edits moto's backend objects in this process (the
    server runs in-process), including the source's list in a region that may be
    down: AWS detaches a promoted replica whatever state its source is in.
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


# --- the hooks ------------------------------------------------------------------------


class SimulatedAws:
    """Registers the hooks on a boto3 session and holds the models they answer from."""

    def __init__(
        self,
        outages: RegionOutages,
        clock: LatencyClock,
        *,
        endpoint_url: str,
        on_promoted: Callable[[str, str, datetime], None],
        on_replica_created: Callable[[str, str, str, datetime], None],
        on_cache_primary_changed: Callable[[str, str, datetime], None],
        on_cache_member_joined: Callable[[str, str], None],
        publish_metrics: Callable[[], None],
        on_read_only: Callable[[str, str, bool, datetime], None] | None = None,
    ) -> None:
        self.outages = outages
        self.clock = clock
        self.endpoint_url = endpoint_url
        self.datastores: dict[str, GlobalDatastoreModel] = {}
        self.unhealthy_health_checks: set[str] = set()
        self.health_check_regions: dict[str, str] = {}
        self._on_promoted = on_promoted
        self._on_replica_created = on_replica_created
        self._on_cache_primary_changed = on_cache_primary_changed
        self._on_cache_member_joined = on_cache_member_joined
        self._publish_metrics = publish_metrics
        self._on_read_only = on_read_only
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
        refused = self.outages.refuses(region, service)
        with self._lock:
            self.calls.append(ApiCall(service, operation, region, self.clock.now(), refused))
        if refused:
            raise EndpointConnectionError(endpoint_url=f"https://{service}.{region}.amazonaws.com (sandbox outage)")
        params = context.get("sandbox_api_params", {})
        if service == "cloudwatch" and operation in ("GetMetricStatistics", "GetMetricData"):
            self._publish_metrics()
        answer = self._answer(service, operation, region, params)
        return (_HttpStatus(), {**answer, "ResponseMetadata": {"HTTPStatusCode": 200}}) if answer is not None else None

    def _answer(self, service: str, operation: str, region: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        if service == "elasticache":
            if operation == "CreateGlobalReplicationGroup":
                return {"GlobalReplicationGroup": self.create_datastore(params, region).describe()}
            if operation == "DescribeGlobalReplicationGroups":
                return {"GlobalReplicationGroups": [self._datastore(operation, params).describe()]}
            if operation == "FailoverGlobalReplicationGroup":
                return {"GlobalReplicationGroup": self._fail_over(operation, params).describe()}
        if service == "route53" and operation == "GetHealthCheckStatus":
            return self._health_check_status(params["HealthCheckId"])
        return None

    def _after_call(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        if getattr(http_response, "status_code", 500) >= 300:
            return
        service, operation = model.service_model.service_name, model.name
        region = context.get("client_region") or ""
        params = context.get("sandbox_api_params", {})
        if (service, operation) == ("rds", "PromoteReadReplica"):
            identifier = params["DBInstanceIdentifier"]
            if correct_promotion(region, identifier) is None:
                return  # it was no replica: moto changed nothing and neither would AWS
            self._on_promoted(region, identifier, self.clock.now())
        if (service, operation) == ("rds", "ModifyDBParameterGroup") and self._on_read_only is not None:
            for parameter in params.get("Parameters", []):
                if parameter.get("ParameterName") == READ_ONLY_PARAMETER:
                    read_only = str(parameter.get("ParameterValue", "0")).lower() in ("1", "on", "true")
                    self._on_read_only(region, params["DBParameterGroupName"], read_only, self.clock.now())
        if (service, operation) == ("rds", "CreateDBInstanceReadReplica"):
            self._on_replica_created(
                region, params["DBInstanceIdentifier"], params["SourceDBInstanceIdentifier"], self.clock.now()
            )
        operation_cost = CHARGED_CALLS.get((service, operation))
        if operation_cost is not None:
            self.clock.charge(operation_cost)

    # --- global datastores ------------------------------------------------------------

    def create_datastore(self, params: Mapping[str, Any], region: str) -> GlobalDatastoreModel:
        global_id = f"ldgnf-{params['GlobalReplicationGroupIdSuffix']}"
        with self._lock:
            model = self.datastores.setdefault(global_id, GlobalDatastoreModel(global_id, region))
            model.members[region] = params["PrimaryReplicationGroupId"]
            return model

    def join_datastore(self, global_id: str, region: str, group_id: str) -> None:
        """A secondary group joins (CreateReplicationGroup with GlobalReplicationGroupId)."""
        with self._lock:
            model = self._datastore("CreateReplicationGroup", {"GlobalReplicationGroupId": global_id})
            model.members[region] = group_id
            primary_group = model.members[model.primary_region]
        self._on_cache_member_joined(group_id, primary_group)

    def _datastore(self, operation: str, params: Mapping[str, Any]) -> GlobalDatastoreModel:
        with self._lock:
            found = self.datastores.get(params["GlobalReplicationGroupId"])
        if found is None:
            raise client_error(
                operation, "GlobalReplicationGroupNotFoundFault", f"{params['GlobalReplicationGroupId']} not found", 404
            )
        return found

    def _fail_over(self, operation: str, params: Mapping[str, Any]) -> GlobalDatastoreModel:
        model = self._datastore(operation, params)
        target_region, target_group = params["PrimaryRegion"], params["PrimaryReplicationGroupId"]
        with self._lock:
            if model.members.get(target_region) != target_group:
                raise client_error(
                    operation, "InvalidParameterValue", f"{target_group} in {target_region} is not a member", 400
                )
            if model.primary_region == target_region:
                return model
            old_primary = model.members[model.primary_region]
            model.primary_region = target_region
            at = self.clock.now()
            model.failovers.append((target_region, at))
        self._on_cache_primary_changed(old_primary, target_group, at)
        return model

    # --- health checks ----------------------------------------------------------------

    def cache_primary(self) -> tuple[str, str] | None:
        """(region, group) of the first datastore's primary, where the application writes its keys."""
        with self._lock:
            model = next(iter(self.datastores.values()), None)
            return (model.primary_region, model.members[model.primary_region]) if model else None

    def _health_check_status(self, health_check_id: str) -> dict[str, Any]:
        region = self.health_check_regions.get(health_check_id)
        failing = health_check_id in self.unhealthy_health_checks or (region in self.outages.down)
        status = (
            "Failure: Connection timed out. The endpoint or the internet connection is down."
            if failing
            else "Success: HTTP Status Code 200, OK"
        )
        checkers = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1")
        return {
            "HealthCheckObservations": [
                {
                    "Region": checker,
                    "IPAddress": "127.0.0.1",
                    "StatusReport": {"Status": status, "CheckedTime": self.clock.now()},
                }
                for checker in checkers
            ]
        }
