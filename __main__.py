"""dr-platform: an active-passive, two-region AWS platform.

Thin on purpose: read the config once, build one set of components per region
role, wire the cross-region pieces, export what automation needs. Every choice
that depends on where the platform stands in the DR state machine is derived
from the validated config inside the components.
"""

import pulumi

from components.config import ROLES, load_config
from components.encryption import RegionalKey
from components.naming import physical_name
from components.network import Network
from components.providers import regional_providers

cfg = load_config()
providers = regional_providers(cfg)

networks: dict[str, Network] = {}
keys: dict[str, RegionalKey] = {}
for role in ROLES:
    region = cfg.region_of(role)
    in_region = pulumi.ResourceOptions(provider=providers[role])
    networks[role] = Network(
        f"network-{role}",
        {
            "region": region,
            "cidr": cfg.regions[role].vpc_cidr,
            "availability_zones": cfg.regions[role].availability_zones,
            "name_prefix": physical_name(cfg, region, "net"),
        },
        in_region,
    )
    keys[role] = RegionalKey(
        f"kms-{role}",
        {"alias": physical_name(cfg, region, "data"), "description": f"dr-platform data at rest in {region}"},
        in_region,
    )

pulumi.export("primaryRegion", cfg.primary_region)
pulumi.export("drRegion", cfg.dr_region)
pulumi.export("activeRegion", cfg.active_region)
pulumi.export("drState", cfg.dr_state.value)
pulumi.export("network", {cfg.region_of(role): {"vpcId": networks[role].vpc_id} for role in ROLES})
pulumi.export("kmsKeys", {cfg.region_of(role): keys[role].arn for role in ROLES})
