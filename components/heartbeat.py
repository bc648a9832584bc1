"""A heartbeat row written to the writer every 30 seconds, so replica lag means what the RPO alarms assume.

RDS for PostgreSQL reports a replica's lag as the time since the last replayed
transaction: on a quiet source it climbs to about five minutes before the next
WAL switch brings it down (catalogue: rds.idle-source-replays-every-few-minutes),
which is the RPO itself. Both the CloudWatch alarms and the Prometheus rules on
`ReplicaLag` would page on every quiet night. A Kubernetes CronJob commits one
row to the writer every 30 seconds (two writes per one-minute run), so on an idle
database the lag stays under a minute, and a lag past `replicaLagWarningSeconds`
means replication is behind.

Each cluster runs the CronJob against its own region's current instance, in
every DR state, and a run writes only where that instance is the writer: on a
replica, or on a former writer drctl fenced read-only, it writes nothing and
succeeds. So the heartbeat follows the writer by itself (after a promotion it
starts in the DR region before any stack update), and no DR transition creates,
changes or deletes anything of it: a failover calls neither IAM, whose control
plane is in us-east-1, nor the Kubernetes API for it.

The job reads the program's master credential from the region's copy of the
Secrets Manager secret (components/database.py) with EKS Pod Identity: an init
container with the AWS CLI fetches it into memory, psql writes. The row says
which region wrote it. A CronJob that stops succeeding raises
ReplicationHeartbeatStale (components/alert_rules.py) before an idle database's
lag can reach the RPO.
"""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config import PlatformConfig
from components.iam import kms_via_service, pod_identity_role
from components.network import POSTGRES_PORT

NAMESPACE = "dr-platform"
NAME = "replication-heartbeat"
SCHEDULE = "* * * * *"
"""Every minute (the finest a CronJob takes); each run writes twice, 30 seconds apart."""
WRITE_INTERVAL_SECONDS = 30
TABLE = "dr_platform_heartbeat"
AWS_CLI_IMAGE = (
    "public.ecr.aws/aws-cli/aws-cli:2.31.23@sha256:668ffb01408e03e1002b36886797c1a97b09f7d0f02fba3123f9fcd68a081dc5"
)
POSTGRES_CLIENT_IMAGE = "public.ecr.aws/docker/library/postgres:17-alpine"
"""psql of PostgreSQL 17 talks to the 14+ servers the config allows."""
SECRET_DIR = "/run/credential"
UNPRIVILEGED_USER = 65534
NOT_THE_WRITER_SQL = "SELECT pg_is_in_recovery() OR current_setting('default_transaction_read_only')::boolean"
"""True on a replica, and on a former writer drctl fenced read-only: nothing to write there."""


def heartbeat_sql(region: str) -> str:
    """Create the one-row table once, then stamp it: a committed transaction the replica replays."""
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id smallint PRIMARY KEY, written_at timestamptz NOT NULL, "
        "region text NOT NULL); "
        f"INSERT INTO {TABLE} VALUES (1, now(), '{region}') "
        "ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at, region = excluded.region;"
    )


def write_script(region: str) -> str:
    """The main container's shell: the password from the fetched secret, then a beat now and one 30 s later."""
    # The generated password holds letters and digits only (components/database.py), so sed reads it safely.
    extract = f'sed -n \'s/.*"password": *"\\([A-Za-z0-9]*\\)".*/\\1/p\' {SECRET_DIR}/secret.json'
    psql = "psql --no-psqlrc --quiet --set ON_ERROR_STOP=1"
    return (
        "set -eu\n"
        f'export PGPASSWORD="$({extract})"\n'
        "beat() {\n"
        f'  if [ "$({psql} --tuples-only --no-align --command "{NOT_THE_WRITER_SQL}")" = t ]; then\n'
        '    echo "not the writer (a replica, or fenced read-only): nothing to write"\n'
        "    return 0\n"
        "  fi\n"
        f'  {psql} --command "{heartbeat_sql(region)}"\n'
        "}\n"
        f"beat\nsleep {WRITE_INTERVAL_SECONDS}\nbeat\n"
    )


class ReplicationHeartbeatArgs(TypedDict):
    config: PlatformConfig
    role: str
    instance_address: pulumi.Input[str]
    """This region's current database instance: written to while it is the writer."""
    secret_name: pulumi.Input[str]
    """The master credential's secret; the region's copy is read (a replica in the DR region)."""
    key_arn: pulumi.Input[str]
    """The region's key, which encrypts the region's copy of the secret."""
    account_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    global_provider: aws.Provider
    """Where IAM resources are declared (components/providers.py: the DR region's provider)."""


class ReplicationHeartbeat(pulumi.ComponentResource):
    """The CronJob, its service account and its Pod Identity role, in one region's cluster.

    The caller passes the cluster's Kubernetes provider and the region's AWS provider (`providers=[...]`).
    """

    def __init__(self, name: str, args: ReplicationHeartbeatArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:data:ReplicationHeartbeat", name, None, opts)
        cfg, role = args["config"], args["role"]
        region = cfg.region_of(role)
        child = pulumi.ResourceOptions(parent=self)

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "dr-platform"}},
            opts=child,
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account", metadata={"name": NAME, "namespace": namespace.metadata.name}, opts=child
        )
        # The region's copy of the secret only (its ARN ends in a random six-character suffix).
        secret_arn = pulumi.Output.concat(
            f"arn:aws:secretsmanager:{region}:", args["account_id"], ":secret:", args["secret_name"], "-??????"
        )
        identity = pod_identity_role(
            name,
            parent=self,
            cluster_name=args["cluster_name"],
            cluster_arn=args["cluster_arn"],
            namespace=NAMESPACE,
            service_account=NAME,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn},
                        {
                            # catalogue: kms.via-service-condition
                            "Effect": "Allow",
                            "Action": "kms:Decrypt",
                            "Resource": args["key_arn"],
                            "Condition": kms_via_service(region, "secretsmanager"),
                        },
                    ],
                }
            ),
            global_provider=args["global_provider"],
        )
        self.cron_job = self._cron_job(name, args, account, namespace, depends_on=identity)
        self.register_outputs({"cron_job": self.cron_job.metadata.name})

    def _cron_job(
        self,
        name: str,
        args: ReplicationHeartbeatArgs,
        account: k8s.core.v1.ServiceAccount,
        namespace: k8s.core.v1.Namespace,
        depends_on: list[pulumi.Resource],
    ) -> k8s.batch.v1.CronJob:
        cfg, region = args["config"], args["config"].region_of(args["role"])
        volumes = [{"name": "credential", "emptyDir": {"medium": "Memory"}}, {"name": "tmp", "emptyDir": {}}]
        mounts = [{"name": "credential", "mountPath": SECRET_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
        locked_down = {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        return k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata={"name": NAME, "namespace": namespace.metadata.name},
            spec={
                "schedule": SCHEDULE,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 30,
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 0,
                        "activeDeadlineSeconds": 55,
                        "template": {
                            "metadata": {"labels": {"app.kubernetes.io/name": NAME}},
                            "spec": {
                                "serviceAccountName": account.metadata.name,
                                "restartPolicy": "Never",
                                "securityContext": {
                                    "runAsNonRoot": True,
                                    "runAsUser": UNPRIVILEGED_USER,
                                    "runAsGroup": UNPRIVILEGED_USER,
                                    "fsGroup": UNPRIVILEGED_USER,
                                },
                                "volumes": volumes,
                                "initContainers": [
                                    {
                                        "name": "read-credential",
                                        "image": AWS_CLI_IMAGE,
                                        "command": ["sh", "-c"],
                                        "args": [
                                            'aws secretsmanager get-secret-value --secret-id "$SECRET_NAME" '
                                            f"--region {region} --query SecretString --output text "
                                            f"> {SECRET_DIR}/secret.json"
                                        ],
                                        "env": [
                                            {"name": "SECRET_NAME", "value": args["secret_name"]},
                                            {"name": "HOME", "value": "/tmp"},
                                        ],
                                        "volumeMounts": mounts,
                                        "securityContext": locked_down,
                                    }
                                ],
                                "containers": [
                                    {
                                        "name": "write",
                                        "image": POSTGRES_CLIENT_IMAGE,
                                        "command": ["sh", "-c", write_script(region)],
                                        "env": [
                                            {"name": "PGHOST", "value": args["instance_address"]},
                                            {"name": "PGPORT", "value": str(POSTGRES_PORT)},
                                            {"name": "PGDATABASE", "value": cfg.db_name},
                                            {"name": "PGUSER", "value": cfg.db_master_username},
                                            # rds.force_ssl refuses anything else (components/database.py).
                                            {"name": "PGSSLMODE", "value": "require"},
                                            {"name": "PGCONNECT_TIMEOUT", "value": "10"},
                                            {"name": "HOME", "value": "/tmp"},
                                        ],
                                        "volumeMounts": mounts,
                                        "securityContext": locked_down,
                                        "resources": {
                                            "requests": {"cpu": "10m", "memory": "32Mi"},
                                            "limits": {"memory": "64Mi"},
                                        },
                                    }
                                ],
                            },
                        },
                    }
                },
            },
            # Pod Identity credentials are injected when a pod is created: the association comes first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
