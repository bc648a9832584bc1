"""Evaluate the Pulumi program in-process, with no engine, CLI or cloud.

The program runs under `pulumi.runtime.set_mocks`; a recording monitor keeps
every resource registration with its inputs, its region (from its provider,
its own `region` input, or its parent component), its options (protect,
retain_on_delete, ignore_changes...) and the stack outputs. Tests assert on
this record, `drctl plan` diffs two of them, and the sandbox applies one to moto.
"""

from __future__ import annotations

import hashlib
import json
import runpy
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from components.config import NAMESPACE, PlatformConfig, StackFileError, offline_evaluation, parse_config

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROGRAM = PROJECT_DIR / "__main__.py"
ACCOUNT_ID = "123456789012"

# Services whose resources are global whatever provider declares them. They
# belong to neither region's blast radius, so a failover may target them.
GLOBAL_SERVICES = frozenset({"iam", "route53", "cloudfront", "organizations"})
GLOBAL = "global"

# Computed outputs that the program reads from resources and that the mocks
# must therefore invent (inputs are echoed back as outputs as well).
_COMPUTED: dict[str, dict[str, str]] = {
    "aws:rds/instance:Instance": {
        "endpoint": "{identifier}.cluster.{region}.rds.amazonaws.com:5432",
        "address": "{identifier}.cluster.{region}.rds.amazonaws.com",
        "resourceId": "db-{digest}",
    },
    "aws:s3/bucket:Bucket": {"bucketRegionalDomainName": "{bucket}.s3.{region}.amazonaws.com"},
    "aws:s3/bucketV2:BucketV2": {"bucketRegionalDomainName": "{bucket}.s3.{region}.amazonaws.com"},
    "aws:kms/key:Key": {"keyId": "{digest}"},
    "aws:ec2/vpc:Vpc": {"defaultSecurityGroupId": "sg-{digest}", "ownerId": ACCOUNT_ID},
    "aws:acm/certificate:Certificate": {
        "domainValidationOptions": '[{{"domainName": "{domainName}", "resourceRecordName": "_{digest}.{domainName}.", '
        '"resourceRecordType": "CNAME", "resourceRecordValue": "_{digest}.acm-validations.aws."}}]',
    },
    "aws:route53/record:Record": {"fqdn": "{name}"},
    "aws:lb/loadBalancer:LoadBalancer": {
        "dnsName": "{name}-{digest}.{region}.elb.amazonaws.com",
        "zoneId": "Z35SXDOTRQ7X7K",
        "arnSuffix": "app/{name}/{digest}",
    },
    "aws:lb/targetGroup:TargetGroup": {"arnSuffix": "targetgroup/{name}/{digest}"},
    "aws:ec2/launchTemplate:LaunchTemplate": {"latestVersion": "1"},
    "aws:route53/zone:Zone": {"zoneId": "Z{digest}", "nameServers": '["ns-1.awsdns-00.org"]'},
    "aws:eks/cluster:Cluster": {
        "endpoint": "https://{digest}.gr7.{region}.eks.amazonaws.com",
        "certificateAuthority": '{{"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"}}',
        "identities": '[{{"oidcs": [{{"issuer": "https://oidc.eks.{region}.amazonaws.com/id/{digest}"}}]}}]',
    },
    "aws:elasticache/replicationGroup:ReplicationGroup": {
        "primaryEndpointAddress": "master.{name}.{digest}.{region}.cache.amazonaws.com",
        "readerEndpointAddress": "replica.{name}.{digest}.{region}.cache.amazonaws.com",
    },
    "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup": {
        "globalReplicationGroupId": "ldgnf-{globalReplicationGroupIdSuffix}",
    },
    "random:index/randomPassword:RandomPassword": {"result": "mock-password-{digest}"},
}
# Computed fields inside an input object (the object is echoed back with them added).
_COMPUTED_NESTED: dict[str, dict[str, dict[str, str]]] = {
    "aws:eks/cluster:Cluster": {"vpcConfig": {"clusterSecurityGroupId": "sg-{digest}"}},
}


@dataclass(frozen=True)
class DeclaredResource:
    """One resource registration as the program declared it."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    region: str | None
    custom: bool
    parent: str
    protect: bool
    retain_on_delete: bool
    ignore_changes: tuple[str, ...]
    replace_on_changes: tuple[str, ...]
    delete_before_replace: bool
    dependencies: tuple[str, ...] = ()
    """URNs this resource waits for: `depends_on` and the resources its inputs come from."""
    custom_timeouts: Mapping[str, str] = field(default_factory=dict)
    """The `custom_timeouts` option: operation (create/update/delete) -> duration such as `8h`."""
    provider: str = ""
    """URN of the provider that manages the resource (empty for components and providers themselves)."""

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the resource across two evaluations (URN parts)."""
        return (self.type, self.urn)


@dataclass
class Evaluation:
    """Everything one evaluation of the program declared."""

    config: PlatformConfig
    resources: list[DeclaredResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str, region: str | None = None) -> list[DeclaredResource]:
        return [r for r in self.resources if r.type == type_token and (region is None or r.region == region)]

    def one(self, type_token: str, name: str) -> DeclaredResource:
        found = [r for r in self.resources if r.type == type_token and r.name == name]
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type_token))
            raise LookupError(f"expected one {type_token} named {name}, found {len(found)} (declared: {names})")
        return found[0]

    def by_urn(self) -> dict[str, DeclaredResource]:
        return {r.urn: r for r in self.resources}

    def regions(self) -> Iterator[str]:
        yield self.config.primary_region
        yield self.config.dr_region


class _RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.provider_regions: dict[str, str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        region = args.inputs.get("region") or self.provider_regions.get(args.provider or "", "")
        digest = hashlib.sha256(f"{args.typ}/{args.name}".encode()).hexdigest()[:12]
        if args.typ == "pulumi:providers:aws":
            return f"{args.name}-id", dict(args.inputs)
        state: dict[str, Any] = dict(args.inputs)
        physical = _physical(args.name, args.inputs)
        mock_id, mock_arn = mock_identity(args.typ, args.name, args.inputs, region)
        state.setdefault("arn", mock_arn)
        state.setdefault("name", physical)
        fields = {
            **{k: v for k, v in args.inputs.items() if isinstance(v, str)},
            "name": physical,
            "region": region,
            "digest": digest,
            "identifier": physical,
            "bucket": physical,
        }
        for key, template in _COMPUTED.get(args.typ, {}).items():
            value = template.format_map(_Default(fields))
            state.setdefault(key, _json_or_text(value))
        for key, nested in _COMPUTED_NESTED.get(args.typ, {}).items():
            computed = {field: template.format_map(_Default(fields)) for field, template in nested.items()}
            state[key] = {**computed, **(state.get(key) or {})}
        return mock_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:root", "userId": "mock"}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, []
        if args.token == "aws:route53/getZone:getZone":
            # An existing zone looked up by name: what Route53 would answer for a delegated public zone.
            name = str(args.args.get("name", "")).rstrip(".")
            zone_id = "Z" + hashlib.sha256(name.encode()).hexdigest()[:20].upper()
            return {
                "id": zone_id,
                "zoneId": zone_id,
                "name": name,
                "nameServers": ["ns-1.awsdns-00.org"],
                "privateZone": False,
            }, []
        raise NotImplementedError(f"the offline evaluation has no answer for the invoke {args.token}")


def _physical(name: str, inputs: Mapping[str, Any]) -> str:
    return inputs.get("name") or inputs.get("identifier") or inputs.get("bucket") or name


def mock_identity(type_token: str, name: str, inputs: Mapping[str, Any], region: str | None) -> tuple[str, str]:
    """The id and ARN the mocks give a resource; the sandbox maps both to what moto assigns."""
    digest = hashlib.sha256(f"{type_token}/{name}".encode()).hexdigest()[:8]
    service = type_token.split(":")[1].split("/")[0]
    physical = _physical(name, inputs)
    return f"{physical}-{digest}", inputs.get("arn") or f"arn:aws:{service}:{region or ''}:{ACCOUNT_ID}:{physical}"


class _Default(dict):
    def __missing__(self, key: str) -> str:
        return key


def _json_or_text(value: str) -> Any:
    if value[:1] in "[{":
        return json.loads(value)
    return value


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps each registration's options, which MockResourceArgs leaves out."""

    def __init__(self, mocks: _RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording_mocks = mocks
        self.records: list[DeclaredResource] = []
        self._regions_by_urn: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def _region_of(self, request: Any, inputs: Mapping[str, Any]) -> str | None:
        regions = self.recording_mocks.provider_regions
        package, _, rest = request.type.partition(":")
        if package == "aws" and request.custom and rest.split("/")[0] in GLOBAL_SERVICES:
            return GLOBAL
        if isinstance(inputs.get("region"), str):
            return inputs["region"]
        if request.provider in regions:
            return regions[request.provider]
        for ref in request.providers.values():
            if ref in regions:
                return regions[ref]
        return self._regions_by_urn.get(request.parent)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = _comparable(pulumi.runtime.rpc.deserialize_properties(request.object))
        region = self._region_of(request, inputs)
        if request.type.startswith("pulumi:providers:"):
            # What a provider manages is in its region; a Kubernetes provider takes its cluster's.
            self.recording_mocks.provider_regions[f"{response.urn}::{response.id}"] = region
        record = DeclaredResource(
            urn=real_urn(response.urn),
            type=request.type,
            name=request.name,
            inputs=inputs,
            region=region,
            custom=request.custom,
            parent=real_urn(request.parent),
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            ignore_changes=tuple(request.ignoreChanges),
            replace_on_changes=tuple(request.replaceOnChanges),
            delete_before_replace=bool(request.deleteBeforeReplace),
            # The SDK gathers dependencies in a set: sorted, two evaluations compare equal.
            dependencies=tuple(sorted(real_urn(urn) for urn in request.dependencies)),
            custom_timeouts={
                operation: getattr(request.customTimeouts, operation)
                for operation in ("create", "update", "delete")
                if request.HasField("customTimeouts") and getattr(request.customTimeouts, operation)
            },
            # A provider reference is `<urn>::<id>`.
            provider=real_urn(request.provider.rsplit("::", 1)[0]) if request.provider else "",
        )
        with self._lock:
            self._regions_by_urn[response.urn] = region
            self.records.append(record)
        return response


def _comparable(value: Any) -> Any:
    """Inputs as plain data: an asset or archive (a function's code) becomes its path and content digest.

    The SDK's asset objects have no equality, so two evaluations of the same code would always differ.
    """
    if isinstance(value, pulumi.FileAsset):
        path = Path(value.path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        shown = path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path
        return {"asset": {"path": str(shown), "sha256": digest}}
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {name: _comparable(item) for name, item in value.assets.items()}}
    if isinstance(value, (pulumi.Asset, pulumi.Archive)):
        raise TypeError(f"the offline evaluation cannot compare {type(value).__name__}; add it to _comparable")
    if isinstance(value, Mapping):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value


def real_urn(mock_urn: str) -> str:
    """The engine leaves the root stack's type out of its children's URNs; the mocks keep it."""
    return mock_urn.replace("::pulumi:pulumi:Stack$", "::", 1)


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: str, line: int, first_line: int) -> None:
        self.key = key
        super().__init__(
            f"line {line}: key {key} is given twice (first at line {first_line}); one value would be silently ignored"
        )


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; the Pulumi CLI refuses the file. Refuse it here too."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKeyError(str(key), line, seen[key])
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def stack_file_config(stack: str = "prod", project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """Read `Pulumi.<stack>.yaml` into raw config strings, as the engine passes them.

    Refused with a `StackFileError` naming the file: YAML that does not parse, a key given
    twice (catalogue: pulumi-cli.stack-file-duplicate-keys), a `config:` that is not a mapping.
    A key in a misspelt namespace is refused by `parse_config`, wherever config comes from.
    """
    path = project_dir / f"Pulumi.{stack}.yaml"
    try:
        document = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except _DuplicateKeyError as error:
        raise StackFileError(path.name, str(error), key=error.key) from None
    except yaml.YAMLError as error:
        raise StackFileError(path.name, f"is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise StackFileError(path.name, f"must be a mapping with a config: section, got {type(document).__name__}")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(
            path.name, f"config: must be a mapping of namespace:key to value, got {type(config).__name__}"
        )
    return {str(key): _config_text(value) for key, value in config.items()}


def _config_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def evaluate_program(
    raw_config: Mapping[str, str],
    stack: str = "prod",
    program: Callable[[], object] | None = None,
    secret_keys: Iterable[str] = (),
) -> Evaluation:
    """Run the program for `raw_config` and return what it declared.

    `program` replaces `__main__.py`, so a test can evaluate one component alone.
    `secret_keys` are the keys set with `--secret`, as the language host passes them.
    Config errors surface as `ConfigError` before any resource is registered.
    """
    secrets = [k if ":" in k else f"{NAMESPACE}:{k}" for k in secret_keys]
    config = parse_config(raw_config, secret_keys=secrets)
    prefixed = {k if ":" in k else f"{NAMESPACE}:{k}": v for k, v in raw_config.items()}
    mocks = _RecordingMocks()
    monitor = _RecordingMonitor(mocks)
    # set_mocks and the program register resources before _sync_await would set up a loop;
    # runbook steps evaluate on worker threads, which have none of their own.
    _ensure_event_loop()
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="dr-platform", stack=stack, preview=False, monitor=monitor)
    # As the language host does (catalogue: pulumi-cli.language-host-passes-secret-keys).
    pulumi.runtime.set_all_config(prefixed, secret_keys=secrets)
    # The committed stack file's documentation placeholders are fine here; a real deploy refuses them.
    with offline_evaluation():
        _sync_await(run_pulumi_func(program or (lambda: runpy.run_path(str(PROGRAM), run_name="__main__"))))
    root = pulumi_settings.get_root_resource()
    outputs = {name: _resolve(value) for name, value in (root.outputs if root else {}).items()}
    return Evaluation(config=config, resources=list(monitor.records), outputs=outputs)


def _resolve(value: Any) -> Any:
    output = pulumi.Output.from_input(value)
    return _sync_await(output.future())
