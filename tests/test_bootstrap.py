"""The bootstrap stack (bootstrap/) under mocks, and its IAM and KMS documents offline."""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from automation.dr_state import AUTHORITY_KEY, authority_object_key
from automation.evaluate import DeclaredResource, _RecordingMocks, _RecordingMonitor, stack_file_config
from automation.journal import CURRENT_RUN_KEY, LOCK_KEY, s3_store
from bootstrap import iam
from bootstrap.config import CI_ROLE_NAMES, NAMESPACE, BootstrapConfigError, parse_config
from components.config import parse_config as parse_platform_config
from components.iam import PROGRAM_ROLE_BOUNDARY
from tests.conftest import evaluate_features

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
def evaluate(overrides: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[DeclaredResource, ...], dict[str, Any]]:
    """Run bootstrap/__main__.py under recording mocks once per config; ARNs and policies resolve as in an update."""
    mocks = _RecordingMocks()
    monitor = _RecordingMonitor(mocks)
    _ensure_event_loop()
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="dr-platform-bootstrap", stack="prod", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({f"{NAMESPACE}:{k}": v for k, v in {**CONFIG, **dict(overrides)}.items()})
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
        # A pattern that matches a CI role makes it an operator or a key administrator.
        ({"keyAdminArns": json.dumps([f"arn:aws:iam::{ACCOUNT}:role/*"])}, "keyAdminArns"),
        ({"keyAdminArns": json.dumps([SSO_ADMIN, f"arn:aws:iam::{ACCOUNT}:role/dr-platform-*"])}, "keyAdminArns"),
        (
            {"operatorPrincipalArns": json.dumps([f"arn:aws:iam::{ACCOUNT}:role/dr-platform-dep*"])},
            "operatorPrincipalArns",
        ),
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
    # Nor grant themselves its use: kms:Create* would include CreateGrant.
    assert not [a for a in admin["Action"] if fnmatch.fnmatchcase("kms:CreateGrant", a)]


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
    assert abort["Action"] == "cloudwatch:SetAlarmState" and abort["Resource"].endswith(
        ":alarm:acme-drp-drill-*-drill-abort"
    )
    publish = by_sid["RequestDrillAborts"]
    assert publish["Action"] == "cloudwatch:PutMetricData"
    assert publish["Condition"] == {"StringEquals": {"cloudwatch:namespace": "DrPlatform/Drill"}}
    deny = by_sid["ExperimentsCarryTheDrillStackTag"]
    assert (deny["Effect"], deny["Action"]) == ("Deny", "fis:StartExperiment")
    # StringNotEquals also matches a request without the tag: an untagged start is refused.
    assert deny["Condition"] == {"StringNotEquals": {"aws:RequestTag/dr-platform:stack": "drill"}}


# --- the attacks of the security review (docs/security-review.md) ------------------------------


def guardrails(role: str, config: tuple[tuple[str, str], ...] = ()) -> dict[str, dict[str, Any]]:
    found = next(r for r in evaluate(config)[0] if r.name == f"{role}-guardrails")
    return {s["Sid"]: s for s in statements(document(found.inputs["policy"])) if s["Effect"] == "Deny"}


BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/{PROGRAM_ROLE_BOUNDARY}"


@pytest.mark.parametrize("role", ["deploy", "operator", "drill"])
def test_ci_roles_create_only_roles_that_carry_the_boundary_and_no_users(role):
    """A CI role that creates an unbounded admin role (or a user) and acts through it escapes every deny.

    catalogue: iam.permissions-boundary-condition-key
    """
    denies = guardrails(role)
    bounded = denies["OnlyBoundedRoles"]
    assert bounded["Condition"] == {"StringNotEquals": {"iam:PermissionsBoundary": BOUNDARY}}
    assert {"iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:AttachRolePolicy", "iam:PutRolePolicy"} <= set(
        bounded["Action"]
    )
    assert denies["KeepBoundaries"]["Action"] == "iam:DeleteRolePermissionsBoundary"
    assert {"iam:CreateUser", "iam:CreateAccessKey", "iam:PutUserPolicy"} <= set(denies["NoUsers"]["Action"])
    assert denies["NoRoleHopping"] == {
        "Sid": "NoRoleHopping",
        "Effect": "Deny",
        "Action": "sts:AssumeRole",
        "Resource": "*",
    }
    # The boundary itself is as untouchable as the CI roles.
    assert BOUNDARY in denies["NoSelfEscalation"]["Resource"]


@pytest.mark.parametrize("role", ["deploy", "operator", "drill"])
def test_ci_roles_never_delete_a_key_or_lock_its_account_out(role):
    """Deleting the program's data keys would take every recovery point they encrypt, Vault Lock or not.

    catalogue: kms.bypass-policy-lockout-safety-check
    """
    denies = guardrails(role)
    assert denies["NoKeyDeletion"]["Action"] == "kms:ScheduleKeyDeletion" and denies["NoKeyDeletion"]["Resource"] == "*"
    lockout = denies["NoUnmanageableKeys"]
    assert set(lockout["Action"]) == {"kms:PutKeyPolicy", "kms:CreateKey"} and lockout["Resource"] == "*"
    assert lockout["Condition"] == {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}


def test_the_program_role_boundary_carries_the_ci_roles_denies():
    """A role the deploy role creates (with the boundary, the only way it may) can do nothing deploy cannot."""
    (policy,) = declared("aws:iam/policy:Policy")
    assert policy.inputs["name"] == PROGRAM_ROLE_BOUNDARY and policy.protect
    allow, *denies = statements(document(policy.inputs["policy"]))
    assert allow == {"Sid": "WhatTheRolesOwnPoliciesAllow", "Effect": "Allow", "Action": "*", "Resource": "*"}
    assert {s["Sid"]: s for s in denies} == guardrails("operator")
    assert evaluate()[1]["programRoleBoundaryArn"] == BOUNDARY


def test_every_role_the_program_creates_carries_the_boundary():
    roles = evaluate_features().of_type("aws:iam/role:Role")
    assert len(roles) >= 10
    for role in roles:
        assert re.fullmatch(
            rf"arn:aws:iam::\d{{12}}:policy/{PROGRAM_ROLE_BOUNDARY}", role.inputs["permissionsBoundary"]
        ), role.name


def test_customer_managed_deploy_policies_cannot_be_rewritten_by_ci():
    """iam:CreatePolicyVersion on its own managed policy would give a least-privilege deploy role anything."""
    custom = f"arn:aws:iam::{ACCOUNT}:policy/dr-platform-deploy-least-privilege"
    config = (("deployPolicyArns", json.dumps([custom, "arn:aws:iam::aws:policy/ReadOnlyAccess"])),)
    protected = guardrails("deploy", config)["NoSelfEscalation"]["Resource"]
    assert custom in protected and "arn:aws:iam::aws:policy/ReadOnlyAccess" not in protected


def test_deploy_holds_the_lock_but_never_writes_the_dr_state_authority_or_the_journal():
    """The design: a CI deploy can never change the DR state. AdministratorAccess would allow the write; the deny holds.

    Operators (runbooks) write them; the deploy gate writes only the lock.
    """
    store = s3_store("organization/dr-platform/prod", "acme-drp-drctl-us-west-2", client=object())
    prefix = f"arn:aws:s3:::acme-drp-drctl-us-west-2/{store.prefix}"
    never = guardrails("deploy")["NeverWriteTheDrStateOrJournal"]
    assert set(never["Action"]) == {"s3:PutObject", "s3:DeleteObject"}
    written = [f"{prefix}/{AUTHORITY_KEY}", f"{prefix}/{CURRENT_RUN_KEY}", f"{prefix}/journal/runs/r1.json"]
    written.append(f"{prefix}/lock-breaks/20260101T000000Z.json")
    for key in written:
        assert any(fnmatch.fnmatchcase(key, resource) for resource in never["Resource"]), key
    assert not any(fnmatch.fnmatchcase(f"{prefix}/{LOCK_KEY}", resource) for resource in never["Resource"])
    assert "NeverWriteTheDrStateOrJournal" not in guardrails("operator")


def test_the_drill_role_cannot_retag_a_prod_resource_into_its_reach():
    """The RequestTag allow matches AddTagsToResource(dr-platform:stack=drill) on a prod database; then the
    ResourceTag allow hands the database over. catalogue: iam.request-tag-allows-retagging
    """
    policy = document(one("aws:iam/rolePolicy:RolePolicy", "drill-drill").inputs["policy"])
    by_sid = {s["Sid"]: s for s in statements(policy)}
    retag = by_sid["NeverRetagAnotherStacksResources"]
    assert retag["Effect"] == "Deny"
    assert retag["Condition"] == {
        "StringNotEquals": {"aws:ResourceTag/dr-platform:stack": "drill"},
        "Null": {"aws:ResourceTag/dr-platform:stack": "false"},
    }
    # Every service the tag allows reach has its tagging actions denied (route53 supports no resource tags in IAM).
    services = {a.split(":")[0] for a in iam.DRILL_SERVICES} - {"route53"}
    assert services == {a.split(":")[0] for a in retag["Action"]}
    ec2 = by_sid["Ec2TagsOnlyAtCreationOrOnDrillResources"]
    assert ec2["Effect"] == "Deny" and ec2["Condition"]["Null"] == {"ec2:CreateAction": "true"}


def test_the_declared_ci_roles_are_the_ones_config_refuses_as_operators_or_admins():
    assert {r.inputs["name"] for r in declared("aws:iam/role:Role")} == set(CI_ROLE_NAMES)


def test_the_policies_fit_iams_size_quotas_with_room_for_real_arns():
    """A managed policy holds 6,144 characters, a role's inline policies 10,240 together (whitespace not counted);
    IAM refuses larger ones at apply time. Real key ARNs are about 35 characters longer than the mocks' (4 keys
    in each document), so the documents keep 1,000 characters in reserve. catalogue: iam.policy-size-quotas
    """
    sizes: dict[str, int] = {}
    # With the drill zone configured: the largest drill role the bootstrap declares.
    for r in evaluate((("drillHostedZoneId", "Z0123456789ABCDEFGHIJ"),))[0]:
        if r.type in ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy"):
            size = len(json.dumps(json.loads(r.inputs["policy"]), separators=(",", ":")))
            owner = "managed" if r.type == "aws:iam/policy:Policy" else r.name.split("-")[0]
            sizes[owner] = sizes.get(owner, 0) + size
    assert sizes["managed"] <= 6144 - 1000
    assert set(sizes) >= {"deploy", "operator", "drill", "preview"}
    assert all(size <= 10240 - 1000 for owner, size in sizes.items() if owner != "managed"), sizes


# --- what a live drill calls, and the drill role grants (docs/drills.md, "The drill role") --------------------

# The modules `drctl drill --live` runs: the drill itself, the runbooks it drives, their AWS actions and readings,
# and the on-demand restore of the partial scope.
LIVE_DRILL_MODULES = (
    "automation/drill/*.py",
    "automation/runbooks/*.py",
    "automation/aws/*.py",
    "automation/backup_verify.py",
)
# Hand-checked against each service's API reference ("Permissions") and the Service Authorization Reference:
# boto3 (client, method) -> the IAM action it needs; None where the call needs no permission.
IAM_ACTION_OF_CALL: dict[tuple[str, str], str | None] = {
    ("autoscaling", "describe_auto_scaling_groups"): "autoscaling:DescribeAutoScalingGroups",
    ("backup", "list_recovery_points_by_backup_vault"): "backup:ListRecoveryPointsByBackupVault",
    ("backup", "list_restore_jobs"): "backup:ListRestoreJobs",
    ("cloudwatch", "describe_alarms"): "cloudwatch:DescribeAlarms",
    ("cloudwatch", "get_metric_data"): "cloudwatch:GetMetricData",
    ("cloudwatch", "get_metric_statistics"): "cloudwatch:GetMetricStatistics",
    ("cloudwatch", "put_metric_data"): "cloudwatch:PutMetricData",
    ("cloudwatch", "set_alarm_state"): "cloudwatch:SetAlarmState",
    ("eks", "describe_cluster"): "eks:DescribeCluster",
    ("eks", "describe_nodegroup"): "eks:DescribeNodegroup",
    ("eks", "update_nodegroup_config"): "eks:UpdateNodegroupConfig",
    ("elasticache", "describe_global_replication_groups"): "elasticache:DescribeGlobalReplicationGroups",
    ("elasticache", "failover_global_replication_group"): "elasticache:FailoverGlobalReplicationGroup",
    ("elbv2", "describe_target_health"): "elasticloadbalancing:DescribeTargetHealth",
    ("fis", "start_experiment"): "fis:StartExperiment",
    ("fis", "stop_experiment"): "fis:StopExperiment",
    ("rds", "copy_db_snapshot"): "rds:CopyDBSnapshot",
    ("rds", "create_db_snapshot"): "rds:CreateDBSnapshot",
    ("rds", "delete_db_instance"): "rds:DeleteDBInstance",
    ("rds", "describe_db_instance_automated_backups"): "rds:DescribeDBInstanceAutomatedBackups",
    ("rds", "describe_db_instances"): "rds:DescribeDBInstances",
    ("rds", "describe_db_parameters"): "rds:DescribeDBParameters",
    ("rds", "describe_db_snapshots"): "rds:DescribeDBSnapshots",
    ("rds", "describe_events"): "rds:DescribeEvents",
    ("rds", "modify_db_parameter_group"): "rds:ModifyDBParameterGroup",
    ("rds", "reboot_db_instance"): "rds:RebootDBInstance",
    ("rds", "restore_db_instance_from_db_snapshot"): "rds:RestoreDBInstanceFromDBSnapshot",
    ("route53", "get_health_check"): "route53:GetHealthCheck",
    ("route53", "get_health_check_status"): "route53:GetHealthCheckStatus",
    ("route53", "get_hosted_zone"): "route53:GetHostedZone",
    ("route53", "update_health_check"): "route53:UpdateHealthCheck",
    ("s3", "get_bucket_replication"): "s3:GetReplicationConfiguration",
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "put_object"): "s3:PutObject",
    ("s3control", "create_job"): "s3:CreateJob",
    ("s3control", "describe_job"): "s3:DescribeJob",
    ("s3control", "list_jobs"): "s3:ListJobs",
    ("sns", "publish"): "sns:Publish",
    ("sts", "get_caller_identity"): None,  # needs no permission, and cannot be denied
}
# Calls made from sandbox-only code paths inside those modules (take_sandbox_backups): in the table, not granted.
SANDBOX_ONLY_CALLS = {("rds", "copy_db_snapshot")}
# `pin_traffic_fence` (automation/aws/actions.py): an operator's emergency failover with --fence-through-route53 (or
# by hand, docs/operations.md); no drill step pins, and the drill role may not
# (test_the_drill_role_can_move_only_the_drill_stacks_fence). Lowering the fence reads the checks (GetHealthCheck,
# granted) and unpins only a pin an operator made.
OPERATOR_ONLY_CALLS = {("route53", "update_health_check")}


def _client_service(node: Any, bound: dict[str, str]) -> str | None:
    """`X.client("svc", ...)` or a name bound to one."""
    import ast

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client":
        first = node.args[0] if node.args else None
        return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
    return bound.get(node.id) if isinstance(node, ast.Name) else None


def boto3_calls(path: Path) -> set[tuple[str, str]]:
    """The (service, method) pairs a module calls on the clients of `AwsClients.client`, paginators included."""
    import ast

    tree = ast.parse(path.read_text())
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = [t for target in node.targets for t in getattr(target, "elts", [target])]
            values = getattr(node.value, "elts", [node.value])
            pairs = (
                zip(targets, values, strict=True) if len(values) == len(targets) else [(t, node.value) for t in targets]
            )
            for target, value in pairs:
                service = _client_service(value, {})
                if isinstance(target, ast.Name) and service:
                    bound[target.id] = service
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            service = _client_service(node.func.value, bound)
            if service is None:
                continue
            method = node.func.attr
            if method in ("get_paginator", "get_waiter") and node.args and isinstance(node.args[0], ast.Constant):
                method = node.args[0].value
            found.add((service, method))
    return found


def live_drill_calls() -> set[tuple[str, str]]:
    return {call for pattern in LIVE_DRILL_MODULES for path in ROOT.glob(pattern) for call in boto3_calls(path)}


def test_the_call_extraction_sees_the_ways_the_code_calls_clients(tmp_path):
    """Chained, bound (also in tuple assignment) and paginated calls; a call added in any of these shapes counts."""
    module = tmp_path / "m.py"
    module.write_text(
        "def f(clients, r):\n"
        "    clients.client('sns', r).publish(TopicArn='t')\n"
        "    s3, other = clients.client('s3', r), 1\n"
        "    s3.put_object(Bucket='b')\n"
        "    rds = clients.client('rds', r)\n"
        "    rds.get_paginator('describe_db_snapshots').paginate()\n"
    )
    assert boto3_calls(module) == {("sns", "publish"), ("s3", "put_object"), ("rds", "describe_db_snapshots")}


def test_every_aws_call_of_a_live_drill_has_a_hand_checked_iam_action():
    """A call added to the live drill's path without an entry here (and a grant) fails this test."""
    calls = live_drill_calls()
    assert len(calls) >= 30
    missing = sorted(calls - set(IAM_ACTION_OF_CALL))
    assert not missing, f"map these boto3 calls to their IAM action (and grant them to the drill role): {missing}"
    assert not set(IAM_ACTION_OF_CALL) - calls, "entries for calls the code no longer makes"


def drill_role_documents(config: tuple[tuple[str, str], ...] = ()) -> list[dict[str, Any]]:
    return [
        document(r.inputs["policy"])
        for r in evaluate(config)[0]
        if r.type == "aws:iam/rolePolicy:RolePolicy" and r.name in ("drill-drill", "drill-guardrails")
    ]


def _condition_holds(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """The operators the bootstrap's documents use, as IAM evaluates them (a missing key fails String* and Bool)."""
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            wanted, actual = [str(v).lower() if operator == "Bool" else v for v in as_list(expected)], context.get(key)
            if operator == "Null":
                holds = (actual is None) == (str(expected).lower() == "true")
            elif operator in ("StringEquals", "Bool"):
                holds = actual is not None and (actual.lower() if operator == "Bool" else actual) in wanted
            elif operator == "StringNotEquals":
                holds = actual is None or actual not in wanted
            elif operator in ("StringLike", "ArnLike"):
                holds = actual is not None and any(fnmatch.fnmatchcase(actual, w) for w in wanted)
            else:
                raise AssertionError(f"teach _condition_holds the operator {operator}")
            if not holds:
                return False
    return True


def decide(documents: list[dict[str, Any]], action: str, resource: str, context: dict[str, str] | None = None) -> str:
    """IAM's decision for one request: an explicit deny wins, then any allow, else the implicit deny."""
    matched = {"Allow": False, "Deny": False}
    for statement in (s for doc in documents for s in statements(doc)):
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in as_list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in as_list(statement["Resource"])):
            continue
        if _condition_holds(statement.get("Condition", {}), context or {}):
            matched[statement["Effect"]] = True
    return "Deny" if matched["Deny"] else "Allow" if matched["Allow"] else "ImplicitDeny"


def test_the_drill_role_allows_every_action_a_live_drill_calls_and_scopes_every_change():
    """Each action is allowed by some statement; one that changes anything only by a statement scoped to the drill
    stack (resource ARNs, its tag, or a condition), never by a bare `*`."""
    documents = drill_role_documents((("drillHostedZoneId", "Z0DRILL0ZONE"),))
    allows = [s for doc in documents for s in statements(doc) if s["Effect"] == "Allow"]
    for call in sorted(live_drill_calls() - SANDBOX_ONLY_CALLS - OPERATOR_ONLY_CALLS):
        action = IAM_ACTION_OF_CALL[call]
        if action is None:
            continue
        granting = [s for s in allows if any(fnmatch.fnmatchcase(action, a) for a in as_list(s["Action"]))]
        assert granting, f"{call}: the drill role does not allow {action}"
        if action.split(":")[1].startswith(("Describe", "List", "Get")) or action == "s3:CreateJob":
            continue  # reads; CreateJob's scope is the one role it may pass (PassTheDrillBatchRole)
        for statement in granting:
            assert statement["Resource"] != "*" or statement.get("Condition"), (call, statement["Sid"])


DRILL = "acme-drp-drill"
PROD = "acme-drp"


@pytest.mark.parametrize(
    ("action", "drill_resource", "prod_resource"),
    [
        ("s3:PutObject", f"arn:aws:s3:::{DRILL}-use1-data/drill-canary/d1/0", f"arn:aws:s3:::{PROD}-use1-data/x"),
        ("s3:GetReplicationConfiguration", f"arn:aws:s3:::{DRILL}-usw2-data", f"arn:aws:s3:::{PROD}-usw2-data"),
        (
            "sns:Publish",
            f"arn:aws:sns:us-west-2:{ACCOUNT}:{DRILL}-usw2-alerts",
            f"arn:aws:sns:us-west-2:{ACCOUNT}:{PROD}-usw2-alerts",
        ),
        (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{DRILL}-pg-master-AbCdEf",
            f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{PROD}-pg-master-AbCdEf",
        ),
        (
            "rds:RestoreDBInstanceFromDBSnapshot",
            f"arn:aws:rds:us-west-2:{ACCOUNT}:db:{DRILL}-usw2-verify-20261130100000",
            f"arn:aws:rds:us-west-2:{ACCOUNT}:db:{PROD}-usw2-pg-1",
        ),
        (
            "rds:DeleteDBInstance",
            f"arn:aws:rds:us-west-2:{ACCOUNT}:db:{DRILL}-usw2-verify-20261130100000",
            f"arn:aws:rds:us-west-2:{ACCOUNT}:db:{PROD}-usw2-pg-1",
        ),
        (
            "elasticache:FailoverGlobalReplicationGroup",
            f"arn:aws:elasticache::{ACCOUNT}:globalreplicationgroup:ldgnf-{DRILL}-redis",
            f"arn:aws:elasticache::{ACCOUNT}:globalreplicationgroup:ldgnf-{PROD}-redis",
        ),
        (
            "cloudwatch:SetAlarmState",
            f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{DRILL}-use1-drill-abort",
            f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{PROD}-use1-drill-abort",
        ),
    ],
)
def test_what_the_drill_role_reaches_by_name_is_the_drill_stacks_and_not_prods(action, drill_resource, prod_resource):
    """catalogue: secretsmanager.secret-arn-random-suffix, elasticache.global-datastore-id-prefix"""
    documents = drill_role_documents()
    assert decide(documents, action, drill_resource) == "Allow"
    assert decide(documents, action, prod_resource) != "Allow"


def test_the_drill_role_uses_and_grants_only_the_drill_stacks_keys_and_only_to_aws_services():
    """catalogue: kms.resource-tag-and-grant-keys"""
    documents = drill_role_documents()
    key = f"arn:aws:kms:us-west-2:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    drill, prod = {"aws:ResourceTag/dr-platform:stack": "drill"}, {"aws:ResourceTag/dr-platform:stack": "prod"}
    for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"):
        assert decide(documents, action, key, drill) == "Allow"
        assert decide(documents, action, key, prod) != "Allow"
    service = {"kms:GrantIsForAWSResource": "true"}
    assert decide(documents, "kms:CreateGrant", key, {**drill, **service}) == "Allow"
    assert decide(documents, "kms:CreateGrant", key, drill) != "Allow"  # a grant to itself or anyone else
    assert decide(documents, "kms:CreateGrant", key, {**prod, **service}) != "Allow"
    # The bootstrap's own keys stay out of reach whatever their tags (KeepKeys).
    bootstrap_key = next(s for s in statements(documents[1]) if s["Sid"] == "KeepKeys")["Resource"][0]
    assert decide(documents, "kms:CreateGrant", bootstrap_key, {**drill, **service}) == "Deny"


def test_the_drill_role_passes_only_the_drill_stacks_batch_role_and_only_to_s3_batch_operations():
    """The role name is the one the program declares (components/storage.py). catalogue: s3.batch-job-passes-its-role"""
    documents = drill_role_documents()
    role = f"arn:aws:iam::{ACCOUNT}:role/{DRILL}-s3-batch-repl"
    to_batch = {"iam:PassedToService": "batchoperations.s3.amazonaws.com"}
    assert decide(documents, "iam:PassRole", role, to_batch) == "Allow"
    assert decide(documents, "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"}) != "Allow"
    assert decide(documents, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{PROD}-s3-batch-repl", to_batch) != "Allow"
    assert decide(documents, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/dr-platform-deploy", to_batch) != "Allow"
    # The program (here prod's config, namePrefix acme-drp) names its batch role as the drill role expects.
    roles = evaluate_features().of_type("aws:iam/role:Role")
    batch = [r for r in roles if iam.BATCH_OPERATIONS_PRINCIPAL in r.inputs["assumeRolePolicy"]]
    assert [r.inputs["name"] for r in batch] == [f"{PROD}-{iam.BATCH_ROLE_SUFFIX}"]


def test_route53_record_changes_reach_the_configured_drill_zone_only():
    """Route53 supports no aws:ResourceTag for record changes: the zone is named.

    catalogue: route53.no-resource-tag-conditions
    """
    change = "route53:ChangeResourceRecordSets"
    zone = "arn:aws:route53:::hostedzone/Z0DRILL0ZONE"
    assert decide(drill_role_documents(), change, zone) != "Allow"  # no zone configured: no record changes
    configured = drill_role_documents((("drillHostedZoneId", "Z0DRILL0ZONE"),))
    for action in (change, "route53:GetHostedZone"):  # route53_view asks the zone for its name servers
        assert decide(configured, action, zone) == "Allow"
        assert decide(configured, action, "arn:aws:route53:::hostedzone/Z0PROD0ZONE") != "Allow"


def test_the_live_drill_grants_keep_every_deny_of_the_security_review():
    """Retagging a prod resource, prod's state and control-store records, the bootstrap's protections: still denied."""
    documents = drill_role_documents((("drillHostedZoneId", "Z0DRILL0ZONE"),))
    prod_db = f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{PROD}-use1-pg-1"
    prod_tag = {"aws:ResourceTag/dr-platform:stack": "prod", "aws:RequestTag/dr-platform:stack": "drill"}
    assert decide(documents, "rds:AddTagsToResource", prod_db, prod_tag) == "Deny"
    store = "arn:aws:s3:::acme-drp-drctl-us-west-2/drctl/organization/dr-platform/prod"
    for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"):
        assert decide(documents, action, f"{store}/dr-state.json") == "Deny"
        assert decide(documents, action, f"{store}/reports/d1.json") == "Deny"
    assert (
        decide(
            documents,
            "s3:PutObject",
            "arn:aws:s3:::acme-drp-pulumi-state-us-west-2/.pulumi/stacks/dr-platform/prod.json",
        )
        == "Deny"
    )
    assert decide(documents, "s3:DeleteObjectVersion", "arn:aws:s3:::acme-drp-drctl-us-west-2/drctl/x") == "Deny"


def test_the_drill_stack_file_admits_the_drill_role_to_its_clusters_and_matches_the_bootstraps_prefix():
    """The probe Job reaches the clusters through an EKS access entry the program declares for
    `eksAdminPrincipalArns` (components/cluster.py), on the drill stack's clusters only; the drill role's
    name-scoped grants assume the drill stack's namePrefix is the bootstrap's drillNamePrefix."""
    drill = yaml.safe_load((ROOT / "Pulumi.drill.yaml").read_text())["config"]
    roles = drill["dr-platform:eksAdminPrincipalArns"]
    assert [r for r in roles if r.endswith(":role/dr-platform-drill")]
    prod = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    assert "dr-platform-drill" not in json.dumps(prod.get("dr-platform:eksAdminPrincipalArns", []))
    example = yaml.safe_load((BOOTSTRAP / "Pulumi.example.yaml").read_text())["config"]
    cfg = parse_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in example.items()})
    assert cfg.drill_name_prefix == drill["dr-platform:namePrefix"]


def test_the_drill_stacks_fence_publisher_reads_the_bootstraps_control_store_with_a_role_the_key_admits():
    """The drill stack's default controlStoreUrl would be `<its namePrefix>-drctl-<drRegion>`, a bucket the bootstrap
    never creates (and anyone may name); its publisher must read where drctl writes, as the role the storage key
    admits. catalogue: kms.s3-bucket-key-encryption-context"""
    from components.fence_publisher import fence_publisher_name

    example = yaml.safe_load((BOOTSTRAP / "Pulumi.example.yaml").read_text())["config"]
    bootstrap = parse_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in example.items()})
    drill = parse_platform_config(stack_file_config("drill"))
    assert (drill.control_store_bucket, drill.control_store_prefix) == (bootstrap.control_store_bucket, "drctl")
    assert drill.dr_region == bootstrap.dr_region
    (statement,) = [
        s
        for s in statements(document(next(r for r in evaluate()[0] if r.name == "storage").inputs["policy"]))
        if s["Sid"] == "FencePublishersReadTheControlStore"
    ]
    publisher = fence_publisher_name(drill.name_prefix, drill.dr_region)
    assert f"arn:aws:iam::{ACCOUNT}:role/{publisher}" in statement["Condition"]["ArnLike"]["aws:PrincipalArn"]


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [("acme-drp", "must not name"), ("acme", "must not name"), ("Drill!", "must be 3-20 characters")],
)
def test_a_drill_prefix_that_would_reach_prod_or_the_bootstrap_is_refused(prefix, problem):
    with pytest.raises(BootstrapConfigError, match=rf"drillNamePrefix {problem}"):
        parse_config({**CONFIG, "drillNamePrefix": prefix})
    with pytest.raises(BootstrapConfigError, match="drillHostedZoneId"):
        parse_config({**CONFIG, "drillHostedZoneId": "/hostedzone/Z1"})


def _authority_arn(stack: str) -> str:
    return f"arn:aws:s3:::acme-drp-drctl-us-west-2/{authority_object_key(f'organization/dr-platform/{stack}')}"


def test_the_drill_role_can_move_only_the_drill_stacks_fence():
    """A fence step writes the stack's dr-state.json and waits for its fence publisher's datapoint and the fence alarm
    (automation/runbooks/steps.py traffic_fence_step). The drill role writes the drill stack's authority and reads
    what the wait reads; it can neither write prod's authority, nor put a fence datapoint (the namespace is shared
    and PutMetricData scopes by namespace only), nor change the drill stack's publisher (its role may publish the
    whole namespace), nor pin a fence check through Route53 (a health check is reached by its generated id only).

    catalogue: cloudwatch.put-metric-data-namespace-only, route53.health-check-arn-is-its-generated-id
    """
    from components.fault_injection import ABORT_NAMESPACE
    from components.fence_publisher import fence_publisher_name
    from components.traffic import FENCE_NAMESPACE

    documents = drill_role_documents((("drillHostedZoneId", "Z0DRILL0ZONE"),))
    for action in ("s3:GetObject", "s3:PutObject"):
        assert decide(documents, action, _authority_arn("drill")) == "Allow"
        assert decide(documents, action, _authority_arn("prod")) == "Deny"
    for action in ("cloudwatch:GetMetricStatistics", "cloudwatch:DescribeAlarms", "route53:GetHealthCheckStatus"):
        assert decide(documents, action, "*") == "Allow"
    assert decide(documents, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": FENCE_NAMESPACE}) != "Allow"
    assert decide(documents, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": ABORT_NAMESPACE}) == "Allow"
    publisher = fence_publisher_name(DRILL, "us-west-2")
    function = f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:{publisher}"
    for action in ("lambda:UpdateFunctionConfiguration", "lambda:UpdateFunctionCode"):
        assert decide(documents, action, function) != "Allow"
    assert decide(documents, "iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/{publisher}") != "Allow"
    assert decide(documents, "route53:UpdateHealthCheck", "arn:aws:route53:::healthcheck/0a1b2c3d-drill") != "Allow"


def test_no_drill_step_pins_the_fence():
    """The drill role is not granted UpdateHealthCheck because a live drill never pins the fence: pinning is the
    emergency failover's --fence-through-route53 (an operator's), and the fence step pins only behind it or to undo a
    pin already made. A drill module that asks for the pin must revisit OPERATOR_ONLY_CALLS."""
    drill_modules = [
        path.relative_to(ROOT).as_posix()
        for path in ROOT.glob("automation/drill/*.py")
        if "fence_through_route53" in path.read_text() or "pin_traffic_fence" in path.read_text()
    ]
    assert drill_modules == []
    pinning = [
        path.relative_to(ROOT).as_posix()
        for path in ROOT.glob("automation/runbooks/*.py")
        if "aws.pin_traffic_fence(" in path.read_text()
    ]
    assert pinning == ["automation/runbooks/steps.py"]
    step = (ROOT / "automation/runbooks/steps.py").read_text()
    assert "if through_route53" in step and "traffic_fence_pinned(fence)" in step


DRILL_RECORDS = (
    AUTHORITY_KEY,
    "dr-state/history/20261130T102500000000Z.json",
    CURRENT_RUN_KEY,
    "journal/runs/r1.json",
    LOCK_KEY,
    "lock-breaks/20261130T102500000000Z.json",
    "pending-clears/20261130T102500000000Z.json",
    "reports/d1.json",
    "reports/d1.md",
)


@pytest.mark.parametrize("record", DRILL_RECORDS)
def test_a_full_live_drill_keeps_the_drill_stacks_records_and_never_touches_prods(record):
    """What drctl keeps per stack in the control store (automation/journal.py, dr_state.py, live_command.py's
    reports), under the prefix `s3_store` gives each stack: the drill stack's read, written and deleted, prod's
    (the same layout, another stack name) denied, whatever else allows it."""
    documents = drill_role_documents((("drillHostedZoneId", "Z0DRILL0ZONE"),))
    bucket = "acme-drp-drctl-us-west-2"
    for stack, expected in (("drill", "Allow"), ("prod", "Deny")):
        store = s3_store(f"organization/dr-platform/{stack}", bucket, client=object())
        key = f"arn:aws:s3:::{bucket}/{store.prefix}/{record}"
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert decide(documents, action, key) == expected, (stack, action)


def test_the_drill_role_reads_and_writes_its_records_through_the_control_stores_key():
    """SSE-KMS with a Bucket Key: writing needs GenerateDataKey, reading Decrypt, both through S3 in the DR region, and
    a missing record reads as 404 only with ListBucket. catalogue: s3.missing-key-403-without-list-bucket"""
    policy = document(next(r for r in evaluate()[0] if r.name == "storage").inputs["policy"])
    drill = role_arn("drill")
    for action in ("kms:Decrypt", "kms:GenerateDataKey*"):
        (granting,) = [
            s for s in statements(policy) if action in as_list(s["Action"]) and drill in as_list(s["Principal"]["AWS"])
        ]
        assert granting["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}
    documents = drill_role_documents()
    assert decide(documents, "s3:ListBucket", "arn:aws:s3:::acme-drp-drctl-us-west-2") == "Allow"


# What each resource type a DR transition's stack update changes needs, and how the drill role reaches it.
TRANSITION_GRANTS: dict[str, tuple[str, ...]] = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"),
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": ("s3:PutReplicationConfiguration",),
    "aws:backup/selection:Selection": ("backup:CreateBackupSelection", "backup:DeleteBackupSelection"),
    "aws:rds/instance:Instance": ("rds:CreateDBInstanceReadReplica", "rds:ModifyDBInstance", "rds:DeleteDBInstance"),
    # One parameter group per database generation: a generation's group comes and goes with it.
    "aws:rds/parameterGroup:ParameterGroup": (
        "rds:CreateDBParameterGroup",
        "rds:ModifyDBParameterGroup",
        "rds:DeleteDBParameterGroup",
    ),
    "aws:eks/nodeGroup:NodeGroup": ("eks:UpdateNodegroupConfig",),
    "aws:route53/record:Record": ("route53:ChangeResourceRecordSets",),
}
# Kubernetes objects change through the cluster's API, as the EKS access entry of the drill role allows.
THROUGH_THE_ACCESS_ENTRY = "kubernetes:"


def transition_changes() -> dict[str, list[Any]]:
    from automation.changes import diff
    from tests.conftest import STATE_OVERRIDES, evaluate_state

    states = list(STATE_OVERRIDES)
    changed: dict[str, list[Any]] = {}
    for before, after in zip(states, [*states[1:], states[0]], strict=True):
        old, new = evaluate_state(before), evaluate_state(after)
        by_urn = {r.urn: r for r in (*old.resources, *new.resources)}  # a deleted resource is only in `old`
        for change in diff(old, new).effective():
            changed.setdefault(change.type, []).append(by_urn[change.urn])
    return changed


def test_the_drill_role_may_make_every_change_a_dr_transition_makes_to_the_drill_stack():
    """The runbooks' stack updates (failover, failback prepare and switch) change these types, measured by diffing
    the program's DR states; a new type fails here until the drill role reaches it. Untagged ones by name."""
    changed = transition_changes()
    unmapped = [t for t in changed if t not in TRANSITION_GRANTS and not t.startswith(THROUGH_THE_ACCESS_ENTRY)]
    assert not unmapped, f"grant the drill role what a DR transition changes: {unmapped}"
    documents = drill_role_documents((("drillHostedZoneId", "Z0DRILL0ZONE"),))
    tagged = {"aws:ResourceTag/dr-platform:stack": "drill", "aws:RequestTag/dr-platform:stack": "drill"}
    alarm = f"arn:aws:cloudwatch:us-west-2:{ACCOUNT}:alarm:{DRILL}-usw2-pg-g2-cpu"
    examples = {
        "aws:cloudwatch/metricAlarm:MetricAlarm": alarm,
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig": f"arn:aws:s3:::{DRILL}-usw2-data",
        "aws:backup/selection:Selection": f"arn:aws:backup:us-west-2:{ACCOUNT}:backup-plan:0123",
        "aws:rds/instance:Instance": f"arn:aws:rds:us-west-2:{ACCOUNT}:db:{DRILL}-usw2-pg-g2",
        "aws:rds/parameterGroup:ParameterGroup": f"arn:aws:rds:us-west-2:{ACCOUNT}:pg:{DRILL}-usw2-pg-g2-params",
        "aws:eks/nodeGroup:NodeGroup": f"arn:aws:eks:us-west-2:{ACCOUNT}:nodegroup/{DRILL}-usw2/x/y",
        "aws:route53/record:Record": "arn:aws:route53:::hostedzone/Z0DRILL0ZONE",
    }
    for type_token, actions in TRANSITION_GRANTS.items():
        for action in actions:
            assert decide(documents, action, examples[type_token], tagged) == "Allow", (type_token, action)
    # The roles those resources name again when they are recreated (prod's names, as the drill stack's), each
    # to its own service only.
    passed = [
        ("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "role", "s3.amazonaws.com"),
        ("aws:backup/selection:Selection", "iamRoleArn", "backup.amazonaws.com"),
    ]
    for type_token, key, service in passed:
        for resource in changed[type_token]:
            name = re.split("[:/]", resource.inputs[key])[-1].replace(PROD, DRILL, 1)
            role = f"arn:aws:iam::{ACCOUNT}:role/{name}"
            assert decide(documents, "iam:PassRole", role, {"iam:PassedToService": service}) == "Allow", role
            assert decide(documents, "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"}) != "Allow"
    prod_alarm = f"arn:aws:cloudwatch:us-west-2:{ACCOUNT}:alarm:{PROD}-usw2-pg-g2-cpu"
    assert decide(documents, "cloudwatch:DeleteAlarms", prod_alarm) != "Allow"


def test_the_storage_key_lets_the_fence_publishers_decrypt_the_control_store_through_s3_only():
    """The prod and drill stacks' fence publishers read their dr-state.json; the key policy has no root delegation, so
    it names the roles (which the stacks create later) by ARN pattern. Without the drill stack's, its publisher reads
    nothing and a full live drill's fence steps time out. catalogue: kms.s3-bucket-key-encryption-context"""
    policy = document(next(r for r in evaluate()[0] if r.name == "storage").inputs["policy"])
    (statement,) = [s for s in statements(policy) if s["Sid"] == "FencePublishersReadTheControlStore"]
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"] == [
        f"arn:aws:iam::{ACCOUNT}:role/acme-drp-usw2-fence-publisher",
        f"arn:aws:iam::{ACCOUNT}:role/acme-drp-drill-usw2-fence-publisher",
    ]
    assert statement["Condition"]["StringEquals"] == {
        "kms:ViaService": "s3.us-west-2.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::acme-drp-drctl-us-west-2",
    }
