"""Where alerts go: an SNS topic and the CloudWatch alarms per region, and the
Route53 health-check alarms, which can only live in us-east-1. Each region also
gets a heartbeat topic: its Alertmanager publishes Watchdog there, and one of
the region's alarms pages when that stops."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.alarms import (
    ROUTE53_METRICS_REGION,
    Alarms,
    AlertTopic,
    AlertTopicArgs,
    health_check_alarms,
    regional_alarms,
)
from components.config import ROLES, PlatformConfig
from components.encryption import RegionalKey
from components.naming import alert_topic_name, heartbeat_topic_name, physical_name
from components.providers import us_east_1_provider

SUBSCRIPTION_KEYS = {"email": "notificationEmails", "https": "notificationHttpsEndpoints"}
"""The config key each subscription protocol's endpoints come from."""


def _topic(
    cfg: PlatformConfig, name: str, topic_name: str, key: RegionalKey, opts: pulumi.ResourceOptions
) -> AlertTopic:
    args: AlertTopicArgs = {
        "topic_name": topic_name,
        "kms_key_arn": key.arn,
        "emails": cfg.notification_emails,
        "https_endpoints": cfg.notification_https_endpoints,
        "secret_protocols": frozenset(
            protocol for protocol, key in SUBSCRIPTION_KEYS.items() if key in cfg.secret_keys
        ),
    }
    return AlertTopic(name, args, opts)


@dataclass(frozen=True)
class Alerting:
    topics: dict[str, AlertTopic]
    """Alert topics by region (us-east-1 added when neither role is there)."""
    heartbeat_topics: dict[str, AlertTopic]
    """Heartbeat topics by role, without subscribers: only their published-message count is watched."""


def declare_alerting(
    cfg: PlatformConfig,
    providers: Mapping[str, aws.Provider],
    keys: Mapping[str, RegionalKey],
    account_id: pulumi.Input[str],
    health_check_ids: Mapping[str, pulumi.Input[str]],
) -> Alerting:
    """Declare topics and alarms."""
    topics = {}
    heartbeats = {}
    for role in ROLES:
        in_region = pulumi.ResourceOptions(provider=providers[role])
        topic = _topic(cfg, f"alerts-{role}", alert_topic_name(cfg, role), keys[role], in_region)
        topics[cfg.region_of(role)] = topic
        heartbeats[role] = AlertTopic(
            f"heartbeat-{role}",
            {
                "topic_name": heartbeat_topic_name(cfg, role),
                "kms_key_arn": keys[role].arn,
                "emails": (),
                "https_endpoints": (),
                "secret_protocols": frozenset(),
            },
            in_region,
        )
        # Each region's alarms notify that region's topic (catalogue: cloudwatch.alarm-actions-in-own-region).
        Alarms(f"alarms-{role}", {"topic_arn": topic.arn, "alarms": regional_alarms(cfg, role)}, in_region)

    # Route53 publishes health-check metrics in us-east-1 only: the alarms on them
    # live there (catalogue: cloudwatch.route53-metrics-in-us-east-1), with a topic of
    # that region (catalogue: cloudwatch.alarm-actions-in-own-region): that region's
    # topic, or a key and topic of their own.
    if ROUTE53_METRICS_REGION in topics:
        health_opts = pulumi.ResourceOptions(provider=providers[cfg.role_of(ROUTE53_METRICS_REGION)])
    else:
        health_opts = pulumi.ResourceOptions(provider=us_east_1_provider(cfg))
        key = RegionalKey(
            "kms-us-east-1",
            {
                "alias": physical_name(cfg, ROUTE53_METRICS_REGION, "alerts"),
                "description": "dr-platform alerts in us-east-1",
                "account_id": account_id,
            },
            health_opts,
        )
        topic_name = physical_name(cfg, ROUTE53_METRICS_REGION, "alerts")
        topics[ROUTE53_METRICS_REGION] = _topic(cfg, "alerts-us-east-1", topic_name, key, health_opts)
    Alarms(
        "alarms-health-checks",
        {"topic_arn": topics[ROUTE53_METRICS_REGION].arn, "alarms": health_check_alarms(cfg, health_check_ids)},
        health_opts,
    )
    return Alerting(topics=topics, heartbeat_topics=heartbeats)
