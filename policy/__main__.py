"""The dr-platform policy pack: `pulumi preview --policy-pack policy`.

Only builds the pack; the rules live in `policies.py` (imported as a sibling
module, as the policy runtime runs this directory as a script).
"""

from policies import ALL_POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="dr-platform",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
)
