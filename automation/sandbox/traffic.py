"""Where the application's users land: Route53 health checks, failover answers, resolver caches and the ALBs.

The model is a function of modelled time, evaluated when asked (a metric
period being published, a drill's batch of requests, a GetHealthCheckStatus):

- an endpoint serves when its region answers, its load balancer has Ready
  targets (else the ALB itself answers 503) and no fault makes its health path
  fail; a Route53 HTTPS check passes on a 2xx/3xx within the timeouts, turns
  after `failureThreshold` checks in a row, and the endpoint is healthy while
  more than 18% of the checkers say so (catalogue:
  route53.endpoint-health-2xx-3xx-and-18-percent);
- the traffic fence's datapoints come from the fence publisher's run in each
  minute (`FenceAuthorityModel`: what the DR state authority said at that
  second), never while the DR region or its CloudWatch is down;
- a CLOUDWATCH_METRIC check follows its alarm's datapoints once their minute is
  over and evaluated, and without data its InsufficientDataHealthStatus:
  LastKnownStatus keeps the last status for `LAST_KNOWN_STATUS_HOLD` only, then
  reads as a check with no last status, healthy (adversarial: AWS gives no
  figure, and says not to rely on it beyond a few hours; catalogue
  route53.last-known-status-is-for-brief-gaps). When the alarm's region is
  down, the checkers keep what they read before;
  a CALCULATED check counts its healthy children (catalogue:
  route53.cloudwatch-metric-check-follows-the-alarm,
  route53.calculated-check-counts-healthy-children);
- the failover records answer PRIMARY when healthy, else SECONDARY when healthy,
  and PRIMARY when both are unhealthy (catalogue:
  route53.failover-all-unhealthy-answers-as-healthy); Route53's data plane
  answers even while its control plane is down;
- each resolver caches an answer for the record's TTL, its refreshes spread
  evenly over the TTL, so traffic moves over one TTL after the answer changes
  (catalogue: dns.resolvers-cache-for-the-ttl);
- the ALB counts a request in RequestCount only once it chose a target: with no
  Ready target it answers 503 itself (HTTPCode_ELB_5XX_Count) (catalogue:
  elb.request-count-excludes-rejected-requests); a request whose write the
  region's database refuses ends as a target 5XX.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from automation.timings import Op, latency
from components.config import PlatformConfig
from components.functions.fence_publisher import AuthorityUnreadableError, fence_raised
from components.traffic import HEALTH_CHECKER_REGIONS

HEALTHY_FRACTION = 0.18
# catalogue: route53.fence-flip-time
ALARM_INGEST_SECONDS = latency(Op.FENCE_ALARM_EVALUATION)
"""A datapoint's period must end before its alarm evaluates it."""
ROUTE53_SEES_ALARM_SECONDS = ALARM_INGEST_SECONDS + latency(Op.ROUTE53_FOLLOWS_ALARM)
"""...and Route53's checkers read the alarm's new state after that."""
PUBLISH_SECOND = 30
"""When in each minute the fence publisher reads the authority: Scheduler runs it somewhere within the minute
(catalogue: scheduler.rate-one-minute-at-most-once-a-minute); the middle is our estimate."""
LAST_KNOWN_STATUS_HOLD = timedelta(hours=3)
"""How long the sandbox's Route53 keeps a LastKnownStatus without data (AWS: "a few hours" at most)."""

OK, ELB_503, TARGET_5XX, UNREACHABLE = "ok", "elb-503", "target-5xx", "unreachable"


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime | None

    def contains(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass
class Timeline:
    """Per key, the intervals during which something held (a region down, a fault)."""

    intervals: dict[str, list[Interval]] = field(default_factory=dict)
    values: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)

    def begin(self, key: str, at: datetime, value: float = 1.0) -> None:
        spans = self.intervals.setdefault(key, [])
        if not spans or spans[-1].end is not None:
            spans.append(Interval(at, None))
        self.values.setdefault(key, []).append((at, value))

    def end(self, key: str, at: datetime) -> None:
        spans = self.intervals.get(key, [])
        if spans and spans[-1].end is None:
            spans[-1] = Interval(spans[-1].start, at)

    def holds(self, key: str, at: datetime) -> bool:
        return any(span.contains(at) for span in self.intervals.get(key, []))

    def value(self, key: str, at: datetime) -> float:
        if not self.holds(key, at):
            return 0.0
        return next((value for since, value in reversed(self.values.get(key, [])) if since <= at), 0.0)


@dataclass(frozen=True)
class RecordSet:
    name: str
    failover: str | None
    value: str
    ttl: int
    health_check_id: str | None


class TrafficModel:
    """Health checks, DNS answers, resolvers and load balancers, as functions of modelled time."""

    resolvers = 20
    requests_per_minute = 1000.0

    def __init__(
        self,
        cfg: PlatformConfig,
        *,
        outages: Timeline,
        faults: Timeline,
        ready_nodes: Callable[[str, datetime], int],
        write_refusal: Callable[[str, datetime], str | None],
        health_checks: Mapping[str, Mapping[str, Any]],
        endpoint_regions: Callable[[], Mapping[str, str]],
        records: Callable[[], list[RecordSet]],
        alarm_datapoints: Callable[[str, str, datetime], tuple[Mapping[str, Any], list[tuple[datetime, float]]] | None],
    ) -> None:
        self.cfg = cfg
        self.outages = outages
        self.faults = faults
        self._ready_nodes = ready_nodes
        self._write_refusal = write_refusal
        self.health_checks = health_checks
        self._endpoint_regions = endpoint_regions
        self._records = records
        self._alarm_datapoints = alarm_datapoints
        self._lock = threading.RLock()
        self._statuses: dict[tuple[str, datetime], bool] = {}
        self._answers: dict[datetime, str | None] = {}

    def invalidate(self) -> None:
        """Records, checks or alarm data changed (an update, a fence metric): forget cached evaluations."""
        with self._lock:
            self._statuses.clear()
            self._answers.clear()

    # --- endpoints --------------------------------------------------------------------

    def endpoint_outcome(self, region: str, at: datetime) -> str:
        """What a request to the region's load balancer gets at `at` (health path: the same, without the write)."""
        if self.outages.holds(region, at):
            return UNREACHABLE
        if self._ready_nodes(region, at) <= 0:
            return ELB_503
        if self.faults.holds(f"unhealthy:{region}", at):
            return TARGET_5XX
        return OK

    def request_outcome(self, region: str, at: datetime, index: int, per: int) -> str:
        """One request that writes: the endpoint's outcome, then the database's answer and the injected 5xx rate."""
        outcome = self.endpoint_outcome(region, at)
        if outcome != OK:
            return outcome
        if index < round(per * self.faults.value(f"errors:{region}", at)):
            return TARGET_5XX
        return TARGET_5XX if self._write_refusal(region, at) else OK

    # --- health checks --------------------------------------------------------------------

    def checker_reports(self, check_id: str, at: datetime) -> list[tuple[str, bool]]:
        """(checker region, healthy) per Route53 checker that can report (checkers in a down region cannot)."""
        config = self.health_checks.get(check_id, {})
        healthy = self.healthy(check_id, at)
        if config.get("Type") not in ("HTTP", "HTTPS", "TCP"):
            return [("us-east-1", healthy)]
        return [(region, healthy) for region in HEALTH_CHECKER_REGIONS if not self.outages.holds(region, at)]

    def healthy(self, check_id: str, at: datetime) -> bool:
        return self._status(check_id, _second(at))

    def _status(self, check_id: str, at: datetime) -> bool:
        with self._lock:
            cached = self._statuses.get((check_id, at))
        if cached is None:
            cached = self._evaluate(check_id, at)
            with self._lock:
                self._statuses[(check_id, at)] = cached
        return cached

    def _evaluate(self, check_id: str, at: datetime) -> bool:
        config = self.health_checks.get(check_id)
        if config is None:
            return True
        kind = config.get("Type")
        if config.get("Disabled"):
            # catalogue: route53.disabled-check-is-healthy-inverted-unhealthy
            status = True
        elif kind == "CALCULATED":
            # catalogue: route53.calculated-check-counts-healthy-children
            children = config.get("ChildHealthChecks", [])
            count = sum(1 for child in children if self._status(child, at))
            status = count >= int(config.get("HealthThreshold", len(children)))
        elif kind == "CLOUDWATCH_METRIC":
            status = self._alarm_check(config, at)
        else:
            status = self._endpoint_check(config, at)
        return status != bool(config.get("Inverted", False))

    def _endpoint_check(self, config: Mapping[str, Any], at: datetime) -> bool:
        # catalogue: route53.endpoint-health-2xx-3xx-and-18-percent
        region = self._endpoint_regions().get(config.get("FullyQualifiedDomainName", ""))
        if region is None:
            return True
        interval = float(config.get("RequestInterval", self.cfg.health_check_interval_seconds))
        threshold = int(config.get("FailureThreshold", self.cfg.health_check_failure_threshold))
        samples = [self.endpoint_outcome(region, at - timedelta(seconds=k * interval)) == OK for k in range(threshold)]
        if all(samples) or not any(samples):
            return samples[0]
        # Not `threshold` checks in a row yet: the status before the change holds.
        return self.endpoint_outcome(region, at - timedelta(seconds=threshold * interval)) == OK

    def alarm_points(
        self, region: str, name: str, until: datetime
    ) -> tuple[Mapping[str, Any], list[tuple[datetime, float]]] | None:
        """The alarm's definition and datapoints up to `until`; None when its region does not answer."""
        return self._alarm_datapoints(region, name, until)

    def _alarm_check(self, config: Mapping[str, Any], at: datetime) -> bool:
        # catalogue: route53.cloudwatch-metric-check-follows-the-alarm
        alarm = config.get("AlarmIdentifier") or {}
        seen = at - timedelta(seconds=ROUTE53_SEES_ALARM_SECONDS)
        found = self._alarm_datapoints(alarm.get("Region", ""), alarm.get("Name", ""), seen)
        insufficient = config.get("InsufficientDataHealthStatus", "LastKnownStatus")
        if found is None:  # no such alarm
            return insufficient != "Unhealthy"
        definition, points = found
        points = [p for p in points if p[0] <= seen]
        window = timedelta(seconds=int(definition["Period"]) * int(definition.get("EvaluationPeriods", 1)))
        recent = [p for p in points if p[0] > seen - window]
        if recent:
            return not breaches(definition, recent[-1][1])
        if insufficient == "Healthy":
            return True
        if insufficient == "Unhealthy":
            return False
        # catalogue: route53.last-known-status-is-for-brief-gaps
        if not points or seen - points[-1][0] > LAST_KNOWN_STATUS_HOLD:
            return True  # no last status to keep: a check without one reads healthy
        return not breaches(definition, points[-1][1])

    # --- DNS ----------------------------------------------------------------------------

    def answer(self, at: datetime) -> str | None:
        """The region Route53 answers for the application record at `at` (None: no record)."""
        return self._answer(_second(at))

    def _answer(self, at: datetime) -> str | None:
        with self._lock:
            if at in self._answers:
                return self._answers[at]
        found = self._resolve(at)
        with self._lock:
            self._answers[at] = found
        return found

    def _resolve(self, at: datetime) -> str | None:
        records = [r for r in self._records() if r.name.rstrip(".") == self.cfg.app_fqdn.rstrip(".")]
        by_slot = {r.failover: r for r in records if r.failover}
        primary, secondary = by_slot.get("PRIMARY"), by_slot.get("SECONDARY")
        regions = self._endpoint_regions()

        def healthy(record: RecordSet | None) -> bool:
            return record is not None and (record.health_check_id is None or self.healthy(record.health_check_id, at))

        chosen = primary
        if primary is None or not healthy(primary):
            # catalogue: route53.failover-all-unhealthy-answers-as-healthy
            chosen = secondary if healthy(secondary) else primary or secondary
        return regions.get(chosen.value.rstrip(".")) if chosen else None

    def resolver_region(self, resolver: int, at: datetime) -> str | None:
        """Where resolver `resolver` sends its clients at `at`: the answer it cached at its last refresh."""
        # catalogue: dns.resolvers-cache-for-the-ttl
        ttl = float(self.cfg.dns_ttl_seconds)
        phase = ttl * resolver / self.resolvers
        elapsed = (at - _EPOCH).total_seconds() - phase
        refreshed = _EPOCH + timedelta(seconds=phase + (elapsed // ttl) * ttl)
        return self.answer(refreshed)

    # --- load balancer metrics ------------------------------------------------------------------

    def period_counts(self, region: str, start: datetime, seconds: float = 60.0) -> dict[str, float]:
        """One period of ALB metrics for `region`, from the traffic the resolvers send there."""
        samples = 6
        per = self.requests_per_minute * seconds / 60.0 / self.resolvers / samples
        counts = {"RequestCount": 0.0, "HTTPCode_Target_5XX_Count": 0.0, "HTTPCode_ELB_5XX_Count": 0.0}
        for sample in range(samples):
            at = start + timedelta(seconds=(sample + 0.5) * seconds / samples)
            for resolver in range(self.resolvers):
                if self.resolver_region(resolver, at) != region:
                    continue
                outcome = self.endpoint_outcome(region, at)
                if outcome == UNREACHABLE:
                    continue
                if outcome == ELB_503:
                    counts["HTTPCode_ELB_5XX_Count"] += per
                    continue
                counts["RequestCount"] += per
                ratio = self.faults.value(f"errors:{region}", at)
                refused = self._write_refusal(region, at) is not None or outcome == TARGET_5XX
                counts["HTTPCode_Target_5XX_Count"] += per if refused else per * ratio
        counts["HTTPCode_ELB_503_Count"] = counts["HTTPCode_ELB_5XX_Count"]
        return counts


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class FenceAuthorityModel:
    """The DR state authority as the fence publisher reads it, over modelled time.

    Each write is kept with its time, so the value of a past minute is what the publisher's run in that minute
    read, whenever the sandbox gets round to publishing it. The decision is the publisher's own
    (components/functions/fence_publisher.py `fence_raised`); a document it cannot read publishes nothing.
    """

    def __init__(self) -> None:
        self._documents: list[tuple[datetime, Mapping[str, Any]]] = []
        self._lock = threading.Lock()

    def write(self, at: datetime, document: Mapping[str, Any]) -> None:
        with self._lock:
            self._documents.append((at, dict(document)))

    def document_at(self, at: datetime) -> Mapping[str, Any] | None:
        with self._lock:
            return next((doc for since, doc in reversed(self._documents) if since <= at), None)

    def value_for_minute(self, start: datetime) -> float | None:
        """What the publisher puts for the minute beginning at `start` (None: nothing)."""
        document = self.document_at(start + timedelta(seconds=PUBLISH_SECOND))
        if document is None:
            return None
        try:
            return 1.0 if fence_raised(document) else 0.0
        except AuthorityUnreadableError:
            return None


def _second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


def breaches(alarm: Mapping[str, Any], value: float) -> bool:
    threshold = float(alarm.get("Threshold", 0))
    return {
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "GreaterThanThreshold": value > threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }.get(alarm.get("ComparisonOperator", ""), False)
