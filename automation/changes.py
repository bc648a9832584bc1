"""What a change of config does to the stack: the change set between two evaluations.

`diff` compares two offline evaluations of the program (before and after a
config change, e.g. a DR transition) resource by resource and predicts the
engine's operation for each: create, update, replace, delete or same. Whether
an update becomes a replacement is decided here from `FORCE_NEW`, a per-type
table of the properties the AWS provider cannot change in place. It is an
approximation of the provider's own diff, kept to the types that matter for
this platform; the real `pulumi preview` (and `drctl guard` on it) is the
authority in CI.

`STATEFUL_TYPES` is the one definition of "a resource that holds data" used by
the change set, the preview guard, `drctl plan` and the policy pack's docs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from automation.evaluate import GLOBAL, DeclaredResource, Evaluation

# Types whose replacement or deletion loses data or takes longer to rebuild
# than the RTO allows. The value says what would be lost (shown in warnings).
STATEFUL_TYPES: Mapping[str, str] = {
    "aws:rds/instance:Instance": "database instance and its automated backups",
    "aws:rds/cluster:Cluster": "database cluster and its automated backups",
    "aws:rds/globalCluster:GlobalCluster": "cross-region database topology",
    "aws:s3/bucket:Bucket": "bucket and every object version in it",
    "aws:s3/bucketV2:BucketV2": "bucket and every object version in it",
    "aws:backup/vault:Vault": "backup vault and its recovery points",
    "aws:backup/logicallyAirGappedVault:LogicallyAirGappedVault": "backup vault and its recovery points",
    "aws:elasticache/replicationGroup:ReplicationGroup": "cache data (sessions, queues)",
    "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup": "cross-region cache replication",
    "aws:elasticache/cluster:Cluster": "cache data",
    "aws:kms/key:Key": "the key that decrypts every backup, snapshot and object encrypted with it",
    "aws:kms/replicaKey:ReplicaKey": "the key that decrypts every backup, snapshot and object encrypted with it",
    "aws:route53/zone:Zone": "hosted zone, its records and its delegated name servers",
    # A cluster is not a data store, but replacing it wipes etcd (everything
    # deployed into it, persistent volume claims included) and takes 10-15
    # minutes to rebuild: on its own longer than the 15-minute RTO budget.
    "aws:eks/cluster:Cluster": "cluster state (etcd, workloads, volume claims); rebuild exceeds the RTO",
    "kubernetes:core/v1:PersistentVolumeClaim": "volume data (Prometheus/Grafana history)",
}


def is_stateful(type_token: str) -> bool:
    return type_token in STATEFUL_TYPES


# Every pulumi-aws v7 resource takes `region`; a resource cannot move regions
# in place, so a changed region is a new resource whatever its type.
REGION_PROPERTY = "region"

# Properties the AWS provider marks ForceNew (terraform-provider-aws schemas,
# from which pulumi-aws is generated), as camelCase wire names. Limited to the
# stateful types and to the records/configs the platform declares. Checked
# against internal/service/<service>/<resource>.go; notable non-entries:
#   rds Instance `dbSubnetGroupName`, `replicateSourceDb`, `engineVersion`,
#     `instanceClass`: updated in place (dropping replicateSourceDb promotes);
#   route53 Record `type`, `setIdentifier`: the provider rewrites the record
#     set in one change batch instead of replacing the resource;
#   elasticache ReplicationGroup `transitEncryptionEnabled`: updatable.
FORCE_NEW: Mapping[str, frozenset[str]] = {
    "aws:rds/instance:Instance": frozenset(
        {
            "identifier",
            "identifierPrefix",
            "engine",
            "kmsKeyId",
            "storageEncrypted",
            "availabilityZone",
            "username",
            "dbName",
            "characterSetName",
            "ncharCharacterSetName",
            "timezone",
            "snapshotIdentifier",
            "restoreToPointInTime",
            "s3Import",
            "customIamInstanceProfile",
        }
    ),
    "aws:rds/cluster:Cluster": frozenset(
        {
            "clusterIdentifier",
            "engine",
            "kmsKeyId",
            "storageEncrypted",
            "masterUsername",
            "databaseName",
            "availabilityZones",
            "snapshotIdentifier",
            "restoreToPointInTime",
        }
    ),
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
    "aws:s3/bucketV2:BucketV2": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
    "aws:backup/vault:Vault": frozenset({"name", "kmsKeyArn"}),
    "aws:elasticache/replicationGroup:ReplicationGroup": frozenset(
        {
            "replicationGroupId",
            "atRestEncryptionEnabled",
            "kmsKeyId",
            "globalReplicationGroupId",
            "subnetGroupName",
            "port",
            "networkType",
            "dataTieringEnabled",
            "snapshotArns",
            "snapshotName",
            "securityGroupNames",
        }
    ),
    # Changing the primary through the resource replaces the global datastore
    # (terraform-provider-aws #46121): failover goes through the API instead.
    "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup": frozenset(
        {"globalReplicationGroupIdSuffix", "primaryReplicationGroupId"}
    ),
    "aws:kms/key:Key": frozenset({"customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"}),
    "aws:route53/zone:Zone": frozenset({"name", "delegationSetId"}),
    "aws:route53/record:Record": frozenset({"name", "zoneId"}),
    "aws:route53/healthCheck:HealthCheck": frozenset({"requestInterval", "measureLatency", "referenceName"}),
    "aws:eks/cluster:Cluster": frozenset({"name", "roleArn", "bootstrapSelfManagedAddons", "outpostConfig"}),
    "aws:eks/nodeGroup:NodeGroup": frozenset(
        {
            "clusterName",
            "nodeGroupName",
            "nodeGroupNamePrefix",
            "nodeRoleArn",
            "subnetIds",
            "instanceTypes",
            "capacityType",
            "diskSize",
            "amiType",
            "remoteAccess",
        }
    ),
}


class Operation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    SAME = "same"


DESTRUCTIVE = frozenset({Operation.REPLACE, Operation.DELETE})


@dataclass(frozen=True)
class Change:
    """The predicted operation on one resource."""

    urn: str
    type: str
    name: str
    region: str
    operation: Operation
    changed: tuple[str, ...] = ()
    replace_reasons: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False

    @property
    def stateful(self) -> bool:
        return is_stateful(self.type)

    @property
    def at_risk(self) -> bool:
        """A stateful resource that would be replaced or deleted."""
        return self.stateful and self.operation in DESTRUCTIVE

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "region": self.region,
            "operation": self.operation.value,
            "changed": list(self.changed),
            "replaceReasons": list(self.replace_reasons),
            "stateful": self.stateful,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
        }


@dataclass(frozen=True)
class ChangeSet:
    changes: tuple[Change, ...]

    def effective(self) -> list[Change]:
        """Everything except `same`."""
        return [c for c in self.changes if c.operation is not Operation.SAME]

    def at_risk(self) -> list[Change]:
        return [c for c in self.changes if c.at_risk]

    def counts(self) -> dict[str, int]:
        counted = Counter(c.operation.value for c in self.changes)
        return {op.value: counted.get(op.value, 0) for op in Operation}

    def in_region(self, region: str) -> list[Change]:
        return [c for c in self.changes if c.region == region]


def urn_type(urn: str) -> str:
    """`urn:pulumi:stack::project::parent$type::name` -> `type`."""
    parts = urn.split("::", 3)
    return parts[2].rsplit("$", 1)[-1] if len(parts) == 4 else ""


def urn_name(urn: str) -> str:
    parts = urn.split("::", 3)
    return parts[3] if len(parts) == 4 else urn


def region_label(resource: DeclaredResource) -> str:
    """The resource's region, `global` when it has none (as the inventory counts it)."""
    return resource.region or GLOBAL


def diff(before: Evaluation, after: Evaluation) -> ChangeSet:
    """Predict the engine's operation on every cloud resource (components are left out)."""
    old = {r.urn: r for r in before.resources if r.custom}
    new = {r.urn: r for r in after.resources if r.custom}
    changes = [_compare(old.get(urn), new[urn]) for urn in new]
    changes += [_deleted(old[urn]) for urn in old if urn not in new]
    return ChangeSet(tuple(sorted(changes, key=lambda c: (c.region, c.type, c.name))))


def _deleted(resource: DeclaredResource) -> Change:
    return Change(
        urn=resource.urn,
        type=resource.type,
        name=resource.name,
        region=region_label(resource),
        operation=Operation.DELETE,
        protect=resource.protect,
        retain_on_delete=resource.retain_on_delete,
    )


def _compare(old: DeclaredResource | None, new: DeclaredResource) -> Change:
    common = {
        "urn": new.urn,
        "type": new.type,
        "name": new.name,
        "region": region_label(new),
        "protect": new.protect,
        "retain_on_delete": new.retain_on_delete,
    }
    if old is None:
        return Change(operation=Operation.CREATE, **common)
    changed = changed_properties(old.inputs, new.inputs, new.ignore_changes)
    reasons = replace_reasons(new.type, changed, new.replace_on_changes)
    if reasons:
        operation = Operation.REPLACE
    elif changed:
        operation = Operation.UPDATE
    else:
        operation = Operation.SAME
    return Change(operation=operation, changed=changed, replace_reasons=reasons, **common)


def changed_properties(
    old: Mapping[str, Any], new: Mapping[str, Any], ignore_changes: Iterable[str] = ()
) -> tuple[str, ...]:
    """Top-level input names whose values differ, once `ignore_changes` paths are masked."""
    paths = [_parse_path(p) for p in ignore_changes]
    changed = []
    for key in sorted(set(old) | set(new)):
        masked = [path[1:] for path in paths if path and path[0] in (key, "*")]
        if () in masked:
            continue  # the whole property is ignored
        if _masked(old.get(key), masked) != _masked(new.get(key), masked):
            changed.append(key)
    return tuple(changed)


def replace_reasons(type_token: str, changed: Iterable[str], replace_on_changes: Iterable[str] = ()) -> tuple[str, ...]:
    """The changed properties that force a new resource (provider table or `replace_on_changes`)."""
    forced = FORCE_NEW.get(type_token, frozenset()) | {REGION_PROPERTY}
    requested = {_parse_path(p)[0] for p in replace_on_changes if p}
    return tuple(p for p in changed if p in forced or p in requested or "*" in requested)


_PATH_TOKEN = re.compile(r'\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|([^.\[\]]+)')


def _parse_path(path: str) -> tuple[str | int, ...]:
    """`tags["Name"]`, `rules[0].cidr`, `tags.Name` -> path elements."""
    elements: list[str | int] = []
    for index, quoted, plain in _PATH_TOKEN.findall(path):
        if index:
            elements.append(int(index))
        else:
            elements.append(quoted or plain)
    return tuple(elements)


def _masked(value: Any, paths: list[tuple[str | int, ...]]) -> Any:
    """`value` without the parts under `paths` (so ignored nested changes compare equal)."""
    if not paths:
        return value
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            below = [p[1:] for p in paths if p and p[0] in (key, "*")]
            if () not in below:
                result[key] = _masked(item, below)
        return result
    if isinstance(value, list):
        result_list = []
        for index, item in enumerate(value):
            below = [p[1:] for p in paths if p and p[0] in (index, "*")]
            result_list.append(None if () in below else _masked(item, below))
        return result_list
    return value
