"""Entry points and Route53 failover, per DR state, under the recording mocks."""

from __future__ import annotations

import functools
import json

import pytest

from automation.evaluate import GLOBAL, Evaluation, evaluate_program
from components.config import parse_config
from components.naming import load_balancer_name, target_group_name
from components.traffic import HEALTH_CHECKER_REGIONS
from tests.conftest import STATES, evaluate_state, prod_config

RECORD = "aws:route53/record:Record"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
ZONE = "aws:route53/zone:Zone"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
FAILOVER_RECORDS = {"dns-failover-record-primary-slot", "dns-failover-record-secondary-slot"}


@functools.cache
def customised() -> Evaluation:
    """The DR region reached through an existing ingress hostname, with tuned health checks."""
    return evaluate_program(
        prod_config(
            ingressHostnames=json.dumps({"dr": "ingress.usw2.example.net"}),
            healthCheckPath="/ready",
            healthCheckIntervalSeconds="30",
            healthCheckFailureThreshold="5",
            dnsTtlSeconds="30",
        )
    )


def failover_records(evaluation: Evaluation) -> dict[str, dict]:
    """Failover records by routing slot (PRIMARY / SECONDARY)."""
    records = [r for r in evaluation.of_type(RECORD) if r.name in FAILOVER_RECORDS]
    return {r.inputs["failoverRoutingPolicies"][0]["type"]: dict(r.inputs) for r in records}


@pytest.mark.parametrize("state", (*STATES, "steady-after-failback"))
def test_primary_record_points_at_the_active_region_and_carries_its_health_check(state):
    evaluation = evaluate_state(state)
    cfg, dns = evaluation.config, evaluation.outputs["dns"]
    records = failover_records(evaluation)
    assert set(records) == {"PRIMARY", "SECONDARY"}
    for slot, region in (("PRIMARY", cfg.active_region), ("SECONDARY", cfg.standby_region)):
        assert records[slot]["records"] == [dns["endpoints"][region]]
        assert records[slot]["healthCheckId"] == dns["routingChecks"][region]  # endpoint and traffic fence
        assert records[slot]["name"] == cfg.app_fqdn
        assert records[slot]["type"] == "CNAME"
        assert records[slot]["ttl"] == cfg.dns_ttl_seconds


def test_failover_swaps_the_slots(steady, failed_over):
    before, after = failover_records(steady), failover_records(failed_over)
    assert before["PRIMARY"]["records"] == after["SECONDARY"]["records"]
    assert before["SECONDARY"]["records"] == after["PRIMARY"]["records"]
    assert "us-west-2" in after["PRIMARY"]["records"][0]


def test_state_changes_update_the_records_in_place(steady, failed_over, resyncing):
    """Same URNs and the same identity (name, type, set identifier, slot): only values move."""
    identity = ("name", "type", "setIdentifier", "failoverRoutingPolicies", "zoneId")

    def records_by_urn(evaluation: Evaluation) -> dict[str, dict]:
        return {r.urn: {k: r.inputs.get(k) for k in identity} for r in evaluation.of_type(RECORD)}

    assert records_by_urn(steady) == records_by_urn(failed_over) == records_by_urn(resyncing)
    assert {r.name for r in steady.of_type(RECORD)} >= FAILOVER_RECORDS


def test_the_existing_zone_is_used_by_id_without_a_lookup(state_eval):
    """catalogue: route53.control-plane-us-east-1 (no Route53 call on a failover update)"""
    assert state_eval.of_type(ZONE) == []
    dns = state_eval.outputs["dns"]
    assert dns["zoneId"] == "Z0123456789EXAMPLE01" and dns["nameServers"] is None
    # The configured id itself, not an id a lookup by name would have answered.
    assert {r.inputs["zoneId"] for r in state_eval.of_type(RECORD)} == {"Z0123456789EXAMPLE01"}


def test_an_existing_zone_can_be_looked_up_by_name():
    evaluation = zone_variant(zoneId="")
    assert evaluation.of_type(ZONE) == []
    looked_up = evaluation.outputs["dns"]["zoneId"]
    assert looked_up.startswith("Z") and looked_up != "Z0123456789EXAMPLE01"
    assert evaluation.outputs["dns"]["nameServers"] == ["ns-1.awsdns-00.org"]
    assert {r.inputs["zoneId"] for r in evaluation.of_type(RECORD)} == {looked_up}
    assert len(evaluation.of_type("aws:acm/certificateValidation:CertificateValidation")) == 2


def test_a_zone_the_stack_creates_is_protected_and_global():
    evaluation = zone_variant(zoneId="", createZone="true", zoneDelegated="true")
    (zone,) = evaluation.of_type(ZONE)
    assert zone.inputs["name"] == "platform.example.com"
    assert zone.protect and zone.retain_on_delete
    assert zone.inputs["forceDestroy"] is False
    assert zone.region == GLOBAL
    assert evaluation.outputs["dns"]["nameServers"]
    assert {r.inputs["zoneId"] for r in evaluation.of_type(RECORD)} == {evaluation.outputs["dns"]["zoneId"]}


def test_certificates_wait_until_a_created_zone_is_delegated():
    """catalogue: acm.dns-validation-needs-delegated-zone"""
    waiting = zone_variant(zoneId="", createZone="true")
    assert waiting.of_type(ZONE)
    for type_token in ("aws:acm/certificate:Certificate", "aws:acm/certificateValidation:CertificateValidation"):
        assert waiting.of_type(type_token) == []
    assert not [r for r in waiting.of_type(RECORD) if r.name.endswith("-cert-validation")]
    # No HTTPS listener without a certificate; the load balancers, target groups and HTTP are there.
    assert sorted(r.inputs["port"] for r in waiting.of_type("aws:lb/listener:Listener")) == [80, 80]
    assert len(waiting.of_type(LOAD_BALANCER)) == 2
    delegated = zone_variant(zoneId="", createZone="true", zoneDelegated="true")
    assert len(delegated.of_type("aws:acm/certificateValidation:CertificateValidation")) == 2
    assert sorted(r.inputs["port"] for r in delegated.of_type("aws:lb/listener:Listener")) == [80, 80, 443, 443]


@functools.cache
def _zone_variant(overrides: tuple[tuple[str, str], ...]) -> Evaluation:
    return evaluate_program(prod_config(**dict(overrides)))


def zone_variant(**overrides: str) -> Evaluation:
    return _zone_variant(tuple(sorted(overrides.items())))


def test_health_checks_watch_both_regions_endpoints_over_https(steady):
    cfg, dns = steady.config, steady.outputs["dns"]
    checks = {check.urn: check for check in steady.of_type(HEALTH_CHECK) if check.inputs["type"] == "HTTPS"}
    assert len(checks) == 2
    fqdns = {check.inputs["fqdn"] for check in checks.values()}
    assert fqdns == set(dns["endpoints"].values())
    for check in checks.values():
        assert check.inputs["type"] == "HTTPS"
        assert check.inputs["port"] == 443
        assert check.inputs["resourcePath"] == cfg.health_check_path
        assert check.inputs["requestInterval"] == cfg.health_check_interval_seconds
        assert check.inputs["failureThreshold"] == cfg.health_check_failure_threshold
        assert len(check.inputs["regions"]) >= 3
        assert set(check.inputs["regions"]) <= set(HEALTH_CHECKER_REGIONS)


def test_health_checks_and_entry_points_do_not_depend_on_the_state(steady, failed_over, resyncing):
    def declared(evaluation: Evaluation) -> dict[str, dict]:
        return {
            r.urn: dict(r.inputs)
            for r in evaluation.resources
            if r.type == HEALTH_CHECK or "dr-platform:traffic:EntryPoint" in r.urn
        }

    before = declared(steady)
    assert sum(1 for urn in before if urn.endswith(("-alb", "-cert"))) == 4
    assert declared(failed_over) == before
    assert declared(resyncing) == before


def test_dns_output_follows_the_contract(state_eval):
    dns = state_eval.outputs["dns"]
    regions = set(state_eval.regions())
    assert {"zoneId", "zoneName", "recordName", "ttl", "healthChecks", "endpoints"} <= set(dns)
    assert dns["zoneName"] == "platform.example.com"
    assert dns["recordName"] == "app.platform.example.com"
    assert dns["ttl"] == 60
    assert set(dns["healthChecks"]) == set(dns["endpoints"]) == regions


def test_each_region_gets_an_internet_facing_load_balancer_in_its_public_subnets(steady):
    for region in steady.regions():
        role = steady.config.role_of(region)
        (balancer,) = steady.of_type(LOAD_BALANCER, region)
        assert balancer.inputs["loadBalancerType"] == "application"
        assert balancer.inputs["internal"] is False
        assert balancer.inputs["name"] == load_balancer_name(steady.config, role)
        subnet_ids = set(balancer.inputs["subnets"])
        assert len(subnet_ids) == 3
        assert all(subnet.startswith(f"network-{role}-public-") for subnet in subnet_ids)
        assert steady.outputs["dns"]["endpoints"][region].startswith(load_balancer_name(steady.config, role))


def test_load_balancer_admits_web_traffic_and_reaches_only_the_vpc(steady):
    for region in steady.regions():
        role = steady.config.role_of(region)
        ingress = [
            r
            for r in steady.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", region)
            if "EntryPoint" in r.parent
        ]
        assert sorted((r.inputs["fromPort"], r.inputs["cidrIpv4"]) for r in ingress) == [
            (80, "0.0.0.0/0"),
            (443, "0.0.0.0/0"),
        ]
        (egress,) = [
            r
            for r in steady.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", region)
            if "EntryPoint" in r.parent
        ]
        assert egress.inputs["cidrIpv4"] == steady.config.regions[role].vpc_cidr


def test_https_forwards_to_an_ip_target_group_and_http_redirects(steady):
    for region in steady.regions():
        role = steady.config.role_of(region)
        listeners = {r.inputs["port"]: r.inputs for r in steady.of_type("aws:lb/listener:Listener", region)}
        assert set(listeners) == {80, 443}
        https = listeners[443]
        assert https["protocol"] == "HTTPS"
        assert https["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
        (certificate,) = steady.of_type("aws:acm/certificate:Certificate", region)
        # The validated certificate: the listener waits for issuance.
        assert https["certificateArn"] == f"arn:aws:acm:{region}:123456789012:{certificate.name}"
        (target_group,) = steady.of_type("aws:lb/targetGroup:TargetGroup", region)
        assert target_group.inputs["targetType"] == "ip"
        assert target_group.inputs["name"] == target_group_name(steady.config, role)
        assert target_group.inputs["healthCheck"]["path"] == steady.config.health_check_path
        target_group_arn = f"arn:aws:lb:{region}:123456789012:{target_group.inputs['name']}"
        assert https["defaultActions"] == [{"type": "forward", "targetGroupArn": target_group_arn}]
        redirect = listeners[80]["defaultActions"][0]
        assert redirect["type"] == "redirect"
        assert redirect["redirect"]["protocol"] == "HTTPS" and redirect["redirect"]["statusCode"] == "HTTP_301"
        assert steady.outputs["entryPoints"][region]["targetGroupArn"] == target_group_arn


def test_certificates_are_validated_through_the_existing_zone(steady):
    zone_id = steady.outputs["dns"]["zoneId"]
    for region in steady.regions():
        (certificate,) = steady.of_type("aws:acm/certificate:Certificate", region)
        assert certificate.inputs["domainName"] == steady.config.app_fqdn
        assert certificate.inputs["validationMethod"] == "DNS"
        (validation,) = steady.of_type("aws:acm/certificateValidation:CertificateValidation", region)
        assert validation.inputs["certificateArn"] == f"arn:aws:acm:{region}:123456789012:{certificate.name}"
        assert validation.inputs["validationRecordFqdns"][0].endswith(f"{steady.config.app_fqdn}.")
    records = [r for r in steady.of_type(RECORD) if r.name.endswith("-cert-validation")]
    assert len(records) == 2
    for record in records:
        assert record.inputs["zoneId"] == zone_id
        assert record.inputs["allowOverwrite"] is True
        assert record.retain_on_delete
        assert record.inputs["name"].endswith(f"{steady.config.app_fqdn}.")


def test_an_ingress_hostname_replaces_the_load_balancer():
    evaluation = customised()
    dns = evaluation.outputs["dns"]
    assert dns["endpoints"]["us-west-2"] == "ingress.usw2.example.net"
    assert evaluation.of_type(LOAD_BALANCER, "us-west-2") == []
    assert evaluation.of_type("aws:acm/certificate:Certificate", "us-west-2") == []
    assert len(evaluation.of_type(LOAD_BALANCER, "us-east-1")) == 1
    assert evaluation.outputs["entryPoints"]["us-west-2"]["targetGroupArn"] is None
    assert failover_records(evaluation)["SECONDARY"]["records"] == ["ingress.usw2.example.net"]
    assert "ingress.usw2.example.net" in {c.inputs.get("fqdn") for c in evaluation.of_type(HEALTH_CHECK)}


def test_health_check_settings_and_ttl_come_from_config():
    evaluation = customised()
    for check in (c for c in evaluation.of_type(HEALTH_CHECK) if c.inputs["type"] == "HTTPS"):
        assert check.inputs["resourcePath"] == "/ready"
        assert check.inputs["requestInterval"] == 30
        assert check.inputs["failureThreshold"] == 5
    assert {r["ttl"] for r in failover_records(evaluation).values()} == {30}
    assert evaluation.outputs["dns"]["ttl"] == 30


def test_load_balancer_names_fit_aws_limits_with_the_longest_prefix():
    cfg = parse_config(
        prod_config(
            namePrefix="a" * 20, primaryRegion="ap-southeast-2", activeRegion="ap-southeast-2", drRegion="us-west-2"
        )
    )
    for role in ("primary", "dr"):
        assert len(load_balancer_name(cfg, role)) <= 32
        assert len(target_group_name(cfg, role)) <= 32
