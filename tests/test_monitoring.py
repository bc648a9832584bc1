"""The monitoring stack: chart values, alert rules, dashboards, providers and ordering.

The component is evaluated on its own under the recording mocks, with a
Kubernetes provider per region constructed here the way a cluster component
would (parented to a component in that region), so config can be varied cheaply.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml

from automation.evaluate import Evaluation, evaluate_program
from components import alert_rules
from components.config import ROLES, ConfigError, PlatformConfig, load_config, parse_config
from components.monitoring import (
    ALERTMANAGER_SERVICE_ACCOUNT,
    CHART_REPOSITORY,
    CHART_VERSION,
    DASHBOARD_LABEL,
    EXPORTER_CHART,
    EXPORTER_CHART_VERSION,
    EXPORTER_SERVICE_ACCOUNT,
    STORAGE_CLASS,
    Monitoring,
    series_name,
)
from components.providers import regional_providers
from tests.conftest import ROOT, STATE_OVERRIDES, prod_config

RELEASE = "kubernetes:helm.sh/v3:Release"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
STORAGE_CLASS_TYPE = "kubernetes:storage.k8s.io/v1:StorageClass"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"

# alert -> (what its expression must end with, `for`, severity), from the operations documents.
DOCUMENTED_ALERTS = {
    "ServiceDown": ("up == 0", "1m", "critical"),
    "HighErrorRate": ("> 0.05", "5m", "critical"),
    "HighLatency": ("> 0.5", "10m", "warning"),
    "RedisDown": ("redis_up == 0", "1m", "critical"),
    "HighMemoryUsage": ("> 0.90", "5m", "warning"),
    "CertificateExpiring": ("< 30", "1h", "warning"),
    "BruteForceAttack": ("> 100", "2m", "critical"),
    "UnauthorizedAccess": ("> 50", "5m", "warning"),
}


def _program() -> None:
    cfg = load_config()
    aws_providers = regional_providers(cfg)
    for role in ROLES:
        cluster = pulumi.ComponentResource(
            "test:eks:Cluster", f"cluster-{role}", None, pulumi.ResourceOptions(provider=aws_providers[role])
        )
        kubernetes = k8s.Provider(f"k8s-{role}", kubeconfig="{}", opts=pulumi.ResourceOptions(parent=cluster))
        ebs_csi_driver = aws.eks.Addon(
            f"ebs-csi-{role}",
            cluster_name=f"eks-{role}",
            addon_name="aws-ebs-csi-driver",
            opts=pulumi.ResourceOptions(parent=cluster),
        )
        monitoring_nodes = aws.eks.NodeGroup(
            f"monitoring-nodes-{role}",
            cluster_name=f"eks-{role}",
            node_role_arn="arn:aws:iam::123456789012:role/nodes",
            subnet_ids=["subnet-a"],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=1, desired_size=1, max_size=2),
            opts=pulumi.ResourceOptions(parent=cluster),
        )
        Monitoring(
            f"monitoring-{role}",
            {
                "config": cfg,
                "role": role,
                "ebs_kms_key_arn": _key_arn(cfg, role),
                "ebs_csi_driver": ebs_csi_driver,
                "cluster_name": f"eks-{role}",
                "cluster_arn": _cluster_arn(cfg, role),
                "alert_topic_arn": _topic_arn(cfg, role),
                "alert_topic_kms_key_arn": _key_arn(cfg, role),
                "heartbeat_topic_arn": _heartbeat_arn(cfg, role),
                "monitoring_nodes": monitoring_nodes,
                "global_provider": aws_providers["dr"],
            },
            pulumi.ResourceOptions(providers=[kubernetes, aws_providers[role]]),
        )


def _key_arn(cfg: PlatformConfig, role: str) -> str:
    return f"arn:aws:kms:{cfg.region_of(role)}:123456789012:key/{role}"


def _cluster_arn(cfg: PlatformConfig, role: str) -> str:
    return f"arn:aws:eks:{cfg.region_of(role)}:123456789012:cluster/eks-{role}"


def _topic_arn(cfg: PlatformConfig, role: str) -> str:
    return f"arn:aws:sns:{cfg.region_of(role)}:123456789012:alerts-{role}"


def _heartbeat_arn(cfg: PlatformConfig, role: str) -> str:
    return f"arn:aws:sns:{cfg.region_of(role)}:123456789012:heartbeat-{role}"


@functools.cache
def _evaluate(overrides: tuple[tuple[str, str], ...] = ()) -> Evaluation:
    return evaluate_program(prod_config(**dict(overrides)), program=_program)


def evaluate(**overrides: str) -> Evaluation:
    return _evaluate(tuple(sorted(overrides.items())))


def in_state(state: str) -> Evaluation:
    return evaluate(**STATE_OVERRIDES[state])


def rules_by_alert(evaluation: Evaluation, region: str) -> dict[str, dict[str, Any]]:
    """The rules as declared in the PrometheusRule resources of one region."""
    rules = [
        rule
        for resource in evaluation.of_type(PROMETHEUS_RULE, region)
        for group in resource.inputs["spec"]["groups"]
        for rule in group["rules"]
    ]
    by_alert = {rule["alert"]: rule for rule in rules}
    assert len(by_alert) == len(rules), "an alert name is declared twice"
    return by_alert


def release_in(evaluation: Evaluation, region: str, chart: str = "kube-prometheus-stack") -> Any:
    (release,) = [r for r in evaluation.of_type(RELEASE, region) if r.inputs["chart"] == chart]
    return release


def dashboard(evaluation: Evaluation, region: str, key: str) -> dict[str, Any]:
    (config_map,) = [c for c in evaluation.of_type(CONFIG_MAP, region) if c.name.endswith(f"-dashboard-{key}")]
    assert config_map.inputs["metadata"]["labels"][DASHBOARD_LABEL] == "1"
    return json.loads(config_map.inputs["data"][f"{key}.json"])


def panel(board: dict[str, Any], title_start: str) -> dict[str, Any]:
    (found,) = [p for p in board["panels"] if p["title"].startswith(title_start)]
    return found


# --- alert rules -----------------------------------------------------------------


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
def test_documented_alerts_are_declared_with_their_thresholds(region):
    rules = rules_by_alert(evaluate(), region)
    for alert, (expr_end, duration, severity) in DOCUMENTED_ALERTS.items():
        rule = rules[alert]
        assert rule["expr"].rstrip().endswith(expr_end), (alert, rule["expr"])
        assert rule["for"] == duration, alert
        assert rule["labels"]["severity"] == severity, alert
        assert rule["labels"]["category"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], alert
        assert annotations["runbook_url"] == f"docs/monitoring.md#{alert.lower()}"


def test_error_ratio_divides_sums_per_service():
    # Dividing the raw series would pair each 5xx series with itself: always 1.
    expr = rules_by_alert(evaluate(), "us-east-1")["HighErrorRate"]["expr"]
    assert expr.count("sum by (namespace, service)") == 2
    assert 'code=~"5.."' in expr


def test_both_cert_sources_use_the_30_day_threshold():
    expr = rules_by_alert(evaluate(), "us-east-1")["CertificateExpiring"]["expr"]
    assert expr.count("< 30") == 2
    assert alert_rules.ACM_DAYS_TO_EXPIRY in expr


def test_dr_rules_use_the_configured_objectives():
    default = rules_by_alert(evaluate(), "us-west-2")
    assert default["ReplicaLagApproachingRpo"]["expr"].endswith(f"({alert_rules.RDS_REPLICA_LAG}) > 120")
    assert default["ReplicaLagAboveRpo"]["expr"].endswith(f"({alert_rules.RDS_REPLICA_LAG}) > 300")

    changed = rules_by_alert(evaluate(rpoSeconds="600", replicaLagWarningSeconds="240"), "us-west-2")
    assert changed["ReplicaLagApproachingRpo"]["expr"].endswith("> 240")
    assert changed["ReplicaLagAboveRpo"]["expr"].endswith("> 600")
    assert changed["CacheReplicationLagApproachingRpo"]["expr"].endswith("> 240")
    assert changed["CacheReplicationLagAboveRpo"]["expr"].endswith("> 600")
    assert changed["S3ReplicationLatencyAboveRpo"]["expr"].endswith("> 600")
    assert "600s" in changed["ReplicaLagAboveRpo"]["annotations"]["description"]
    assert changed["ReplicaLagApproachingRpo"]["labels"]["severity"] == "warning"
    assert changed["ReplicaLagAboveRpo"]["labels"]["severity"] == "critical"


@pytest.mark.parametrize(
    ("alert", "series"),
    [
        ("ReplicaLagAboveRpo", "aws_rds_replica_lag_maximum"),
        ("S3ReplicationFailing", "aws_s3_operations_failed_replication_sum"),
        ("S3ReplicationLatencyAboveRpo", "aws_s3_replication_latency_maximum"),
        ("CacheReplicationLagAboveRpo", "aws_elasticache_global_datastore_replication_lag_maximum"),
        ("BackupJobFailed", "aws_backup_number_of_backup_jobs_failed_sum"),
        ("BackupCopyJobFailed", "aws_backup_number_of_copy_jobs_failed_sum"),
        ("BackupOverdue", "aws_backup_number_of_backup_jobs_completed_sum"),
    ],
)
def test_dr_rules_read_the_cloudwatch_exporter_series(alert, series):
    for region in ("us-east-1", "us-west-2"):
        rule = rules_by_alert(evaluate(), region)[alert]
        assert series in rule["expr"]
        assert rule["labels"]["category"] == "disaster-recovery"


@pytest.mark.parametrize(
    ("state", "regions_watching"),
    [("steady", {"us-west-2"}), ("resyncing", {"us-east-1"}), ("failed-over", set())],
)
def test_missing_replica_lag_alerts_only_where_the_replica_lives(state, regions_watching):
    evaluation = in_state(state)
    watching = {r for r in ("us-east-1", "us-west-2") if "ReplicaLagNotReported" in rules_by_alert(evaluation, r)}
    assert watching == regions_watching


def test_rule_expressions_are_balanced():
    for group in alert_rules.rule_groups(parse_config(prod_config()), "primary"):
        for rule in group.rules:
            for opening, closing in ("()", "[]", "{}"):
                assert rule.expr.count(opening) == rule.expr.count(closing), rule.alert


def test_runbook_links_follow_config():
    rules = rules_by_alert(evaluate(runbookBaseUrl="https://runbooks.example.com/dr/"), "us-east-1")
    assert rules["RedisDown"]["annotations"]["runbook_url"] == "https://runbooks.example.com/dr#redisdown"


@pytest.mark.parametrize("url", ["http://runbooks.example.com", "https://x.example.com/a#b", "runbooks"])
def test_runbook_base_url_must_be_https(url):
    with pytest.raises(ConfigError, match="runbookBaseUrl"):
        parse_config(prod_config(runbookBaseUrl=url))


def test_rules_are_picked_up_by_the_chart_prometheus():
    evaluation = evaluate()
    spec = release_in(evaluation, "us-east-1").inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["ruleSelectorNilUsesHelmValues"] is False
    for rule in evaluation.of_type(PROMETHEUS_RULE):
        assert rule.inputs["apiVersion"] == "monitoring.coreos.com/v1"
        assert rule.inputs["metadata"]["namespace"] == "monitoring"


# --- the chart -------------------------------------------------------------------


def test_chart_is_pinned_to_a_version_and_repository():
    for region in ("us-east-1", "us-west-2"):
        release = release_in(evaluate(), region)
        assert release.inputs["chart"] == "kube-prometheus-stack"
        assert release.inputs["version"] == CHART_VERSION
        assert release.inputs["repositoryOpts"]["repo"] == CHART_REPOSITORY


def test_chart_values_carry_retention_and_storage_from_config():
    default = release_in(evaluate(), "us-east-1").inputs["values"]
    changed = release_in(
        evaluate(prometheusRetentionDays="30", prometheusStorageGb="200", grafanaStorageGb="20"), "us-east-1"
    ).inputs["values"]
    for values, days, prometheus_gb, grafana_gb in ((default, 15, 50, 10), (changed, 30, 200, 20)):
        spec = values["prometheus"]["prometheusSpec"]
        assert spec["retention"] == f"{days}d"
        claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
        assert claim["resources"]["requests"]["storage"] == f"{prometheus_gb}Gi"
        assert claim["storageClassName"] == STORAGE_CLASS
        # Size-based retention stops Prometheus short of a full volume.
        assert int(spec["retentionSize"].removesuffix("GB")) < prometheus_gb
        grafana = values["grafana"]["persistence"]
        assert grafana == {**grafana, "enabled": True, "size": f"{grafana_gb}Gi", "storageClassName": STORAGE_CLASS}
        alertmanager = values["alertmanager"]["alertmanagerSpec"]["storage"]["volumeClaimTemplate"]["spec"]
        assert alertmanager["storageClassName"] == STORAGE_CLASS


@pytest.mark.parametrize(("region", "role"), [("us-east-1", "primary"), ("us-west-2", "dr")])
def test_external_labels_name_the_region_and_its_role(region, role):
    spec = release_in(evaluate(), region).inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["externalLabels"] == {"cluster_region": region, "dr_role": role}


def test_grafana_loads_dashboards_and_has_no_default_password():
    grafana = release_in(evaluate(), "us-east-1").inputs["values"]["grafana"]
    assert grafana["sidecar"]["dashboards"]["enabled"] is True
    assert grafana["sidecar"]["dashboards"]["label"] == DASHBOARD_LABEL
    # Unset, the Grafana chart generates a random password and keeps it across upgrades (Helm's lookup).
    assert not grafana.get("adminPassword")


def test_storage_class_is_encrypted_gp3_on_the_ebs_csi_driver():
    evaluation = evaluate()
    for storage_class in evaluation.of_type(STORAGE_CLASS_TYPE):
        inputs = storage_class.inputs
        # The region's own key, so a volume never depends on the other region.
        assert inputs["parameters"]["kmsKeyId"] == _key_arn(
            evaluation.config, evaluation.config.role_of(storage_class.region)
        )
        assert inputs["metadata"]["name"] == STORAGE_CLASS
        assert inputs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
        assert inputs["provisioner"] == "ebs.csi.aws.com"
        assert inputs["parameters"]["type"] == "gp3"
        assert inputs["parameters"]["encrypted"] == "true"
        assert inputs["volumeBindingMode"] == "WaitForFirstConsumer"
        assert inputs["reclaimPolicy"] == "Retain"


def test_chart_and_rules_are_unchanged_by_a_failover():
    # A failover must not upgrade the chart (slow, and on the RTO's critical path).
    for region in ("us-east-1", "us-west-2"):
        assert release_in(in_state("steady"), region).inputs == release_in(in_state("failed-over"), region).inputs


# --- ordering and providers ------------------------------------------------------


def test_rules_wait_for_the_chart_that_installs_their_crd():
    evaluation = evaluate()
    for region in ("us-east-1", "us-west-2"):
        release = release_in(evaluation, region)
        rules = evaluation.of_type(PROMETHEUS_RULE, region)
        assert len(rules) == 4
        for rule in rules:
            assert release.urn in rule.dependencies, rule.name
        (storage_class,) = evaluation.of_type(STORAGE_CLASS_TYPE, region)
        assert storage_class.urn in release.dependencies
        # Volumes are claimed once the cluster's EBS CSI driver is installed.
        (ebs_csi_driver,) = evaluation.of_type("aws:eks/addon:Addon", region)
        assert ebs_csi_driver.urn in release.dependencies


@pytest.mark.parametrize("role", ROLES)
def test_each_region_uses_its_own_clusters_provider(role):
    evaluation = evaluate()
    region = evaluation.config.region_of(role)
    component = evaluation.one("dr-platform:monitoring:Monitoring", f"monitoring-{role}")
    children = [r for r in evaluation.resources if r.parent == component.urn]
    assert {r.type for r in children} == {
        "kubernetes:core/v1:Namespace",
        STORAGE_CLASS_TYPE,
        RELEASE,
        PROMETHEUS_RULE,
        CONFIG_MAP,
        IAM_ROLE,
        IAM_ROLE_POLICY,
        POD_IDENTITY,
    }
    # Regions come from the provider each resource was registered with; IAM is global.
    assert {r.region for r in children if not r.type.startswith("aws:iam/")} == {region}


# --- dashboards ------------------------------------------------------------------


def test_dr_dashboard_shows_lag_against_the_rpo():
    board = dashboard(evaluate(rpoSeconds="600", replicaLagWarningSeconds="240"), "us-west-2", "dr-status")
    lag = panel(board, "Database replica lag")
    assert alert_rules.RDS_REPLICA_LAG in lag["targets"][0]["expr"]
    steps = lag["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 240, 600]
    assert lag["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    assert alert_rules.S3_REPLICATION_LATENCY in panel(board, "S3 replication latency")["targets"][0]["expr"]
    assert alert_rules.BACKUP_JOBS_COMPLETED in panel(board, "Last completed backup")["targets"][0]["expr"]


@pytest.mark.parametrize(
    ("state", "active"), [("steady", "us-east-1"), ("failed-over", "us-west-2"), ("resyncing", "us-west-2")]
)
def test_dr_dashboard_states_the_active_region_and_state(state, active):
    for region in ("us-east-1", "us-west-2"):
        text = panel(dashboard(in_state(state), region, "dr-status"), "Platform state")["options"]["content"]
        assert f"Active region: **{active}** · DR state: **{state}**" in text
        assert f"this cluster: {region}" in text


def test_system_overview_has_the_documented_panels():
    board = dashboard(evaluate(), "us-east-1", "system-overview")
    titles = [p["title"] for p in board["panels"]]
    for start in ("Service status", "5xx error rate", "p95 latency", "CPU usage", "Memory usage", "Redis up"):
        assert any(t.startswith(start) for t in titles), start
    assert alert_rules.ERROR_RATIO in panel(board, "5xx error rate")["targets"][0]["expr"]


@pytest.mark.parametrize("key", ["system-overview", "dr-status"])
def test_dashboard_panels_fit_the_grid_without_overlapping(key):
    board = dashboard(evaluate(), "us-east-1", key)
    cells: set[tuple[int, int]] = set()
    for item in board["panels"]:
        grid = item["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, item["title"]
        cells |= area
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    assert board["uid"] and len(board["uid"]) <= 40


def test_every_alert_has_a_runbook_section_in_the_docs():
    # runbook_url points at `docs/monitoring.md#<alert>`: the heading must exist.
    headings = {
        line.removeprefix("### ").strip().lower()
        for line in (ROOT / "docs" / "monitoring.md").read_text().splitlines()
        if line.startswith("### ")
    }
    alerts = {alert.lower() for region in ("us-east-1", "us-west-2") for alert in rules_by_alert(evaluate(), region)}
    assert alerts <= headings, sorted(alerts - headings)


# --- the program -----------------------------------------------------------------


def test_the_program_deploys_monitoring_on_each_cluster(state_eval):
    for role in ROLES:
        region = state_eval.config.region_of(role)
        component = state_eval.one("dr-platform:monitoring:Monitoring", f"monitoring-{role}")
        children = [r for r in state_eval.resources if r.parent == component.urn]
        # Every child went through this region's cluster provider (or AWS provider; IAM is global).
        assert {r.region for r in children if not r.type.startswith("aws:iam/")} == {region}
        (release,) = [r for r in children if r.type == RELEASE and r.inputs["chart"] == "kube-prometheus-stack"]
        ebs_csi_driver = state_eval.one("aws:eks/addon:Addon", f"eks-{role}-aws-ebs-csi-driver")
        assert ebs_csi_driver.urn in release.dependencies
        (storage_class,) = [r for r in children if r.type == STORAGE_CLASS_TYPE]
        assert storage_class.inputs["parameters"]["kmsKeyId"].startswith(f"arn:aws:kms:{region}:")
        assert len([r for r in children if r.type == PROMETHEUS_RULE]) == 4


# --- CloudWatch exporter (YACE) ---------------------------------------------------


def _rule_series() -> set[str]:
    """Every `aws_*` series named in alert_rules.py, constants and literals alike."""
    source = (ROOT / "components" / "alert_rules.py").read_text()
    return set(re.findall(r"\baws_[a-z0-9_]+", source))


def _produced_series(config: dict[str, Any]) -> set[str]:
    """The series YACE names for what its config asks, by YACE's naming rule."""
    return {
        series_name(job["namespace"], metric["name"], statistic)
        for job in config["customNamespace"]
        for metric in job["metrics"]
        for statistic in metric["statistics"]
    }


@pytest.mark.parametrize(
    ("namespace", "metric", "statistic", "series"),
    [
        # Series from YACE's README; the Glue one exercises its dropping of a repeated namespace prefix.
        ("AWS/EC2", "CPUUtilization", "Maximum", "aws_ec2_cpuutilization_maximum"),
        ("AWS/ES", "FreeStorageSpace", "Sum", "aws_es_free_storage_space_sum"),
        ("AWS/ELB", "RequestCount", "Sum", "aws_elb_request_count_sum"),
        ("AWS/ELB", "HTTPCode_Backend_4XX", "Sum", "aws_elb_httpcode_backend_4_xx_sum"),
        ("Glue", "glue.driver.aggregate.bytesRead", "Sum", "aws_glue_driver_aggregate_bytes_read_sum"),
    ],
)
def test_series_names_follow_yace(namespace, metric, statistic, series):
    assert series_name(namespace, metric, statistic) == series


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
def test_exporter_is_deployed_per_region_reading_only_that_region(region):
    exporter = release_in(evaluate(), region, EXPORTER_CHART)
    inputs = exporter.inputs
    assert inputs["version"] == EXPORTER_CHART_VERSION
    assert inputs["repositoryOpts"]["repo"] == CHART_REPOSITORY
    assert inputs["namespace"] == "monitoring"
    values = inputs["values"]
    assert values["serviceAccount"] == {"create": True, "name": EXPORTER_SERVICE_ACCOUNT}
    assert values["serviceMonitor"]["enabled"] is True
    config = yaml.safe_load(values["config"])
    assert config["sts-region"] == region
    assert {r for job in config["customNamespace"] for r in job["regions"]} == {region}
    # Its ServiceMonitor needs the CRD from the stack's chart.
    assert release_in(evaluate(), region).urn in exporter.dependencies


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
def test_exporter_produces_every_aws_series_the_rules_use(region):
    used = _rule_series()
    assert {alert_rules.RDS_REPLICA_LAG, alert_rules.ACM_DAYS_TO_EXPIRY, alert_rules.COPY_JOBS_FAILED} <= used
    config = yaml.safe_load(release_in(evaluate(), region, EXPORTER_CHART).inputs["values"]["config"])
    produced = _produced_series(config)
    assert used <= produced, sorted(used - produced)
    assert {"aws_rds_cpuutilization_average", "aws_rds_free_storage_space_minimum"} <= produced


def _pod_identity(evaluation: Evaluation, region: str, service_account: str) -> tuple[Any, dict[str, Any]]:
    """The association for a service account and the policy of the role it binds."""
    (association,) = [
        a for a in evaluation.of_type(POD_IDENTITY, region) if a.inputs["serviceAccount"] == service_account
    ]
    assert association.inputs["namespace"] == "monitoring"
    by_urn = evaluation.by_urn()
    (role,) = [by_urn[urn] for urn in association.dependencies if by_urn[urn].type == IAM_ROLE]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(trust["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    (policy,) = [p for p in evaluation.of_type(IAM_ROLE_POLICY) if role.urn in p.dependencies]
    return association, json.loads(policy.inputs["policy"])


@pytest.mark.parametrize("role", ROLES)
def test_exporter_role_reads_cloudwatch_of_its_region_only(role):
    evaluation = evaluate()
    region = evaluation.config.region_of(role)
    association, policy = _pod_identity(evaluation, region, EXPORTER_SERVICE_ACCOUNT)
    assert association.inputs["clusterName"] == f"eks-{role}"
    (statement,) = policy["Statement"]
    assert set(statement["Action"]) == {
        "cloudwatch:GetMetricData",
        "cloudwatch:GetMetricStatistics",
        "cloudwatch:ListMetrics",
        "tag:GetResources",
    }
    assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": region}}
    assert association.urn in release_in(evaluation, region, EXPORTER_CHART).dependencies


@pytest.mark.parametrize("role", ROLES)
def test_alertmanager_role_publishes_to_its_regions_topic_only(role):
    evaluation = evaluate()
    cfg = evaluation.config
    region = cfg.region_of(role)
    association, policy = _pod_identity(evaluation, region, ALERTMANAGER_SERVICE_ACCOUNT)
    assert association.inputs["clusterName"] == f"eks-{role}"
    actions = {action: statement["Resource"] for statement in policy["Statement"] for action in statement["Action"]}
    assert actions == {
        "sns:Publish": [_topic_arn(cfg, role), _heartbeat_arn(cfg, role)],
        "kms:GenerateDataKey*": _key_arn(cfg, role),
        "kms:Decrypt": _key_arn(cfg, role),
    }
    # The topics' key only as SNS uses it on Alertmanager's behalf (catalogue: kms.via-service-condition).
    (kms,) = [s for s in policy["Statement"] if "kms:Decrypt" in s["Action"]]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"sns.{region}.amazonaws.com"}}
    # Alertmanager's pod is created by the chart: its credentials must exist by then.
    assert association.urn in release_in(evaluation, region).dependencies


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("account", [ALERTMANAGER_SERVICE_ACCOUNT, EXPORTER_SERVICE_ACCOUNT])
def test_monitoring_roles_trust_their_service_account_on_their_cluster_only(role, account):
    """catalogue: eks.pod-identity-session-tags"""
    evaluation = evaluate()
    cfg = evaluation.config
    association, _ = _pod_identity(evaluation, cfg.region_of(role), account)
    (trusted,) = [
        r for r in evaluation.of_type("aws:iam/role:Role") if association.inputs["roleArn"].endswith(f":{r.name}")
    ]
    (statement,) = json.loads(trusted.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-arn": _cluster_arn(cfg, role),
        "aws:RequestTag/kubernetes-namespace": "monitoring",
        "aws:RequestTag/kubernetes-service-account": account,
    }


@pytest.mark.parametrize("role", ROLES)
def test_alertmanager_routes_alerts_to_the_sns_topic_with_sigv4(role):
    cfg = evaluate().config
    region = cfg.region_of(role)
    alertmanager = release_in(evaluate(), region).inputs["values"]["alertmanager"]
    assert alertmanager["serviceAccount"]["name"] == ALERTMANAGER_SERVICE_ACCOUNT
    config = alertmanager["config"]
    receivers = {r["name"]: r for r in config["receivers"]}
    route = config["route"]
    assert set(route["group_by"]) == {"alertname", "severity"}
    routes = {tuple(r["matchers"]): r["receiver"] for r in route["routes"]}
    sns_receiver = receivers[routes[('severity =~ "critical|warning"',)]]
    (sns,) = sns_receiver["sns_configs"]
    assert sns["topic_arn"] == _topic_arn(cfg, role)
    # Signed with the pod's credentials: a region, and no static keys.
    assert sns["sigv4"] == {"region": region}


@pytest.mark.parametrize("role", ROLES)
def test_watchdog_is_a_heartbeat_to_its_own_topic_never_a_page(role):
    """The dead man's switch: Watchdog fires always; the alarm on its topic pages when it stops."""
    cfg = evaluate().config
    region = cfg.region_of(role)
    config = release_in(evaluate(), region).inputs["values"]["alertmanager"]["config"]
    receivers = {r["name"]: r for r in config["receivers"]}
    watchdog = config["route"]["routes"][0]
    # First, so the catch-all for severities never sends Watchdog to the alert topic.
    assert watchdog["matchers"] == ['alertname = "Watchdog"']
    (heartbeat,) = receivers[watchdog["receiver"]]["sns_configs"]
    assert heartbeat["topic_arn"] == _heartbeat_arn(cfg, role) != _topic_arn(cfg, role)
    assert heartbeat["sigv4"] == {"region": region}
    # Re-sent within every 5-minute period of SNS's metric (catalogue: sns.topic-metrics-every-five-minutes).
    assert watchdog["repeat_interval"] == "4m" and watchdog["group_interval"] == "1m"


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
def test_what_keeps_data_on_a_volume_runs_on_the_monitoring_node(region):
    """catalogue: ebs.volume-in-one-availability-zone"""
    evaluation = evaluate()
    values = release_in(evaluation, region).inputs["values"]
    selector = {"dr-platform/pool": "monitoring"}
    assert values["prometheus"]["prometheusSpec"]["nodeSelector"] == selector
    assert values["alertmanager"]["alertmanagerSpec"]["nodeSelector"] == selector
    assert values["grafana"]["nodeSelector"] == selector
    role = evaluation.config.role_of(region)
    monitoring_nodes = evaluation.one("aws:eks/nodeGroup:NodeGroup", f"monitoring-nodes-{role}")
    assert monitoring_nodes.urn in release_in(evaluation, region).dependencies


def test_the_program_wires_each_regions_topic_and_cluster(state_eval):
    topics = {(t.region, t.inputs["name"].rsplit("-", 1)[1]): t for t in state_eval.of_type("aws:sns/topic:Topic")}
    for role in ROLES:
        region = state_eval.config.region_of(role)
        component = state_eval.one("dr-platform:monitoring:Monitoring", f"monitoring-{role}")
        children = [r for r in state_eval.resources if r.parent == component.urn]
        (release,) = [r for r in children if r.type == RELEASE and r.inputs["chart"] == "kube-prometheus-stack"]
        receivers = {r["name"]: r for r in release.inputs["values"]["alertmanager"]["config"]["receivers"]}
        for receiver, topic in (("sns-alert-topic", "alerts"), ("sns-heartbeat", "heartbeat")):
            (sns,) = receivers[receiver]["sns_configs"]
            assert sns["topic_arn"] == f"arn:aws:sns:{region}:123456789012:{topics[(region, topic)].inputs['name']}"
            assert sns["sigv4"] == {"region": region}
        monitoring_nodes = state_eval.one("aws:eks/nodeGroup:NodeGroup", f"eks-{role}-monitoring-nodes")
        assert monitoring_nodes.urn in release.dependencies
        associations = [r for r in children if r.type == POD_IDENTITY]
        assert {a.inputs["serviceAccount"] for a in associations} == {
            ALERTMANAGER_SERVICE_ACCOUNT,
            EXPORTER_SERVICE_ACCOUNT,
        }
        cluster = state_eval.one("aws:eks/cluster:Cluster", f"eks-{role}-cluster")
        assert {a.inputs["clusterName"] for a in associations} == {cluster.inputs["name"]}
        exporter = next(r for r in children if r.type == RELEASE and r.inputs["chart"] == EXPORTER_CHART)
        assert yaml.safe_load(exporter.inputs["values"]["config"])["sts-region"] == region
