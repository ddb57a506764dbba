"""Every rule of the pack, in the order verdicts are reported."""

from payments_dr.policy.model import Rule
from payments_dr.policy.rules import (
    apigateway,
    canary,
    dr,
    dynamodb,
    failover,
    iam,
    kms,
    lambda_functions,
    s3,
    secrets,
    sqs,
    waf,
)

RULES: tuple[Rule, ...] = (
    *dynamodb.RULES,
    *s3.RULES,
    *sqs.RULES,
    *lambda_functions.RULES,
    *iam.RULES,
    *kms.RULES,
    *apigateway.RULES,
    *waf.RULES,
    *dr.RULES,
    *failover.RULES,
    *canary.RULES,
    *secrets.RULES,
)
