"""Where Route53 sends users, read from Route53 itself, not from the fence alarm's state.

Route53 evaluates the fence checks from the alarm metric's data stream, not from the
alarm's state (catalogue: route53.cloudwatch-metric-check-follows-the-alarm), so a
verification that reads the alarm proves only what CloudWatch thinks. Two readings:

- Route53's API, when it answers (its control plane runs in us-east-1): the fence
  checks' status from GetHealthCheckStatus. The routing checks are CALCULATED, and
  GetHealthCheckStatus refuses those (catalogue:
  route53.health-check-status-api-not-for-calculated); their effect is read below.
- The zone's authoritative name servers, asked directly (no resolver cache): the
  failover record's answer must be the expected region's endpoint. Data plane only,
  so it works while Route53's API does not. The name servers come from the stack
  outputs (a zone the stack created), else from Route53's API, else from DNS (NS).

The answer decides; the API's reading, when there is one, must agree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from automation.aws.clients import AwsClients, RegionUnreachableError, reaching
from automation.aws.readiness import Reading, Status

ROUTE53_API_REGION = "us-east-1"
HEALTHY_SHARE = 0.18
"""Route53 calls a check healthy while more than 18% of its checkers report it healthy
(catalogue: route53.endpoint-health-2xx-3xx-and-18-percent)."""
DNS_TIMEOUT_SECONDS = 3.0

Resolve = Callable[[str, str, Sequence[str]], str | None]
"""resolve(record name, record type, name servers) -> the first answer's target (None: no answer)."""
FindNameServers = Callable[[str], list[str]]


def authoritative_answer(name: str, rdtype: str, name_servers: Sequence[str]) -> str | None:
    """Ask each of the zone's name servers in turn (UDP, no recursion); the first answer's target."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rdatatype
    import dns.resolver

    for server in name_servers:
        try:
            address = server if server.replace(".", "").isdigit() else dns.resolver.resolve(server, "A")[0].to_text()
            query = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
            query.flags &= ~dns.flags.RD
            response = dns.query.udp(query, address, timeout=DNS_TIMEOUT_SECONDS)
        except (dns.exception.DNSException, OSError):
            continue
        for rrset in response.answer:
            for item in rrset:
                return item.to_text().rstrip(".")
    return None


def zone_name_servers(zone_name: str) -> list[str]:
    """The zone's NS records through the system's resolver (used only when Route53's API does not answer)."""
    import dns.exception
    import dns.resolver

    try:
        return [record.to_text().rstrip(".") for record in dns.resolver.resolve(zone_name, "NS")]
    except dns.exception.DNSException:
        return []


def route53_answer(
    clients: AwsClients,
    dns_output: Mapping[str, Any],
    *,
    expected_region: str,
    use_api: bool = True,
    resolve: Resolve = authoritative_answer,
    find_name_servers: FindNameServers = zone_name_servers,
) -> Reading:
    """OK when the zone's name servers answer the expected region's endpoint and Route53's fence checks (if its
    API answers) agree; FAILING when either says otherwise; UNREACHABLE when neither can be read.

    `use_api` False: Route53's API is not called at all (its region is the failed one)."""
    fence = dns_output["fence"]
    record, expected = dns_output["recordName"], str(dns_output["endpoints"][expected_region]).rstrip(".")
    fence_should_be_raised = expected_region != fence["fencedRegion"]
    facts: dict[str, Any] = {"expected": expected}

    api = _fence_checks(clients, fence) if use_api else None
    facts["route53Api"] = api
    name_servers = list(dns_output.get("nameServers") or [])
    if not name_servers and use_api:
        name_servers = _api_name_servers(clients, dns_output["zoneId"])
    name_servers = name_servers or find_name_servers(dns_output["zoneName"])
    facts["nameServers"] = name_servers
    answer = resolve(record, "CNAME", name_servers) if name_servers else None
    answer = answer.rstrip(".") if answer else None
    facts["answer"] = answer

    problems = []
    if api is not None:
        raised = api["raised"] and not api["lowered"]
        lowered = api["lowered"] and not api["raised"]
        if (fence_should_be_raised and not raised) or (not fence_should_be_raised and not lowered):
            problems.append(f"Route53's fence checks say raised={api['raised']} lowered={api['lowered']}")
    if answer is not None and answer != expected:
        problems.append(f"the zone's name servers answer {record} -> {answer}, not {expected}")
    if problems:
        return Reading(
            "route53-answer", expected_region, record, Status.FAILING, answer, "", "; ".join(problems), facts
        )
    if answer is None:
        detail = "no authoritative answer" + ("" if api else " and Route53's API does not answer")
        status = Status.WARNING if api is not None else Status.UNREACHABLE
        return Reading("route53-answer", expected_region, record, status, None, "", detail, facts)
    source = "Route53's fence checks and " if api is not None else ""
    detail = f"{source}the zone's name servers send {record} to {answer} ({expected_region})"
    return Reading("route53-answer", expected_region, record, Status.OK, answer, "", detail, facts)


def _fence_checks(clients: AwsClients, fence: Mapping[str, Any]) -> dict[str, bool] | None:
    """{raised, lowered}: each fence check's status from GetHealthCheckStatus; None when the API does not answer."""
    route53 = clients.client("route53", ROUTE53_API_REGION)
    statuses = {}
    try:
        with reaching(ROUTE53_API_REGION):
            for state, check_id in (("raised", fence["raisedCheckId"]), ("lowered", fence["loweredCheckId"])):
                observations = route53.get_health_check_status(HealthCheckId=check_id)["HealthCheckObservations"]
                statuses[state] = checker_share_healthy(observations) > HEALTHY_SHARE
    except (RegionUnreachableError, ClientError, BotoCoreError):
        return None
    return statuses


def checker_share_healthy(observations: Sequence[Mapping[str, Any]]) -> float:
    """The share of Route53's checkers whose last report is a success.

    catalogue: route53.health-check-status-reports-success-or-failure (unconfirmed for metric checks)
    """
    if not observations:
        return 0.0
    healthy = sum(1 for o in observations if str(o.get("StatusReport", {}).get("Status", "")).startswith("Success"))
    return healthy / len(observations)


def _api_name_servers(clients: AwsClients, zone_id: str) -> list[str]:
    try:
        with reaching(ROUTE53_API_REGION):
            zone = clients.client("route53", ROUTE53_API_REGION).get_hosted_zone(Id=zone_id)
    except (RegionUnreachableError, ClientError, BotoCoreError):
        return []
    return list((zone.get("DelegationSet") or {}).get("NameServers") or [])
