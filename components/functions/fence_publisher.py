"""Publishes the traffic fence every minute from the DR state authority (runs in AWS Lambda).

Route53's fence checks follow the data stream of the fence alarm's metric, not
the alarm's state, and hold their last status only while that stream is briefly
unavailable (catalogue: route53.cloudwatch-metric-check-follows-the-alarm,
route53.last-known-status-is-for-brief-gaps). So the fence is not a datapoint
drctl puts once: EventBridge Scheduler invokes this function every minute in the
DR region, and it reads where the platform stands from `dr-state.json` in the
drctl control store (automation/dr_state.py) and puts the fence's value:
1 raised (Route53 answers only the DR region), 0 lowered.

What the authority says:
- `traffic_fence` (`raised` / `lowered`), written by drctl's fence steps;
- without it (a record from before the field, or from `drctl state init`), the
  fence follows `drState`: lowered in steady, raised in failed-over and resyncing.

When it cannot read the authority (S3 or KMS refuses, the document is missing
or malformed) it publishes nothing and fails the invocation. Both values would
be a guess, and each guess is wrong in one state: 1 in steady sends every user
to a read-only standby (an outage caused by a read error), 0 after a failover
lets a returning former writer take traffic (split brain). With no datapoint,
Route53 keeps the status the authority last decided, which is what
LastKnownStatus is for, and the publisher's alarms page within minutes (no
datapoint: missing data breaches; the failed invocation: Lambda Errors).

Standard library and the runtime's boto3 only. Settings come from the
environment the program declares: AUTHORITY_BUCKET, AUTHORITY_KEY,
METRIC_NAMESPACE, METRIC_NAME, METRIC_DIMENSIONS (a JSON object).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

FENCE_FIELD = "traffic_fence"
RAISED, LOWERED = "raised", "lowered"
AUTHORITY_SCHEMA = 1
"""automation/dr_state.py SCHEMA_VERSION (tests/test_fence_publisher.py keeps them equal)."""
DR_STATE_KEY = "dr-platform:drState"
STATES_FENCED = frozenset({"failed-over", "resyncing"})
STATES_UNFENCED = frozenset({"steady"})

log = logging.getLogger()
log.setLevel(logging.INFO)


class AuthorityUnreadableError(Exception):
    """The DR state authority could not be read or does not say where the platform stands."""


@dataclass(frozen=True)
class Settings:
    bucket: str
    key: str
    namespace: str
    metric: str
    dimensions: Mapping[str, str]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            bucket=environ["AUTHORITY_BUCKET"],
            key=environ["AUTHORITY_KEY"],
            namespace=environ["METRIC_NAMESPACE"],
            metric=environ["METRIC_NAME"],
            dimensions=json.loads(environ["METRIC_DIMENSIONS"]),
        )


def fence_raised(document: Any) -> bool:
    """Whether the authority's document raises the fence; AuthorityUnreadableError when it does not say."""
    if not isinstance(document, dict) or document.get("schema") != AUTHORITY_SCHEMA:
        raise AuthorityUnreadableError(f"not a schema {AUTHORITY_SCHEMA} DR state record")
    explicit = document.get(FENCE_FIELD)
    if explicit is not None:
        if explicit not in (RAISED, LOWERED):
            raise AuthorityUnreadableError(f"{FENCE_FIELD} is {explicit!r}, not {RAISED!r} or {LOWERED!r}")
        return explicit == RAISED
    keys = document.get("keys")
    state = (keys if isinstance(keys, dict) else {}).get(DR_STATE_KEY, "steady")
    if state in STATES_FENCED:
        return True
    if state in STATES_UNFENCED:
        return False
    raise AuthorityUnreadableError(f"drState {state!r} is not a known DR state")


def read_fence(s3: Any, settings: Settings) -> bool:
    try:
        body = s3.get_object(Bucket=settings.bucket, Key=settings.key)["Body"].read()
        return fence_raised(json.loads(body))
    except (ClientError, BotoCoreError, ValueError) as error:
        raise AuthorityUnreadableError(f"s3://{settings.bucket}/{settings.key}: {error}") from error


def publish(s3: Any, cloudwatch: Any, settings: Settings, now: datetime) -> dict[str, Any]:
    """Read the authority and put the fence's datapoint; raises (publishing nothing) when it cannot read."""
    raised = read_fence(s3, settings)
    value = 1.0 if raised else 0.0
    cloudwatch.put_metric_data(
        Namespace=settings.namespace,
        MetricData=[
            {
                "MetricName": settings.metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in settings.dimensions.items()],
                "Timestamp": now,
                "Value": value,
                "Unit": "Count",
            }
        ],
    )
    return {"fence": RAISED if raised else LOWERED, "value": value, "at": now.isoformat()}


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    settings = Settings.from_environment(os.environ)
    try:
        result = publish(boto3.client("s3"), boto3.client("cloudwatch"), settings, datetime.now(UTC))
    except AuthorityUnreadableError as error:
        # Fails the invocation (Lambda Errors) and publishes nothing: Route53 keeps the last decided status.
        log.error("fence not published, the DR state authority is unreadable: %s", error)
        raise
    log.info("fence published: %s", json.dumps(result))
    return result
