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


def default_tags(cfg: PlatformConfig, role: str) -> dict[str, str]:
    return {
        **cfg.tags,
        "dr-platform:project": "dr-platform",
        "dr-platform:name-prefix": cfg.name_prefix,
        "dr-platform:region-role": role,
    }


# Physical names that automation looks up in AWS; one definition each so the
# program, drctl and the sandbox always agree.


def db_identifier(cfg: PlatformConfig, role: str, generation: int) -> str:
    """RDS instance identifier; a new generation is a new instance (failback rebuilds)."""
    return physical_name(cfg, cfg.region_of(role), f"pg-g{generation}")


def db_parameter_group_name(cfg: PlatformConfig, role: str) -> str:
    """Graceful switchover sets default_transaction_read_only here to stop writes."""
    return physical_name(cfg, cfg.region_of(role), "pg-params")


def db_master_secret_name(cfg: PlatformConfig) -> str:
    """The master credential's Secrets Manager secret: one name, in the primary region and its DR replica."""
    return f"{cfg.name_prefix}-pg-master"


def pre_replacement_snapshot_identifier(db_instance_identifier: str) -> str:
    """The final snapshot failback takes of a former writer; fixed, so a repeated run finds it."""
    return f"{db_instance_identifier}-pre-replacement"


def db_subnet_group_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "pg-subnets")


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
