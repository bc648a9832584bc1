"""Write automation/data/replace_rules.json: which input changes make each provider replace a resource.

The table covers every resource type the program declares (in every DR state, and with
every optional feature on),
every type the policy pack names and every type `STATEFUL_TYPES` lists. For the
AWS types it comes from terraform-provider-aws's Go source, which pulumi-aws is
generated from, parsed by `main.go` beside this file (ForceNew attributes,
RequiresReplace plan modifiers, resources without an Update function,
CustomizeDiff conditions); the Terraform names are then mapped to the Pulumi
property names of the installed pulumi-aws SDK, nested blocks included, and the
run fails on any name it cannot map, any type it cannot find and any schema it
could not follow. The Kubernetes rules are pulumi-kubernetes' own table
(provider/pkg/provider/diff.go and helm_release.go), transcribed below with the
version they were read from.

    git clone https://github.com/lonegunmanb/terraform-provider-aws-index /tmp/tpa-index
    git -C /tmp/tpa-index checkout <the commit for the terraform-provider-aws release>
    .venv/bin/python tools/provider-schema/generate.py --source /tmp/tpa-index \\
        --upstream v6.58.0 --source-commit "$(git -C /tmp/tpa-index rev-parse HEAD)"

`--source` may also be a checkout of terraform-provider-aws itself (same layout
under internal/). Needs Go (the extractor uses the standard library only).
"""

from __future__ import annotations

import argparse
import importlib
import json
import keyword
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUTPUT = ROOT / "automation" / "data" / "replace_rules.json"

# Pulumi type tokens whose Terraform name the bridge does not spell as
# aws_<module>_<snake class> or aws_<snake class> (pulumi-aws provider/resources.go).
TERRAFORM_NAMES = {
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:lb/loadBalancer:LoadBalancer": "aws_lb",
    "aws:alb/loadBalancer:LoadBalancer": "aws_lb",
    "aws:s3/bucketV2:BucketV2": "aws_s3_bucket",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": "aws_s3_bucket_replication_configuration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": (
        "aws_s3_bucket_server_side_encryption_configuration"
    ),
}

# Attributes pulumi-aws renames (provider/resources.go `Fields`), where the name is not the
# bridge's camelCase of the Terraform name. The run fails on any input it cannot map, so a
# missing entry cannot drop a rule.
RENAMES = {
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm_name"): "name",
    ("aws:sns/topicSubscription:TopicSubscription", "topic_arn"): "topic",
    ("aws:lambda/function:Function", "function_name"): "name",
    ("aws:lambda/permission:Permission", "function_name"): "function",
}

# pulumi-kubernetes v4.32.0, provider/pkg/provider/diff.go (forceNewProperties, forceNew) and
# helm_release.go (Diff): the paths whose change replaces an object of each kind. Every
# object also replaces on .metadata.name and .metadata.namespace.
KUBERNETES_SOURCE = "pulumi/pulumi-kubernetes v4.32.0 (94977969d64112b04e19945818a7d5d5f38f631d)"
KUBERNETES_RULES: dict[str, dict[str, Any]] = {
    "kubernetes:core/v1:ConfigMap": {
        "replaceOn": ["metadata.name", "metadata.namespace"],
        # Unless the provider sets enableConfigMapMutable (or PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE)
        # and the ConfigMap is not `immutable: true`.
        "replaceOnUnlessMutable": {"paths": ["data", "binaryData"], "providerFlag": "enableConfigMapMutable"},
    },
    "kubernetes:core/v1:Secret": {
        "replaceOn": ["metadata.name", "metadata.namespace", "type"],
        "replaceOnUnlessMutable": {"paths": ["data", "stringData"], "providerFlag": "enableSecretMutable"},
    },
    "kubernetes:core/v1:Namespace": {"replaceOn": ["metadata.name", "metadata.namespace"]},
    "kubernetes:core/v1:ServiceAccount": {"replaceOn": ["metadata.name", "metadata.namespace"]},
    # forceNew lists batch Job only: a CronJob replaces on its identity alone.
    "kubernetes:batch/v1:CronJob": {"replaceOn": ["metadata.name", "metadata.namespace"]},
    "kubernetes:core/v1:PersistentVolumeClaim": {
        "replaceOn": [
            "metadata.name",
            "metadata.namespace",
            "spec.accessModes",
            "spec.selector",
            "spec.storageClassName",
            "spec.volumeName",
        ]
    },
    "kubernetes:storage.k8s.io/v1:StorageClass": {
        "replaceOn": ["metadata.name", "metadata.namespace", "parameters", "provisioner"]
    },
    "kubernetes:helm.sh/v3:Release": {"replaceOn": ["name", "namespace"]},
    # A custom resource has no entry in the table: only its identity replaces it.
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": {"replaceOn": ["metadata.name", "metadata.namespace"]},
}


def declared_types() -> set[str]:
    """Every type the program declares in each DR state, the policy pack names, or STATEFUL_TYPES lists."""
    from automation.changes import STATEFUL_TYPES
    from automation.evaluate import evaluate_program
    from tests.conftest import FEATURE_OVERRIDES, STATE_OVERRIDES, prod_config

    types = set(STATEFUL_TYPES)
    for overrides in (*STATE_OVERRIDES.values(), FEATURE_OVERRIDES):
        types |= {r.type for r in evaluate_program(prod_config(**overrides)).resources if r.custom}
    policy = (ROOT / "policy" / "policies.py").read_text()
    types |= set(re.findall(r'"(aws:[a-z0-9]+/[A-Za-z0-9]+:[A-Za-z0-9]+)"', policy))
    return {t for t in types if not t.startswith("pulumi:providers:")}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def terraform_candidates(token: str) -> list[str]:
    if token in TERRAFORM_NAMES:
        return [TERRAFORM_NAMES[token]]
    module, class_name = token.split(":")[1].split("/")[0], token.split(":")[2]
    return [f"aws_{module}_{_snake(class_name)}", f"aws_{_snake(class_name)}"]


def registered_names(source: Path) -> set[str]:
    """Every resource type the source's service packages register."""
    return set(_run_extractor(source, "-registered").split())


def extract(source: Path, names: Iterable[str]) -> dict[str, Any]:
    return json.loads(_run_extractor(source, *sorted(names)))


def _run_extractor(source: Path, *arguments: str) -> str:
    command = ["go", "run", ".", "-source", str(source), *arguments]
    result = subprocess.run(command, cwd=HERE, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"extractor failed: {result.stderr.strip()}")
    return result.stdout


# --- Terraform names -> Pulumi names ---------------------------------------------------


def _normal(name: str) -> str:
    return name.replace("_", "").lower()


def sdk_properties(args_class: type) -> dict[str, type | None]:
    """An Args class's wire names, each with the Args class of its elements (None for scalars)."""
    module = importlib.import_module(args_class.__module__)
    properties: dict[str, type | None] = {}
    for klass in reversed(args_class.__mro__):
        for attribute in vars(klass).values():
            getter = getattr(attribute, "fget", None)
            wire = getattr(getter, "_pulumi_name", None)
            if wire is None:
                continue
            nested = re.search(r"ForwardRef\('(\w+Args)'\)", str(getter.__annotations__.get("return", "")))
            properties[wire] = getattr(module, nested.group(1)) if nested else None
    return properties


def pulumi_name(terraform: str, properties: dict[str, type | None]) -> str | None:
    """The bridge's name for a Terraform attribute: camelCase, lists pluralised (rule -> rules)."""
    base = _normal(terraform)
    plural = {base, base + "s", base + "es", base[:-1] + "ies" if base.endswith("y") else base}
    exact = [p for p in properties if _normal(p) == base]
    if exact:
        return exact[0]
    found = [p for p in properties if _normal(p) in plural]
    return found[0] if len(found) == 1 else None


def args_class(token: str) -> type:
    """The resource's own Args class (read from its module: `s3.BucketVersioningArgs` is also a nested type)."""
    module, class_name = token.split(":")[1].split("/")[0], token.split(":")[2]
    # A module named after a Python keyword gets a trailing underscore (`lambda` -> `pulumi_aws.lambda_`).
    package = f"pulumi_aws.{module}_" if keyword.iskeyword(module) else f"pulumi_aws.{module}"
    resource = importlib.import_module(getattr(importlib.import_module(package), class_name).__module__)
    # The generator calls it ...InitArgs where ...Args is taken by a nested type.
    return getattr(resource, f"{class_name}InitArgs", None) or getattr(resource, f"{class_name}Args")


def map_path(token: str, path: list[str]) -> list[str] | None:
    """A Terraform attribute path as Pulumi property names, or None when a part is no input."""
    properties = sdk_properties(args_class(token))
    mapped = []
    for depth, part in enumerate(path):
        name = RENAMES.get((token, ".".join(path[: depth + 1]))) or pulumi_name(part, properties)
        if name is None:
            return None
        mapped.append(name)
        nested = properties[name]
        properties = sdk_properties(nested) if nested else {}
    return mapped


def aws_entry(token: str, terraform: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    # A schema part the extractor could not follow matters only where it is a Pulumi input
    # (the framework's `id` is not); terraform-plugin-framework-timeouts' blocks carry no plan
    # modifier.
    problems = [
        f"{token}: unresolved {u}"
        for u in terraform.get("unresolved", [])
        if not (match := re.fullmatch(r"attribute ([\w.]+): (.*)", u))
        or (map_path(token, match.group(1).split(".")) and not match.group(2).startswith("timeouts."))
    ]
    rules: list[dict[str, str]] = []
    for rule in terraform["rules"]:
        path = map_path(token, rule["path"])
        if path is None:
            # ForceNew on an output-only attribute: no input of the program can change it.
            if rule["input"]:
                problems.append(f"{token}: no Pulumi input for {'.'.join(rule['path'])}; add it to RENAMES")
            continue
        entry = {"path": ".".join(path), "when": rule["when"]}
        if rule.get("condition"):
            entry["condition"] = rule["condition"]
        if entry not in rules:
            rules.append(entry)
    return (
        {
            "terraform": terraform["terraform"],
            "kind": terraform["kind"],
            "package": terraform["package"],
            "updatable": terraform["updatable"],
            "regionReplaces": "ResourceRegionDisabled" not in terraform["region"],
            "rules": rules,
        },
        problems,
    )


def kubernetes_entries(types: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for token in sorted(types):
        if token.startswith("kubernetes:"):
            if token not in KUBERNETES_RULES:
                raise SystemExit(f"{token}: no pulumi-kubernetes replace rule transcribed; add it from diff.go")
            yield token, KUBERNETES_RULES[token]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--upstream", required=True, help="terraform-provider-aws release the source is, e.g. v6.58.0")
    parser.add_argument("--source-commit", required=True, help="commit of --source")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    started = time.monotonic()
    types = declared_types()
    registered = registered_names(args.source)
    terraform_names: dict[str, str] = {}
    for token in sorted(t for t in types if t.startswith("aws:")):
        found = [n for n in terraform_candidates(token) if n in registered]
        if not found:
            raise SystemExit(f"{token}: none of {terraform_candidates(token)} is registered by the provider")
        terraform_names[token] = found[0]
    extracted = extract(args.source, set(terraform_names.values()))

    resources: dict[str, Any] = {}
    problems: list[str] = []
    for token, name in terraform_names.items():
        resources[token], found_problems = aws_entry(token, extracted[name])
        problems += found_problems
    if problems:
        raise SystemExit("cannot derive the table:\n  " + "\n  ".join(problems))

    document = {
        "generatedBy": "tools/provider-schema/generate.py (see its docstring for the command)",
        "aws": {
            "pulumiPackage": f"pulumi-aws {metadata.version('pulumi-aws')}",
            "upstream": f"terraform-provider-aws {args.upstream}",
            "source": "lonegunmanb/terraform-provider-aws-index (per-declaration copy of the provider's source)"
            if (args.source / "index").is_dir()
            else "hashicorp/terraform-provider-aws",
            "sourceCommit": args.source_commit,
            "resources": resources,
        },
        "kubernetes": {
            "pulumiPackage": f"pulumi-kubernetes {metadata.version('pulumi-kubernetes')}",
            "source": KUBERNETES_SOURCE,
            "resources": dict(kubernetes_entries(types)),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(
        f"{len(resources)} AWS and {len(document['kubernetes']['resources'])} Kubernetes types "
        f"written to {args.output} in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
