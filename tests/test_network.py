from components.network import tier_cidrs


def test_each_region_has_a_vpc_across_three_zones(steady):
    for region in steady.regions():
        vpcs = steady.of_type("aws:ec2/vpc:Vpc", region)
        assert len(vpcs) == 1
        subnets = steady.of_type("aws:ec2/subnet:Subnet", region)
        zones = {s.inputs["availabilityZoneId"] for s in subnets}
        assert zones == set(steady.config.regions[steady.config.role_of(region)].availability_zone_ids)
        # catalogue: ec2.availability-zone-names-differ-per-account (never a zone name, which differs per account)
        assert not [s for s in subnets if "availabilityZone" in s.inputs]
        assert len(subnets) == 9


def test_tiers_do_not_overlap():
    blocks = [b for tier in tier_cidrs("10.10.0.0/16").values() for b in tier]
    assert len(set(blocks)) == 9
    assert blocks[0] == "10.10.0.0/20"


def test_data_security_groups_admit_only_vpc_traffic(steady):
    rules = [
        rule
        for rule in steady.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if "dr-platform:network:Network" in rule.parent
    ]
    assert {(r.inputs["fromPort"], r.region) for r in rules} == {
        (port, region) for port in (5432, 6379) for region in steady.regions()
    }
    for rule in rules:
        role = steady.config.role_of(rule.region)
        assert rule.inputs["cidrIpv4"] == steady.config.regions[role].vpc_cidr
        assert "0.0.0.0/0" not in str(rule.inputs)


def test_kms_keys_rotate_and_are_protected(steady):
    keys = steady.of_type("aws:kms/key:Key")
    assert sorted(k.region for k in keys) == sorted(steady.regions())
    for key in keys:
        assert key.inputs["enableKeyRotation"] is True
        assert key.protect and key.retain_on_delete


def test_public_subnets_wait_for_the_internet_gateway(steady):
    """NAT gateways and the internet-facing ALB live in them; AWS refuses both before the gateway is attached."""
    for region in steady.regions():
        (gateway,) = steady.of_type("aws:ec2/internetGateway:InternetGateway", region)
        public = [s for s in steady.of_type("aws:ec2/subnet:Subnet", region) if "-public-" in s.name]
        assert len(public) == 3
        for subnet in public:
            assert gateway.urn in subnet.dependencies
        public_urns = {s.urn for s in public}
        for nat in steady.of_type("aws:ec2/natGateway:NatGateway", region):
            assert public_urns & set(nat.dependencies)
