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


def data_bucket_name(cfg: PlatformConfig, role: str) -> str:
    """Globally unique only if namePrefix is: pick a prefix your organisation owns."""
    return physical_name(cfg, cfg.region_of(role), "data")


def cache_group_id(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "redis")


def global_datastore_suffix(cfg: PlatformConfig) -> str:
    return f"{cfg.name_prefix}-redis"


def cluster_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "eks")


def node_group_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "nodes")


def backup_vault_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "vault")


def alert_topic_name(cfg: PlatformConfig, role: str) -> str:
    return physical_name(cfg, cfg.region_of(role), "alerts")
