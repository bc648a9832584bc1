"""How users reach the application: a regional entry point each, and Route53 failover between them.

`EntryPoint` is per region: the ingress hostname from config, or an
internet-facing ALB whose target group the AWS Load Balancer Controller fills
with application pods (a TargetGroupBinding, see docs/traffic-and-alarms.md).
Its HTTPS listener uses an ACM certificate validated through the zone, declared
only once the zone is delegated: ACM cannot see a validation record in a zone
the parent domain does not delegate to, and the update would hang on it.
`HostedZone` is the public zone: an existing, delegated one (by id, or looked
up by name) or one the stack creates; `DnsFailover` declares a health check on
each region's endpoint and the PRIMARY/SECONDARY failover records of the
application name. The records are named by failover slot, so moving
`activeRegion` updates their values in place: nothing is replaced.

Route53's health checkers fail traffic over in the data plane as soon as the
active endpoint is unhealthy, before any update runs; the update that follows
a failover only makes the declared records agree with where traffic already
goes, and may be retried if Route53's control plane (us-east-1) is impaired.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import pulumi
import pulumi_aws as aws

HTTP_PORT = 80
HTTPS_PORT = 443
# TLS 1.3 with TLS 1.2 fallback, forward secrecy only.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# Route53 needs three checker regions at least; spread over continents so that
# one area's network trouble does not read as the endpoint being down.
HEALTH_CHECKER_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1")
FAILOVER_SLOTS = ("PRIMARY", "SECONDARY")


class EntryPointArgs(TypedDict):
    app_fqdn: str
    zone_id: pulumi.Input[str]
    ingress_hostname: str | None
    """When set, the application is reached there and no load balancer is declared."""
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    public_subnet_ids: Sequence[pulumi.Input[str]]
    load_balancer_name: str
    target_group_name: str
    health_check_path: str
    validate_certificate: bool
    """False while a zone the stack created awaits delegation: no certificate, no HTTPS listener yet."""
    global_provider: aws.Provider
    """Where the Route53 validation record is declared (components/providers.py: the DR region's provider)."""


class EntryPoint(pulumi.ComponentResource):
    """One region's way in for the application; the same in every DR state."""

    hostname: pulumi.Output[str]
    target_group_arn: pulumi.Output[str] | None
    security_group_id: pulumi.Output[str] | None
    load_balancer_arn_suffix: pulumi.Output[str] | None
    """`app/<name>/<id>`: the LoadBalancer dimension of the ALB's CloudWatch metrics (failback's error rate)."""

    def __init__(self, name: str, args: EntryPointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:traffic:EntryPoint", name, None, opts)
        if args["ingress_hostname"]:
            self.hostname = pulumi.Output.from_input(args["ingress_hostname"])
            self.target_group_arn = None
            self.security_group_id = None
            self.load_balancer_arn_suffix = None
        else:
            self._declare_load_balancer(name, args)
        self.register_outputs(
            {
                "hostname": self.hostname,
                "target_group_arn": self.target_group_arn,
                "security_group_id": self.security_group_id,
            }
        )

    def _declare_load_balancer(self, name: str, args: EntryPointArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            vpc_id=args["vpc_id"],
            description="application load balancer: HTTP(S) from the internet, to pods in the VPC",
            tags={"Name": args["load_balancer_name"]},
            opts=child,
        )
        for port in (HTTP_PORT, HTTPS_PORT):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-alb-ingress-{port}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4="0.0.0.0/0",
                description=f"clients on port {port}",
                opts=child,
            )
        # Pods listen on whatever port their Service names; the VPC bounds where traffic goes.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-egress-vpc",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=0,
            to_port=65535,
            cidr_ipv4=args["vpc_cidr"],
            description="to application pods inside the VPC",
            opts=child,
        )
        balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=args["load_balancer_name"],
            load_balancer_type="application",
            internal=False,
            security_groups=[group.id],
            subnets=list(args["public_subnet_ids"]),
            drop_invalid_header_fields=True,
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-app-tg",
            name=args["target_group_name"],
            # The controller registers pod IPs with the port of the bound Service;
            # this port only applies to targets registered without one.
            target_type="ip",
            protocol="HTTP",
            port=HTTP_PORT,
            vpc_id=args["vpc_id"],
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=args["health_check_path"],
                protocol="HTTP",
                port="traffic-port",
                matcher="200-399",
                interval=15,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            opts=child,
        )
        # catalogue: acm.dns-validation-needs-delegated-zone
        if args["validate_certificate"]:
            aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=balancer.arn,
                port=HTTPS_PORT,
                protocol="HTTPS",
                ssl_policy=TLS_POLICY,
                certificate_arn=self._validated_certificate(name, args),
                default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)],
                opts=child,
            )
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=balancer.arn,
            port=HTTP_PORT,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        protocol="HTTPS", port=str(HTTPS_PORT), status_code="HTTP_301"
                    ),
                )
            ],
            opts=child,
        )
        self.hostname = balancer.dns_name
        self.target_group_arn = target_group.arn
        self.security_group_id = group.id
        self.load_balancer_arn_suffix = balancer.arn_suffix

    def _validated_certificate(self, name: str, args: EntryPointArgs) -> pulumi.Output[str]:
        """An ACM certificate for the application name, in this region, validated through the zone.

        One per region: a listener can only use a certificate of its own region
        (catalogue: acm.certificate-is-regional).
        """
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            f"{name}-cert",
            domain_name=args["app_fqdn"],
            validation_method="DNS",
            opts=child,
        )
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-cert-validation",
            zone_id=args["zone_id"],
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            # ACM asks for the same record for a name in every region of an
            # account, so both regions' certificates declare it; and it stays
            # when one region stops declaring it, for the other keeps renewing.
            allow_overwrite=True,
            # Route53 is global: through the DR region's provider, like every record.
            opts=pulumi.ResourceOptions(parent=self, provider=args["global_provider"], retain_on_delete=True),
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-cert-validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )
        return validation.certificate_arn


class HostedZoneArgs(TypedDict):
    zone_name: str
    zone_id: str | None
    """An existing zone's id, used as is."""
    create: bool
    """Create the zone; its delegation (NS records at the parent) is then the operator's job."""


class HostedZone(pulumi.ComponentResource):
    """The public zone: existing (by id, or looked up by name) or created by the stack."""

    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[list[str]] | None
    """The zone's name servers, for the parent's NS records; None for a zone given by id."""

    def __init__(self, name: str, args: HostedZoneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:traffic:HostedZone", name, None, opts)
        if args["create"]:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=args["zone_name"],
                comment="dr-platform application records; failover records follow activeRegion",
                force_destroy=False,
                # A new zone gets new name servers: the parent's delegation would point nowhere.
                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
            )
            self.zone_id, self.name_servers = zone.zone_id, zone.name_servers
        elif args["zone_id"]:
            # catalogue: route53.control-plane-us-east-1
            # Used as is: a lookup would call Route53's control plane on every run, and a
            # failover update must not depend on us-east-1.
            self.zone_id, self.name_servers = pulumi.Output.from_input(args["zone_id"]), None
        else:
            found = aws.route53.get_zone_output(
                name=args["zone_name"], private_zone=False, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.zone_id, self.name_servers = found.zone_id, found.name_servers
        self.register_outputs({"zone_id": self.zone_id, "name_servers": self.name_servers})


class DnsFailoverArgs(TypedDict):
    zone_id: pulumi.Input[str]
    record_name: str
    ttl: int
    endpoints: Mapping[str, pulumi.Input[str]]
    """Hostname per region role."""
    active_role: str
    standby_role: str
    health_check_path: str
    health_check_interval_seconds: int
    health_check_failure_threshold: int
    health_check_names: Mapping[str, str]
    """Name tag per region role (Route53 health checks have no name of their own)."""
    fence_region: str
    """Where the traffic fence's alarm lives: the DR region, which an emergency failover can count on."""
    fence_alarm_name: str
    failover_mode: str
    """`health-check`: an unfenced role answers whenever its endpoint is healthy (Route53 moves traffic on its
    own); `fence-only`: only once the fence is raised (drctl moves traffic). See DNS_FAILOVER_MODES."""


# The traffic fence: 1 raised, 0 lowered, put every minute in the DR region by the fence publisher
# (components/fence_publisher.py) from the DR state authority drctl writes.
FENCE_NAMESPACE = "dr-platform/Traffic"
FENCE_METRIC = "FormerRegionFenced"
FENCED_ROLE = "primary"
"""An emergency failover only ever leaves the primary region: that is the region a returning outage must not serve."""


class DnsFailover(pulumi.ComponentResource):
    """Health checks on both regions' endpoints, a traffic fence, and failover records that follow `activeRegion`.

    Each record's health check is a CALCULATED one: the primary region's
    endpoint counts only while the fence is lowered; the DR region counts as
    healthy whenever the fence is raised and, in `health-check` mode only, also
    whenever its own endpoint is healthy. In `fence-only` mode (the default)
    Route53 never sends users to the DR region before drctl raises the fence,
    so a primary failing its checks does not send them to a read-only replica
    and a one-node standby (docs/operations.md, "Who moves traffic"). The fence
    is a metric the fence publisher puts every minute in the DR region's
    CloudWatch from the DR state authority (components/fence_publisher.py);
    Route53's checkers follow the alarm's data stream in their data plane, so
    traffic leaves the primary region (and stays away when it returns) without a
    Route53 control-plane call, and the fence holds without drctl running
    (catalogue: route53.cloudwatch-metric-check-follows-the-alarm). With the fence raised,
    the DR record is never unhealthy, so "all unhealthy" can never send traffic
    back (catalogue: route53.failover-all-unhealthy-answers-as-healthy).
    """

    def __init__(self, name: str, args: DnsFailoverArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:traffic:DnsFailover", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.health_check_ids: dict[str, pulumi.Output[str]] = {}
        for role, hostname in args["endpoints"].items():
            check = aws.route53.HealthCheck(
                f"{name}-health-{role}",
                type="HTTPS",
                fqdn=hostname,
                port=HTTPS_PORT,
                resource_path=args["health_check_path"],
                request_interval=args["health_check_interval_seconds"],
                failure_threshold=args["health_check_failure_threshold"],
                regions=list(HEALTH_CHECKER_REGIONS),
                tags={"Name": args["health_check_names"][role]},
                opts=child,
            )
            self.health_check_ids[role] = check.id

        lowered, raised = self._traffic_fence(name, args, child)
        # Records carry the routing checks: the fenced role needs its endpoint AND the fence lowered; any other
        # role the fence raised, OR (health-check mode) its endpoint healthy
        # (catalogue: route53.calculated-check-counts-healthy-children).
        self.routing_check_ids: dict[str, pulumi.Output[str]] = {}
        for role in args["endpoints"]:
            if role == FENCED_ROLE:
                children, threshold = [self.health_check_ids[role], lowered.id], 2
            elif args["failover_mode"] == "health-check":
                children, threshold = [self.health_check_ids[role], raised.id], 1
            else:
                children, threshold = [raised.id], 1
            routing = aws.route53.HealthCheck(
                f"{name}-routing-{role}",
                type="CALCULATED",
                child_healthchecks=children,
                child_health_threshold=threshold,
                tags={"Name": f"{args['health_check_names'][role]}-routing"},
                opts=child,
            )
            self.routing_check_ids[role] = routing.id

        # Slot -> role for the current state. Each slot's record keeps its
        # logical name and set identifier; only its value and health check move.
        roles_by_slot = dict(zip(FAILOVER_SLOTS, (args["active_role"], args["standby_role"]), strict=True))
        for slot, role in roles_by_slot.items():
            aws.route53.Record(
                f"{name}-record-{slot.lower()}-slot",
                zone_id=args["zone_id"],
                name=args["record_name"],
                type="CNAME",
                ttl=args["ttl"],
                records=[args["endpoints"][role]],
                set_identifier=slot.lower(),
                failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=slot)],
                health_check_id=self.routing_check_ids[role],
                opts=child,
            )
        self.fence = {
            "region": args["fence_region"],
            "alarmName": fence_alarm_physical_name(args["fence_alarm_name"], fence_alarm_settings(args["record_name"])),
            "namespace": FENCE_NAMESPACE,
            "metricName": FENCE_METRIC,
            "dimensions": {"Record": args["record_name"]},
            "fencedRole": FENCED_ROLE,
            "raisedCheckId": raised.id,
            "loweredCheckId": lowered.id,
        }
        self.register_outputs({"health_check_ids": self.health_check_ids, "routing_check_ids": self.routing_check_ids})

    @staticmethod
    def _traffic_fence(
        name: str, args: DnsFailoverArgs, child: pulumi.ResourceOptions
    ) -> tuple[aws.route53.HealthCheck, aws.route53.HealthCheck]:
        """The fence's alarm in the DR region and two checks on it: (healthy while lowered, healthy while raised)."""
        # catalogue: route53.cloudwatch-metric-check-follows-the-alarm
        settings = fence_alarm_settings(args["record_name"])
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-traffic-fence",
            name=fence_alarm_physical_name(args["fence_alarm_name"], settings),
            alarm_description=(
                f"Traffic fence of {args['record_name']}: in ALARM, Route53 answers only the DR region "
                "(the fence publisher puts the DR state authority's value every minute; drctl failover raises "
                "it, drctl failback switch lowers it). Not an incident by itself."
            ),
            **settings,
            # Route53 reads the data, not this state. Without data the state stays what the data last said,
            # as Route53's LastKnownStatus does, for drctl status to read; the publisher's silent alarm pages
            # (catalogue: cloudwatch.treat-missing-data-ignore-keeps-state).
            treat_missing_data="ignore",
            opts=child,
        )
        checks = []
        for state, inverted in (("lowered", False), ("raised", True)):
            checks.append(
                aws.route53.HealthCheck(
                    f"{name}-fence-{state}",
                    type="CLOUDWATCH_METRIC",
                    cloudwatch_alarm_name=alarm.name,
                    cloudwatch_alarm_region=args["fence_region"],
                    # The publisher puts a datapoint every minute: a gap is the publisher or the DR region's
                    # CloudWatch failing, and for such a brief gap the last status is right in every state
                    # (catalogue: route53.last-known-status-is-for-brief-gaps).
                    insufficient_data_health_status="LastKnownStatus",
                    invert_healthcheck=inverted,
                    tags={"Name": f"{args['fence_alarm_name']}-{state}"},
                    opts=child,
                )
            )
        return checks[0], checks[1]


def fence_alarm_settings(record_name: str) -> dict[str, Any]:
    """What Route53 copies from the fence alarm when a health check is created or updated (its
    CloudWatchAlarmConfiguration): the metric, statistic, period, evaluation periods, threshold, comparison."""
    return {
        "namespace": FENCE_NAMESPACE,
        "metric_name": FENCE_METRIC,
        "dimensions": {"Record": record_name},
        # Route53 supports standard-resolution metrics and the basic statistics only
        # (catalogue: route53.cloudwatch-alarm-check-constraints).
        "statistic": "Maximum",
        "period": 60,
        "evaluation_periods": 1,
        "threshold": 1,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
    }


def fence_alarm_physical_name(base: str, settings: Mapping[str, Any]) -> str:
    """The fence alarm's name, ending in a digest of the settings Route53 copies.

    Route53 reads an alarm's settings when a health check is created or updated, never again
    (catalogue: route53.alarm-settings-need-update-health-check). A change of these settings therefore
    changes the name: Pulumi creates the new alarm, updates both fence checks to it (UpdateHealthCheck with
    the new AlarmIdentifier, from which Route53 copies the new settings), then deletes the old alarm.
    """
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"{base}-{digest}"
