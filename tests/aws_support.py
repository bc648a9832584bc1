"""Helpers shared by the boto3 tests: a clock that only moves when slept, and a moto database pair."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import boto3
import moto  # noqa: F401  (registers its request handler, which sessions pick up when they are created)

from automation.aws.clients import AwsClients, Timeouts
from automation.evaluate import stack_file_config
from components import naming
from components.config import PlatformConfig, parse_config

CFG: PlatformConfig = parse_config(stack_file_config("prod"))
PRIMARY, DR = CFG.primary_region, CFG.dr_region
WRITER_ID = naming.db_identifier(CFG, "primary", 1)
REPLICA_ID = naming.db_identifier(CFG, "dr", 1)
WRITER_PARAMS = naming.db_parameter_group_name(CFG, "primary", 1)
REPLICA_PARAMS = naming.db_parameter_group_name(CFG, "dr", 1)
CLUSTER, NODES = naming.cluster_name(CFG, "dr"), naming.node_group_name(CFG, "dr")
GLOBAL_ID = f"ldgnf-{naming.global_datastore_suffix(CFG)}"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": PRIMARY,
}


# One session for all tests keeps the loaded service models: a fresh one per test reloads them.
_SESSION = boto3.session.Session()


def shared_clients() -> AwsClients:
    return AwsClients(session=_SESSION)


def unreachable_clients() -> AwsClients:
    """Clients aimed at a local port nobody listens on: every call fails to connect at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return AwsClients(f"http://127.0.0.1:{port}", timeouts=Timeouts(connect_seconds=1, read_seconds=1, max_attempts=1))


def create_writer_and_replica(clients: AwsClients) -> str:
    """The steady-state pair: writer in the primary region, cross-region replica in DR. Returns the writer ARN."""
    primary, dr = clients.client("rds", PRIMARY), clients.client("rds", DR)
    for rds, group in ((primary, WRITER_PARAMS), (dr, REPLICA_PARAMS)):
        rds.create_db_parameter_group(
            DBParameterGroupName=group, DBParameterGroupFamily="postgres16", Description="dr-platform"
        )
    writer = primary.create_db_instance(
        DBInstanceIdentifier=WRITER_ID,
        Engine="postgres",
        DBInstanceClass="db.r6g.large",
        MasterUsername="dbadmin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=100,
        DBParameterGroupName=WRITER_PARAMS,
        BackupRetentionPeriod=7,
    )["DBInstance"]
    dr.create_db_instance_read_replica(
        DBInstanceIdentifier=REPLICA_ID,
        SourceDBInstanceIdentifier=writer["DBInstanceArn"],
        SourceRegion=PRIMARY,
        DBParameterGroupName=REPLICA_PARAMS,
    )
    return writer["DBInstanceArn"]


def put_metric(
    clients: AwsClients,
    region: str,
    namespace: str,
    name: str,
    dimensions: Mapping[str, str],
    points: list[tuple[datetime, float]],
) -> None:
    data: list[dict[str, Any]] = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            "Timestamp": at,
            "Value": value,
        }
        for at, value in points
    ]
    clients.client("cloudwatch", region).put_metric_data(Namespace=namespace, MetricData=data)


def put_replica_lag(clients: AwsClients, identifier: str, points: list[tuple[datetime, float]]) -> None:
    put_metric(clients, DR, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": identifier}, points)


def global_groups(primary_region: str, status: str = "available", dr_member: str = "associated") -> dict[str, Any]:
    members = [
        {
            "ReplicationGroupId": naming.cache_group_id(CFG, role),
            "ReplicationGroupRegion": CFG.region_of(role),
            "Role": "PRIMARY" if CFG.region_of(role) == primary_region else "SECONDARY",
            "Status": "associated" if role == "primary" else dr_member,
        }
        for role in ("primary", "dr")
    ]
    return {"GlobalReplicationGroups": [{"GlobalReplicationGroupId": GLOBAL_ID, "Status": status, "Members": members}]}


def create_node_group(aws: AwsClients) -> None:
    eks = aws.client("eks", DR)
    role = "arn:aws:iam::123456789012:role/eks"
    eks.create_cluster(name=CLUSTER, roleArn=role, resourcesVpcConfig={"subnetIds": ["subnet-1"]})
    standby = CFG.node_group_standby
    eks.create_nodegroup(
        clusterName=CLUSTER,
        nodegroupName=NODES,
        nodeRole=role,
        subnets=["subnet-1"],
        scalingConfig={"minSize": standby.min, "desiredSize": standby.desired, "maxSize": standby.max},
    )
