"""RDS PostgreSQL in both regions: the writer, its cross-region replica, and retained generations.

Which instances exist and which of them replicate from which is a pure
function of the config (`plan_instances`), so drctl and the sandbox compute
exactly what the program declares. A generation is one RDS instance for its
whole life: it is created either as the writer (only the primary's generation
1) or as a cross-region read replica, and keeps that creation's argument set.
A replica is promoted by dropping `replicate_source_db`; it never becomes a
replica again, so failback builds a new generation instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import pulumi
import pulumi_aws as aws

from components.config import ROLES, ConfigError, DrState, PlatformConfig
from components.encryption import RegionalKey
from components.naming import db_identifier, db_parameter_group_name, db_subnet_group_name
from components.network import Network

ENGINE = "postgres"
LOG_EXPORTS = ("postgresql", "upgrade")
# rds.force_ssl refuses unencrypted connections. default_transaction_read_only is
# left out on purpose: drctl sets it during a graceful switchover, and a declared
# value would be put back by the next update.
PARAMETERS = {"rds.force_ssl": "1"}


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
        parameter_groups: dict[str, aws.rds.ParameterGroup] = {}
        for role in ROLES:
            in_region = pulumi.ResourceOptions(parent=self, provider=args["providers"][role])
            subnet_groups[role] = aws.rds.SubnetGroup(
                f"{name}-{role}",
                name=db_subnet_group_name(cfg, role),
                description=f"dr-platform database, data subnets of {cfg.region_of(role)}",
                subnet_ids=args["networks"][role].data_subnet_ids,
                opts=in_region,
            )
            parameter_groups[role] = aws.rds.ParameterGroup(
                f"{name}-{role}",
                name=db_parameter_group_name(cfg, role),
                family=f"{ENGINE}{cfg.db_engine_version.split('.')[0]}",
                description="dr-platform PostgreSQL settings",
                parameters=[aws.rds.ParameterGroupParameterArgs(name=k, value=v) for k, v in PARAMETERS.items()],
                opts=in_region,
            )

        plan = plan_instances(cfg)
        self.instances: dict[tuple[str, int], aws.rds.Instance] = {}
        # Sources first: a replica's source is always a standalone instance.
        for planned in sorted(plan, key=lambda p: p.is_replica):
            source = self.instances[planned.source] if planned.source else None
            self.instances[(planned.role, planned.generation)] = aws.rds.Instance(
                f"{name}-{planned.role}-g{planned.generation}",
                **_instance_args(
                    cfg,
                    planned,
                    key=args["keys"][planned.role],
                    network=args["networks"][planned.role],
                    subnet_group=subnet_groups[planned.role],
                    parameter_group=parameter_groups[planned.role],
                    source=source,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args["providers"][planned.role],
                    # Losing an instance loses data; a deleted declaration leaves it in AWS.
                    protect=True,
                    retain_on_delete=True,
                ),
            )

        current = {p.role: p for p in plan if not p.retained}
        # What AWS Backup can select: it cannot back up a read replica.
        self.standalone = {
            role: self.instances[(p.role, p.generation)] for role, p in current.items() if not p.is_replica
        }
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
        self.register_outputs({"summary": self.summary})


def _instance_args(
    cfg: PlatformConfig,
    planned: PlannedInstance,
    *,
    key: RegionalKey,
    network: Network,
    subnet_group: aws.rds.SubnetGroup,
    parameter_group: aws.rds.ParameterGroup,
    source: aws.rds.Instance | None,
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
        "multi_az": True,
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
        "skip_final_snapshot": False,
        "final_snapshot_identifier": f"{planned.identifier}-final",
        "delete_automated_backups": False,
    }
    if source is not None:
        args["replicate_source_db"] = source.arn
        return args
    # Standalone: backups (PostgreSQL replicas have none) and a master secret in
    # this region. For a promoted replica, the provider promotes first (passing
    # the retention to PromoteReadReplica) and modifies the rest afterwards.
    args["backup_retention_period"] = cfg.db_backup_retention_days
    args["manage_master_user_password"] = True
    args["master_user_secret_kms_key_id"] = key.arn
    if not planned.created_as_replica:
        # Creation-only arguments: a replica inherits them, and adding them to a
        # promoted replica would replace it.
        args["db_name"] = cfg.db_name
        args["username"] = cfg.db_master_username
    return args
