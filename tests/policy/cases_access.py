"""Rule cases: IAM, functions, the API and its firewall."""

from __future__ import annotations

import json

from mutations import (
    API_FUNCTION,
    API_POLICY,
    API_ROLE,
    EAST,
    WEST,
    Case,
    allow,
    body_with,
    drop,
    grant,
    policy_json,
    set_at,
    set_everywhere,
)
from policy_stack import ACCOUNT

from payments_dr.contract import PAYMENT_PATH, PAYMENTS_PATH

CASES = [
    Case(
        "function-outside-vpc",
        set_everywhere("api-{region}", None, "vpcConfig"),
        "lambda-in-vpc",
        f"Function '{API_FUNCTION}' in {EAST} does not run in a VPC",
        API_FUNCTION,
    ),
    Case(
        "function-passive-tracing",
        set_everywhere("api-{region}", {"mode": "PassThrough"}, "tracingConfig"),
        "lambda-active-tracing",
        "has no active X-Ray tracing",
        API_FUNCTION,
    ),
    Case(
        "function-unreserved",
        set_everywhere("api-{region}", -1.0, "reservedConcurrentExecutions"),
        "lambda-bounded-concurrency",
        "has unbounded concurrency (reserved_concurrent_executions is -1)",
        API_FUNCTION,
    ),
    Case(
        "function-secret-by-name",
        set_everywhere(
            "api-{region}", "hunter2-but-longer", "environment", "variables", "DB_PASSWORD"
        ),
        "lambda-no-plaintext-secrets",
        "environment variable DB_PASSWORD holds a plaintext secret",
        API_FUNCTION,
    ),
    Case(
        "function-secret-by-value",
        set_everywhere(
            "api-{region}", "AKIAIOSFODNN7EXAMPLE", "environment", "variables", "UPSTREAM"
        ),
        "lambda-no-plaintext-secrets",
        "environment variable UPSTREAM contains an AWS access key id",
        API_FUNCTION,
    ),
    Case(
        "invalid-policy-json",
        set_at(API_POLICY, '{"Statement": [', "policy"),
        "iam-readable-documents",
        "policy is not valid JSON",
        API_POLICY,
    ),
    Case(
        "action-star",
        set_at(API_POLICY, policy_json(allow("*", "arn:aws:s3:::bucket")), "policy"),
        "iam-no-wildcard-action",
        "allows every action",
        API_POLICY,
    ),
    Case(
        "service-wide-action",
        set_at(API_POLICY, policy_json(allow(["sqs:*"], "arn:aws:sqs:*:*:q")), "policy"),
        "iam-no-service-wildcard",
        "allows service-wide actions sqs:*",
        API_POLICY,
    ),
    Case(
        "resource-star",
        set_at(
            API_POLICY,
            policy_json(allow(["dynamodb:PutItem", "xray:PutTraceSegments"], "*")),
            "policy",
        ),
        "iam-no-wildcard-resource",
        "grants dynamodb:PutItem on every resource",
        API_POLICY,
    ),
    Case(
        "not-action",
        set_at(
            API_POLICY,
            policy_json({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "arn:aws:s3:::b"}),
            "policy",
        ),
        "iam-no-wildcard-action",
        "allows every action",
        API_POLICY,
    ),
    Case(
        "not-resource",
        set_at(
            API_POLICY,
            policy_json(
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:PutItem", "xray:PutTraceSegments"],
                    "NotResource": "arn:aws:dynamodb:us-east-1:111111111111:table/other",
                }
            ),
            "policy",
        ),
        "iam-no-wildcard-resource",
        "grants dynamodb:PutItem on every resource",
        API_POLICY,
    ),
    Case(
        "not-action-on-not-resource",
        set_at(
            API_POLICY,
            policy_json({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::b"}),
            "policy",
        ),
        "iam-no-wildcard-resource",
        "grants every action except iam:* on every resource",
        API_POLICY,
        also=("iam-no-wildcard-action",),
    ),
    Case(
        "inline-admin",
        set_at(
            API_ROLE, [{"name": "admin", "policy": policy_json(allow("*", "*"))}], "inlinePolicies"
        ),
        "iam-no-admin",
        "inline policy 'admin' grants administrator access (* on *)",
        API_ROLE,
        also=("iam-no-wildcard-action", "iam-no-wildcard-resource"),
    ),
    Case(
        "managed-admin",
        set_at(API_ROLE, ["arn:aws:iam::aws:policy/AdministratorAccess"], "managedPolicyArns"),
        "iam-no-admin",
        "attaches the administrator-level managed policy",
        API_ROLE,
    ),
    Case(
        "trust-account-root",
        set_at(
            API_ROLE,
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
            "assumeRolePolicy",
            "Statement",
            0,
        ),
        "iam-trust-single-service",
        "has a loose trust policy: it trusts {'AWS': '*'}, not only an AWS service",
        API_ROLE,
        also=("iam-trust-intended-service",),
    ),
    Case(
        "trust-wrong-service",
        set_at(
            API_ROLE,
            "ec2.amazonaws.com",
            "assumeRolePolicy",
            "Statement",
            0,
            "Principal",
            "Service",
        ),
        "iam-trust-intended-service",
        f"is used by Function '{API_FUNCTION}' in {EAST} but trusts ec2.amazonaws.com",
        API_ROLE,
    ),
    Case(
        "edge-api",
        set_at(f"rest-api-{EAST}", None, "endpointConfiguration"),
        "apigateway-regional-endpoint",
        "has endpoint type unset (EDGE)",
        f"rest-api-{EAST}",
    ),
    Case(
        "domain-tls10",
        set_at(f"domain-{EAST}", "TLS_1_0", "securityPolicy"),
        "apigateway-domain-tls12",
        "allows TLS below 1.2 (security policy TLS_1_0)",
        f"domain-{EAST}",
    ),
    Case(
        "default-endpoint-enabled",
        set_at(f"rest-api-{EAST}", None, "disableExecuteApiEndpoint"),
        "apigateway-default-endpoint-disabled",
        "keeps its default execute-api endpoint",
        f"rest-api-{EAST}",
    ),
    Case(
        "default-endpoint-explicitly-enabled",
        set_at(f"rest-api-{EAST}", "false", "disableExecuteApiEndpoint"),
        "apigateway-default-endpoint-disabled",
        "keeps its default execute-api endpoint",
        f"rest-api-{EAST}",
    ),
    Case(
        "health-check-on-execute-api",
        set_at(f"health-{EAST}", f"abc123.execute-api.{EAST}.amazonaws.com", "fqdn"),
        "apigateway-health-checks-on-custom-domains",
        f"probes the API Gateway host abc123.execute-api.{EAST}.amazonaws.com",
        f"health-{EAST}",
    ),
    Case(
        "health-check-on-a-custom-domains-target",
        set_at(f"health-{EAST}", f"d-abc.execute-api.{EAST}.amazonaws.com.", "fqdn"),
        "apigateway-health-checks-on-custom-domains",
        "not a custom domain",
        f"health-{EAST}",
    ),
    Case(
        "stage-without-access-logs",
        set_at(f"stage-{EAST}", None, "accessLogSettings"),
        "apigateway-stage-access-logs",
        "has no access logging",
        f"stage-{EAST}",
    ),
    Case(
        "stage-unthrottled",
        set_at(f"stage-settings-{EAST}", None, "settings", "throttlingRateLimit"),
        "apigateway-stage-throttling",
        f"Stage 'stage-{EAST}' in {EAST} is not throttled",
        f"stage-{EAST}",
    ),
    Case(
        "payment-method-open",
        set_at(f"rest-api-{WEST}", json.dumps(body_with(WEST, PAYMENTS_PATH, "post", [])), "body"),
        "apigateway-methods-authorized",
        f"serves POST {PAYMENTS_PATH} without an authorizer",
        f"rest-api-{WEST}",
    ),
    Case(
        "payment-method-without-security",
        set_at(f"rest-api-{EAST}", json.dumps(body_with(EAST, PAYMENT_PATH, "get", None)), "body"),
        "apigateway-methods-authorized",
        f"serves GET {PAYMENT_PATH} without an authorizer",
        f"rest-api-{EAST}",
    ),
    Case(
        "payment-method-with-an-api-key-alternative",
        set_at(
            f"rest-api-{EAST}",
            json.dumps(body_with(EAST, PAYMENTS_PATH, "post", [{"MerchantKey": []}, {"k": []}])),
            "body",
        ),
        "apigateway-methods-authorized",
        f"serves POST {PAYMENTS_PATH} without an authorizer",
        f"rest-api-{EAST}",
    ),
    Case(
        "secondary-stage-without-web-acl",
        drop(f"web-acl-association-{WEST}"),
        "waf-web-acl-on-every-stage",
        f"Stage 'stage-{WEST}' in {WEST} has no web ACL",
        f"stage-{WEST}",
    ),
    Case(
        "web-acl-of-the-other-region",
        set_at(f"web-acl-association-{EAST}", f"web-acl-{WEST}_id", "webAclArn"),
        "waf-web-acl-on-every-stage",
        f"Stage 'stage-{EAST}' in {EAST} has no web ACL",
        f"stage-{EAST}",
    ),
    Case(
        "describe-log-groups-on-one-group",
        grant(
            API_POLICY,
            allow(
                "logs:DescribeLogGroups",
                [f"arn:aws:logs:{EAST}:{ACCOUNT}:log-group:/aws/vpc/flow-logs"],
            ),
        ),
        "iam-list-actions-as-evaluated",
        "authorizes it against 'arn:aws:logs:REGION:ACCOUNT:log-group::log-stream:'",
        API_POLICY,
    ),
    Case(
        "trace-upload-on-an-arn",
        grant(
            API_POLICY,
            allow("xray:PutTraceSegments", [f"arn:aws:xray:{EAST}:{ACCOUNT}:group/default"]),
        ),
        "iam-list-actions-as-evaluated",
        'Fix: grant xray:PutTraceSegments on "*"',
        API_POLICY,
    ),
    Case(
        "web-acl-samples-without-data-protection",
        set_at(f"web-acl-{EAST}", None, "dataProtectionConfig"),
        "waf-sampling-data-protection",
        "samples requests without protecting the authorization header",
        f"web-acl-{EAST}",
    ),
    Case(
        "web-acl-protects-another-header",
        set_at(
            f"web-acl-{WEST}",
            ["x-other"],
            "dataProtectionConfig",
            "dataProtections",
            0,
            "field",
            "fieldKeys",
        ),
        "waf-sampling-data-protection",
        "samples requests without protecting the authorization header",
        f"web-acl-{WEST}",
    ),
    Case(
        "web-acl-exempts-rule-match-details",
        set_at(
            f"web-acl-{WEST}",
            True,
            "dataProtectionConfig",
            "dataProtections",
            0,
            "excludeRuleMatchDetails",
        ),
        "waf-sampling-data-protection",
        "samples requests without protecting the authorization header",
        f"web-acl-{WEST}",
    ),
    Case(
        "traced-function-records-responses",
        set_everywhere(
            "api-{region}", None, "environment", "variables", "POWERTOOLS_TRACER_CAPTURE_RESPONSE"
        ),
        "lambda-traces-without-responses",
        "may record its responses in X-Ray",
        f"api-{EAST}",
    ),
]
