"""Applying one engine step (create / update / delete of a declared resource) to moto.

Only the resource types a DR transition depends on are applied; the others are
recorded as "recorded, not applied" so a report can list them. Inputs arrive
as the program declared them (camelCase, mock ids); ids and ARNs of resources
the sandbox created are translated to what moto assigned (`IdMap`), the way a
real engine feeds one resource's outputs into another's inputs.

Each call goes through the sandbox's boto3 clients, so a step that reaches a
region that is down fails the way AWS would (`RegionUnreachableError`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import EndpointConnectionError

from automation.aws.clients import AwsClients, RegionUnreachableError, reaching
from automation.evaluate import GLOBAL, DeclaredResource, mock_identity
from automation.sandbox.clock import LatencyClock
from automation.sandbox.simulated import SimulatedAws
from automation.timings import Op
from components.config import PlatformConfig

SANDBOX_DB_PASSWORD = "sandbox-only-password"  # moto needs one when the program does not let RDS manage it
ROUTE53_API_REGION = "us-east-1"


@dataclass(frozen=True)
class AppliedChange:
    urn: str
    type: str
    op: str
    region: str | None
    applied: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("urn", "type", "op", "region", "applied", "detail")}


@dataclass
class IdMap:
    """Mock ids/ARNs (what the offline evaluation invents) -> what moto assigned; real ids by URN."""

    provider_regions: tuple[str, ...]
    """Regions whose provider may declare a global resource (its mock ARN carries that region)."""
    substitutions: dict[str, str] = field(default_factory=dict)
    real_ids: dict[str, str] = field(default_factory=dict)

    def register(self, resource: DeclaredResource, real_id: str, real_arn: str | None = None) -> None:
        regions = self.provider_regions if resource.region == GLOBAL else (resource.region,)
        for region in regions:
            mock_id, mock_arn = mock_identity(resource.type, resource.name, resource.inputs, region)
            self.substitutions[mock_id] = real_id
            if real_arn:
                self.substitutions[mock_arn] = real_arn
        self.real_ids[resource.urn] = real_id

    def translate(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.substitutions.get(value, value)
        if isinstance(value, Mapping):
            return {key: self.translate(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.translate(item) for item in value]
        return value

    def dependency_id(self, resource: DeclaredResource, type_token: str) -> str:
        """The real id of the resource of `type_token` this one depends on (a record's zone...)."""
        for urn in resource.dependencies:
            if f"${type_token}::" in urn or f"::{type_token}::" in urn:
                return self.real_ids[urn]
        raise LookupError(f"{resource.urn} depends on no applied {type_token}")


Handler = Callable[["MotoApplier", str, DeclaredResource | None, DeclaredResource | None], str]
_HANDLERS: dict[str, Handler] = {}


def _handles(type_token: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[type_token] = handler
        return handler

    return register


class MotoApplier:
    def __init__(self, clients: AwsClients, simulated: SimulatedAws, cfg: PlatformConfig, clock: LatencyClock) -> None:
        self.clients = clients
        self.simulated = simulated
        self.clock = clock
        self.ids = IdMap(provider_regions=(cfg.primary_region, cfg.dr_region, ROUTE53_API_REGION))
        self.cache_node_type = cfg.cache_node_type
        self.zone_name = cfg.zone_name

    def apply(self, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> AppliedChange:
        resource = new or old
        assert resource is not None
        if op == "delete" and resource.retain_on_delete:
            detail = "retained: removed from the stack, left in the cloud (retain_on_delete)"
            return AppliedChange(resource.urn, resource.type, op, resource.region, False, detail)
        if resource.region in self.simulated.outages.down:
            # Whatever the type (a Kubernetes object too), its API lives in the region that is down.
            raise RegionUnreachableError(
                resource.region, EndpointConnectionError(endpoint_url=f"{resource.type} in {resource.region}")
            )
        handler = _HANDLERS.get(resource.type)
        if handler is None:
            return AppliedChange(resource.urn, resource.type, op, resource.region, False, "recorded, not applied")
        region = ROUTE53_API_REGION if resource.region == GLOBAL else (resource.region or "")
        with reaching(region):
            detail = handler(self, op, old, new)
        return AppliedChange(resource.urn, resource.type, op, resource.region, True, detail)

    def client(self, service: str, resource: DeclaredResource) -> Any:
        region = ROUTE53_API_REGION if resource.region == GLOBAL else resource.region
        return self.clients.client(service, region or "")

    def inputs(self, resource: DeclaredResource) -> dict[str, Any]:
        return self.ids.translate(dict(resource.inputs))


def _not_applied(op: str) -> str:
    return f"{op}: recorded, not applied (the sandbox models creation and DR-relevant changes only)"


# --- IAM, KMS, RDS ----------------------------------------------------------------------


@_handles("aws:iam/role:Role")
def _role(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    """Roles are created (policies are not modelled) so the ARNs other resources pass are well formed."""
    if op != "create" or new is None:
        return _not_applied(op)
    name = new.inputs.get("name") or new.name
    role = applier.client("iam", new).create_role(
        RoleName=name, AssumeRolePolicyDocument=new.inputs["assumeRolePolicy"]
    )
    applier.ids.register(new, name, role["Role"]["Arn"])
    return f"created role {name}"


# --- KMS, RDS ----------------------------------------------------------------------


@_handles("aws:kms/key:Key")
def _kms_key(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if op != "create" or new is None:
        return _not_applied(op)
    key = applier.client("kms", new).create_key(Description=new.inputs.get("description", new.name))["KeyMetadata"]
    applier.ids.register(new, key["KeyId"], key["Arn"])
    return f"created key {key['KeyId']}"


@_handles("aws:rds/parameterGroup:ParameterGroup")
def _parameter_group(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if op != "create" or new is None:
        return _not_applied(op)
    inputs = applier.inputs(new)
    applier.client("rds", new).create_db_parameter_group(
        DBParameterGroupName=inputs["name"],
        DBParameterGroupFamily=inputs["family"],
        Description=inputs.get("description", "dr-platform"),
    )
    applier.ids.register(new, inputs["name"])
    return f"created parameter group {inputs['name']}"


def _source_region(arn: str) -> str:
    return arn.split(":")[3]


def _wait_for_promotion(applier: MotoApplier, identifier: str) -> None:
    """The provider polls until the promoted instance is available: modelled time passes until it is."""
    due = applier.simulated.promotion_due(identifier)
    if due is not None:
        remaining = (due - applier.clock.now()).total_seconds()
        if remaining > 0:
            applier.clock.sleep(remaining)
        applier.simulated.settle(applier.clock.now())


@_handles("aws:rds/instance:Instance")
def _db_instance(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if new is None or op not in ("create", "update"):
        return _not_applied(op)
    inputs = applier.inputs(new)
    rds = applier.client("rds", new)
    identifier = inputs["identifier"]
    if op == "update":
        was_replica = old is not None and old.inputs.get("replicateSourceDb")
        if was_replica and not inputs.get("replicateSourceDb"):
            # Dropping replicate_source_db promotes the replica in place: the provider calls PromoteReadReplica
            # with the backup retention, waits until the instance is available, then modifies what only a
            # standalone writer has (its managed secret).
            retention = inputs.get("backupRetentionPeriod")
            rds.promote_read_replica(
                DBInstanceIdentifier=identifier, **({"BackupRetentionPeriod": int(retention)} if retention else {})
            )
            _wait_for_promotion(applier, identifier)
            if inputs.get("multiAz") and not old.inputs.get("multiAz"):
                # A pilot-light replica becomes a Multi-AZ writer: the provider waits until the standby is in sync
                # (catalogue: rds.multi-az-conversion-without-downtime).
                rds.modify_db_instance(DBInstanceIdentifier=identifier, MultiAZ=True, ApplyImmediately=True)
                applier.clock.charge(Op.RDS_MULTI_AZ_CONVERSION)
            if inputs.get("manageMasterUserPassword"):
                secret_key = inputs.get("masterUserSecretKmsKeyId")
                rds.modify_db_instance(
                    DBInstanceIdentifier=identifier,
                    ManageMasterUserPassword=True,
                    ApplyImmediately=True,
                    **({"MasterUserSecretKmsKeyId": secret_key} if secret_key else {}),
                )
            return f"promoted {identifier} to a standalone writer"
        return _not_applied(op)
    common: dict[str, Any] = {
        "DBInstanceIdentifier": identifier,
        "DBInstanceClass": inputs["instanceClass"],
        "DBParameterGroupName": inputs.get("parameterGroupName"),
        "KmsKeyId": inputs.get("kmsKeyId"),
    }
    common = {key: value for key, value in common.items() if value is not None}
    source = inputs.get("replicateSourceDb")
    if source:
        created = rds.create_db_instance_read_replica(
            **common, SourceDBInstanceIdentifier=source, SourceRegion=_source_region(source)
        )["DBInstance"]
        # The provider waits until the replica is available: a snapshot copied across regions, then restored.
        applier.clock.charge(Op.RDS_CREATE_CROSS_REGION_REPLICA)
        detail = f"created {identifier} as a cross-region replica of {source}"
    else:
        # As declared: an instance whose master password RDS manages cannot be a replica source
        # (catalogue: rds.replica-source-managed-password), and the sandbox refuses such a replica.
        # A declared password arrives as a secret (its value wrapped): moto only needs some string.
        password = (
            {"ManageMasterUserPassword": True}
            if inputs.get("manageMasterUserPassword")
            else {"MasterUserPassword": SANDBOX_DB_PASSWORD}
        )
        created = rds.create_db_instance(
            **common,
            **password,
            Engine=inputs.get("engine", "postgres"),
            EngineVersion=inputs.get("engineVersion"),
            MasterUsername=inputs.get("username", "dbadmin"),
            AllocatedStorage=int(inputs.get("allocatedStorage", 20)),
            StorageEncrypted=bool(inputs.get("storageEncrypted", False)),
            BackupRetentionPeriod=int(inputs.get("backupRetentionPeriod") or 0),
            DBName=inputs.get("dbName", "app"),
        )["DBInstance"]
        detail = f"created writer {identifier}"
    applier.ids.register(new, identifier, created["DBInstanceArn"])
    return detail


# --- S3 ----------------------------------------------------------------------------


@_handles("aws:s3/bucket:Bucket")
def _bucket(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if op != "create" or new is None:
        return _not_applied(op)
    name = new.inputs["bucket"]
    request: dict[str, Any] = {"Bucket": name}
    if new.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": new.region}
    applier.client("s3", new).create_bucket(**request)
    applier.ids.register(new, name, f"arn:aws:s3:::{name}")
    return f"created bucket {name}"


@_handles("aws:s3/bucketVersioning:BucketVersioning")
def _versioning(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if new is None:
        return _not_applied(op)
    status = new.inputs["versioningConfiguration"]["status"]
    applier.client("s3", new).put_bucket_versioning(
        Bucket=new.inputs["bucket"], VersioningConfiguration={"Status": status}
    )
    return f"versioning {status} on {new.inputs['bucket']}"


def _replication_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    destination = rule["destination"]
    converted: dict[str, Any] = {
        "ID": rule["id"],
        "Priority": int(rule.get("priority", 1)),
        "Status": rule["status"],
        "Filter": {"Prefix": (rule.get("filter") or {}).get("prefix", "")},
        "DeleteMarkerReplication": {"Status": (rule.get("deleteMarkerReplication") or {}).get("status", "Disabled")},
        "Destination": {"Bucket": destination["bucket"]},
    }
    # The KMS opt-in and delete markers decide what S3 copies (catalogue: s3.replication-of-sse-kms-needs-opt-in,
    # s3.delete-marker-replication): dropping them here would model a different rule.
    kms = ((rule.get("sourceSelectionCriteria") or {}).get("sseKmsEncryptedObjects") or {}).get("status")
    if kms:
        converted["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": kms}}
    replica_key = (destination.get("encryptionConfiguration") or {}).get("replicaKmsKeyId")
    if replica_key:
        converted["Destination"]["EncryptionConfiguration"] = {"ReplicaKmsKeyID": replica_key}
    if (destination.get("replicationTime") or {}).get("status") == "Enabled":
        converted["Destination"]["ReplicationTime"] = {"Status": "Enabled", "Time": {"Minutes": 15}}
    if (destination.get("metrics") or {}).get("status") == "Enabled":
        converted["Destination"]["Metrics"] = {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    return converted


@_handles("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
def _bucket_encryption(
    applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None
) -> str:
    """Default encryption decides whether an object is SSE-KMS, which replication must opt in to."""
    if new is None:
        return _not_applied(op)
    inputs = applier.inputs(new)
    rules = [
        {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"],
                **(
                    {"KMSMasterKeyID": rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]}
                    if rule["applyServerSideEncryptionByDefault"].get("kmsMasterKeyId")
                    else {}
                ),
            },
            "BucketKeyEnabled": bool(rule.get("bucketKeyEnabled", False)),
        }
        for rule in inputs["rules"]
    ]
    applier.client("s3", new).put_bucket_encryption(
        Bucket=inputs["bucket"], ServerSideEncryptionConfiguration={"Rules": rules}
    )
    return f"default encryption on {inputs['bucket']}"


@_handles("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
def _replication(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    resource = new or old
    assert resource is not None
    s3 = applier.client("s3", resource)
    if op == "delete" or new is None:
        s3.delete_bucket_replication(Bucket=resource.inputs["bucket"])
        return f"removed replication from {resource.inputs['bucket']}"
    inputs = applier.inputs(new)
    s3.put_bucket_replication(
        Bucket=inputs["bucket"],
        ReplicationConfiguration={"Role": inputs["role"], "Rules": [_replication_rule(r) for r in inputs["rules"]]},
    )
    return f"replication from {inputs['bucket']} to {', '.join(r['destination']['bucket'] for r in inputs['rules'])}"


# --- Route53 -------------------------------------------------------------------------


def _caller_reference(resource: DeclaredResource) -> str:
    return hashlib.sha256(resource.urn.encode()).hexdigest()[:32]


@_handles("aws:route53/zone:Zone")
def _zone(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if op != "create" or new is None:
        return _not_applied(op)
    zone = applier.client("route53", new).create_hosted_zone(
        Name=new.inputs["name"], CallerReference=_caller_reference(new)
    )["HostedZone"]
    zone_id = zone["Id"].rsplit("/", 1)[-1]
    applier.ids.register(new, zone_id)
    return f"created zone {new.inputs['name']} ({zone_id})"


@_handles("aws:route53/healthCheck:HealthCheck")
def _health_check(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if op != "create" or new is None:
        return _not_applied(op)
    inputs = applier.inputs(new)
    kind = inputs["type"]
    config: dict[str, Any] = {"Type": kind, "Inverted": bool(inputs.get("invertHealthcheck", False))}
    if kind == "CALCULATED":
        config.update(
            ChildHealthChecks=list(inputs.get("childHealthchecks", [])),
            HealthThreshold=int(inputs.get("childHealthThreshold", 0)),
        )
    elif kind == "CLOUDWATCH_METRIC":
        config.update(
            AlarmIdentifier={"Region": inputs["cloudwatchAlarmRegion"], "Name": inputs["cloudwatchAlarmName"]},
            InsufficientDataHealthStatus=inputs.get("insufficientDataHealthStatus", "LastKnownStatus"),
        )
    else:
        config.update(
            FullyQualifiedDomainName=inputs["fqdn"],
            Port=int(inputs.get("port", 443)),
            ResourcePath=inputs.get("resourcePath", "/"),
            RequestInterval=int(inputs.get("requestInterval", 30)),
            FailureThreshold=int(inputs.get("failureThreshold", 3)),
        )
    check = applier.client("route53", new).create_health_check(
        CallerReference=_caller_reference(new), HealthCheckConfig=config
    )["HealthCheck"]
    applier.ids.register(new, check["Id"])
    return f"created {kind} health check {check['Id']}"


def _record_set(applier: MotoApplier, resource: DeclaredResource) -> tuple[str, dict[str, Any]]:
    inputs = applier.inputs(resource)
    record: dict[str, Any] = {
        "Name": inputs["name"],
        "Type": inputs["type"],
        "TTL": int(inputs.get("ttl", 300)),
        "ResourceRecords": [{"Value": value} for value in inputs.get("records", [])],
    }
    if inputs.get("setIdentifier"):
        record["SetIdentifier"] = inputs["setIdentifier"]
    for policy in inputs.get("failoverRoutingPolicies") or []:
        record["Failover"] = policy["type"]
    if inputs.get("healthCheckId"):
        record["HealthCheckId"] = inputs["healthCheckId"]
    try:
        return applier.ids.dependency_id(resource, "aws:route53/zone:Zone"), record
    except LookupError:
        return _existing_zone(applier, resource, inputs["zoneId"]), record


def _existing_zone(applier: MotoApplier, resource: DeclaredResource, zone_id: str) -> str:
    """The operator's existing, delegated zone (config zoneId, or looked up by name): stood up in moto once."""
    if zone_id in applier.ids.substitutions.values():
        return zone_id
    zone = applier.client("route53", resource).create_hosted_zone(
        Name=applier.zone_name, CallerReference=f"existing-{zone_id}"
    )["HostedZone"]
    real_id = zone["Id"].rsplit("/", 1)[-1]
    applier.ids.substitutions[zone_id] = real_id
    return real_id


@_handles("aws:route53/record:Record")
def _record(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    resource = new or old
    assert resource is not None
    if op == "delete" or new is None:
        zone_id, record = _record_set(applier, resource)
        action = "DELETE"
    else:
        zone_id, record = _record_set(applier, new)
        action = "UPSERT"
    applier.client("route53", resource).change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": record}]}
    )
    # The provider waits until the change is INSYNC on every Route53 name server
    # (catalogue: route53.record-change-propagation).
    applier.clock.charge(Op.RECORD_PROPAGATION)
    return f"{action} {record['Name']} {record['Type']} {record.get('Failover', '')}".rstrip()


# --- EKS ---------------------------------------------------------------------------


def _scaling(inputs: Mapping[str, Any]) -> dict[str, int]:
    scaling = inputs["scalingConfig"]
    return {
        "minSize": int(scaling["minSize"]),
        "desiredSize": int(scaling["desiredSize"]),
        "maxSize": int(scaling["maxSize"]),
    }


@_handles("aws:eks/cluster:Cluster")
def _cluster(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if op != "create" or new is None:
        return _not_applied(op)
    inputs = applier.inputs(new)
    cluster = applier.client("eks", new).create_cluster(
        name=inputs["name"],
        version=inputs.get("version"),
        roleArn=inputs["roleArn"],
        resourcesVpcConfig={"subnetIds": inputs["vpcConfig"]["subnetIds"]},
    )["cluster"]
    applier.ids.register(new, inputs["name"], cluster["arn"])
    return f"created cluster {inputs['name']}"


@_handles("aws:eks/nodeGroup:NodeGroup")
def _node_group(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if new is None:
        return _not_applied(op)
    inputs = applier.inputs(new)
    eks = applier.client("eks", new)
    if op == "create":
        eks.create_nodegroup(
            clusterName=inputs["clusterName"],
            nodegroupName=inputs["nodeGroupName"],
            scalingConfig=_scaling(inputs),
            subnets=inputs["subnetIds"],
            nodeRole=inputs["nodeRoleArn"],
            instanceTypes=inputs.get("instanceTypes", []),
        )
        return f"created node group {inputs['nodeGroupName']} at {_scaling(inputs)['desiredSize']} nodes"
    if old is not None and _scaling(old.inputs) != _scaling(inputs):
        eks.update_nodegroup_config(
            clusterName=inputs["clusterName"], nodegroupName=inputs["nodeGroupName"], scalingConfig=_scaling(inputs)
        )
        # The provider waits for the update to succeed (the group ACTIVE again), not for the nodes.
        applier.clock.charge(Op.NODE_GROUP_UPDATE)
        return f"scaled node group {inputs['nodeGroupName']} to {_scaling(inputs)}"
    return _not_applied(op)


# --- ElastiCache -----------------------------------------------------------------------


@_handles("aws:elasticache/replicationGroup:ReplicationGroup")
def _replication_group(
    applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None
) -> str:
    if op != "create" or new is None:
        return _not_applied(op)
    inputs = applier.inputs(new)
    group_id = inputs["replicationGroupId"]
    applier.client("elasticache", new).create_replication_group(
        ReplicationGroupId=group_id,
        ReplicationGroupDescription=inputs.get("description", group_id),
        Engine="redis",
        # A secondary member inherits the node type from its global datastore.
        CacheNodeType=inputs.get("nodeType") or applier.cache_node_type,
        NumCacheClusters=int(inputs.get("numCacheClusters", 1)),
    )
    applier.ids.register(new, group_id)
    global_id = inputs.get("globalReplicationGroupId")
    if global_id:
        applier.simulated.join_datastore(global_id, new.region or "", group_id)
        return f"created group {group_id}, secondary member of {global_id} (simulated)"
    return f"created group {group_id}"


@_handles("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup")
def _global_datastore(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if op != "create" or new is None:
        # Its primary is in ignore_changes: failover happens through the API, never through the declaration.
        return _not_applied(op)
    inputs = applier.inputs(new)
    created = applier.client("elasticache", new).create_global_replication_group(
        GlobalReplicationGroupIdSuffix=inputs["globalReplicationGroupIdSuffix"],
        PrimaryReplicationGroupId=inputs["primaryReplicationGroupId"],
    )["GlobalReplicationGroup"]
    applier.ids.register(new, created["GlobalReplicationGroupId"])
    return f"created global datastore {created['GlobalReplicationGroupId']} (simulated)"


# --- alerting, backup ------------------------------------------------------------------


@_handles("aws:sns/topic:Topic")
def _topic(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if op != "create" or new is None:
        return _not_applied(op)
    arn = applier.client("sns", new).create_topic(Name=new.inputs["name"])["TopicArn"]
    applier.ids.register(new, arn, arn)
    return f"created topic {new.inputs['name']}"


@_handles("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    resource = new or old
    assert resource is not None
    cloudwatch = applier.client("cloudwatch", resource)
    if op == "delete" or new is None:
        cloudwatch.delete_alarms(AlarmNames=[resource.inputs["name"]])
        return f"deleted alarm {resource.inputs['name']}"
    inputs = applier.inputs(new)
    request: dict[str, Any] = {
        "AlarmName": inputs["name"],
        "ComparisonOperator": inputs["comparisonOperator"],
        "EvaluationPeriods": int(inputs["evaluationPeriods"]),
        "Threshold": float(inputs.get("threshold", 0)),
        "AlarmActions": inputs.get("alarmActions", []),
        "OKActions": inputs.get("okActions", []),
        "TreatMissingData": inputs.get("treatMissingData", "missing"),
    }
    if inputs.get("metricName"):
        request.update(
            MetricName=inputs["metricName"],
            Namespace=inputs["namespace"],
            Statistic=inputs.get("statistic", "Average"),
            Period=int(inputs["period"]),
            Dimensions=[{"Name": k, "Value": v} for k, v in (inputs.get("dimensions") or {}).items()],
        )
    else:
        request["Metrics"] = [_metric_query(query) for query in inputs.get("metricQueries") or []]
    cloudwatch.put_metric_alarm(**request)
    return f"put alarm {inputs['name']}"


def _metric_query(query: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"Id": query["id"], "ReturnData": bool(query.get("returnData", False))}
    if query.get("expression"):
        converted["Expression"] = query["expression"]
    metric = query.get("metric")
    if metric:
        converted["MetricStat"] = {
            "Metric": {
                "Namespace": metric["namespace"],
                "MetricName": metric["metricName"],
                "Dimensions": [{"Name": k, "Value": v} for k, v in (metric.get("dimensions") or {}).items()],
            },
            "Period": int(metric["period"]),
            "Stat": metric["stat"],
        }
    return converted


@_handles("aws:backup/vault:Vault")
def _vault(applier: MotoApplier, op: str, old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    if op != "create" or new is None:
        return _not_applied(op)
    inputs = applier.inputs(new)
    created = applier.client("backup", new).create_backup_vault(
        BackupVaultName=inputs["name"], EncryptionKeyArn=inputs.get("kmsKeyArn")
    )
    applier.ids.register(new, inputs["name"], created["BackupVaultArn"])
    return f"created vault {inputs['name']}"


APPLIED_TYPES = frozenset(_HANDLERS)
