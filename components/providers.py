"""One explicit AWS provider per region role; nothing reads the ambient region."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.config import ROLES, PlatformConfig
from components.naming import default_tags


def regional_providers(cfg: PlatformConfig) -> dict[str, aws.Provider]:
    """Providers keyed by role (`primary`, `dr`).

    Logical names follow the role, not the region, so a resource's URN never
    changes when the DR state does.
    """
    return {
        role: aws.Provider(
            f"aws-{role}",
            region=cfg.region_of(role),
            default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(cfg, role, pulumi.get_stack())),
            opts=pulumi.ResourceOptions(),
        )
        for role in ROLES
    }


def us_east_1_provider(cfg: PlatformConfig) -> aws.Provider:
    """For what must live in us-east-1 when neither region role is there (Route53's health-check metrics)."""
    return aws.Provider(
        "aws-us-east-1",
        region="us-east-1",
        default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(cfg, "global", pulumi.get_stack())),
        opts=pulumi.ResourceOptions(),
    )
