"""boto3 clients for drctl: one per (service, region), aimed at AWS or at moto, failing fast.

During a regional outage the SDK defaults (60 s timeouts, retries with backoff)
would stall a failover for minutes on every call into the failed region; the
clients here give up after a few seconds and raise one exception type,
`RegionUnreachableError`, that readers turn into an "unreachable" reading.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from automation.errors import DrctlError

ENDPOINT_ENV = "DRCTL_AWS_ENDPOINT_URL"
"""When set, every client talks to this endpoint (a moto server) instead of AWS."""

# Route53 has a single control plane, served from us-east-1, for records and the
# health-check API alike: reading a health check of a us-west-2 endpoint still
# needs us-east-1. Health-check failover itself runs in the data plane. IAM's
# control plane is in us-east-1 too.
_GLOBAL_SERVICE_REGIONS = {"route53": "us-east-1", "iam": "us-east-1"}

_CONNECTION_FAILURES = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


class RegionUnreachableError(DrctlError):
    """AWS in one region did not answer (connection refused, timed out, or 5xx after retries)."""

    def __init__(self, region: str, cause: Exception) -> None:
        super().__init__(
            f"AWS in {region} is unreachable: {cause}",
            hint="if the region is impaired, use the emergency path that needs only the surviving region",
        )
        self.region = region


@dataclass(frozen=True)
class Timeouts:
    """Bounded so a call into an impaired region fails within about half a minute."""

    connect_seconds: float = 5
    read_seconds: float = 20
    max_attempts: int = 3
    """Attempts in all, the first included."""


class AwsClients:
    """Creates and caches boto3 clients; credentials come from the standard chain.

    boto3 sessions are not thread-safe but its clients are: clients are made
    under a lock and then shared by the runbook's parallel steps. The offline
    sandbox passes its own `session`, whose event hooks fill in what moto lacks.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        session: boto3.session.Session | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
        self._session = session or boto3.session.Session()
        timeouts = timeouts or Timeouts()
        self._config = Config(
            connect_timeout=timeouts.connect_seconds,
            read_timeout=timeouts.read_seconds,
            retries={"total_max_attempts": timeouts.max_attempts, "mode": "standard"},
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def api_region(service: str, region: str) -> str:
        """The region whose endpoint serves `service` for resources in `region`."""
        return _GLOBAL_SERVICE_REGIONS.get(service, region)

    def client(self, service: str, region: str) -> Any:
        key = (service, self.api_region(service, region))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service, region_name=key[1], endpoint_url=self.endpoint_url, config=self._config
                )
            return self._clients[key]


@contextmanager
def reaching(region: str) -> Iterator[None]:
    """Turn the ways an impaired region fails into `RegionUnreachableError` for `region`."""
    try:
        yield
    except _CONNECTION_FAILURES as error:
        raise RegionUnreachableError(region, error) from error
    except ClientError as error:
        # Retries are spent by now: a 5xx means the regional service is down, not that we asked wrongly.
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            raise RegionUnreachableError(region, error) from error
        raise
