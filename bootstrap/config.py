"""The bootstrap stack's config, validated before any resource is declared.

Keys are in the `dr-platform-bootstrap` namespace; every error names the key
and what is allowed.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NAMESPACE = "dr-platform-bootstrap"
LOCK_MODES = ("COMPLIANCE", "GOVERNANCE")
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"

_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
_PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{1,18}[a-z0-9]")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
_ZONE_ID = re.compile(r"Z[A-Z0-9]{1,31}")


class BootstrapConfigError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{NAMESPACE}:{key} {problem}")
        self.key = key


@dataclass(frozen=True)
class BootstrapConfig:
    account_id: str
    primary_region: str
    dr_region: str
    name_prefix: str
    github_repository: str
    operator_principal_arns: tuple[str, ...]
    key_admin_arns: tuple[str, ...]
    deploy_policy_arns: tuple[str, ...]
    project_name: str = "dr-platform"
    stack_name: str = "prod"
    drill_stack_name: str = "drill"
    drill_name_prefix: str = ""
    """The drill stack's `namePrefix` (Pulumi.drill.yaml): what the drill role reaches by name."""
    drill_hosted_zone_id: str | None = None
    """The drill stack's Route53 zone (output dns.zoneId), known after its first deploy; Route53 scopes by zone."""
    deploy_environment: str = "prod"
    drill_environment: str = "drill"
    control_store_lock_mode: str = "COMPLIANCE"
    control_store_retention_days: int = 365
    state_noncurrent_version_days: int = 90

    @property
    def state_bucket(self) -> str:
        return f"{self.name_prefix}-pulumi-state-{self.dr_region}"

    @property
    def state_replica_bucket(self) -> str:
        return f"{self.name_prefix}-pulumi-state-{self.primary_region}"

    @property
    def control_store_bucket(self) -> str:
        return f"{self.name_prefix}-drctl-{self.dr_region}"


KNOWN_KEYS = frozenset(
    {
        "accountId",
        "primaryRegion",
        "drRegion",
        "namePrefix",
        "githubRepository",
        "operatorPrincipalArns",
        "keyAdminArns",
        "deployPolicyArns",
        "projectName",
        "stackName",
        "drillStackName",
        "drillNamePrefix",
        "drillHostedZoneId",
        "deployEnvironment",
        "drillEnvironment",
        "controlStoreLockMode",
        "controlStoreRetentionDays",
        "stateNoncurrentVersionDays",
    }
)


def parse_config(raw: Mapping[str, str]) -> BootstrapConfig:
    """Validate raw config strings (keys with or without the namespace)."""
    values = {key.removeprefix(f"{NAMESPACE}:"): value for key, value in raw.items()}
    for key in values:
        if ":" in key or key not in KNOWN_KEYS:
            raise BootstrapConfigError(key, f"is not a setting of the bootstrap stack; known: {sorted(KNOWN_KEYS)}")
    account = _required(values, "accountId")
    if not re.fullmatch(r"\d{12}", account):
        raise BootstrapConfigError("accountId", f"must be a 12-digit AWS account id, got {account!r}")
    primary = _region(values, "primaryRegion")
    dr = _region(values, "drRegion")
    if dr == primary:
        raise BootstrapConfigError("drRegion", f"must differ from primaryRegion ({primary})")
    prefix = values.get("namePrefix", "drp")
    if not _PREFIX.fullmatch(prefix):
        raise BootstrapConfigError("namePrefix", f"must be 3-20 characters [a-z0-9-], got {prefix!r}")
    repository = _required(values, "githubRepository")
    if not _REPOSITORY.fullmatch(repository):
        raise BootstrapConfigError("githubRepository", f"must be OWNER/NAME as GitHub spells it, got {repository!r}")
    role_arn = re.compile(rf"arn:aws:iam::{account}:role/[\w+=,.@/*-]+")
    roles = f"IAM role ARNs (patterns) in account {account}"
    operators = _arn_list(values, "operatorPrincipalArns", role_arn, roles, required=True)
    admins = _arn_list(values, "keyAdminArns", role_arn, roles, required=True)
    for key, patterns in (("operatorPrincipalArns", operators), ("keyAdminArns", admins)):
        _refuse_ci_roles(key, patterns, account)
    policies = _arn_list(
        values, "deployPolicyArns", re.compile(r"arn:aws:iam::(aws|\d{12}):policy/[\w+=,.@/-]+"), "IAM policy ARNs"
    ) or (ADMINISTRATOR_ACCESS,)
    mode = values.get("controlStoreLockMode", "COMPLIANCE")
    if mode not in LOCK_MODES:
        raise BootstrapConfigError("controlStoreLockMode", f"must be one of {', '.join(LOCK_MODES)}, got {mode!r}")
    names = {key: values.get(key, default) for key, default in _NAME_DEFAULTS.items()}
    for key, value in names.items():
        if not _NAME.fullmatch(value):
            raise BootstrapConfigError(key, f"must be a name of [A-Za-z0-9._-], got {value!r}")
    if names["stackName"] == names["drillStackName"]:
        raise BootstrapConfigError("drillStackName", "must differ from stackName: the drill role may not touch it")
    drill_prefix = values.get("drillNamePrefix", f"{prefix}-drill")
    _check_drill_prefix(drill_prefix, prefix, dr, primary)
    zone = values.get("drillHostedZoneId") or None
    if zone is not None and not _ZONE_ID.fullmatch(zone):
        raise BootstrapConfigError(
            "drillHostedZoneId", f"must be a Route53 hosted zone id such as Z0123456789ABC, got {zone!r}"
        )
    return BootstrapConfig(
        account_id=account,
        primary_region=primary,
        dr_region=dr,
        name_prefix=prefix,
        github_repository=repository,
        operator_principal_arns=operators,
        key_admin_arns=admins,
        deploy_policy_arns=policies,
        project_name=names["projectName"],
        stack_name=names["stackName"],
        drill_stack_name=names["drillStackName"],
        drill_name_prefix=drill_prefix,
        drill_hosted_zone_id=zone,
        deploy_environment=names["deployEnvironment"],
        drill_environment=names["drillEnvironment"],
        control_store_lock_mode=mode,
        control_store_retention_days=_integer(values, "controlStoreRetentionDays", 365, 1, 36500),
        state_noncurrent_version_days=_integer(values, "stateNoncurrentVersionDays", 90, 1, 3650),
    )


_NAME_DEFAULTS = {
    "projectName": "dr-platform",
    "stackName": "prod",
    "drillStackName": "drill",
    "deployEnvironment": "prod",
    "drillEnvironment": "drill",
}


def load_config() -> BootstrapConfig:
    """Read and validate the running stack's config (inside the Pulumi program)."""
    from pulumi.runtime.config import CONFIG

    return parse_config({k: v for k, v in CONFIG.get().items() if k.startswith(f"{NAMESPACE}:")})


def _required(values: Mapping[str, str], key: str) -> str:
    value = values.get(key, "")
    if not value:
        raise BootstrapConfigError(key, "is required")
    return value


def _region(values: Mapping[str, str], key: str) -> str:
    value = _required(values, key)
    if not _REGION.fullmatch(value):
        raise BootstrapConfigError(key, f"must be an AWS region name such as us-west-2, got {value!r}")
    return value


def _integer(values: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = values.get(key, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise BootstrapConfigError(key, f"must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise BootstrapConfigError(key, f"must be between {low} and {high}, got {value}")
    return value


CI_ROLE_NAMES = tuple(f"dr-platform-{name}" for name in ("preview", "deploy", "operator", "drill", "replication"))
"""The roles the bootstrap creates (bootstrap/stack.py names them)."""


def _refuse_ci_roles(key: str, patterns: tuple[str, ...], account: str) -> None:
    """A pattern that matches a CI role would make it an operator or a key administrator (ArnLike: `*`, `?`)."""
    for pattern in patterns:
        matched = [n for n in CI_ROLE_NAMES if fnmatch.fnmatchcase(f"arn:aws:iam::{account}:role/{n}", pattern)]
        if matched:
            raise BootstrapConfigError(key, f"must not match the CI roles; {pattern!r} matches {matched}")


def _check_drill_prefix(drill_prefix: str, prefix: str, *regions: str) -> None:
    """The drill role reaches `<drillNamePrefix>-*` by name (buckets, topics, secrets, roles): no bootstrap bucket
    and no name of the prod stack (namePrefix) may match that pattern."""
    key = "drillNamePrefix"
    if not _PREFIX.fullmatch(drill_prefix):
        raise BootstrapConfigError(
            key, f"must be 3-20 characters [a-z0-9-] (the drill stack's namePrefix), got {drill_prefix!r}"
        )
    ours = [f"{prefix}-{what}-{region}" for what in ("pulumi-state", "drctl") for region in regions]
    caught = [
        name for name in (prefix, *ours) if fnmatch.fnmatchcase(name, f"{drill_prefix}-*") or name == drill_prefix
    ]
    if caught:
        raise BootstrapConfigError(
            key, f"must not name the bootstrap's or prod's resources; {drill_prefix}-* matches {caught}"
        )


def _arn_list(
    values: Mapping[str, str], key: str, pattern: re.Pattern[str], what: str, required: bool = False
) -> tuple[str, ...]:
    raw = values.get(key)
    if raw is None:
        if required:
            raise BootstrapConfigError(key, f"is required: a list of {what}")
        return ()
    try:
        items: Any = json.loads(raw)
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise BootstrapConfigError(key, f"must be a list of {what}")
    bad = [i for i in items if not pattern.fullmatch(i)]
    if bad or not items:
        raise BootstrapConfigError(key, f"must be a non-empty list of {what}; not one: {bad}")
    return tuple(items)
