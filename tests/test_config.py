"""Config validation: every bad value fails before any resource, naming its key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automation.evaluate import stack_file_config
from components.config import (
    ConfigError,
    DrState,
    StackFileError,
    default_availability_zone_ids,
    documentation_placeholders,
    offline_evaluation,
    parse_config,
)
from tests.conftest import STATE_OVERRIDES, prod_config


def test_prod_stack_config_is_valid():
    cfg = parse_config(prod_config())
    assert (cfg.primary_region, cfg.dr_region, cfg.active_region) == ("us-east-1", "us-west-2", "us-east-1")
    assert cfg.dr_state is DrState.STEADY
    assert cfg.standby_region == "us-west-2"
    assert cfg.role_of("us-west-2") == "dr"


@pytest.mark.parametrize("state", sorted(STATE_OVERRIDES))
def test_every_state_the_runbooks_write_is_valid(state):
    cfg = parse_config(prod_config(**STATE_OVERRIDES[state]))
    expected_active = "us-east-1" if state.startswith("steady") else "us-west-2"
    assert cfg.active_region == expected_active


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"drRegion": "us-east-1"}, "drRegion", "must differ from primaryRegion"),
        ({"primaryRegion": "US-EAST-1"}, "primaryRegion", "AWS region code"),
        ({"drState": "failing-over"}, "drState", "steady, failed-over, resyncing"),
        ({"activeRegion": "eu-west-1"}, "activeRegion", "us-east-1, us-west-2"),
        ({"drState": "failed-over"}, "activeRegion", "requires activeRegion us-west-2"),
        ({"activeRegion": "us-west-2"}, "activeRegion", "requires activeRegion us-east-1"),
        ({"activeRegion": "us-west-2", "drState": "resyncing"}, "dbGeneration.primary", "must be raised"),
        ({"dbAllocatedStorageGb": "-5"}, "dbAllocatedStorageGb", "from 20 to 65536"),
        ({"dbAllocatedStorageGb": "lots"}, "dbAllocatedStorageGb", "whole number"),
        ({"dbMaxAllocatedStorageGb": "50"}, "dbMaxAllocatedStorageGb", ">= dbAllocatedStorageGb"),
        ({"dbBackupRetentionDays": "3"}, "dbBackupRetentionDays", "from 7 to 35"),
        ({"dbPerformanceInsightsRetentionDays": "30"}, "dbPerformanceInsightsRetentionDays", "multiple of 31"),
        ({"dbGeneration": '{"primary": 0, "dr": 1}'}, "dbGeneration.primary", ">= 1"),
        ({"dbGeneration": '{"east": 1}'}, "dbGeneration", "keys primary and dr"),
        ({"dbRetainedGenerations": '{"primary": [1], "dr": []}'}, "dbRetainedGenerations.primary", "not earlier"),
        ({"dbName": "1app"}, "dbName", "start with a letter"),
        ({"vpcCidrs": '{"primary": "10.10.0.0/16", "dr": "10.10.128.0/17"}'}, "vpcCidrs", "overlap"),
        ({"vpcCidrs": '{"primary": "10.0.0.0/8", "dr": "10.20.0.0/16"}'}, "vpcCidrs.primary", "/16 to /20"),
        ({"vpcCidrs": '{"primary": "not-a-cidr", "dr": "10.20.0.0/16"}'}, "vpcCidrs.primary", "CIDR"),
        ({"availabilityZones": '{"dr": ["us-west-2a", "us-west-2b"]}'}, "availabilityZones.dr", "3 distinct"),
        (
            {"availabilityZones": '{"dr": ["us-east-1a", "us-east-1b", "us-east-1c"]}'},
            "availabilityZones.dr",
            "of us-west-2",
        ),
        ({"nodeGroupFull": '{"min": 4, "desired": 2, "max": 6}'}, "nodeGroupFull", "min <= desired <= max"),
        ({"nodeGroupFull": '{"min": -1}'}, "nodeGroupFull.min", ">= 0"),
        ({"nodeGroupStandby": '{"min": 1, "desired": 5, "max": 9}'}, "nodeGroupStandby", "must not exceed"),
        ({"storageIaAfterDays": "10"}, "storageIaAfterDays", "from 30"),
        # catalogue: s3.lifecycle-ia-minimum-30-days
        ({"storageGlacierAfterDays": "30"}, "storageGlacierAfterDays", "later than storageIaAfterDays"),
        ({"backupDailyRetentionDays": "2"}, "backupDailyRetentionDays", "from 7"),
        # Weekly fulls are kept 4 weeks at least.
        ({"backupWeeklyRetentionDays": "21"}, "backupWeeklyRetentionDays", "from 28"),
        # catalogue: backup.cold-storage-not-for-rds-or-s3
        ({"backupWeeklyColdAfterDays": "7"}, "backupWeeklyColdAfterDays", "moves no RDS or S3 recovery point"),
        # catalogue: cloudwatch.logs-retention-values
        ({"logGroupRetentionDays": "45"}, "logGroupRetentionDays", "one of CloudWatch Logs' retention periods"),
        # catalogue: rds.postgres-replica-automated-backups
        ({"dbEngineVersion": "13"}, "dbEngineVersion", "PostgreSQL 14.1 or later"),
        ({"dbEngineVersion": "14.0"}, "dbEngineVersion", "PostgreSQL 14.1 or later"),
        # catalogue: rds.backup-and-maintenance-windows
        ({"dbBackupWindow": "05:15-05:45"}, "dbBackupWindow", "overlaps the start window of backupDailySchedule"),
        ({"dbBackupWindow": "06:30-07:00"}, "dbBackupWindow", "overlaps the start window of backupWeeklySchedule"),
        ({"dbBackupWindow": "03:00-03:10"}, "dbBackupWindow", "30 minutes at least"),
        ({"dbBackupWindow": "3am"}, "dbBackupWindow", "UTC window such as 03:00-03:30"),
        ({"dbMaintenanceWindow": "tue:03:15-tue:03:45"}, "dbMaintenanceWindow", "overlaps dbBackupWindow"),
        ({"dbMaintenanceWindow": "sunday:04:00-sunday:04:30"}, "dbMaintenanceWindow", "sun:04:00-sun:04:30"),
        ({"backupDailySchedule": "cron(0 * ? * * *)"}, "backupDailySchedule", "fixed hour and minute"),
        # catalogue: ec2.availability-zone-names-differ-per-account
        (
            {"availabilityZones": '{"primary": ["us-east-1a", "us-east-1b", "us-east-1c"]}'},
            "availabilityZones.primary",
            "is an availability zone name",
        ),
        ({"availabilityZones": '{"dr": ["use1-az1", "use1-az2", "use1-az4"]}'}, "availabilityZones.dr", "of us-west-2"),
        ({"dnsFailoverMode": "automatic"}, "dnsFailoverMode", "health-check, fence-only"),
        ({"backupDailySchedule": "daily"}, "backupDailySchedule", "cron expression"),
        ({"zoneName": "not a domain"}, "zoneName", "DNS domain"),
        ({"appSubdomain": "a.b"}, "appSubdomain", "one DNS label"),
        ({"dnsTtlSeconds": "3600"}, "dnsTtlSeconds", "from 1 to 300"),
        ({"healthCheckIntervalSeconds": "20"}, "healthCheckIntervalSeconds", "10 or 30"),
        ({"healthCheckPath": "healthz"}, "healthCheckPath", "start with /"),
        ({"replicaLagWarningSeconds": "300"}, "replicaLagWarningSeconds", "below rpoSeconds"),
        ({"notificationEmails": '["oncall"]'}, "notificationEmails", "email addresses"),
        ({"notificationHttpsEndpoints": '["http://hook"]'}, "notificationHttpsEndpoints", "https://"),
        ({"eksVersion": "latest"}, "eksVersion", "minor version"),
        ({"eksPublicEndpoint": "yes"}, "eksPublicEndpoint", "true or false"),
        ({"namePrefix": "DR"}, "namePrefix", "lowercase"),
        ({"tags": '["a"]'}, "tags", "string keys and values"),
        ({"tags": "{not json"}, "tags", "structured value"),
        ({"drstate": "steady"}, "drstate", "did you mean drState"),
        # Formats, not a hand-kept list of what AWS sells: AWS says whether a region offers it.
        ({"dbInstanceClass": "huge"}, "dbInstanceClass", "an RDS instance class such as db.r6g.large"),
        ({"dbEngineVersion": "banana"}, "dbEngineVersion", "a PostgreSQL version such as 16"),
        ({"cacheNodeType": "tiny"}, "cacheNodeType", "an ElastiCache node type such as cache.r7g.large"),
        ({"cacheEngineVersion": "x.y"}, "cacheEngineVersion", "a Redis engine version (x.y.z before 6, 6.x, 7.1)"),
        # catalogue: elasticache.engine-version-format (the provider refuses 7.x)
        ({"cacheEngineVersion": "7.x"}, "cacheEngineVersion", "such as 7.1"),
        ({"nodeInstanceTypes": "[]"}, "nodeInstanceTypes", "at least one"),
        ({"nodeInstanceTypes": '["large"]'}, "nodeInstanceTypes", "EC2 instance types"),
        # The region itself is blamed, not activeRegion, which no longer matches it.
        ({"primaryRegion": "us-east-9"}, "primaryRegion", "not a region in the endpoint data"),
        ({"drRegion": "eu-nowhere-1"}, "drRegion", "not a region in the endpoint data"),
        # catalogue: eks.public-endpoint-open-by-default
        ({"eksPublicAccessCidrs": "[]"}, "eksPublicAccessCidrs", "is required with eksPublicEndpoint: true"),
        (
            {"eksPublicEndpoint": "true", "eksPublicAccessCidrs": '["0.0.0.0/0"]'},
            "eksPublicAccessCidrs",
            "would admit every address",
        ),
        (
            {"eksPublicEndpoint": "true", "eksPublicAccessCidrs": '["10.0.0.0/8"]'},
            "eksPublicAccessCidrs",
            "not one of the public addresses",
        ),
        ({"eksPublicEndpoint": "false"}, "eksPublicAccessCidrs", "no effect unless"),
        ({"eksPrivateAccessCidrs": '["8.8.8.0/24"]'}, "eksPrivateAccessCidrs", "not one of the private networks"),
        ({"eksPrivateAccessCidrs": '["not-a-block"]'}, "eksPrivateAccessCidrs", "IPv4 CIDR blocks"),
        ({"zoneId": "zone-1"}, "zoneId", "Route53 hosted zone id"),
        ({"createZone": "true"}, "zoneId", "cannot be given with createZone"),
        ({"zoneId": "", "zoneDelegated": "true"}, "zoneDelegated", "createZone: true"),
        # catalogue: backup.vault-lock-compliance-mode (3 days of grace at least)
        ({"backupVaultLockChangeableDays": "1"}, "backupVaultLockChangeableDays", "from 3"),
        # catalogue: backup.vault-lock-retention-range
        ({"backupVaultLockMinRetentionDays": "14"}, "backupVaultLockMinRetentionDays", "daily backups are kept 7"),
        ({"backupVaultLockMaxRetentionDays": "20"}, "backupVaultLockMaxRetentionDays", "weekly backups are kept 28"),
        (
            {"backupVaultLockMinRetentionDays": "30", "backupVaultLockMaxRetentionDays": "20"},
            "backupVaultLockMaxRetentionDays",
            ">= backupVaultLockMinRetentionDays",
        ),
        ({"restoreTestingResourceTypes": '["EC2"]'}, "restoreTestingResourceTypes", "RDS, S3"),
        ({"restoreTestingResourceTypes": "[]"}, "restoreTestingResourceTypes", "non-empty"),
        # catalogue: backup.restore-testing-validation-window
        ({"restoreTestingValidationWindowHours": "200"}, "restoreTestingValidationWindowHours", "from 1 to 168"),
        ({"restoreTestingSchedule": "daily"}, "restoreTestingSchedule", "cron expression"),
        ({"faultInjectionDurationMinutes": "721"}, "faultInjectionDurationMinutes", "from 1 to 720"),
    ],
)
def test_bad_values_fail_with_the_key_and_what_is_allowed(overrides, key, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_config(prod_config(**overrides))
    assert caught.value.key == key
    assert f"dr-platform:{key}:" in str(caught.value)
    assert fragment in str(caught.value)


def test_a_longer_daily_retention_moves_the_locks_range_with_it():
    cfg = parse_config(prod_config(backupDailyRetentionDays="400"))
    assert (cfg.backup_vault_lock.min_retention_days, cfg.backup_vault_lock.max_retention_days) == (7, 400)
    with pytest.raises(ConfigError, match="backupVaultLockMaxRetentionDays: is 365 days, but the daily backups"):
        parse_config(prod_config(backupDailyRetentionDays="400", backupVaultLockMaxRetentionDays="365"))


def test_secret_config_is_accepted_only_where_the_program_keeps_it_secret():
    """The engine lists the keys set with --secret; a secret that would reach state in plaintext is refused.

    catalogue: pulumi-cli.language-host-passes-secret-keys
    """
    cfg = parse_config(prod_config(), secret_keys=["dr-platform:notificationHttpsEndpoints", "aws:secretKey"])
    assert cfg.secret_keys == frozenset({"notificationHttpsEndpoints"})
    with pytest.raises(ConfigError) as caught:
        parse_config(prod_config(), secret_keys=["dr-platform:zoneName"])
    assert caught.value.key == "zoneName"
    assert "set it without --secret" in str(caught.value)


def test_required_keys_are_named_when_missing():
    config = prod_config()
    del config["dr-platform:zoneName"]
    with pytest.raises(ConfigError, match="dr-platform:zoneName: is required"):
        parse_config(config)


def test_bad_config_fails_before_any_resource_is_declared():
    from automation.evaluate import evaluate_program

    with pytest.raises(ConfigError, match="drRegion"):
        evaluate_program(prod_config(drRegion="us-east-1"))


def test_a_key_in_a_misspelt_namespace_is_refused_not_ignored():
    with pytest.raises(ConfigError) as caught:
        parse_config(prod_config(**{"drplatform:dbName": "orders"}))
    assert caught.value.key == "drplatform:dbName"
    assert str(caught.value).startswith("config drplatform:dbName: namespace 'drplatform'")
    assert "did you mean dr-platform:dbName?" in str(caught.value)
    # The plugins' own namespaces are fine.
    parse_config(prod_config(**{"aws:region": "us-east-1", "kubernetes:context": "x"}))


@pytest.mark.parametrize(
    ("text", "fragment", "key"),
    [
        # catalogue: pulumi-cli.stack-file-duplicate-keys
        (
            "config:\n  dr-platform:dbName: app\n  dr-platform:dbName: orders\n",
            "line 3: key dr-platform:dbName is given twice (first at line 2)",
            "dr-platform:dbName",
        ),
        ("config:\n  dr-platform:vpcCidrs:\n    dr: a\n    dr: b\n", "key dr is given twice", "dr"),
        ("config: [dr-platform:dbName]\n", "config: must be a mapping", ""),
        ("- config\n", "must be a mapping with a config: section", ""),
        (
            "config:\n  dr-platform:dbName: [unclosed\n",
            "is not valid YAML: line 3, column 1: expected ',' or ']', but got '<stream end>' (while parsing a flow "
            "sequence at line 2)",
            "",
        ),
        ("config:\n  dr-platform:dbName: 'a\x07'\n", "is not valid YAML: line 2: special characters", ""),
    ],
)
def test_stack_files_that_the_cli_would_refuse_are_refused_naming_the_file(tmp_path: Path, text, fragment, key):
    (tmp_path / "Pulumi.broken.yaml").write_text(text)
    with pytest.raises(StackFileError) as caught:
        stack_file_config("broken", project_dir=tmp_path)
    assert str(caught.value).startswith("Pulumi.broken.yaml: ")
    assert fragment in str(caught.value) and "<unicode string>" not in str(caught.value)
    assert caught.value.key == key
    # drctl and the program report it like any config error.
    assert isinstance(caught.value, ConfigError)


def test_a_stack_file_that_does_not_exist_is_refused_naming_the_ones_that_do(tmp_path: Path):
    (tmp_path / "Pulumi.prod.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.staging.yaml").write_text("config: {}\n")
    with pytest.raises(StackFileError) as caught:
        stack_file_config("nope", project_dir=tmp_path)
    assert str(caught.value) == (
        f"Pulumi.nope.yaml: no such stack file in {tmp_path} (stack nope); stack files there: "
        "Pulumi.prod.yaml (stack prod), Pulumi.staging.yaml (stack staging)"
    )
    assert caught.value.exit_code == 2 and "--stack" in caught.value.hint


def test_a_stack_file_keeps_the_types_the_engine_passes_as_strings(tmp_path: Path):
    (tmp_path / "Pulumi.typed.yaml").write_text(
        "encryptionsalt: v1:abc\nconfig:\n  dr-platform:dnsTtlSeconds: 30\n"
        "  dr-platform:eksPublicEndpoint: false\n  dr-platform:tags:\n    team: sre\n"
    )
    assert stack_file_config("typed", project_dir=tmp_path) == {
        "dr-platform:dnsTtlSeconds": "30",
        "dr-platform:eksPublicEndpoint": "false",
        "dr-platform:tags": json.dumps({"team": "sre"}),
    }


def test_the_prod_stack_uses_an_existing_zone_and_an_allow_listed_api():
    cfg = parse_config(prod_config())
    assert cfg.zone_id and not cfg.create_zone and cfg.certificates_validated
    assert cfg.eks_public_endpoint and cfg.eks_public_access_cidrs == ("198.51.100.10/32", "198.51.100.11/32")
    created = parse_config(prod_config(zoneId="", createZone="true"))
    assert not created.certificates_validated
    assert parse_config(prod_config(zoneId="", createZone="true", zoneDelegated="true")).certificates_validated


def test_the_standby_profile_sets_what_runs_in_the_standby_region() -> None:
    sizes = {}
    for profile in ("pilot-light", "warm", "hot"):
        cfg = parse_config(prod_config(standbyProfile=profile))
        sizes[profile] = (cfg.standby_node_group.desired, cfg.standby_database_multi_az)
    assert sizes == {"pilot-light": (0, False), "warm": (1, True), "hot": (3, True)}
    assert parse_config(prod_config()).standby_profile.value == "warm"
    with pytest.raises(ConfigError, match="standbyProfile") as caught:
        parse_config(prod_config(standbyProfile="lukewarm"))
    assert "pilot-light" in str(caught.value)


# --- documentation placeholders: fine offline, refused by a real deploy ---------------------------------------------

REAL_VALUES = {
    "eksPublicAccessCidrs": '["52.94.76.10/32"]',
    "zoneId": "Z04123456ABCDEFGHIJK",
    "zoneName": "platform.acme-corp.io",
    "notificationEmails": '["sre-oncall@acme-corp.io"]',
}


def _load_config_with(raw: dict[str, str]):
    import pulumi

    from components.config import load_config

    pulumi.runtime.set_all_config({k if ":" in k else f"dr-platform:{k}": v for k, v in raw.items()})
    return load_config()


def test_the_example_stack_files_placeholders_are_all_found():
    found = documentation_placeholders(parse_config(prod_config()))
    assert found == [
        ("eksPublicAccessCidrs", "198.51.100.10/32"),
        ("eksPublicAccessCidrs", "198.51.100.11/32"),
        ("zoneId", "Z0123456789EXAMPLE01"),
        ("zoneName", "platform.example.com"),
        ("notificationEmails", "sre-oncall@example.com"),
    ]
    assert documentation_placeholders(parse_config(prod_config(**REAL_VALUES))) == []
    others = parse_config(
        prod_config(
            **REAL_VALUES,
            eksAdminPrincipalArns='["arn:aws:iam::123456789012:role/admin"]',
            backupCrossAccountVaultArn="arn:aws:backup:us-east-1:111122223333:backup-vault:copies",
            notificationHttpsEndpoints='["https://hooks.example.org/alert"]',
        )
    )
    assert [key for key, _ in documentation_placeholders(others)] == [
        "notificationHttpsEndpoints",
        "eksAdminPrincipalArns",
        "backupCrossAccountVaultArn",
    ]


def test_a_real_deploy_refuses_placeholders_and_offline_evaluations_accept_them():
    with pytest.raises(
        ConfigError, match=r"dr-platform:eksPublicAccessCidrs: '198\.51\.100\.10/32' is a documentation"
    ):
        _load_config_with(prod_config())
    with offline_evaluation():
        assert _load_config_with(prod_config()).zone_id == "Z0123456789EXAMPLE01"
    assert _load_config_with(prod_config(**REAL_VALUES)).zone_name == "platform.acme-corp.io"


def test_availability_zones_are_ids_and_leave_out_constrained_zones():
    """catalogue: ec2.availability-zone-names-differ-per-account"""
    cfg = parse_config(prod_config())
    assert cfg.regions["primary"].availability_zone_ids == ("use1-az1", "use1-az2", "use1-az4")
    assert cfg.regions["dr"].availability_zone_ids == ("usw2-az1", "usw2-az2", "usw2-az3")
    assert default_availability_zone_ids("ap-northeast-1") == ["apne1-az1", "apne1-az2", "apne1-az3"]
    assert default_availability_zone_ids("us-gov-west-1")[0] == "usgw1-az1"
    chosen = parse_config(prod_config(availabilityZones='{"primary": ["use1-az6", "use1-az5", "use1-az3"]}'))
    assert chosen.regions["primary"].availability_zone_ids == ("use1-az6", "use1-az5", "use1-az3")


def test_log_group_retention_is_separate_from_the_s3_logs_expiry():
    """catalogue: cloudwatch.logs-retention-values: 45 days is fine for S3 objects, not for a log group."""
    cfg = parse_config(prod_config(logsRetentionDays="45"))
    assert cfg.logs_retention_days == 45 and cfg.log_group_retention_days == 30
