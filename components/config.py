"""The stack's configuration, read once into a frozen, validated object.

`parse_config` takes the raw key/value strings of the `dr-platform` namespace
(what `pulumi config` stores, and what the Automation API returns), so the
program, `drctl` and the tests validate config with exactly the same code and
a bad value fails before any resource is declared or any API is called.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

NAMESPACE = "dr-platform"
OTHER_NAMESPACES = ("aws", "kubernetes", "random", "pulumi")
"""Namespaces a stack file may hold besides the project's: the plugins' own settings and Pulumi's."""

ROLES = ("primary", "dr")
"""Region roles. `primary` is where the platform normally runs; `dr` is the standby."""

_DB_INSTANCE_CLASS_RE = re.compile(r"^db\.[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_CACHE_NODE_TYPE_RE = re.compile(r"^cache\.[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_EC2_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_POSTGRES_VERSION_RE = re.compile(r"^(?P<major>\d{1,2})(\.(?P<minor>\d{1,2}))?$")
# What terraform-provider-aws accepts: x.y.z before 6, `6.x` or major.minor from 6 on (7.1, not 7.x).
# catalogue: elasticache.engine-version-format
_REDIS_VERSION_RE = re.compile(r"^([1-5](\.\d+){2}|6\.x|[6-9]\.\d+)$")
_AZ_ID_RE = re.compile(r"^(?P<prefix>[a-z]+\d+)-az\d+$")
_DB_WINDOW_RE = re.compile(r"^(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$")
_DB_MAINTENANCE_WINDOW_RE = re.compile(
    r"^(?P<start_day>[a-z]{3}):(?P<start>\d{2}:\d{2})-(?P<end_day>[a-z]{3}):(?P<end>\d{2}:\d{2})$"
)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# catalogue: cloudwatch.logs-retention-values
LOG_GROUP_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
"""The only retention periods CloudWatch Logs accepts (PutRetentionPolicy); anything else fails the update."""
REPLICA_BACKUPS_MIN_POSTGRES = (14, 1)
"""PostgreSQL read replicas keep automated backups from this version on.

catalogue: rds.postgres-replica-automated-backups
"""
BACKUP_START_WINDOW_MINUTES = 60
"""How long after its scheduled time an AWS Backup job may start (the plans' start window)."""
DNS_FAILOVER_MODES = ("health-check", "fence-only")
"""When Route53 may answer the DR region: whenever the primary fails its health checks, or only once drctl
raises the traffic fence (docs/operations.md, "Who moves traffic")."""
ENVIRONMENTS = ("production", "staging", "drill")
"""What a stack is for. `production` (the default, so a stack that says nothing is treated as production) is
refused by `drctl drill --live` without --allow-production and a reason (docs/drills.md, "Live drills")."""
PRODUCTION = "production"
_ZONE_ID_RE = re.compile(r"^Z[A-Z0-9]{1,31}$")
_INTERNAL_SPACE = tuple(
    ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")
_DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_IDENT_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,62}$")
_BACKUP_VAULT_ARN_RE = re.compile(
    r"^arn:aws(-[a-z]+)*:backup:(?P<region>[a-z]{2}(-[a-z]+)+-\d):(?P<account>\d{12}):backup-vault:[a-zA-Z0-9_-]{2,50}$"
)
RESTORE_TESTED_TYPES = ("RDS", "S3")
"""AWS Backup protected resource types the program backs up, and so can restore-test."""
SECRET_CAPABLE_KEYS = frozenset({"notificationEmails", "notificationHttpsEndpoints"})
"""Keys whose values the program passes to resources only as Pulumi secrets (subscription endpoints:
webhook URLs often embed a key). Every other value names resources or lands in outputs in plaintext."""


class ConfigError(ValueError):
    """A config value is missing or not allowed; the message names the key."""

    def __init__(self, key: str, problem: str, *, namespace: str | None = NAMESPACE) -> None:
        self.key = key
        super().__init__(f"config {namespace + ':' if namespace else ''}{key}: {problem}")


class StackFileError(ConfigError):
    """A stack file that cannot be read as config; the message names the file (and the key, if one)."""

    def __init__(self, path: str, problem: str, key: str = "") -> None:
        self.key = key
        self.path = path
        ValueError.__init__(self, f"{path}: {problem}")


class DrState(StrEnum):
    """Where the platform stands in the DR state machine (see README)."""

    STEADY = "steady"
    FAILED_OVER = "failed-over"
    RESYNCING = "resyncing"


@dataclass(frozen=True)
class NodeGroupSize:
    min: int
    desired: int
    max: int


class StandbyProfile(StrEnum):
    """How much of the standby region runs before a failover: running cost traded for RTO (docs/drills.md).

    - pilot-light: no application node, the database replica Single-AZ (made Multi-AZ by the failover);
    - warm: `nodeGroupStandby` nodes, a Multi-AZ replica (the default);
    - hot: the full node group already running, a Multi-AZ replica.

    The cache member is the same in every profile: a Global Datastore secondary takes the primary's node type
    (catalogue: elasticache.global-datastore-member-inherits).
    """

    PILOT_LIGHT = "pilot-light"
    WARM = "warm"
    HOT = "hot"


@dataclass(frozen=True)
class VaultLockSettings:
    """A compliance-mode Vault Lock on both vaults (catalogue: backup.vault-lock-compliance-mode)."""

    changeable_for_days: int
    """Grace time: until it ends the lock can still be changed or removed; after it, by nobody."""
    min_retention_days: int
    max_retention_days: int


@dataclass(frozen=True)
class RestoreTestingSettings:
    """AWS Backup restore testing in both regions."""

    schedule: str
    validation_window_hours: int
    resource_types: tuple[str, ...]
    """AWS Backup protected resource types tested: RDS (the database), S3 (the data buckets)."""


@dataclass(frozen=True)
class FaultInjectionSettings:
    """AWS FIS experiment templates for live drills; none are declared unless enabled."""

    enabled: bool
    duration_minutes: int


@dataclass(frozen=True)
class RegionSettings:
    """What differs between the two regions."""

    role: str
    region: str
    vpc_cidr: str
    availability_zone_ids: tuple[str, ...]
    """AZ IDs (use1-az1): the same physical zone in every account, unlike zone names (catalogue:
    ec2.availability-zone-names-differ-per-account)."""
    db_generation: int
    db_retained_generations: tuple[int, ...]
    ingress_hostname: str | None


@dataclass(frozen=True)
class PlatformConfig:
    primary_region: str
    dr_region: str
    active_region: str
    dr_state: DrState
    name_prefix: str
    regions: Mapping[str, RegionSettings]
    # database
    db_instance_class: str
    db_engine_version: str
    db_allocated_storage_gb: int
    db_max_allocated_storage_gb: int
    db_name: str
    db_master_username: str
    db_backup_retention_days: int
    db_performance_insights_retention_days: int
    db_backup_window: str
    """RDS automated backups (UTC `hh:mm-hh:mm`), clear of the AWS Backup plans' start windows."""
    db_maintenance_window: str
    # object storage
    uploads_retention_days: int
    logs_retention_days: int
    storage_ia_after_days: int
    storage_glacier_after_days: int
    log_group_retention_days: int
    """CloudWatch Logs groups the program owns (EKS control plane, restore validator)."""
    # AWS Backup
    backup_daily_schedule: str
    backup_daily_retention_days: int
    backup_weekly_schedule: str
    backup_weekly_retention_days: int
    backup_continuous_retention_days: int
    backup_vault_lock: VaultLockSettings
    backup_cross_account_vault_arn: str | None
    """A vault in another account that daily and weekly recovery points of its region are copied to."""
    restore_testing: RestoreTestingSettings
    # cache
    cache_node_type: str
    cache_engine_version: str
    cache_replicas_per_group: int
    # compute
    eks_version: str
    eks_public_endpoint: bool
    eks_public_access_cidrs: tuple[str, ...]
    eks_private_access_cidrs: tuple[str, ...]
    eks_admin_principal_arns: tuple[str, ...]
    node_instance_types: tuple[str, ...]
    node_group_full: NodeGroupSize
    node_group_standby: NodeGroupSize
    standby_profile: StandbyProfile
    # monitoring
    prometheus_retention_days: int
    prometheus_storage_gb: int
    grafana_storage_gb: int
    runbook_base_url: str
    # traffic
    zone_name: str
    zone_id: str | None
    """An existing, delegated public zone, used as is; None: look it up by name, or create it."""
    create_zone: bool
    zone_delegated: bool
    """The parent domain delegates to the zone: certificates can be validated through it."""
    app_subdomain: str
    dns_ttl_seconds: int
    health_check_path: str
    health_check_interval_seconds: int
    health_check_failure_threshold: int
    dns_failover_mode: str
    """`health-check`: Route53 answers the DR region whenever the primary fails its checks; `fence-only`: only
    once drctl raises the traffic fence (DNS_FAILOVER_MODES)."""
    control_store_bucket: str
    control_store_prefix: str
    """drctl's control store in the DR region (`controlStoreUrl`): the fence publisher reads the DR state
    authority there (automation/dr_state.py)."""
    # alerting and objectives
    notification_emails: tuple[str, ...]
    notification_https_endpoints: tuple[str, ...]
    rpo_seconds: int
    rto_seconds: int
    replica_lag_warning_seconds: int
    # live drills
    fault_injection: FaultInjectionSettings
    environment: str = PRODUCTION
    """ENVIRONMENTS: whether a live drill may rehearse on this stack without --allow-production."""
    tags: Mapping[str, str] = field(default_factory=dict)
    secret_keys: frozenset[str] = frozenset()
    """Keys set with `pulumi config set --secret`; their values reach resources only as Pulumi secrets."""

    # --- derived views of the DR state machine -------------------------------

    @property
    def standby_region(self) -> str:
        return self.dr_region if self.active_region == self.primary_region else self.primary_region

    @property
    def active_role(self) -> str:
        return self.role_of(self.active_region)

    @property
    def standby_role(self) -> str:
        return self.role_of(self.standby_region)

    @property
    def standby_node_group(self) -> NodeGroupSize:
        """The standby region's application node group under the standby profile."""
        if self.standby_profile is StandbyProfile.PILOT_LIGHT:
            return NodeGroupSize(min=0, desired=0, max=self.node_group_full.max)
        if self.standby_profile is StandbyProfile.HOT:
            return self.node_group_full
        return self.node_group_standby

    @property
    def standby_database_multi_az(self) -> bool:
        """Whether the standby region's database replica runs Multi-AZ (every writer does)."""
        return self.standby_profile is not StandbyProfile.PILOT_LIGHT

    @property
    def app_fqdn(self) -> str:
        return f"{self.app_subdomain}.{self.zone_name}"

    @property
    def certificates_validated(self) -> bool:
        """ACM validates through the zone only once the parent domain delegates to it."""
        return self.zone_delegated or not self.create_zone

    def role_of(self, region: str) -> str:
        for role, settings in self.regions.items():
            if settings.region == region:
                return role
        raise KeyError(region)

    def region_of(self, role: str) -> str:
        return self.regions[role].region


# --- reading raw values --------------------------------------------------------


class _Reader:
    """Typed accessors over the raw string values of one namespace."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        prefix = f"{NAMESPACE}:"
        _check_namespaces(raw)
        self._raw = {k.removeprefix(prefix): v for k, v in raw.items() if ":" not in k or k.startswith(prefix)}
        self._read: set[str] = set()

    @property
    def known_keys(self) -> list[str]:
        return sorted(self._read)

    def unknown_keys(self) -> list[str]:
        """Keys that were set but that no accessor asked for: typos, mostly."""
        return sorted(set(self._raw) - self._read)

    def given(self, key: str) -> bool:
        """Whether the stack sets `key` (for keys that are refused outright)."""
        self._read.add(key)
        return bool(self._raw.get(key))

    def _get(self, key: str) -> str | None:
        self._read.add(key)
        value = self._raw.get(key)
        return None if value is None or value == "" else value

    def text(self, key: str, default: str | None = None) -> str:
        value = self._get(key)
        if value is None:
            if default is None:
                raise ConfigError(key, "is required (set it with `pulumi config set`)")
            return default
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(key, f"must be a whole number from {low} to {high}, got {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(key, f"must be from {low} to {high}, got {number}")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(key, f"must be true or false, got {value!r}")

    def structured(self, key: str, default: Any) -> Any:
        value = self._get(key)
        if value is None:
            return default
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(
                key, f"must be a structured value (set it with `pulumi config set --path`), got {value!r}"
            ) from None

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(key, default)
        if value not in allowed:
            raise ConfigError(key, f"must be one of {', '.join(allowed)}; got {value!r}")
        return value


def _check_namespaces(raw: Mapping[str, str]) -> None:
    """A key in a namespace nothing reads (a misspelt `drplatform:`) would be ignored: refuse it."""
    for key in raw:
        namespace, _, name = key.rpartition(":")
        if not namespace or namespace in (NAMESPACE, *OTHER_NAMESPACES):
            continue
        close = difflib.get_close_matches(namespace, (NAMESPACE, *OTHER_NAMESPACES), n=1)
        hint = f"; did you mean {close[0]}:{name}?" if close else ""
        raise ConfigError(
            key,
            f"namespace {namespace!r} is read by nothing in this project (namespaces: "
            f"{', '.join((NAMESPACE, *OTHER_NAMESPACES))}){hint}",
            namespace=None,
        )


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition in botocore's endpoint data: current with each boto3 release.

    Read once per process: loading the endpoint data takes a noticeable fraction of a second.
    """
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


def _per_role(reader: _Reader, key: str, default: Mapping[str, Any]) -> dict[str, Any]:
    value = reader.structured(key, default)
    if not isinstance(value, dict) or set(value) - set(ROLES):
        raise ConfigError(key, f"must be an object with keys {' and '.join(ROLES)}, got {value!r}")
    return {role: value.get(role, default.get(role)) for role in ROLES}


def _positive_int(key: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, f"must be a whole number >= {low}, got {value!r}")
    return value


def _node_group_size(reader: _Reader, key: str, default: Mapping[str, int]) -> NodeGroupSize:
    value = reader.structured(key, dict(default))
    if not isinstance(value, dict) or set(value) - {"min", "desired", "max"}:
        raise ConfigError(key, f"must be an object with keys min, desired and max, got {value!r}")
    merged = {**default, **value}
    sizes = {k: _positive_int(f"{key}.{k}", merged[k], low=0) for k in ("min", "desired", "max")}
    if not (sizes["min"] <= sizes["desired"] <= sizes["max"]) or sizes["max"] < 1:
        raise ConfigError(key, f"needs 0 <= min <= desired <= max and max >= 1, got {sizes}")
    return NodeGroupSize(**sizes)


def _string_list(
    reader: _Reader, key: str, pattern: re.Pattern[str], what: str, default: list[str] | None = None
) -> tuple[str, ...]:
    value = reader.structured(key, default or [])
    if not isinstance(value, list) or not all(isinstance(v, str) and pattern.match(v) for v in value):
        raise ConfigError(key, f"must be a list of {what}, got {value!r}")
    if default and not value:
        raise ConfigError(key, f"must list at least one of {what} (default {default!r}), got []")
    return tuple(value)


def _formatted(reader: _Reader, key: str, default: str, pattern: re.Pattern[str], what: str) -> str:
    """A value whose format is checked here; whether AWS offers it in the region is AWS's to say."""
    value = reader.text(key, default)
    if not pattern.match(value):
        raise ConfigError(key, f"must be {what} such as {default}, got {value!r}")
    return value


def _postgres_version(reader: _Reader) -> str:
    """A PostgreSQL version whose read replicas keep automated backups (14.1 and later).

    A major version only is the usual form: RDS applies minor upgrades itself without a diff.
    catalogue: rds.postgres-replica-automated-backups
    """
    value = _formatted(reader, "dbEngineVersion", "16", _POSTGRES_VERSION_RE, "a PostgreSQL version")
    match = _POSTGRES_VERSION_RE.match(value)
    assert match is not None
    # A major version alone resolves to that major's current minor, past .1 for 14 on RDS.
    version = (int(match["major"]), int(match["minor"] or 1))
    if version < REPLICA_BACKUPS_MIN_POSTGRES:
        minimum = ".".join(map(str, REPLICA_BACKUPS_MIN_POSTGRES))
        raise ConfigError(
            "dbEngineVersion",
            f"must be PostgreSQL {minimum} or later, got {value!r}: from {minimum} on a read replica keeps its own "
            "automated backups, so promoting it changes no backup setting (enabling backups on an instance "
            "causes an outage, which a failover must not take)",
        )
    return value


def _region(reader: _Reader, key: str) -> str:
    value = reader.text(key)
    regions = known_regions()
    if value not in regions:
        close = difflib.get_close_matches(value, sorted(regions), n=3)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ConfigError(
            key,
            f"must be an AWS region code such as us-east-1, got {value!r}: not a region in the endpoint data of "
            f"the installed botocore (a region launched since needs a newer boto3){hint}",
        )
    return value


def _cidr_list(reader: _Reader, key: str, *, private: bool) -> tuple[str, ...]:
    """IPv4 blocks that reach a cluster's API endpoint; never the whole internet."""
    blocks = reader.structured(key, [])
    if not isinstance(blocks, list):
        raise ConfigError(key, f"must be a list of IPv4 CIDR blocks, got {blocks!r}")
    result = []
    for block in blocks:
        try:
            network = ipaddress.ip_network(block)
        except (TypeError, ValueError):
            raise ConfigError(
                key, f"must be a list of IPv4 CIDR blocks such as 203.0.113.10/32, got {block!r}"
            ) from None
        if network.version != 4 or network.prefixlen == 0:
            raise ConfigError(key, f"{block} would admit every address; list the networks that need the API")
        internal = any(network.subnet_of(space) for space in _INTERNAL_SPACE)
        if internal != private:
            where = (
                "private networks (RFC 1918 or 100.64.0.0/10) connected to the VPC" if private else "public addresses"
            )
            raise ConfigError(key, f"{block} is not one of the {where}")
        result.append(str(network))
    return tuple(result)


def _cluster_access(reader: _Reader) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """Who reaches the clusters' Kubernetes API: a public endpoint only with an explicit allow-list."""
    public = reader.boolean("eksPublicEndpoint", False)
    public_cidrs = _cidr_list(reader, "eksPublicAccessCidrs", private=False)
    # catalogue: eks.public-endpoint-open-by-default
    if public and not public_cidrs:
        raise ConfigError(
            "eksPublicAccessCidrs",
            "is required with eksPublicEndpoint: true; EKS opens a public endpoint to 0.0.0.0/0 unless it lists "
            "the addresses allowed (CI runners' egress, operators' VPN)",
        )
    if public_cidrs and not public:
        raise ConfigError("eksPublicAccessCidrs", "has no effect unless eksPublicEndpoint is true")
    return public, public_cidrs, _cidr_list(reader, "eksPrivateAccessCidrs", private=True)


def _hosted_zone(reader: _Reader) -> tuple[str | None, bool, bool]:
    """An existing zone (by id, or looked up by name), or one the stack creates and the parent delegates to.

    A created zone validates no certificate until zoneDelegated says the parent delegates to it
    (catalogue: acm.dns-validation-needs-delegated-zone).
    """
    zone_id = reader.text("zoneId", "") or None
    if zone_id is not None and not _ZONE_ID_RE.match(zone_id):
        raise ConfigError("zoneId", f"must be a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ, got {zone_id!r}")
    create = reader.boolean("createZone", False)
    delegated = reader.boolean("zoneDelegated", False)
    if create and zone_id:
        raise ConfigError("zoneId", "names an existing zone; it cannot be given with createZone: true")
    if delegated and not create:
        raise ConfigError(
            "zoneDelegated", "applies to a zone the stack creates (createZone: true); an existing zone is delegated"
        )
    return zone_id, create, delegated


# Words of a region name and the letters AZ IDs abbreviate them to (us-east-1 -> use1, ap-northeast-1 -> apne1).
_AZ_ID_WORDS = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "central": "c",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
    "gov": "g",
}
# AZ IDs left out of a region's default three: us-east-1's use1-az3 lacks the newer instance families
# and is refused by EKS in many accounts (catalogue: ec2.availability-zone-names-differ-per-account).
_AVOIDED_AZ_IDS = frozenset({"use1-az3"})


def az_id_prefix(region: str) -> str | None:
    """The prefix of a region's AZ IDs (`use1` for us-east-1); None for a region named in another pattern."""
    geo, *words, number = region.split("-")
    if not number.isdigit() or not all(word in _AZ_ID_WORDS for word in words):
        return None
    return geo + "".join(_AZ_ID_WORDS[word] for word in words) + number


def default_availability_zone_ids(region: str) -> list[str]:
    """Three AZ IDs of the region, the constrained ones left out; none for a region named in another pattern."""
    prefix = az_id_prefix(region)
    if prefix is None:
        return []
    candidates = (f"{prefix}-az{number}" for number in range(1, 7))
    return [zone for zone in candidates if zone not in _AVOIDED_AZ_IDS][:3]


def _availability_zone_ids(key: str, region: str, value: Any) -> tuple[str, ...]:
    """Three distinct AZ IDs of `region`; zone names are refused (they map differently in every account)."""
    example = ", ".join(default_availability_zone_ids(region)) or "use1-az1, use1-az2, use1-az4"
    how = (
        f"list 3 distinct AZ IDs of {region} such as {example} "
        f"(aws ec2 describe-availability-zones --region {region} --query 'AvailabilityZones[].ZoneId')"
    )
    if not isinstance(value, list) or len(value) != 3 or len(set(value)) != 3:
        raise ConfigError(key, f"must {how}, got {value!r}")
    prefix = az_id_prefix(region)
    for zone in value:
        if isinstance(zone, str) and re.fullmatch(rf"{re.escape(region)}[a-z]", zone):
            raise ConfigError(
                key,
                f"{zone} is an availability zone name; each account maps names to physical zones on its own, "
                f"so two accounts' {zone} can differ and one of them may lack instance types or EKS: {how}",
            )
        match = _AZ_ID_RE.match(zone) if isinstance(zone, str) else None
        if match is None or (prefix is not None and match["prefix"] != prefix):
            raise ConfigError(key, f"{zone!r} is not an AZ ID of {region}: {how}")
    return tuple(value)


def _minutes(text: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    return hours * 60 + minutes


def _window(key: str, value: str, *, weekly: bool) -> tuple[int, int]:
    """A UTC window as (start, end) minutes of the day (or of the week, Monday 00:00 = 0), at least 30 minutes long.

    catalogue: rds.backup-and-maintenance-windows
    """
    example = "sun:04:00-sun:04:30" if weekly else "03:00-03:30"
    match = (_DB_MAINTENANCE_WINDOW_RE if weekly else _DB_WINDOW_RE).match(value)
    valid = match is not None and all(
        0 <= _minutes(match[part]) < 1440 and int(match[part][3:]) < 60 for part in ("start", "end")
    )
    if weekly and valid and match is not None:
        valid = match["start_day"] in _WEEKDAYS and match["end_day"] in _WEEKDAYS
    if not valid or match is None:
        raise ConfigError(key, f"must be a UTC window such as {example}, got {value!r}")
    day = 1440 * 7 if weekly else 1440
    start, end = _minutes(match["start"]), _minutes(match["end"])
    if weekly:
        start += 1440 * _WEEKDAYS.index(match["start_day"])
        end += 1440 * _WEEKDAYS.index(match["end_day"])
    length = (end - start) % day
    if length < 30:
        raise ConfigError(key, f"must last 30 minutes at least (RDS refuses shorter windows), got {value!r}")
    return start, start + length


def _overlaps(first: tuple[int, int], second: tuple[int, int], period: int) -> bool:
    """Whether two windows on a circular day (or week) of `period` minutes overlap."""
    return any(first[0] < second[1] + shift and second[0] + shift < first[1] for shift in (-period, 0, period))


def _backup_start_windows(schedules: Mapping[str, str]) -> list[tuple[str, tuple[int, int]]]:
    """Each backup rule's daily start window (minutes of the day); refused unless it runs at a fixed time."""
    windows = []
    for key, schedule in schedules.items():
        minute, hour = schedule.removeprefix("cron(").split()[:2]
        if not (minute.isdigit() and hour.isdigit()):
            raise ConfigError(
                key,
                f"must start at a fixed hour and minute (got {schedule!r}) so that dbBackupWindow can stay clear "
                "of it: AWS Backup jobs and RDS automated backups of one instance must not overlap",
            )
        start = int(hour) * 60 + int(minute)
        windows.append((key, (start, start + BACKUP_START_WINDOW_MINUTES)))
    return windows


def _db_windows(reader: _Reader, backup_schedules: Mapping[str, str]) -> tuple[str, str]:
    """RDS's backup and maintenance windows, apart from each other and from the AWS Backup start windows.

    catalogue: rds.backup-and-maintenance-windows
    """
    backup_window = reader.text("dbBackupWindow", "03:00-03:30")
    backup = _window("dbBackupWindow", backup_window, weekly=False)
    for key, start_window in _backup_start_windows(backup_schedules):
        if _overlaps(backup, start_window, 1440):
            raise ConfigError(
                "dbBackupWindow",
                f"{backup_window} overlaps the start window of {key} (its scheduled time plus "
                f"{BACKUP_START_WINDOW_MINUTES} minutes): AWS Backup and RDS would back the instance up at the "
                "same time; move one of them",
            )
    maintenance_window = reader.text("dbMaintenanceWindow", "sun:04:00-sun:04:30")
    maintenance = _window("dbMaintenanceWindow", maintenance_window, weekly=True)
    week = 1440 * 7
    if any(_overlaps((backup[0] + 1440 * day, backup[1] + 1440 * day), maintenance, week) for day in range(7)):
        raise ConfigError(
            "dbMaintenanceWindow",
            f"{maintenance_window} overlaps dbBackupWindow ({backup_window}) on that day; RDS refuses overlapping "
            "backup and maintenance windows",
        )
    return backup_window, maintenance_window


def _region_settings(reader: _Reader, regions: Mapping[str, str]) -> dict[str, RegionSettings]:
    cidrs = _per_role(reader, "vpcCidrs", {"primary": "10.10.0.0/16", "dr": "10.20.0.0/16"})
    zones = _per_role(reader, "availabilityZones", {r: default_availability_zone_ids(regions[r]) for r in ROLES})
    generations = _per_role(reader, "dbGeneration", {"primary": 1, "dr": 1})
    retained = _per_role(reader, "dbRetainedGenerations", {"primary": [], "dr": []})
    hostnames = _per_role(reader, "ingressHostnames", {"primary": None, "dr": None})

    networks = {}
    for role in ROLES:
        try:
            networks[role] = ipaddress.ip_network(cidrs[role])
        except (TypeError, ValueError):
            raise ConfigError(
                f"vpcCidrs.{role}", f"must be an IPv4 CIDR block such as 10.10.0.0/16, got {cidrs[role]!r}"
            ) from None
        if networks[role].version != 4 or not 16 <= networks[role].prefixlen <= 20:
            raise ConfigError(f"vpcCidrs.{role}", f"must be an IPv4 block from /16 to /20, got {cidrs[role]!r}")
    if networks["primary"].overlaps(networks["dr"]):
        raise ConfigError("vpcCidrs", "the primary and dr blocks overlap; they must not, so the VPCs can be peered")

    result = {}
    for role in ROLES:
        azs = _availability_zone_ids(f"availabilityZones.{role}", regions[role], zones[role])
        generation = _positive_int(f"dbGeneration.{role}", generations[role])
        kept = retained[role]
        if not isinstance(kept, list):
            raise ConfigError(f"dbRetainedGenerations.{role}", f"must be a list of earlier generations, got {kept!r}")
        for number in kept:
            _positive_int(f"dbRetainedGenerations.{role}", number)
            if number >= generation:
                raise ConfigError(
                    f"dbRetainedGenerations.{role}",
                    f"generation {number} is not earlier than the current dbGeneration.{role} ({generation})",
                )
        if len(set(kept)) != len(kept):
            raise ConfigError(f"dbRetainedGenerations.{role}", f"lists a generation twice: {kept!r}")
        hostname = hostnames[role]
        if hostname is not None and not (isinstance(hostname, str) and _DNS_NAME_RE.match(hostname)):
            raise ConfigError(f"ingressHostnames.{role}", f"must be a DNS name, got {hostname!r}")
        result[role] = RegionSettings(
            role=role,
            region=regions[role],
            vpc_cidr=str(networks[role]),
            availability_zone_ids=azs,
            db_generation=generation,
            db_retained_generations=tuple(sorted(kept)),
            ingress_hostname=hostname,
        )
    return result


def _check_state_machine(cfg: PlatformConfig) -> None:
    """Refuse combinations that contradict the DR state machine."""
    expected_active = cfg.primary_region if cfg.dr_state is DrState.STEADY else cfg.dr_region
    if cfg.active_region != expected_active:
        raise ConfigError(
            "activeRegion",
            f"drState {cfg.dr_state.value} requires activeRegion {expected_active}, got {cfg.active_region}",
        )
    if cfg.dr_state is DrState.RESYNCING:
        primary = cfg.regions["primary"]
        # The rebuilt primary-region replica is a new instance; the former writer
        # must still be declared (kept for forensics), never turned into a replica.
        if primary.db_generation - 1 not in primary.db_retained_generations:
            raise ConfigError(
                "dbGeneration.primary",
                "drState resyncing declares a new replica in the primary region: dbGeneration.primary must be "
                "raised and the former generation listed in dbRetainedGenerations.primary "
                f"(now generation {primary.db_generation}, retained {list(primary.db_retained_generations)})",
            )


def parse_config(raw: Mapping[str, str], secret_keys: Iterable[str] = ()) -> PlatformConfig:
    """Validate raw config values (keys with or without the `dr-platform:` prefix).

    `secret_keys` names the keys set with `--secret` (as the engine lists them, prefixed or not).
    """
    r = _Reader(raw)
    primary_region = _region(r, "primaryRegion")
    dr_region = _region(r, "drRegion")
    if dr_region == primary_region:
        raise ConfigError("drRegion", f"must differ from primaryRegion ({primary_region})")
    active_region = r.choice("activeRegion", (primary_region, dr_region), default=primary_region)
    dr_state = DrState(r.choice("drState", tuple(s.value for s in DrState), default=DrState.STEADY.value))
    name_prefix = r.text("namePrefix", "drp")
    if not _PREFIX_RE.match(name_prefix):
        raise ConfigError(
            "namePrefix",
            f"must be 3-20 lowercase letters, digits or hyphens, starting with a letter; got {name_prefix!r}",
        )
    regions = _region_settings(r, {"primary": primary_region, "dr": dr_region})

    allocated = r.integer("dbAllocatedStorageGb", 100, 20, 65536)
    max_allocated = r.integer("dbMaxAllocatedStorageGb", 500, 20, 65536)
    if max_allocated < allocated:
        raise ConfigError(
            "dbMaxAllocatedStorageGb", f"must be >= dbAllocatedStorageGb ({allocated}), got {max_allocated}"
        )
    db_name = r.text("dbName", "app")
    db_user = r.text("dbMasterUsername", "dbadmin")
    for key, value in (("dbName", db_name), ("dbMasterUsername", db_user)):
        if not _IDENT_RE.match(value):
            raise ConfigError(key, f"must start with a letter and hold only letters, digits and _, got {value!r}")
    pi_days = r.integer("dbPerformanceInsightsRetentionDays", 7, 7, 731)
    if pi_days not in (7, 731) and pi_days % 31:
        raise ConfigError("dbPerformanceInsightsRetentionDays", f"must be 7, 731 or a multiple of 31, got {pi_days}")

    uploads_days = r.integer("uploadsRetentionDays", 90, 1, 3650)
    logs_days = r.integer("logsRetentionDays", 30, 1, 3650)
    log_group_days = r.integer("logGroupRetentionDays", 30, 1, max(LOG_GROUP_RETENTION_DAYS))
    # catalogue: cloudwatch.logs-retention-values
    if log_group_days not in LOG_GROUP_RETENTION_DAYS:
        raise ConfigError(
            "logGroupRetentionDays",
            f"must be one of CloudWatch Logs' retention periods ({', '.join(map(str, LOG_GROUP_RETENTION_DAYS))}), "
            f"got {log_group_days}",
        )
    ia_after = r.integer("storageIaAfterDays", 30, 30, 3650)
    glacier_after = r.integer("storageGlacierAfterDays", 60, 1, 3650)
    # catalogue: s3.lifecycle-ia-minimum-30-days
    if glacier_after < ia_after + 30:
        raise ConfigError(
            "storageGlacierAfterDays",
            f"must be at least 30 days later than storageIaAfterDays ({ia_after}): S3 keeps objects 30 days "
            f"in Standard-IA before a further transition; got {glacier_after}",
        )

    # catalogue: backup.cold-storage-not-for-rds-or-s3
    if r.given("backupWeeklyColdAfterDays"):
        raise ConfigError(
            "backupWeeklyColdAfterDays",
            "is no longer a setting: AWS Backup moves no RDS or S3 recovery point to cold storage (it ignores the "
            "setting for them), so the weekly backups stay in warm storage for backupWeeklyRetentionDays "
            '(docs/data-tier.md, "What the 3-2-1 rule gets"); remove the key',
        )
    # Weekly fulls are kept four weeks (the operations documents' 3-2-1 rule).
    weekly_keep = r.integer("backupWeeklyRetentionDays", 28, 28, 36500)
    daily_schedule = _cron(r, "backupDailySchedule", "cron(0 5 ? * * *)")
    weekly_schedule = _cron(r, "backupWeeklySchedule", "cron(0 6 ? * SUN *)")
    db_backup_window, db_maintenance_window = _db_windows(
        r, {"backupDailySchedule": daily_schedule, "backupWeeklySchedule": weekly_schedule}
    )
    db_engine_version = _postgres_version(r)

    daily_keep = r.integer("backupDailyRetentionDays", 7, 7, 36500)
    continuous_keep = r.integer("backupContinuousRetentionDays", 1, 1, 35)
    db_backup_days = r.integer("dbBackupRetentionDays", 7, 7, 35)
    vault_lock = _vault_lock(
        r,
        {
            "daily": daily_keep,
            "weekly": weekly_keep,
            "continuous": continuous_backup_days(continuous_keep, db_backup_days),
        },
    )

    eks_version = r.text("eksVersion", "1.33")
    if not re.fullmatch(r"1\.\d{2}", eks_version):
        raise ConfigError("eksVersion", f"must be a Kubernetes minor version such as 1.33, got {eks_version!r}")
    node_types = _string_list(r, "nodeInstanceTypes", _EC2_INSTANCE_TYPE_RE, "EC2 instance types", ["m6i.large"])
    eks_public, eks_public_cidrs, eks_private_cidrs = _cluster_access(r)
    full = _node_group_size(r, "nodeGroupFull", {"min": 3, "desired": 3, "max": 9})
    standby = _node_group_size(r, "nodeGroupStandby", {"min": 1, "desired": 1, "max": 9})
    if standby.desired > full.desired:
        raise ConfigError(
            "nodeGroupStandby", f"desired ({standby.desired}) must not exceed nodeGroupFull.desired ({full.desired})"
        )

    zone_name = r.text("zoneName").lower().rstrip(".")
    if not _DNS_NAME_RE.match(zone_name):
        raise ConfigError("zoneName", f"must be a DNS domain such as example.com, got {zone_name!r}")
    zone_id, create_zone, zone_delegated = _hosted_zone(r)
    subdomain = r.text("appSubdomain", "app")
    if not _LABEL_RE.match(subdomain):
        raise ConfigError("appSubdomain", f"must be one DNS label such as app, got {subdomain!r}")
    health_path = r.text("healthCheckPath", "/healthz")
    if not health_path.startswith("/"):
        raise ConfigError("healthCheckPath", f"must start with /, got {health_path!r}")
    interval = r.integer("healthCheckIntervalSeconds", 10, 10, 30)
    if interval not in (10, 30):
        raise ConfigError("healthCheckIntervalSeconds", f"must be 10 or 30 (Route53 allows no other), got {interval}")
    dns_failover_mode = r.choice("dnsFailoverMode", DNS_FAILOVER_MODES, default="fence-only")
    control_store_bucket, control_store_prefix = _control_store(r, name_prefix, dr_region)

    rpo = r.integer("rpoSeconds", 300, 1, 86400)
    lag_warning = r.integer("replicaLagWarningSeconds", 120, 1, 86400)
    if lag_warning >= rpo:
        raise ConfigError(
            "replicaLagWarningSeconds",
            f"must be below rpoSeconds ({rpo}) so it warns before the RPO is breached, got {lag_warning}",
        )

    tags = r.structured("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ConfigError("tags", f"must be an object of string keys and values, got {tags!r}")

    cfg = PlatformConfig(
        primary_region=primary_region,
        dr_region=dr_region,
        active_region=active_region,
        dr_state=dr_state,
        name_prefix=name_prefix,
        regions=regions,
        db_instance_class=_formatted(
            r, "dbInstanceClass", "db.r6g.large", _DB_INSTANCE_CLASS_RE, "an RDS instance class"
        ),
        # A major version only: RDS applies minor upgrades itself without a diff.
        db_engine_version=db_engine_version,
        db_allocated_storage_gb=allocated,
        db_max_allocated_storage_gb=max_allocated,
        db_name=db_name,
        db_master_username=db_user,
        db_backup_retention_days=db_backup_days,
        db_performance_insights_retention_days=pi_days,
        db_backup_window=db_backup_window,
        db_maintenance_window=db_maintenance_window,
        uploads_retention_days=uploads_days,
        logs_retention_days=logs_days,
        log_group_retention_days=log_group_days,
        storage_ia_after_days=ia_after,
        storage_glacier_after_days=glacier_after,
        backup_daily_schedule=daily_schedule,
        backup_daily_retention_days=daily_keep,
        backup_weekly_schedule=weekly_schedule,
        backup_weekly_retention_days=weekly_keep,
        backup_continuous_retention_days=continuous_keep,
        backup_vault_lock=vault_lock,
        backup_cross_account_vault_arn=_cross_account_vault(r, {"primary": primary_region, "dr": dr_region}),
        restore_testing=_restore_testing(r),
        cache_node_type=_formatted(
            r, "cacheNodeType", "cache.r7g.large", _CACHE_NODE_TYPE_RE, "an ElastiCache node type"
        ),
        cache_engine_version=_formatted(
            r, "cacheEngineVersion", "7.1", _REDIS_VERSION_RE, "a Redis engine version (x.y.z before 6, 6.x, 7.1)"
        ),
        cache_replicas_per_group=r.integer("cacheReplicasPerGroup", 1, 1, 5),
        eks_version=eks_version,
        eks_public_endpoint=eks_public,
        eks_public_access_cidrs=eks_public_cidrs,
        eks_private_access_cidrs=eks_private_cidrs,
        eks_admin_principal_arns=_string_list(
            r,
            "eksAdminPrincipalArns",
            re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/\S+$"),
            "IAM role or user ARNs",
        ),
        node_instance_types=node_types,
        node_group_full=full,
        node_group_standby=standby,
        standby_profile=StandbyProfile(
            r.choice("standbyProfile", tuple(p.value for p in StandbyProfile), default=StandbyProfile.WARM.value)
        ),
        prometheus_retention_days=r.integer("prometheusRetentionDays", 15, 1, 365),
        prometheus_storage_gb=r.integer("prometheusStorageGb", 50, 1, 16384),
        grafana_storage_gb=r.integer("grafanaStorageGb", 10, 1, 16384),
        runbook_base_url=_runbook_base_url(r),
        zone_name=zone_name,
        zone_id=zone_id,
        create_zone=create_zone,
        zone_delegated=zone_delegated,
        app_subdomain=subdomain,
        dns_ttl_seconds=r.integer("dnsTtlSeconds", 60, 1, 300),
        health_check_path=health_path,
        health_check_interval_seconds=interval,
        health_check_failure_threshold=r.integer("healthCheckFailureThreshold", 3, 1, 10),
        dns_failover_mode=dns_failover_mode,
        control_store_bucket=control_store_bucket,
        control_store_prefix=control_store_prefix,
        notification_emails=_string_list(r, "notificationEmails", _EMAIL_RE, "email addresses"),
        notification_https_endpoints=_string_list(
            r, "notificationHttpsEndpoints", re.compile(r"^https://\S+$"), "https:// URLs"
        ),
        rpo_seconds=rpo,
        rto_seconds=r.integer("rtoSeconds", 900, 60, 86400),
        replica_lag_warning_seconds=lag_warning,
        fault_injection=FaultInjectionSettings(
            enabled=r.boolean("faultInjection", False),
            duration_minutes=r.integer("faultInjectionDurationMinutes", 30, 1, 720),
        ),
        environment=r.choice("environment", ENVIRONMENTS, default=PRODUCTION),
        tags=tags,
        secret_keys=frozenset(),
    )
    for key in r.unknown_keys():
        close = difflib.get_close_matches(key, r.known_keys, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(key, f"is not a setting of this program{hint}")
    _check_state_machine(cfg)
    return replace(cfg, secret_keys=_secret_keys(secret_keys))


def continuous_backup_days(continuous_days: int, db_backup_retention_days: int) -> int:
    """Days of point-in-time recovery AWS Backup's continuous rule keeps.

    For RDS, AWS Backup's continuous backup is the instance's automated backup, and it sets the
    instance's retention to the rule's. Keeping the larger of the two settings means the rule never
    shortens `dbBackupRetentionDays` (and the program never fights AWS Backup over it), while still
    meeting `backupContinuousRetentionDays`.
    """
    return max(continuous_days, db_backup_retention_days)


def _vault_lock(reader: _Reader, rule_retentions: Mapping[str, int]) -> VaultLockSettings:
    """Compliance-mode lock settings that no backup rule (nor its cross-region copy) can violate.

    AWS Backup fails a backup or copy job whose retention is outside the lock's range
    (catalogue: backup.vault-lock-retention-range), so a rule outside it would stop backing up.
    """
    # catalogue: backup.vault-lock-compliance-mode (grace time: 3 days at least)
    changeable = reader.integer("backupVaultLockChangeableDays", 7, 3, 36500)
    shortest, longest = min(rule_retentions.values()), max(rule_retentions.values())
    minimum = reader.integer("backupVaultLockMinRetentionDays", min(7, shortest), 1, 36500)
    maximum = reader.integer("backupVaultLockMaxRetentionDays", max(365, longest), 1, 36500)
    if minimum > maximum:
        raise ConfigError(
            "backupVaultLockMaxRetentionDays", f"must be >= backupVaultLockMinRetentionDays ({minimum}), got {maximum}"
        )
    # The rule kept shortest and the one kept longest (the first in the order given, on a tie).
    shortest_rule = min(rule_retentions, key=rule_retentions.__getitem__)
    longest_rule = max(rule_retentions, key=rule_retentions.__getitem__)
    if shortest < minimum:
        raise ConfigError(
            "backupVaultLockMinRetentionDays",
            f"is {minimum} days, but the {shortest_rule} backups are kept {shortest} days: the locked vaults would "
            f"fail those backup and copy jobs; lower it to {shortest} at most or keep the {shortest_rule} backups "
            "longer",
        )
    if longest > maximum:
        raise ConfigError(
            "backupVaultLockMaxRetentionDays",
            f"is {maximum} days, but the {longest_rule} backups are kept {longest} days: the locked vaults would "
            f"fail those backup and copy jobs; raise it to {longest} at least",
        )
    return VaultLockSettings(changeable_for_days=changeable, min_retention_days=minimum, max_retention_days=maximum)


def _cross_account_vault(reader: _Reader, regions: Mapping[str, str]) -> str | None:
    """The vault in another account that recovery points are copied to, named by ARN (optional)."""
    arn = reader.text("backupCrossAccountVaultArn", "") or None
    if arn is None:
        return None
    match = _BACKUP_VAULT_ARN_RE.match(arn)
    if not match:
        raise ConfigError(
            "backupCrossAccountVaultArn",
            f"must be a backup vault ARN such as arn:aws:backup:us-east-1:111122223333:backup-vault:acme-dr-copy, "
            f"got {arn!r}",
        )
    # catalogue: backup.cross-account-and-region-not-in-one-copy-for-rds
    if match["region"] not in regions.values():
        raise ConfigError(
            "backupCrossAccountVaultArn",
            f"is in {match['region']}; it must be in {' or '.join(regions.values())}: AWS Backup cannot copy RDS "
            "snapshots across accounts and regions in one copy action, so the copy leaves from the vault's region",
        )
    return arn


def _restore_testing(reader: _Reader) -> RestoreTestingSettings:
    types = reader.structured("restoreTestingResourceTypes", list(RESTORE_TESTED_TYPES))
    if not isinstance(types, list) or not types or not set(types) <= set(RESTORE_TESTED_TYPES):
        raise ConfigError(
            "restoreTestingResourceTypes",
            f"must be a non-empty list of {', '.join(RESTORE_TESTED_TYPES)} (what the backup plans protect), "
            f"got {types!r}",
        )
    return RestoreTestingSettings(
        schedule=_cron(reader, "restoreTestingSchedule", "cron(0 9 ? * * *)"),
        # catalogue: backup.restore-testing-validation-window
        validation_window_hours=reader.integer("restoreTestingValidationWindowHours", 2, 1, 168),
        resource_types=tuple(sorted(set(types), key=RESTORE_TESTED_TYPES.index)),
    )


def _secret_keys(secret_keys: Iterable[str]) -> frozenset[str]:
    """The keys set with --secret; refused where the value would reach state or outputs in plaintext."""
    # Other namespaces' secrets (aws:, kubernetes:...) are their plugins' business.
    keys = frozenset(k.removeprefix(f"{NAMESPACE}:") for k in secret_keys if ":" not in k.removeprefix(f"{NAMESPACE}:"))
    for key in sorted(keys - SECRET_CAPABLE_KEYS):
        raise ConfigError(
            key,
            "is set as a secret (pulumi config set --secret), but its value names resources or appears in stack "
            "outputs, which Pulumi keeps in plaintext; set it without --secret (secret-capable keys: "
            f"{', '.join(sorted(SECRET_CAPABLE_KEYS))})",
        )
    return keys


def _cron(reader: _Reader, key: str, default: str) -> str:
    value = reader.text(key, default)
    if not re.fullmatch(r"cron\((\S+ ){5}\S+\)", value):
        raise ConfigError(key, f"must be an AWS cron expression with six fields such as {default}, got {value!r}")
    return value


def _runbook_base_url(reader: _Reader) -> str:
    """Where alert annotations link to; the default is this repository's monitoring guide."""
    default = "docs/monitoring.md"
    value = reader.text("runbookBaseUrl", default).rstrip("/")
    if value != default and not re.fullmatch(r"https://[^\s#]+", value):
        raise ConfigError("runbookBaseUrl", f"must be an https:// URL without a #fragment, got {value!r}")
    return value


# Addresses, names and accounts reserved for documentation: a stack file still holding one was never filled in.
_DOCUMENTATION_NETWORKS = tuple(
    ipaddress.IPv4Network(block) for block in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
"""RFC 5737 TEST-NET-1, -2 and -3."""
_DOCUMENTATION_DOMAINS = ("example.com", "example.net", "example.org", "example", "test", "invalid", "localhost")
"""RFC 2606: reserved second-level and top-level names."""
_DOCUMENTATION_ACCOUNTS = ("123456789012", "111122223333", "444455556666")
"""The account IDs AWS's documentation uses in examples."""

_OFFLINE_EVALUATION: ContextVar[bool] = ContextVar("dr_platform_offline_evaluation", default=False)


@contextmanager
def offline_evaluation() -> Iterator[None]:
    """While active, the program accepts documentation placeholders (automation/evaluate.py sets it).

    Tests, `drctl plan` and the sandbox evaluate the committed example stack file, placeholders
    included; a real `pulumi up` never runs inside it and refuses them.
    """
    token = _OFFLINE_EVALUATION.set(True)
    try:
        yield
    finally:
        _OFFLINE_EVALUATION.reset(token)


def _is_documentation_domain(name: str) -> bool:
    return any(name == domain or name.endswith(f".{domain}") for domain in _DOCUMENTATION_DOMAINS)


def documentation_placeholders(cfg: PlatformConfig) -> list[tuple[str, str]]:
    """(key, value) of every value still holding a documentation placeholder.

    RFC 5737 address blocks, RFC 2606 names, ids containing EXAMPLE and the account IDs of AWS's examples:
    AWS accepts most of them (a placeholder zone id is refused only when a record is written), so a
    stack file that still holds one deploys something nobody can reach or is told about.
    """
    found: list[tuple[str, str]] = []
    for key, blocks in (("eksPublicAccessCidrs", cfg.eks_public_access_cidrs),):
        for block in blocks:
            if any(ipaddress.ip_network(block).subnet_of(net) for net in _DOCUMENTATION_NETWORKS):
                found.append((key, block))
    if cfg.zone_id and "EXAMPLE" in cfg.zone_id.upper():
        found.append(("zoneId", cfg.zone_id))
    if _is_documentation_domain(cfg.zone_name):
        found.append(("zoneName", cfg.zone_name))
    for email in cfg.notification_emails:
        if _is_documentation_domain(email.rsplit("@", 1)[-1].lower()):
            found.append(("notificationEmails", email))
    for url in cfg.notification_https_endpoints:
        host = url.removeprefix("https://").split("/", 1)[0].split(":", 1)[0].lower()
        if _is_documentation_domain(host):
            found.append(("notificationHttpsEndpoints", url))
    for role, settings in cfg.regions.items():
        if settings.ingress_hostname and _is_documentation_domain(settings.ingress_hostname):
            found.append((f"ingressHostnames.{role}", settings.ingress_hostname))
    arns = [("eksAdminPrincipalArns", arn) for arn in cfg.eks_admin_principal_arns]
    if cfg.backup_cross_account_vault_arn:
        arns.append(("backupCrossAccountVaultArn", cfg.backup_cross_account_vault_arn))
    for key, arn in arns:
        if arn.split(":")[4] in _DOCUMENTATION_ACCOUNTS or "EXAMPLE" in arn.upper():
            found.append((key, arn))
    return found


def refuse_documentation_placeholders(cfg: PlatformConfig) -> None:
    """Raise naming the first placeholder left in the stack's config."""
    for key, value in documentation_placeholders(cfg):
        raise ConfigError(
            key,
            f"{value!r} is a documentation placeholder (RFC 5737 addresses, RFC 2606 names, ids containing "
            "EXAMPLE, the account IDs of AWS's examples); replace it with your own value before deploying",
        )


def load_config() -> PlatformConfig:
    """Read and validate the running stack's config (inside a Pulumi program).

    A real deploy also refuses documentation placeholders; the offline evaluations accept them
    (`offline_evaluation`).
    """
    from pulumi.runtime.config import CONFIG, is_config_secret

    # The language host loads the whole stack config here (so do the test mocks), with the keys
    # set with --secret (catalogue: pulumi-cli.language-host-passes-secret-keys); reading it all lets
    # a misspelt key or namespace fail instead of silently falling back.
    config = dict(CONFIG.get())
    cfg = parse_config(config, secret_keys=[key for key in config if is_config_secret(key)])
    if not _OFFLINE_EVALUATION.get():
        refuse_documentation_placeholders(cfg)
    return cfg


_S3_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _control_store(r: _Reader, name_prefix: str, dr_region: str) -> tuple[str, str]:
    """(bucket, prefix) of drctl's control store: `controlStoreUrl`, by default the bootstrap stack's bucket.

    The same URL drctl is given (`--journal` / DRCTL_JOURNAL); the bootstrap names the bucket
    `<namePrefix>-drctl-<drRegion>` (bootstrap/config.py) and drctl's default prefix is `drctl`.
    """
    url = r.text("controlStoreUrl", f"s3://{name_prefix}-drctl-{dr_region}")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not _S3_BUCKET_RE.match(bucket):
        raise ConfigError(
            "controlStoreUrl",
            f"must be s3://BUCKET[/PREFIX], the drctl control store in the DR region (bootstrap output "
            f"controlStoreUrl), got {url!r}",
        )
    return bucket, prefix.strip("/") or "drctl"
