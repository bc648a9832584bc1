"""ElastiCache for Redis in both regions, joined by a Global Datastore.

The primary role's replication group seeds the datastore: it carries the
engine, node type and encryption settings, and the datastore is created from
it. The DR role's group joins as a secondary and declares only what a member
may set itself. These roles are fixed for the life of the datastore, whatever
the DR state: membership (`global_replication_group_id`) forces replacement
when it changes, and the datastore's `primary_replication_group_id` forces
replacement of the whole datastore (terraform-provider-aws #46121). Which
group is the writer is moved by drctl with FailoverGlobalReplicationGroup;
the declarations ignore the attributes that call changes, so no DR state
change ever plans a replacement, deletion or update of the cache tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.network import REDIS_PORT

SEED_ROLE = "primary"
"""The role whose group created the datastore and is declared as its primary."""

# Once a group belongs to a datastore, the datastore owns these: a member's
# ModifyReplicationGroup for them is refused, so the seed declares them for
# creation only and later changes go through the datastore's own arguments.
# catalogue: elasticache.global-datastore-member-inherits
_OWNED_BY_DATASTORE = ["nodeType", "engineVersion"]


class CacheRegionArgs(TypedDict):
    provider: aws.Provider
    group_id: str
    subnet_group_name: str
    auth_secret_name: str
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]


class CacheArgs(TypedDict):
    regions: Mapping[str, CacheRegionArgs]
    """Keyed by role; must hold SEED_ROLE and one other role."""
    global_datastore_suffix: str
    node_type: str
    engine_version: str
    replicas_per_group: int
    snapshot_retention_days: int


class Cache(pulumi.ComponentResource):
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        regions = args["regions"]
        if SEED_ROLE not in regions or len(regions) != 2:
            raise ValueError(f"Cache needs the {SEED_ROLE} role and one other, got {sorted(regions)}")
        super().__init__("dr-platform:cache:Cache", name, None, opts)
        member_role = next(role for role in regions if role != SEED_ROLE)

        # A Global Datastore supports AUTH tokens (AuthTokenEnabled); both
        # members must carry the same one. Generated here so that no secret
        # lives in code or stack config; Pulumi keeps it encrypted in state.
        self.auth_token = random.RandomPassword(
            f"{name}-auth-token",
            length=64,
            special=False,  # AUTH tokens refuse some punctuation; letters and digits avoid the question
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        token = pulumi.Output.secret(self.auth_token.result)

        self.subnet_groups = {
            role: aws.elasticache.SubnetGroup(
                f"{name}-subnets-{role}",
                name=region["subnet_group_name"],
                description="Data-tier subnets for the Redis replication group",
                subnet_ids=list(region["subnet_ids"]),
                opts=self._in(region),
            )
            for role, region in regions.items()
        }
        # What both members set; a secondary may set each of them itself (the console's list of its own settings),
        # automatic failover included as a declaration only (the provider does not send it for a member).
        replicas = {
            "num_cache_clusters": 1 + args["replicas_per_group"],
            "automatic_failover_enabled": True,
            "snapshot_retention_limit": args["snapshot_retention_days"],
            "port": REDIS_PORT,
        }

        seed = regions[SEED_ROLE]
        seed_group = aws.elasticache.ReplicationGroup(
            f"{name}-{SEED_ROLE}",
            replication_group_id=seed["group_id"],
            description="Redis, seed and initial primary of the global datastore",
            engine="redis",
            engine_version=args["engine_version"],
            node_type=args["node_type"],
            at_rest_encryption_enabled=True,
            kms_key_id=seed["kms_key_arn"],
            transit_encryption_enabled=True,
            auth_token=token,
            subnet_group_name=self.subnet_groups[SEED_ROLE].name,
            security_group_ids=[seed["security_group_id"]],
            multi_az_enabled=True,
            **replicas,
            opts=self._in(seed, protect=True, retain_on_delete=True, ignore_changes=_OWNED_BY_DATASTORE),
        )

        self.global_datastore = aws.elasticache.GlobalReplicationGroup(
            f"{name}-global",
            global_replication_group_id_suffix=args["global_datastore_suffix"],
            global_replication_group_description="Redis replicated between the primary and DR regions",
            primary_replication_group_id=seed_group.replication_group_id,
            cache_node_type=args["node_type"],
            engine_version=args["engine_version"],
            automatic_failover_enabled=True,
            # Created in the seed's region (the API requires it) and read there; after a
            # FailoverGlobalReplicationGroup the actual primary differs from this declaration,
            # which would otherwise plan a replacement of the datastore.
            # catalogue: elasticache.global-datastore-primary-change-replaces
            opts=self._in(seed, protect=True, ignore_changes=["primaryReplicationGroupId"]),
        )

        member = regions[member_role]
        member_group = aws.elasticache.ReplicationGroup(
            f"{name}-{member_role}",
            replication_group_id=member["group_id"],
            description="Redis, secondary member of the global datastore",
            # Engine, version, node type, parameter group and both encryption switches
            # come from the datastore; declaring them on a member is refused.
            global_replication_group_id=self.global_datastore.global_replication_group_id,
            kms_key_id=member["kms_key_arn"],
            auth_token=token,
            subnet_group_name=self.subnet_groups[member_role].name,
            security_group_ids=[member["security_group_id"]],
            **replicas,
            # Multi-AZ comes from the datastore: not sent at creation (AWS lists it neither among a secondary's
            # own settings nor among the inferred ones), and not fought over afterwards.
            # catalogue: elasticache.global-datastore-member-inherits
            opts=self._in(member, protect=True, retain_on_delete=True, ignore_changes=["multiAzEnabled"]),
        )
        self.groups = {SEED_ROLE: seed_group, member_role: member_group}

        # Applications read the token and their region's endpoints from their own
        # region's secret, so nothing they need at failover lives in the other region.
        self.auth_secrets = {}
        for role, region in regions.items():
            secret = aws.secretsmanager.Secret(
                f"{name}-auth-{role}",
                name=region["auth_secret_name"],
                description="Redis AUTH token and endpoints of this region's replication group",
                kms_key_id=region["kms_key_arn"],
                opts=self._in(region),
            )
            group = self.groups[role]
            aws.secretsmanager.SecretVersion(
                f"{name}-auth-{role}-value",
                secret_id=secret.id,
                secret_string=pulumi.Output.json_dumps(
                    {
                        "authToken": token,
                        "primaryEndpoint": group.primary_endpoint_address,
                        "readerEndpoint": group.reader_endpoint_address,
                        "port": REDIS_PORT,
                        "tls": True,
                    }
                ),
                opts=self._in(region),
            )
            self.auth_secrets[role] = secret

        self.seed_role = SEED_ROLE
        self.global_datastore_id = self.global_datastore.global_replication_group_id
        self.group_ids = {role: group.replication_group_id for role, group in self.groups.items()}
        self.register_outputs(
            {
                "global_datastore_id": self.global_datastore_id,
                "group_ids": self.group_ids,
                "auth_secret_arns": {role: secret.arn for role, secret in self.auth_secrets.items()},
            }
        )

    def _in(self, region: CacheRegionArgs, **options: object) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=region["provider"], **options)
