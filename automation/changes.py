"""What a change of config does to the stack: the change set between two evaluations.

`diff` compares two offline evaluations of the program (before and after a
config change, e.g. a DR transition) resource by resource and predicts the
engine's operation for each: create, update, replace, delete or same. Whether
an update becomes a replacement is decided from automation/data/replace_rules.json,
generated from the providers' source (terraform-provider-aws's ForceNew and
RequiresReplace markers, resources without an Update, CustomizeDiff conditions;
pulumi-kubernetes' replace table and its ConfigMap/Secret immutability) for
every type the program declares. It compares declared inputs, not the
provider's state, and knows nothing of diff suppression; the real `pulumi
preview` (and `drctl guard` on it) is the authority in CI.

`STATEFUL_TYPES` is the one definition of "a resource that holds data" used by
the change set, the preview guard, `drctl plan` and the policy pack's docs.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import keyword
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
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
# catalogue: pulumi-aws.region-change-replaces
REGION_PROPERTY = "region"

# Which input changes make each provider replace a resource: generated from the
# providers' source by tools/provider-schema/generate.py (see its docstring),
# for every type the program declares, the policy pack names and STATEFUL_TYPES
# lists. Never edit it by hand: regenerate it.
# catalogue: pulumi-aws.force-new-from-provider-schema
# catalogue: pulumi-kubernetes.replace-table
REPLACE_RULES_FILE = Path(__file__).resolve().parent / "data" / "replace_rules.json"


@functools.cache
def replace_rules() -> Mapping[str, Any]:
    """The generated table: {"aws": {...,"resources": {type: entry}}, "kubernetes": {...}}."""
    return json.loads(REPLACE_RULES_FILE.read_text())


def rules_for(type_token: str) -> Mapping[str, Any] | None:
    """The table's entry for a type, or None when no provider table covers it."""
    tables = replace_rules()
    return tables["aws"]["resources"].get(type_token) or tables["kubernetes"]["resources"].get(type_token)


@dataclass(frozen=True)
class ProviderSettings:
    """What the providers a resource is managed by are configured to do (for replace decisions)."""

    config_map_mutable: bool = False
    secret_mutable: bool = False


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
    old, new = ({r.urn: r for r in _as_the_provider_sees(e) if r.custom} for e in (before, after))
    settings = provider_settings(after)
    changes = [_compare(old.get(urn), new[urn], settings.get(new[urn].provider)) for urn in new]
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


KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
AWS_PROVIDER = "pulumi:providers:aws"


def _as_the_provider_sees(evaluation: Evaluation) -> list[DeclaredResource]:
    """Resources as their provider sees them: pulumi-aws merges its provider's default tags into `tags`.

    So a change of default tags is a change of `tags` on every resource that takes them, and replaces
    those whose tags force a new resource (catalogue: pulumi-aws.default-tags-update-in-place).
    """
    defaults: dict[str, Mapping[str, str]] = {}
    for provider in evaluation.resources:
        if provider.type == AWS_PROVIDER:
            configured = provider.inputs.get("defaultTags") or {}
            defaults[provider.urn] = (json.loads(configured) if isinstance(configured, str) else configured).get(
                "tags"
            ) or {}
    seen = []
    for resource in evaluation.resources:
        tags = defaults.get(resource.provider)
        if tags and _takes_tags(resource.type):
            merged = {**tags, **(resource.inputs.get("tags") or {})}
            resource = dataclasses.replace(resource, inputs={**resource.inputs, "tags": merged})
        seen.append(resource)
    return seen


@functools.cache
def _takes_tags(type_token: str) -> bool:
    """Whether the pulumi-aws resource has a `tags` input (read from the installed SDK)."""
    package, _, rest = type_token.partition(":")
    if package != "aws" or ":" not in rest:
        return False
    module, class_name = rest.split("/")[0], rest.split(":")[-1]
    try:
        sdk = importlib.import_module(f"pulumi_aws.{module}_" if keyword.iskeyword(module) else f"pulumi_aws.{module}")
        return "tags" in inspect.signature(getattr(sdk, class_name)._internal_init).parameters
    except (ImportError, AttributeError):
        return False


def provider_settings(evaluation: Evaluation) -> dict[str, ProviderSettings]:
    """How each Kubernetes provider (by URN) treats ConfigMaps and Secrets; its objects name it."""
    return {
        provider.urn: ProviderSettings(
            config_map_mutable=_flag(provider.inputs.get("enableConfigMapMutable")),
            secret_mutable=_flag(provider.inputs.get("enableSecretMutable")),
        )
        for provider in evaluation.resources
        if provider.type == KUBERNETES_PROVIDER
    }


def _flag(value: Any) -> bool:
    """Provider config arrives as JSON text: `"true"`, or a bool when set in-process."""
    return value is True or value == "true"


def _compare(old: DeclaredResource | None, new: DeclaredResource, provider: ProviderSettings | None = None) -> Change:
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
    reasons = replace_reasons(
        new.type, changed, new.replace_on_changes, old=old.inputs, new=new.inputs, provider=provider
    )
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


def replace_reasons(
    type_token: str,
    changed: Iterable[str],
    replace_on_changes: Iterable[str] = (),
    *,
    old: Mapping[str, Any] | None = None,
    new: Mapping[str, Any] | None = None,
    provider: ProviderSettings | None = None,
) -> tuple[str, ...]:
    """The changes that force a new resource: the provider's rules, `region`, or `replace_on_changes`.

    With the old and new inputs, nested rules (`launchTemplate.id`) and conditions (an engine
    version downgrade) are decided on the values; with only the changed top-level names, a rule
    counts when its top-level property changed (conservative for conditions).
    """
    changed = tuple(changed)
    requested = {_parse_path(p)[0] for p in replace_on_changes if p}
    reasons = [p for p in changed if p in requested or "*" in requested]
    entry = rules_for(type_token)
    if REGION_PROPERTY in changed and (entry is None or entry.get("regionReplaces", True)):
        reasons.append(REGION_PROPERTY)
    if entry is not None:
        if entry.get("updatable") is False:
            # catalogue: pulumi-aws.no-update-replaces
            reasons += [f"{p} (no in-place update)" for p in changed]
        else:
            reasons += _rule_reasons(entry, changed, old, new, provider or ProviderSettings())
    return tuple(dict.fromkeys(reasons))


def _rule_reasons(
    entry: Mapping[str, Any],
    changed: tuple[str, ...],
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    provider: ProviderSettings,
) -> list[str]:
    rules = [dict(rule) for rule in entry.get("rules", ())]
    rules += [{"path": path, "when": "changed"} for path in entry.get("replaceOn", ())]
    unless_mutable = entry.get("replaceOnUnlessMutable")
    if unless_mutable:
        # catalogue: pulumi-kubernetes.configmap-data-replaces-unless-mutable
        mutable = {
            "enableConfigMapMutable": provider.config_map_mutable,
            "enableSecretMutable": provider.secret_mutable,
        }[unless_mutable["providerFlag"]]
        if not mutable or (new or {}).get("immutable") is True:
            rules += [{"path": path, "when": "changed"} for path in unless_mutable["paths"]]
    reasons = []
    for rule in rules:
        path = rule["path"].split(".")
        if path[0] not in changed:
            continue
        if old is None or new is None:
            reasons.append(rule["path"])
            continue
        before, after = _project(old, path), _project(new, path)
        if before == after:
            continue
        when = rule["when"]
        if when in ("changedWhileSet", "configured") and not _is_set(after):
            continue  # an Optional+Computed value left out keeps the old one: no diff
        if when == "condition":
            decided = _CONDITIONS.get(rule["condition"])
            if decided is None:
                reasons.append(f"{rule['path']} (replaces if {rule['condition']}; assumed)")
            elif decided(old, new):
                reasons.append(rule["path"])
            continue
        reasons.append(rule["path"])
    return reasons


def _project(value: Any, path: list[str]) -> Any:
    """The values under `path`, through objects and lists (`rules.id` -> [id of each rule])."""
    if not path:
        return value
    if isinstance(value, Mapping):
        return _project(value.get(path[0]), path[1:])
    if isinstance(value, list):
        return [_project(item, path) for item in value]
    return None


def _is_set(value: Any) -> bool:
    if isinstance(value, list):
        return any(_is_set(item) for item in value)
    return value is not None


def _version(text: Any) -> tuple[int, ...] | None:
    parts = str(text or "").split(".")
    return tuple(int(p) for p in parts) if parts and all(p.isdigit() for p in parts) else None


def _elasticache_engine_version_downgrade(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """ElastiCache replaces a cache on an engine version downgrade, except in a global datastore.

    catalogue: pulumi-aws.elasticache-engine-version-downgrade-replaces
    """
    if new.get("globalReplicationGroupId"):
        return False
    before, after = _version(old.get("engineVersion")), _version(new.get("engineVersion"))
    return before is None or after is None or after < before


def _elasticache_engine_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A changed engine replaces a cache, except Redis OSS -> Valkey and in a global datastore.

    catalogue: pulumi-aws.elasticache-engine-change-replaces
    """
    if new.get("globalReplicationGroupId"):
        return False
    return not (old.get("engine") == "redis" and new.get("engine") == "valkey")


# The CustomizeDiff conditions the planner decides on values (keys as the table names them);
# any other condition is assumed to replace when its property changes.
_CONDITIONS: Mapping[str, Callable[[Mapping[str, Any], Mapping[str, Any]], bool]] = {
    "customizeDiffEngineVersionForceNewOnDowngrade": _elasticache_engine_version_downgrade,
    "customdiff.ForceNewIf:customizeDiffEngineForceNewOnDowngrade": _elasticache_engine_change,
}


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
