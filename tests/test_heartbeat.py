"""The heartbeat writer keeps an idle database's replica lag far below the RPO, from the active region.

catalogue: rds.idle-source-replays-every-few-minutes
"""

from __future__ import annotations

import json

import pytest

from automation.evaluate import GLOBAL
from components.heartbeat import (
    NAME,
    NAMESPACE,
    NOT_THE_WRITER_SQL,
    WRITE_INTERVAL_SECONDS,
    heartbeat_sql,
    write_script,
)
from tests.conftest import STATES, evaluate_state

CRONJOB = "kubernetes:batch/v1:CronJob"


def _cronjobs(state: str) -> dict[str, object]:
    return {r.region: r for r in evaluate_state(state).of_type(CRONJOB)}


@pytest.mark.parametrize("state", [*STATES, "steady-after-failback"])
def test_each_cluster_beats_against_its_own_regions_current_instance(state):
    """Whichever instance is the writer gets the heartbeat, without the DR state saying which."""
    evaluation = evaluate_state(state)
    jobs = _cronjobs(state)
    assert set(jobs) == set(evaluation.regions())
    for region, job in jobs.items():
        (container,) = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item["value"] for item in container["env"]}
        # Its own region's current instance, over TLS, as the master user.
        address = evaluation.outputs["database"][region]["endpoint"].rsplit(":", 1)[0]
        assert env["PGHOST"] == address and env["PGSSLMODE"] == "require"
        assert env["PGUSER"] == evaluation.config.db_master_username and env["PGDATABASE"] == "app"
        assert f"'{region}'" in container["command"][2]


def test_a_failover_changes_nothing_of_the_heartbeat():
    """The DR region's job starts writing once its instance is promoted: no update, no IAM call, no new object."""
    steady = {r.urn: r.inputs for r in evaluate_state("steady").resources if "heartbeat-" in r.urn}
    failed_over = {r.urn: r.inputs for r in evaluate_state("failed-over").resources if "heartbeat-" in r.urn}
    assert steady and steady == failed_over


def test_a_run_writes_only_where_its_instance_is_the_writer():
    """A replica, or a former writer fenced read-only (default_transaction_read_only), gets nothing."""
    script = write_script("us-west-2")
    check = script.index(NOT_THE_WRITER_SQL)
    assert "pg_is_in_recovery()" in NOT_THE_WRITER_SQL
    assert "current_setting('default_transaction_read_only')" in NOT_THE_WRITER_SQL
    assert check < script.index("INSERT INTO") and "return 0" in script[check : script.index("INSERT INTO")]


def test_every_run_commits_twice_thirty_seconds_apart_every_minute(steady):
    job = steady.one(CRONJOB, "heartbeat-primary-cronjob")
    spec = job.inputs["spec"]
    assert spec["schedule"] == "* * * * *" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 60
    script = write_script("us-east-1")
    assert script.count("\nbeat\n") == 2 and f"sleep {WRITE_INTERVAL_SECONDS}\n" in script
    assert WRITE_INTERVAL_SECONDS == 30
    sql = heartbeat_sql("us-east-1")
    assert "CREATE TABLE IF NOT EXISTS" in sql and "ON CONFLICT (id) DO UPDATE" in sql and "'us-east-1'" in sql


def test_the_password_is_read_from_the_regions_secret_through_pod_identity(steady):
    """catalogue: eks.pod-identity-session-tags"""
    job = steady.one(CRONJOB, "heartbeat-primary-cronjob")
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
