import itertools
import json

import pytest

from components.config import parse_config
from components.naming import BATCH_REPORT_PREFIX
from components.storage import lifecycle_rules
from tests.conftest import evaluate_state, prod_config

BUCKET = "aws:s3/bucket:Bucket"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
TRANSITIONS = ("steady", "failed-over", "resyncing", "steady-after-failback")


def _for_bucket(evaluation, token: str, region: str):
    found = evaluation.of_type(token, region)
    assert len(found) == 1, f"{token} in {region}: {len(found)}"
    return found[0]


def test_one_protected_bucket_per_region(state_eval):
    cfg = state_eval.config
    buckets = state_eval.of_type(BUCKET)
    assert sorted(b.region for b in buckets) == sorted(state_eval.regions())
    for bucket in buckets:
        assert bucket.protect and bucket.retain_on_delete
        assert bucket.inputs["forceDestroy"] is False
        assert state_eval.outputs["buckets"][bucket.region]["name"] == bucket.inputs["bucket"]
    assert state_eval.outputs["buckets"][cfg.primary_region]["name"] == "acme-drp-use1-data"


def test_buckets_are_versioned_encrypted_with_their_region_key_and_private(steady):
    for region in steady.regions():
        versioning = _for_bucket(steady, "aws:s3/bucketVersioning:BucketVersioning", region)
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
        sse = _for_bucket(
            steady,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            region,
        )
        (rule,) = sse.inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": steady.outputs["kmsKeys"][region],
        }
        assert rule["bucketKeyEnabled"] is True
        block = _for_bucket(steady, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", region)
        for setting in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
            assert block.inputs[setting] is True
        ownership = _for_bucket(steady, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", region)
        assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_bucket_policy_refuses_plain_http(steady):
    for region in steady.regions():
        policy = json.loads(_for_bucket(steady, "aws:s3/bucketPolicy:BucketPolicy", region).inputs["policy"])
        (statement,) = policy["Statement"]
        arn = steady.outputs["buckets"][region]["arn"]
        assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert sorted(statement["Resource"]) == sorted([arn, f"{arn}/*"])


def test_lifecycle_follows_the_retention_config(steady):
    cfg = steady.config
    for region in steady.regions():
        lifecycle = _for_bucket(steady, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", region)
        rules = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
        uploads = rules["uploads"]
        assert uploads["filter"]["prefix"] == "uploads/"
        assert [(t["storageClass"], t["days"]) for t in uploads["transitions"]] == [
            ("STANDARD_IA", cfg.storage_ia_after_days),
            ("GLACIER_IR", cfg.storage_glacier_after_days),
        ]
        assert uploads["expiration"]["days"] == cfg.uploads_retention_days == 90
        assert rules["logs"]["filter"]["prefix"] == "logs/"
        assert rules["logs"]["expiration"]["days"] == cfg.logs_retention_days == 30
        history = rules["config-history"]
        assert history["filter"]["prefix"] == "config/"
        assert "expiration" not in history and "noncurrentVersionExpiration" not in history
        assert history["noncurrentVersionTransitions"][0]["storageClass"] == "GLACIER"
        assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] > 0


@pytest.mark.parametrize(
    ("retention", "expected"),
    [("90", ["STANDARD_IA", "GLACIER_IR"]), ("60", ["STANDARD_IA"]), ("45", ["STANDARD_IA"]), ("30", [])],
)
def test_uploads_never_transition_on_or_after_they_expire(retention, expected):
    """S3 refuses a lifecycle rule whose expiration is not later than its transitions."""
    cfg = parse_config(prod_config(uploadsRetentionDays=retention))
    (uploads,) = [rule for rule in lifecycle_rules(cfg) if rule.id == "uploads"]
    assert [t.storage_class for t in uploads.transitions] == expected
    assert all(t.days < uploads.expiration.days == int(retention) for t in uploads.transitions)


@pytest.mark.parametrize(
    ("state", "source", "destination"),
    [
        ("steady", "us-east-1", "us-west-2"),
        ("failed-over", "us-east-1", "us-west-2"),
        ("resyncing", "us-west-2", "us-east-1"),
        ("steady-after-failback", "us-east-1", "us-west-2"),
    ],
)
def test_replication_direction_per_state(state, source, destination):
    evaluation = evaluate_state(state)
    (config,) = evaluation.of_type(REPLICATION)
    assert config.region == source
    replication = evaluation.outputs["replication"]
    assert (replication["source"], replication["destination"]) == (source, destination)
    assert config.inputs["bucket"] == evaluation.outputs["buckets"][source]["name"]
    (rule,) = config.inputs["rules"]
    target = rule["destination"]
    assert target["bucket"] == evaluation.outputs["buckets"][destination]["arn"]
    # Replicas are re-encrypted with the destination region's key.
    assert target["encryptionConfiguration"]["replicaKmsKeyId"] == evaluation.outputs["kmsKeys"][destination]
    assert target["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15}}
    assert target["metrics"] == {"status": "Enabled", "eventThreshold": {"minutes": 15}}
    assert rule["deleteMarkerReplication"]["status"] == "Enabled"
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"


def test_replication_role_may_read_the_source_and_write_the_destination(steady):
    (config,) = steady.of_type(REPLICATION)
    role = next(r for r in steady.of_type("aws:iam/role:Role") if r.name == "storage-replication-from-primary")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "s3.amazonaws.com"}
    # catalogue: iam.source-keys-only-where-sent (the source bucket of this account, whenever S3 says so)
    assert trust["Condition"] == {
        "StringEqualsIfExists": {"aws:SourceAccount": "123456789012"},
        "ArnLikeIfExists": {"aws:SourceArn": steady.outputs["buckets"]["us-east-1"]["arn"]},
    }
    policy = next(
        p for p in steady.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "storage-replication-from-primary"
    )
    statements = json.loads(policy.inputs["policy"])["Statement"]
    grants = {action: s["Resource"] for s in statements for action in _actions(s)}
    assert grants["s3:ReplicateObject"] == f"{steady.outputs['buckets']['us-west-2']['arn']}/*"
    assert grants["s3:GetObjectVersionForReplication"] == f"{steady.outputs['buckets']['us-east-1']['arn']}/*"
    assert grants["kms:Decrypt"] == steady.outputs["kmsKeys"]["us-east-1"]
    assert grants["kms:Encrypt"] == steady.outputs["kmsKeys"]["us-west-2"]
    assert config.inputs["role"].endswith(f":{role.inputs['name']}")
    assert role.inputs["name"] == "acme-drp-s3-repl-use1-usw2"


def test_failed_over_leaves_the_failed_region_replication_untouched(steady, failed_over):
    assert failed_over.of_type(REPLICATION) == steady.of_type(REPLICATION)


@pytest.mark.parametrize(("before", "after"), list(itertools.pairwise(TRANSITIONS)))
def test_buckets_survive_every_transition(before, after):
    earlier, later = evaluate_state(before), evaluate_state(after)
    later_by_urn = later.by_urn()
    for bucket in earlier.of_type(BUCKET):
        kept = later_by_urn[bucket.urn]
        assert kept.inputs["bucket"] == bucket.inputs["bucket"]
        assert kept.protect and kept.retain_on_delete


def test_a_direction_change_swaps_only_the_replication_configuration(failed_over, resyncing):
    def urns(evaluation):
        return {r.urn for r in evaluation.resources if r.type.startswith("aws:s3/")}

    removed, added = urns(failed_over) - urns(resyncing), urns(resyncing) - urns(failed_over)
    assert [u.rsplit("::", 1)[1] for u in removed] == ["storage-replication-from-primary"]
    assert [u.rsplit("::", 1)[1] for u in added] == ["storage-replication-from-dr"]


def _actions(statement) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def test_the_batch_role_may_write_its_failed_tasks_report_only_under_the_report_prefix(steady):
    """catalogue: s3.batch-job-complete-is-not-success"""
    (policy,) = [p for p in steady.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "storage-batch-replication"]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    (put,) = [s for s in statements if s["Action"] == "s3:PutObject"]
    assert put["Resource"] and all(r.endswith(f"/{BATCH_REPORT_PREFIX}/*") for r in put["Resource"])
