"""The heartbeat writer keeps an idle database's replica lag far below the RPO, from the active region.

catalogue: rds.idle-source-replays-every-few-minutes
"""

from __future__ import annotations

import json

import pytest

from automation.evaluate import GLOBAL
from components.heartbeat import NAME, NAMESPACE, WRITE_INTERVAL_SECONDS, heartbeat_sql, write_script
from tests.conftest import STATES, evaluate_state

CRONJOB = "kubernetes:batch/v1:CronJob"


def _cronjobs(state: str) -> dict[str, object]:
    return {r.region: r for r in evaluate_state(state).of_type(CRONJOB)}


@pytest.mark.parametrize(
    ("state", "regions"),
    [
        ("steady", {"us-east-1"}),
        # The failed primary keeps its steady declaration; the DR region writes to its promoted writer.
        ("failed-over", {"us-east-1", "us-west-2"}),
        ("resyncing", {"us-west-2"}),
        ("steady-after-failback", {"us-east-1"}),
    ],
)
def test_the_heartbeat_runs_in_the_active_regions_cluster(state, regions):
    evaluation = evaluate_state(state)
    jobs = _cronjobs(state)
    assert set(jobs) == regions and evaluation.config.active_region in regions
    for region, job in jobs.items():
        (container,) = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item["value"] for item in container["env"]}
        # It writes to its own region's current instance, over TLS, as the master user.
        address = evaluation.outputs["database"][region]["endpoint"].rsplit(":", 1)[0]
        assert env["PGHOST"] == address and env["PGSSLMODE"] == "require"
        assert env["PGUSER"] == evaluation.config.db_master_username and env["PGDATABASE"] == "app"


@pytest.mark.parametrize("state", STATES)
def test_both_clusters_hold_the_heartbeats_identity_in_every_state(state):
    """A failover creates only the CronJob: the role (IAM, whose control plane is in us-east-1) exists already."""
    evaluation = evaluate_state(state)
    for role in ("primary", "dr"):
        evaluation.one("aws:iam/role:Role", f"heartbeat-{role}-role")
        evaluation.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", f"heartbeat-{role}-pod-identity")
        evaluation.one("kubernetes:core/v1:ServiceAccount", f"heartbeat-{role}-account")


def test_the_failed_primarys_heartbeat_is_declared_as_in_steady():
    """Nothing changes in the failed region: its CronJob, role and association stay as they were."""
    steady = {r.urn: r.inputs for r in evaluate_state("steady").resources if "heartbeat-primary" in r.urn}
    failed_over = {r.urn: r.inputs for r in evaluate_state("failed-over").resources if "heartbeat-primary" in r.urn}
    assert steady and steady == failed_over


def test_every_run_commits_twice_thirty_seconds_apart_every_minute(steady):
    (job,) = steady.of_type(CRONJOB)
    spec = job.inputs["spec"]
    assert spec["schedule"] == "* * * * *" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 60
    script = write_script("us-east-1")
    assert script.count("psql ") == 2 and f"sleep {WRITE_INTERVAL_SECONDS}\n" in script
    assert WRITE_INTERVAL_SECONDS == 30
    sql = heartbeat_sql("us-east-1")
    assert "CREATE TABLE IF NOT EXISTS" in sql and "ON CONFLICT (id) DO UPDATE" in sql and "'us-east-1'" in sql


def test_the_password_is_read_from_the_regions_secret_through_pod_identity(steady):
    """catalogue: eks.pod-identity-session-tags"""
    (job,) = steady.of_type(CRONJOB)
    pod = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == NAME and pod["securityContext"]["runAsNonRoot"] is True
    (init,) = pod["initContainers"]
    assert "secretsmanager get-secret-value" in init["args"][0] and "--region us-east-1" in init["args"][0]
    assert {"name": "SECRET_NAME", "value": steady.outputs["databaseCredentials"]["secretName"]} in init["env"]
    # The credential stays in memory, never on the node's disk.
    assert {"name": "credential", "emptyDir": {"medium": "Memory"}} in pod["volumes"]

    role = steady.one("aws:iam/role:Role", "heartbeat-primary-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-namespace"] == NAMESPACE
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == NAME
    policy = json.loads(steady.one("aws:iam/rolePolicy:RolePolicy", "heartbeat-primary-policy").inputs["policy"])
    read, decrypt = policy["Statement"]
    assert read["Action"] == "secretsmanager:GetSecretValue"
    assert read["Resource"].startswith("arn:aws:secretsmanager:us-east-1:") and read["Resource"].endswith("-??????")
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    association = steady.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "heartbeat-primary-pod-identity")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (NAMESPACE, NAME)
    assert association.region == "us-east-1" and role.region == GLOBAL
    assert association.urn in job.dependencies


@pytest.mark.parametrize("state", STATES)
def test_the_heartbeat_roles_iam_is_declared_through_the_dr_provider(state):
    """catalogue: pulumi-aws.provider-configure-calls-aws"""
    evaluation = evaluate_state(state)
    dr_provider = evaluation.one("pulumi:providers:aws", "aws-dr").urn
    iam = [r for r in evaluation.resources if "heartbeat" in r.name and r.region == GLOBAL]
    assert iam and {r.provider for r in iam} == {dr_provider}
