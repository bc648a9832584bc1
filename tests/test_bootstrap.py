"""The bootstrap stack (bootstrap/) under mocks, and its IAM and KMS documents offline."""

from __future__ import annotations

import functools
import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from automation.evaluate import DeclaredResource, _RecordingMocks, _RecordingMonitor, stack_file_config
from automation.journal import s3_store
from bootstrap import iam
from bootstrap.config import NAMESPACE, BootstrapConfigError, parse_config
from components.config import parse_config as parse_platform_config

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / "bootstrap"
ACCOUNT = "123456789012"
REPO = "acme/dr-platform"
SSO_OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_DrOperator_*"
SSO_ADMIN = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_PlatformAdmin_0123"
CONFIG = {
    "accountId": ACCOUNT,
    "primaryRegion": "us-east-1",
    "drRegion": "us-west-2",
    "namePrefix": "acme-drp",
    "githubRepository": REPO,
    "operatorPrincipalArns": json.dumps([SSO_OPERATOR]),
    "keyAdminArns": json.dumps([SSO_ADMIN]),
}


@functools.cache
def evaluate() -> tuple[tuple[DeclaredResource, ...], dict[str, Any]]:
    """Run bootstrap/__main__.py under recording mocks once; ARNs and policies resolve as in an update."""
    mocks = _RecordingMocks()
    monitor = _RecordingMonitor(mocks)
    _ensure_event_loop()
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="dr-platform-bootstrap", stack="prod", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({f"{NAMESPACE}:{k}": v for k, v in CONFIG.items()})
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(BOOTSTRAP / "__main__.py"), run_name="__main__")))
    root = pulumi_settings.get_root_resource()
    outputs = {k: _sync_await(pulumi.Output.from_input(v).future()) for k, v in (root.outputs if root else {}).items()}
    return tuple(monitor.records), outputs


def declared(type_token: str) -> list[DeclaredResource]:
    return [r for r in evaluate()[0] if r.type == type_token]


def one(type_token: str, name: str) -> DeclaredResource:
    (found,) = [r for r in declared(type_token) if r.name == name]
    return found


def document(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- config --------------------------------------------------------------------------


def test_the_example_stack_file_is_valid_config():
    example = yaml.safe_load((BOOTSTRAP / "Pulumi.example.yaml").read_text())["config"]
    cfg = parse_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in example.items()})
    assert cfg.state_bucket == "acme-drp-pulumi-state-us-west-2"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"accountId": "12345"}, "accountId"),
        ({"drRegion": "us-east-1"}, "drRegion"),
        ({"primaryRegion": "useast1"}, "primaryRegion"),
        ({"githubRepository": "dr-platform"}, "githubRepository"),
        ({"operatorPrincipalArns": json.dumps(["arn:aws:iam::999999999999:role/x"])}, "operatorPrincipalArns"),
        ({"keyAdminArns": "[]"}, "keyAdminArns"),
        ({"controlStoreLockMode": "LEGAL_HOLD"}, "controlStoreLockMode"),
        ({"controlStoreRetentionDays": "0"}, "controlStoreRetentionDays"),
        ({"drillStackName": "prod"}, "drillStackName"),
        ({"githubRepo": REPO}, "githubRepo"),
    ],
)
def test_bad_config_names_the_key(override, key):
    with pytest.raises(BootstrapConfigError, match=rf"^{NAMESPACE}:{key} ") as error:
        parse_config({**CONFIG, **override})
    assert error.value.key == key


def test_operators_and_key_administrators_are_required():
    for key in ("operatorPrincipalArns", "keyAdminArns"):
        with pytest.raises(BootstrapConfigError, match=f"{key} is required"):
            parse_config({k: v for k, v in CONFIG.items() if k != key})


# --- the stack file's encryption settings (issue 9.3) -----------------------------------


def test_the_programs_config_reader_accepts_the_keys_stack_init_writes(tmp_path):
    """`pulumi stack init --secrets-provider awskms://...` adds top-level keys next to `config:`."""
    written_by_stack_init = (
        "secretsprovider: awskms://alias/acme-drp-pulumi-secrets?region=us-west-2\n"
        "encryptedkey: AQICAHh2c2VjcmV0LWRhdGEta2V5LWNpcGhlcnRleHQ=\n"
        "encryptionsalt: v1:c2FsdA==:v1:bm9uY2U=:Y2lwaGVy\n"  # a passphrase stack's, for completeness
    )
    (tmp_path / "Pulumi.prod.yaml").write_text(written_by_stack_init + (ROOT / "Pulumi.prod.yaml").read_text())
    raw = stack_file_config("prod", tmp_path)
    assert raw == stack_file_config("prod")
    assert parse_platform_config(raw).dr_region == "us-west-2"


# --- what the stack declares -----------------------------------------------------------


def test_every_stateful_bootstrap_resource_is_protected_and_retained():
    for type_token in ("aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"):
        found = declared(type_token)
        assert found and all(r.protect and r.retain_on_delete for r in found), type_token
    assert all(r.protect for r in declared("aws:iam/role:Role"))


def test_the_state_bucket_is_in_the_dr_region_versioned_encrypted_and_replicated_to_the_primary():
    state = one("aws:s3/bucket:Bucket", "state")
    assert (state.region, state.inputs["bucket"]) == ("us-west-2", "acme-drp-pulumi-state-us-west-2")
    assert one("aws:s3/bucket:Bucket", "state-replica").region == "us-east-1"
    (replication,) = declared("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    (rule,) = replication.inputs["rules"]
    assert rule["status"] == "Enabled" and "pulumi-state-us-east-1" in rule["destination"]["bucket"]
    assert rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"]
    for name in ("state", "state-replica", "control-store"):
        versioning = one("aws:s3/bucketVersioning:BucketVersioning", f"{name}-versioning")
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
        sse = one(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{name}-encryption",
        )
        assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"


def test_the_control_store_keeps_every_version_under_compliance_mode_object_lock():
    """catalogue: s3.object-lock-default-retention"""
    control = one("aws:s3/bucket:Bucket", "control-store")
    assert control.region == "us-west-2" and control.inputs["objectLockEnabled"] is True
    (lock,) = declared("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    retention = lock.inputs["rule"]["defaultRetention"]
    assert retention == {"mode": "COMPLIANCE", "days": 365}
    assert lock.protect


def test_the_secrets_keys_are_multi_region_with_a_replica_in_the_primary_region():
    """catalogue: kms.multi-region-key-decrypts-in-replica-region"""
    keys = {r.name: r for r in declared("aws:kms/key:Key")}
    assert set(keys) == {"secrets", "drill-secrets", "storage"}
    assert all(k.region == "us-west-2" and k.inputs["multiRegion"] is True for k in keys.values())
    replicas = {r.name: r.region for r in declared("aws:kms/replicaKey:ReplicaKey")}
    assert replicas == dict.fromkeys(
        ("secrets-primary-region", "drill-secrets-primary-region", "storage-primary-region"), "us-east-1"
    )
    aliases = {(r.inputs["name"], r.region) for r in declared("aws:kms/alias:Alias")}
    assert ("alias/acme-drp-pulumi-secrets", "us-west-2") in aliases
    assert ("alias/acme-drp-pulumi-secrets", "us-east-1") in aliases


def test_the_outputs_are_what_the_first_deploy_needs():
    outputs = evaluate()[1]
    assert outputs["stateBackendUrl"] == "s3://acme-drp-pulumi-state-us-west-2?region=us-west-2"
    assert outputs["secretsProvider"] == "awskms://alias/acme-drp-pulumi-secrets?region=us-west-2"
    assert outputs["drillSecretsProvider"] == "awskms://alias/acme-drp-pulumi-drill-secrets?region=us-west-2"
    assert set(outputs["roleArns"]) == {"preview", "deploy", "operator", "drill"}
    assert outputs["githubSubjectClaimKeys"] == ["repo", "context", "job_workflow_ref"]


def test_the_providers_refuse_another_account():
    providers = declared("pulumi:providers:aws")
    assert {p.inputs["region"] for p in providers} == {"us-east-1", "us-west-2"}
    assert all(json.loads(p.inputs["allowedAccountIds"]) == [ACCOUNT] for p in providers)


# --- IAM and KMS documents (offline) ---------------------------------------------------


def role_trust(name: str) -> dict[str, Any]:
    return document(one("aws:iam/role:Role", name).inputs["assumeRolePolicy"])


def all_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for r in evaluate()[0]:
        for key in ("assumeRolePolicy", "policy"):
            if isinstance(r.inputs.get(key), str) and r.inputs[key].startswith("{"):
                found.append((f"{r.name}.{key}", json.loads(r.inputs[key])))
    return found


def test_no_allow_statement_has_a_wildcard_principal_and_account_principals_are_narrowed():
    documents = all_documents()
    assert len(documents) >= 15
    for name, doc in documents:
        for statement in statements(doc):
            principal = statement.get("Principal")
            if statement["Effect"] != "Allow" or principal is None:
                continue
            assert principal != "*", name
            for value in (v for values in principal.values() for v in as_list(values)):
                assert value != "*", name
                if value.endswith(":root"):
                    assert "aws:PrincipalArn" in statement["Condition"]["ArnLike"], name


@pytest.mark.parametrize(
    ("role", "subject"),
    [
        (
            "deploy",
            f"repo:{REPO}:environment:prod:job_workflow_ref:{REPO}/.github/workflows/deploy.yml@refs/heads/main",
        ),
        ("drill", f"repo:{REPO}:environment:drill:job_workflow_ref:{REPO}/.github/workflows/drill.yml@refs/heads/main"),
    ],
)
def test_deploy_and_drill_trust_one_workflow_on_main_in_one_environment(role, subject):
    """catalogue: github.oidc-sub-template"""
    (statement,) = statements(role_trust(role))
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].startswith("arn:aws:iam:")
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": subject,
        }
    }


def test_a_feature_branch_or_another_workflow_does_not_match_the_deploy_subject():
    subject = iam.deploy_subject(REPO, "prod")
    assert iam.github_subject(REPO, "environment:prod", "deploy.yml", "refs/heads/feature") != subject
    assert iam.github_subject(REPO, "environment:prod", "preview.yml", "refs/heads/main") != subject
    assert iam.github_subject("evil/dr-platform", "environment:prod", "deploy.yml", "refs/heads/main") != subject


def test_the_preview_role_trusts_pull_requests_of_this_repository_only():
    (statement,) = statements(role_trust("preview"))
    assert statement["Condition"]["StringLike"] == {
        "token.actions.githubusercontent.com:sub": f"repo:{REPO}:pull_request:job_workflow_ref:"
        f"{REPO}/.github/workflows/preview.yml@refs/pull/*/merge"
    }


def test_the_operator_role_trusts_only_the_named_sso_roles():
    (statement,) = statements(role_trust("operator"))
    assert statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": [SSO_OPERATOR]}}


def test_the_replication_role_names_its_source_account_and_bucket():
    """catalogue: iam.source-keys-only-where-sent (S3 documents none for this trust: never a hard requirement)"""
    (statement,) = statements(role_trust("replication"))
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"]["StringEqualsIfExists"] == {"aws:SourceAccount": ACCOUNT}
    assert statement["Condition"]["ArnLikeIfExists"] == {
        "aws:SourceArn": "arn:aws:s3:::acme-drp-pulumi-state-us-west-2"
    }


def role_arn(name: str) -> str:
    return evaluate()[1]["roleArns"].get(name) or one("aws:iam/role:Role", name).inputs.get("arn", "")


def key_users(key_name: str, actions: tuple[str, ...]) -> set[str]:
    policy = document(next(r for r in evaluate()[0] if r.name == key_name).inputs["policy"])
    users: set[str] = set()
    for statement in statements(policy):
        if statement["Effect"] == "Allow" and set(as_list(statement["Action"])) & set(actions):
            users.update(as_list(statement["Principal"]["AWS"]))
    return users


@pytest.mark.parametrize("key", ["secrets", "secrets-primary-region"])
def test_only_deploy_and_operator_decrypt_prod_secrets_and_preview_never(key):
    decrypters = key_users(key, ("kms:Decrypt",))
    assert decrypters == {role_arn("deploy"), role_arn("operator")}
    assert role_arn("preview") not in decrypters
    # Administrators manage the key without being able to use it.
    admin = next(
        s
        for s in statements(document(next(r for r in evaluate()[0] if r.name == key).inputs["policy"]))
        if s["Sid"] == "Administer"
    )
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"} & set(admin["Action"])


def test_the_drill_key_is_the_drill_roles_and_not_deploys():
    decrypters = key_users("drill-secrets", ("kms:Decrypt",))
    assert decrypters == {role_arn("drill"), role_arn("operator")}


def test_preview_reads_the_control_store_and_nothing_else():
    policy = document(one("aws:iam/rolePolicy:RolePolicy", "preview-control-store").inputs["policy"])
    actions = {a for s in statements(policy) for a in as_list(s["Action"])}
    assert actions == {"s3:ListBucket", "s3:GetObject"}
    assert all("acme-drp-drctl-us-west-2" in r for s in statements(policy) for r in as_list(s["Resource"]))
    assert not [r for r in declared("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if "preview" in r.name]


def test_deploy_and_operator_cannot_erase_state_lift_the_lock_touch_keys_or_rewrite_their_trust():
    for role in ("deploy", "operator", "drill"):
        policy = document(one("aws:iam/rolePolicy:RolePolicy", f"{role}-guardrails").inputs["policy"])
        denies = {s["Sid"]: s for s in statements(policy) if s["Effect"] == "Deny"}
        assert "s3:DeleteObjectVersion" in denies["KeepStateAndControlStore"]["Action"]
        assert "s3:PutBucketObjectLockConfiguration" in denies["KeepStateAndControlStore"]["Action"]
        assert "arn:aws:s3:::acme-drp-drctl-us-west-2/*" in denies["KeepStateAndControlStore"]["Resource"]
        assert {"kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"} <= set(denies["KeepKeys"]["Action"])
        assert len(denies["KeepKeys"]["Resource"]) == 4
        assert role_arn("deploy") in denies["NoSelfEscalation"]["Resource"]
        assert "backup:DeleteRecoveryPoint" in denies["KeepRecoveryPoints"]["Action"]


def test_the_drill_role_never_reaches_prod_state():
    policy = document(one("aws:iam/rolePolicy:RolePolicy", "drill-drill").inputs["policy"])
    never = next(s for s in statements(policy) if s["Sid"] == "NeverProd")
    assert never["Effect"] == "Deny"
    assert "arn:aws:s3:::acme-drp-pulumi-state-us-west-2/.pulumi/stacks/dr-platform/prod.json*" in never["Resource"]
    allowed = next(s for s in statements(policy) if s["Sid"] == "DrillStateOnly")
    assert not [r for r in allowed["Resource"] if "/prod" in r]
    # The prefixes are where drctl keeps each stack's lock and journal in the control store.
    drill_store = s3_store("organization/dr-platform/drill", "acme-drp-drctl-us-west-2", client=object())
    assert f"arn:aws:s3:::acme-drp-drctl-us-west-2/{drill_store.prefix}/*" in allowed["Resource"]
    assert "arn:aws:s3:::acme-drp-drctl-us-west-2/drctl/organization/dr-platform/prod/*" in never["Resource"]
    assert not [r for r in declared("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if "drill" in r.name]


def test_bucket_policies_require_tls_and_keep_history_from_everyone_but_key_administrators():
    for bucket in ("state", "state-replica", "control-store"):
        policy = document(one("aws:s3/bucketPolicy:BucketPolicy", f"{bucket}-policy").inputs["policy"])
        tls, keep = statements(policy)
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and tls["Effect"] == "Deny"
        assert keep["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": [SSO_ADMIN]}}
        assert "s3:DeleteObjectVersion" in keep["Action"] and "s3:BypassGovernanceRetention" in keep["Action"]


def test_the_drill_role_can_abort_a_live_drill_and_starts_only_tagged_experiments():
    """docs/fault-injection.md's abort (SetAlarmState, PutMetricData) and the stack tag on StartExperiment.

    catalogue: fis.start-experiment-request-tag
    """
    policy = document(one("aws:iam/rolePolicy:RolePolicy", "drill-drill").inputs["policy"])
    by_sid = {s["Sid"]: s for s in statements(policy)}
    abort = by_sid["AbortDrills"]
    assert abort["Action"] == "cloudwatch:SetAlarmState" and abort["Resource"].endswith(":alarm:*-drill-abort")
    publish = by_sid["RequestDrillAborts"]
    assert publish["Action"] == "cloudwatch:PutMetricData"
    assert publish["Condition"] == {"StringEquals": {"cloudwatch:namespace": "DrPlatform/Drill"}}
    deny = by_sid["ExperimentsCarryTheDrillStackTag"]
    assert (deny["Effect"], deny["Action"]) == ("Deny", "fis:StartExperiment")
    # StringNotEquals also matches a request without the tag: an untagged start is refused.
    assert deny["Condition"] == {"StringNotEquals": {"aws:RequestTag/dr-platform:stack": "drill"}}


def test_the_storage_key_lets_the_fence_publisher_decrypt_the_control_store_through_s3_only():
    """The prod stack's fence publisher reads dr-state.json; the key policy has no root delegation, so it names the
    role (which the prod stack creates later) by ARN pattern. catalogue: kms.s3-bucket-key-encryption-context"""
    policy = document(next(r for r in evaluate()[0] if r.name == "storage").inputs["policy"])
    (statement,) = [s for s in statements(policy) if s["Sid"] == "FencePublisherReadsTheControlStore"]
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"] == [
        f"arn:aws:iam::{statement['Principal']['AWS'].split(':')[4]}:role/acme-drp-usw2-fence-publisher"
    ]
    assert statement["Condition"]["StringEquals"] == {
        "kms:ViaService": "s3.us-west-2.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::acme-drp-drctl-us-west-2",
    }
