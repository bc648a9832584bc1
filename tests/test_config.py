"""Config validation: every bad value fails before any resource, naming its key."""

from __future__ import annotations

import pytest

from components.config import ConfigError, DrState, parse_config
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
        ({"backupWeeklyRetentionDays": "28"}, "backupWeeklyRetentionDays", "+ 90"),
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
    ],
)
def test_bad_values_fail_with_the_key_and_what_is_allowed(overrides, key, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_config(prod_config(**overrides))
    assert caught.value.key == key
    assert f"dr-platform:{key}:" in str(caught.value)
    assert fragment in str(caught.value)


def test_required_keys_are_named_when_missing():
    config = prod_config()
    del config["dr-platform:zoneName"]
    with pytest.raises(ConfigError, match="dr-platform:zoneName: is required"):
        parse_config(config)


def test_bad_config_fails_before_any_resource_is_declared():
    from automation.evaluate import evaluate_program

    with pytest.raises(ConfigError, match="drRegion"):
        evaluate_program(prod_config(drRegion="us-east-1"))
