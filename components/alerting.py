"""Where alerts go: an SNS topic and the CloudWatch alarms per region, and the
Route53 health-check alarms, which can only live in us-east-1."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from components.alarms import ROUTE53_METRICS_REGION, Alarms, AlertTopic, health_check_alarms, regional_alarms
from components.config import ROLES, PlatformConfig
from components.encryption import RegionalKey
from components.naming import alert_topic_name, physical_name
from components.providers import us_east_1_provider


def _topic(
    cfg: PlatformConfig, name: str, topic_name: str, key: RegionalKey, opts: pulumi.ResourceOptions
) -> AlertTopic:
    args = {
        "topic_name": topic_name,
        "kms_key_arn": key.arn,
        "emails": cfg.notification_emails,
        "https_endpoints": cfg.notification_https_endpoints,
    }
    return AlertTopic(name, args, opts)


def declare_alerting(
    cfg: PlatformConfig,
    providers: Mapping[str, aws.Provider],
    keys: Mapping[str, RegionalKey],
    account_id: pulumi.Input[str],
    health_check_ids: Mapping[str, pulumi.Input[str]],
) -> dict[str, AlertTopic]:
    """Declare topics and alarms; returns the topics by region (us-east-1 added when neither role is there)."""
    topics = {}
    for role in ROLES:
        in_region = pulumi.ResourceOptions(provider=providers[role])
        topic = _topic(cfg, f"alerts-{role}", alert_topic_name(cfg, role), keys[role], in_region)
        topics[cfg.region_of(role)] = topic
        Alarms(f"alarms-{role}", {"topic_arn": topic.arn, "alarms": regional_alarms(cfg, role)}, in_region)

    # Route53 publishes health-check metrics in us-east-1 only: the alarms on
    # them live there, with that region's topic, or with a key and topic of their own.
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
    return topics
