"""Physical names and tags shared by every component."""

from __future__ import annotations

from components.config import PlatformConfig

# Short region codes keep physical names under AWS length limits (RDS: 63,
# ElastiCache: 40, ALB and target groups: 32).
_DIRECTIONS = {
    "east": "e",
    "west": "w",
    "north": "n",
    "south": "s",
    "central": "c",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


def region_code(region: str) -> str:
    """`us-east-1` -> `use1`."""
    area, direction, number = region.rsplit("-", 2) if region.count("-") >= 2 else (region, "", "")
    area = area.replace("-", "")
    return f"{area}{_DIRECTIONS.get(direction, direction[:2])}{number}"


def physical_name(cfg: PlatformConfig, region: str, what: str) -> str:
    """A name unique per stack and region, e.g. `drp-use1-data`."""
    return f"{cfg.name_prefix}-{region_code(region)}-{what}"


STACK_TAG = "dr-platform:stack"
"""Names the stack that owns a resource: the bootstrap's drill role is scoped by it (bootstrap/iam.py)."""
REGION_ROLE_TAG = "dr-platform:region-role"
"""`primary`, `dr` or `global`: the role of the provider that declared the resource."""


def default_tags(cfg: PlatformConfig, role: str, stack: str) -> dict[str, str]:
    """The provider's default tags; the project's own keys win over `tags` from config.

    Changing a provider's default tags updates its resources in place, never replaces them
    (catalogue: pulumi-aws.default-tags-update-in-place).
    """
    return {
        **cfg.tags,
        "dr-platform:project": "dr-platform",
        "dr-platform:name-prefix": cfg.name_prefix,
        REGION_ROLE_TAG: role,
        STACK_TAG: stack,
    }


# Physical names that automation looks up in AWS; one definition each so the
# program, drctl and the sandbox always agree.


def db_identifier(cfg: PlatformConfig, role: str, generation: int) -> str:
    """RDS instance identifier; a new generation is a new instance (failback rebuilds)."""
    return physical_name(cfg, cfg.region_of(role), f"pg-g{generation}")


def parameter_group_of(db_instance_identifier: str) -> str:
    """Each instance's own parameter group: drctl's write fence sets default_transaction_read_only there, so
    resetting it for one generation never un-fences another (a retained former writer)."""
    return f"{db_instance_identifier}-params"


def db_parameter_group_name(cfg: PlatformConfig, role: str, generation: int) -> str:
    return parameter_group_of(db_identifier(cfg, role, generation))


def db_master_secret_name(cfg: PlatformConfig) -> str:
    """The master credential's Secrets Manager secret: one name, in the primary region and its DR replica."""
    return f"{cfg.name_prefix}-pg-master"


def pre_replacement_snapshot_identifier(db_instance_identifier: str) -> str:
    """The final snapshot failback takes of a former writer; fixed, so a repeated run finds it."""
    return f"{db_instance_identifier}-pre-replacement"


def db_subnet_group_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "pg-subnets")


BATCH_REPORT_PREFIX = "dr-platform/batch-replication-reports"
"""Where in a data bucket S3 Batch Replication writes its failed-tasks report (the role may write only there)."""


def data_bucket_name(cfg: PlatformConfig, role: str) -> str:
    """Globally unique only if namePrefix is: pick a prefix your organisation owns."""
    return physical_name(cfg, cfg.region_of(role), "data")


def cache_group_id(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "redis")


def global_datastore_suffix(cfg: PlatformConfig) -> str:
    return f"{cfg.name_prefix}-redis"


def cache_member_cluster_ids(cfg: PlatformConfig, role: str) -> list[str]:
    """ElastiCache names the nodes of a cluster-mode-disabled group `<group>-001`, `-002`...; node metrics use them."""
    return [f"{cache_group_id(cfg, role)}-{index:03d}" for index in range(1, 2 + cfg.cache_replicas_per_group)]


def cache_subnet_group_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "redis-subnets")


def cache_auth_secret_name(cfg: PlatformConfig, role: str) -> str:
    """Secrets Manager secret holding the Redis AUTH token and endpoints for applications in that region."""
    return physical_name(cfg, cfg.region_of(role), "redis-auth")


def cluster_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "eks")


def node_group_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "nodes")


def monitoring_node_group_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "monitoring")


def heartbeat_topic_name(cfg: PlatformConfig, role: str) -> str:
    """The SNS topic Alertmanager's Watchdog publishes to; a CloudWatch alarm pages when it falls silent."""
    return physical_name(cfg, cfg.region_of(role), "heartbeat")


def backup_vault_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "vault")


def backup_plan_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "backup-plan")


def backup_role_name(cfg: PlatformConfig) -> str:
    """IAM is global: one AWS Backup service role serves both regions."""
    return f"{cfg.name_prefix}-backup"


def restore_role_name(cfg: PlatformConfig) -> str:
    """The role AWS Backup restores with (restore testing): apart from the backup role, which never restores."""
    return f"{cfg.name_prefix}-backup-restore"


def restore_testing_plan_name(cfg: PlatformConfig, role: str) -> str:
    """Letters, digits and underscores, 50 at most: `acme_drp_use1_restore_tests`.

    catalogue: backup.restore-testing-plan-limits (20 prefix + 4 region + 14 characters stay under 50)
    """
    return physical_name(cfg, cfg.region_of(role), "restore-tests").replace("-", "_")


def restore_validator_name(cfg: PlatformConfig, role: str) -> str:
    """The Lambda function that validates what restore testing restored, and reports back to the job."""
    return physical_name(cfg, cfg.region_of(role), "restore-validator")


def drill_abort_alarm_name(cfg: PlatformConfig, role: str) -> str:
    """The CloudWatch alarm every fault-injection template of the region stops on; drctl trips it to abort."""
    return physical_name(cfg, cfg.region_of(role), "drill-abort")


def replication_role_name(cfg: PlatformConfig, source_role: str, destination_role: str) -> str:
    """The IAM role S3 assumes to replicate one direction, e.g. `drp-s3-repl-use1-usw2`."""
    source, destination = (region_code(cfg.region_of(r)) for r in (source_role, destination_role))
    return f"{cfg.name_prefix}-s3-repl-{source}-{destination}"


def replication_rule_id(cfg: PlatformConfig, source_role: str) -> str:
    """The S3 replication rule of the source role's bucket; CloudWatch's replication metrics carry it as RuleId."""
    destination_role = next(role for role in cfg.regions if role != source_role)
    return f"all-to-{destination_role}"


def load_balancer_name(cfg: PlatformConfig, role: str) -> str:
    """At most 32 characters: namePrefix (20 at most) + region code + `-alb`."""
    return physical_name(cfg, cfg.region_of(role), "alb")


def target_group_name(cfg: PlatformConfig, role: str) -> str:
    """The target group the AWS Load Balancer Controller binds application pods to (32 characters at most)."""
    return physical_name(cfg, cfg.region_of(role), "app")


def alert_topic_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "alerts")
