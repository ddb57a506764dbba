"""CrossGuard entry point: `pulumi preview --policy-pack policy`.

The rules live in payments_dr.policy (shared with the offline `payments-dr synth` runner);
constructing the PolicyPack starts the analyzer server the Pulumi CLI talks to.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from payments_dr.policy.pack import PACK_NAME, build_policies

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
)
