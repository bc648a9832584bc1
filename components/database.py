"""RDS PostgreSQL in both regions: the writer, its cross-region replica, and retained generations.

Which instances exist and which of them replicate from which is a pure
function of the config (`plan_instances`), so drctl and the sandbox compute
exactly what the program declares. A generation is one RDS instance for its
whole life: it is created either as the writer (only the primary's generation
1) or as a cross-region read replica, and keeps that creation's argument set.
A replica is promoted by dropping `replicate_source_db`; it never becomes a
replica again, so failback builds a new generation instead.

The master credential is the program's, not RDS's: every standalone instance
is a replica source at some point, and RDS refuses a replica of a source that
manages its password in Secrets Manager. One generated password, kept only as
a Pulumi secret, is declared on every standalone instance; a replica inherits
it from its source, so a promoted replica already has exactly the declared
value. Applications and drctl read it from a Secrets Manager secret in the
primary region that Secrets Manager replicates to the DR region.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config import ROLES, ConfigError, DrState, PlatformConfig
from components.encryption import RegionalKey
from components.naming import db_identifier, db_master_secret_name, db_parameter_group_name, db_subnet_group_name
from components.network import POSTGRES_PORT, Network

ENGINE = "postgres"
LOG_EXPORTS = ("postgresql", "upgrade")
# rds.force_ssl refuses unencrypted connections. default_transaction_read_only is
# left out on purpose: drctl sets it during a graceful switchover, and a declared
# value would be put back by the next update.
PARAMETERS = {"rds.force_ssl": "1"}
MASTER_PASSWORD_LENGTH = 40
"""Letters and digits only: RDS refuses `/`, `"`, `@` and spaces, and URIs choke on much of the rest."""
REPLICA_COPY_GIB_PER_HOUR = 50
"""catalogue: rds.cross-region-replica-creation-time (an estimate: snapshot, cross-region copy, restore)."""
WRITER_CREATE_TIMEOUT = "2h"
DELETE_TIMEOUT = "2h"
"""Deleting takes a final snapshot of the whole volume first."""


@dataclass(frozen=True)
class PlannedInstance:
    """One RDS instance the program declares."""

    role: str
    generation: int
    identifier: str
    created_as_replica: bool
    source: tuple[str, int] | None
    """(role, generation) of the instance it replicates from; None when standalone."""
    retained: bool
    """A former generation kept for forensics, no longer serving."""

    @property
    def is_replica(self) -> bool:
        return self.source is not None


def other_role(role: str) -> str:
    return ROLES[1 - ROLES.index(role)]


def created_as_replica(role: str, generation: int) -> bool:
    """Only the primary's first generation was ever created as a writer."""
    return not (role == "primary" and generation == 1)


def current_is_replica(cfg: PlatformConfig, role: str) -> bool:
    """Whether the role's current generation is declared as a replica of the other region.

    The standby region replicates from the active one, except after a failover:
    the failed primary keeps its steady-state declaration, so that neither a
    targeted nor a full update has anything to do in the failed region.
    """
    return role == cfg.standby_role and cfg.dr_state is not DrState.FAILED_OVER


def plan_instances(cfg: PlatformConfig) -> list[PlannedInstance]:
    """Every instance to declare: per role, the retained generations and the current one."""
    planned = []
    for role in ROLES:
        settings = cfg.regions[role]
        for generation in settings.db_retained_generations:
            planned.append(
                PlannedInstance(
                    role=role,
                    generation=generation,
                    identifier=db_identifier(cfg, role, generation),
                    created_as_replica=created_as_replica(role, generation),
                    source=None,
                    retained=True,
                )
            )
        generation = settings.db_generation
        source = None
        if current_is_replica(cfg, role):
            _check_can_replicate(cfg, role)
            source = (other_role(role), cfg.regions[other_role(role)].db_generation)
        planned.append(
            PlannedInstance(
                role=role,
                generation=generation,
                identifier=db_identifier(cfg, role, generation),
                created_as_replica=created_as_replica(role, generation),
                source=source,
                retained=False,
            )
        )
    return planned


def _check_can_replicate(cfg: PlatformConfig, role: str) -> None:
    """A generation that has been a writer cannot be turned back into a replica."""
    generation = cfg.regions[role].db_generation
    if not created_as_replica(role, generation):
        raise ConfigError(
            f"dbGeneration.{role}",
            f"generation {generation} was created as the writer and cannot become a replica; "
            f"raise dbGeneration.{role} and list {generation} in dbRetainedGenerations.{role}",
        )
    # Every failover promotes the DR generation and every failback raises the
    # primary's; a DR generation older than the primary's has been promoted.
    if role == "dr" and generation < cfg.regions["primary"].db_generation:
        raise ConfigError(
            "dbGeneration.dr",
            f"generation {generation} was promoted during the last failover and cannot replicate again; "
            f"after a failback raise dbGeneration.dr (to at least {cfg.regions['primary'].db_generation}) "
            f"and list {generation} in dbRetainedGenerations.dr",
        )


def instance_timeouts(cfg: PlatformConfig, planned: PlannedInstance) -> pulumi.CustomTimeouts:
    """Sized to the data: the provider's defaults (create 50 min, update 80 min) end long before a
    cross-region replica of a large database exists, and leave the update half done in the state.

    Only creation and config decide them, so they are the same in every DR state.
    """
    # catalogue: rds.cross-region-replica-creation-time
    copy_hours = 2 + math.ceil(cfg.db_max_allocated_storage_gb / REPLICA_COPY_GIB_PER_HOUR)
    sized = f"{copy_hours}h"
    return pulumi.CustomTimeouts(
        create=sized if planned.created_as_replica else WRITER_CREATE_TIMEOUT,
        # Promotion, storage and class changes all scale with the volume.
        update=sized,
        delete=DELETE_TIMEOUT,
    )


def role_label(cfg: PlatformConfig, planned: PlannedInstance) -> str:
    """`writer` (serving), `replica`, or `detached`: the failed primary, standalone but not serving."""
    if planned.is_replica:
        return "replica"
    return "writer" if planned.role == cfg.active_role else "detached"


class DatabaseArgs(TypedDict):
    config: PlatformConfig
    providers: Mapping[str, aws.Provider]
    networks: Mapping[str, Network]
    keys: Mapping[str, RegionalKey]


class Database(pulumi.ComponentResource):
    """Both regions' instances, since a replica names its cross-region source."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:data:Database", name, None, opts)
        cfg = args["config"]
        subnet_groups: dict[str, aws.rds.SubnetGroup] = {}
        for role in ROLES:
            in_region = pulumi.ResourceOptions(parent=self, provider=args["providers"][role])
            subnet_groups[role] = aws.rds.SubnetGroup(
                f"{name}-{role}",
                name=db_subnet_group_name(cfg, role),
                description=f"dr-platform database, data subnets of {cfg.region_of(role)}",
                subnet_ids=args["networks"][role].data_subnet_ids,
                opts=in_region,
            )

        # catalogue: rds.master-password-characters
        self.master_password = random.RandomPassword(
            f"{name}-master-password",
            length=MASTER_PASSWORD_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        password = pulumi.Output.secret(self.master_password.result)
        self.master_secret = _master_secret(name, cfg, args, password, self)

        plan = plan_instances(cfg)
        self.instances: dict[tuple[str, int], aws.rds.Instance] = {}
        # Sources first: a replica's source is always a standalone instance.
        for planned in sorted(plan, key=lambda p: p.is_replica):
            source = self.instances[planned.source] if planned.source else None
            # One group per generation (W4): failback resets the read-only default on the new writer's group
            # only, never on a retained former writer's. Moving an instance to another group is an in-place
            # modification (automation/data/replace_rules.json), applied at its next restart.
            parameter_group = aws.rds.ParameterGroup(
                f"{name}-{planned.role}-g{planned.generation}",
                name=db_parameter_group_name(cfg, planned.role, planned.generation),
                family=f"{ENGINE}{cfg.db_engine_version.split('.')[0]}",
                description="dr-platform PostgreSQL settings",
                parameters=[aws.rds.ParameterGroupParameterArgs(name=k, value=v) for k, v in PARAMETERS.items()],
                opts=pulumi.ResourceOptions(parent=self, provider=args["providers"][planned.role]),
            )
            self.instances[(planned.role, planned.generation)] = aws.rds.Instance(
                f"{name}-{planned.role}-g{planned.generation}",
                **_instance_args(
                    cfg,
                    planned,
                    key=args["keys"][planned.role],
                    network=args["networks"][planned.role],
                    subnet_group=subnet_groups[planned.role],
                    parameter_group=parameter_group,
                    source=source,
                    password=password,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args["providers"][planned.role],
                    # Losing an instance loses data; a deleted declaration leaves it in AWS.
                    protect=True,
                    retain_on_delete=True,
                    custom_timeouts=instance_timeouts(cfg, planned),
                ),
            )

        current = {p.role: p for p in plan if not p.retained}
        # What AWS Backup can select: it cannot back up a read replica.
        self.standalone = {
            role: self.instances[(p.role, p.generation)] for role, p in current.items() if not p.is_replica
        }
        self.addresses = {role: self.instances[(role, p.generation)].address for role, p in current.items()}
        """Per role, the host name of the region's current instance (the heartbeat's writer)."""
        self.summary = {
            cfg.region_of(role): {
                "identifier": planned.identifier,
                "arn": self.instances[(role, planned.generation)].arn,
                "endpoint": self.instances[(role, planned.generation)].endpoint,
                "role": role_label(cfg, planned),
                "generation": planned.generation,
                "sourceArn": self.instances[planned.source].arn if planned.source else None,
                "retained": [p.identifier for p in plan if p.role == role and p.retained],
            }
            for role, planned in current.items()
        }
        self.credentials = {
            "secretName": self.master_secret.name,
            "secretArn": self.master_secret.arn,
            "regions": [cfg.primary_region, cfg.dr_region],
        }
        self.register_outputs({"summary": self.summary, "credentials": self.credentials})


def _master_secret(
    name: str, cfg: PlatformConfig, args: DatabaseArgs, password: pulumi.Output[str], parent: pulumi.Resource
) -> aws.secretsmanager.Secret:
    """The master credential where applications and drctl read it, in both regions.

    Created in the primary region and replicated by Secrets Manager to the DR region, each copy
    encrypted with its own region's key. Nothing in it depends on the DR state (no endpoint: that
    moves), so no transition touches it and a failover update has nothing to do in the failed region.
    """
    in_primary = pulumi.ResourceOptions(parent=parent, provider=args["providers"]["primary"])
    secret = aws.secretsmanager.Secret(
        f"{name}-master-secret",
        name=db_master_secret_name(cfg),
        description="dr-platform PostgreSQL master credential (generated by the program; rotate with pulumi up)",
        kms_key_id=args["keys"]["primary"].arn,
        # catalogue: secretsmanager.replica-readable-in-its-region
        # catalogue: kms.key-is-regional (each copy with its own region's key)
        replicas=[aws.secretsmanager.SecretReplicaArgs(region=cfg.dr_region, kms_key_id=args["keys"]["dr"].arn)],
        recovery_window_in_days=30,
        opts=pulumi.ResourceOptions.merge(in_primary, pulumi.ResourceOptions(protect=True, retain_on_delete=True)),
    )
    aws.secretsmanager.SecretVersion(
        f"{name}-master-secret-value",
        secret_id=secret.id,
        secret_string=pulumi.Output.secret(
            pulumi.Output.json_dumps(
                {
                    "engine": ENGINE,
                    "username": cfg.db_master_username,
                    "password": password,
                    "dbname": cfg.db_name,
                    "port": POSTGRES_PORT,
                }
            )
        ),
        opts=in_primary,
    )
    return secret


def _instance_args(
    cfg: PlatformConfig,
    planned: PlannedInstance,
    *,
    key: RegionalKey,
    network: Network,
    subnet_group: aws.rds.SubnetGroup,
    parameter_group: aws.rds.ParameterGroup,
    source: aws.rds.Instance | None,
    password: pulumi.Output[str],
) -> dict[str, Any]:
    args: dict[str, Any] = {
        "identifier": planned.identifier,
        "engine": ENGINE,
        "engine_version": cfg.db_engine_version,
        "instance_class": cfg.db_instance_class,
        "allocated_storage": cfg.db_allocated_storage_gb,
        "max_allocated_storage": cfg.db_max_allocated_storage_gb,
        "storage_type": "gp3",
        "storage_encrypted": True,
        # catalogue: rds.replica-kms-key-in-own-region
        "kms_key_id": key.arn,
        # A pilot-light standby replica runs Single-AZ; a writer (a promoted replica too) always Multi-AZ: the
        # promotion's update converts it (catalogue: rds.multi-az-conversion-without-downtime).
        "multi_az": not planned.is_replica or cfg.standby_database_multi_az,
        "db_subnet_group_name": subnet_group.name,
        "vpc_security_group_ids": [network.database_security_group.id],
        "parameter_group_name": parameter_group.name,
        "publicly_accessible": False,
        "deletion_protection": True,
        "copy_tags_to_snapshot": True,
        "performance_insights_enabled": True,
        "performance_insights_kms_key_id": key.arn,
        "performance_insights_retention_period": cfg.db_performance_insights_retention_days,
        "enabled_cloudwatch_logs_exports": list(LOG_EXPORTS),
        "auto_minor_version_upgrade": True,
        # RDS refuses a final snapshot when it deletes a read replica: a replica (whose data is its
        # source's) goes without one, a standalone instance with one. The provider only reads these
        # when it deletes, so a promotion changes them without an API call.
        # catalogue: rds.delete-replica-refuses-final-snapshot
        "skip_final_snapshot": planned.is_replica,
        "final_snapshot_identifier": None if planned.is_replica else f"{planned.identifier}-final",
        "delete_automated_backups": False,
        # Every instance keeps automated backups, replicas too (PostgreSQL 14.1+, checked in config):
        # promotion then changes no retention, which would cost an outage inside the RTO.
        # catalogue: rds.postgres-replica-automated-backups
        # catalogue: rds.replica-source-needs-backups (a replica is the next failover's source)
        "backup_retention_period": cfg.db_backup_retention_days,
        # Apart from the AWS Backup plans' windows and from each other (validated in config).
        # catalogue: rds.backup-and-maintenance-windows
        "backup_window": cfg.db_backup_window,
        "maintenance_window": cfg.db_maintenance_window,
        # catalogue: rds.modify-waits-for-maintenance-window
        # Every change this program makes must land when the update runs: the settings a promoted
        # replica gains, a rotated password, a class the replica needs to take the writer's load.
        "apply_immediately": True,
    }
    if source is not None:
        # catalogue: rds.replica-cannot-change-source (only dropping it, to promote, is in place)
        args["replicate_source_db"] = source.arn
        return args
    # Standalone: the program's master password. For a promoted replica, the provider
    # promotes first (passing the unchanged retention to PromoteReadReplica) and modifies
    # the rest afterwards; the password it sends is the one the replica inherited.
    # catalogue: rds.replica-source-managed-password
    # catalogue: rds.replica-inherits-master-credentials (the value a promoted replica already has)
    args["password"] = password
    if not planned.created_as_replica:
        # Creation-only arguments: a replica inherits them, and adding them to a
        # promoted replica would replace it.
        args["db_name"] = cfg.db_name
        args["username"] = cfg.db_master_username
    return args
