"""One explicit AWS provider per region role; nothing reads the ambient region.

Configuring a provider calls AWS unless told not to: pulumi-aws checks the
credentials with STS in the provider's own region, and the Terraform provider
underneath looks the account ID up (IAM's global endpoint, then STS). During an
emergency failover the primary region is down, and the engine configures the
primary's provider too (every provider of the stack on older CLIs; whatever a
targeted resource names on newer ones), so every provider here is configured
without any call: no credential check, no account-ID lookup, and STS (should
anything still ask it) in the DR region. Bad credentials then surface on the
first API call instead of at configuration; the account ID the provider would
have looked up only fills ARNs it builds itself, which this program never reads
(catalogue: pulumi-aws.provider-configure-calls-aws).

Region-less resources (IAM, Route53) are declared through the DR region's
provider (`global_provider`): a failover out of the primary region then never
needs the primary's provider for them.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from components.config import ROLES, PlatformConfig
from components.naming import default_tags

GLOBAL_ROLE = "dr"
"""The role whose provider declares IAM and Route53 resources: the region an emergency failover counts on."""


def _provider(cfg: PlatformConfig, name: str, region: str, tag_role: str) -> aws.Provider:
    return aws.Provider(
        name,
        region=region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(cfg, tag_role, pulumi.get_stack())),
        # Configured without a call to AWS (catalogue: pulumi-aws.provider-configure-calls-aws). The
        # metadata service check stays on: it is the host's own link-local endpoint, not a region, and
        # a runner on EC2 may take its credentials from it.
        skip_credentials_validation=True,
        skip_requesting_account_id=True,
        sts_region=cfg.dr_region,
        opts=pulumi.ResourceOptions(),
    )


def regional_providers(cfg: PlatformConfig) -> dict[str, aws.Provider]:
    """Providers keyed by role (`primary`, `dr`).

    Logical names follow the role, not the region, so a resource's URN never
    changes when the DR state does.
    """
    return {role: _provider(cfg, f"aws-{role}", cfg.region_of(role), role) for role in ROLES}


def global_provider(providers: Mapping[str, aws.Provider]) -> aws.Provider:
    """The provider IAM and Route53 resources are declared through (see GLOBAL_ROLE)."""
    return providers[GLOBAL_ROLE]


def us_east_1_provider(cfg: PlatformConfig) -> aws.Provider:
    """For what must live in us-east-1 when neither region role is there (Route53's health-check metrics)."""
    return _provider(cfg, "aws-us-east-1", "us-east-1", "global")
