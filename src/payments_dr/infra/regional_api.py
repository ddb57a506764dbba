"""One region's REST API: the OpenAPI document with API Gateway's extensions, the stage with
its logs, throttling and usage plan, and the custom domain with its certificate."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra import iam
from payments_dr.infra.dns import CertificateValidationRecord
from payments_dr.infra.gateway_responses import GATEWAY_RESPONSES
from payments_dr.service.openapi import load_openapi

if TYPE_CHECKING:
    from payments_dr.infra.service import RegionalServiceArgs

CERTIFICATE_VALIDATION_RECORD = "certificate-validation"
REQUEST_VALIDATOR = "body-and-parameters"
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "xrayTraceId": "$context.xrayTraceId",
    },
    sort_keys=True,
)
MERCHANT_KEY_SCHEME = "MerchantKey"  # the service document's security scheme
USAGE_PLAN_KEY_SCHEME = "UsagePlanKey"  # makes API Gateway apply the usage plan


def execution_log_group_name(api_id: str, stage: str) -> str:
    """The group API Gateway writes a stage's execution logs to (its naming, not ours)."""
    return f"API-Gateway-Execution-Logs_{api_id}/{stage}"


def api_definition(invoke_arn: str, authorizer_invoke_arn: str) -> dict[str, Any]:
    """The service's OpenAPI document plus the API Gateway extensions for one region."""
    document = copy.deepcopy(load_openapi())
    schemes = document["components"]["securitySchemes"]
    schemes[MERCHANT_KEY_SCHEME]["x-amazon-apigateway-authtype"] = "custom"
    schemes[MERCHANT_KEY_SCHEME]["x-amazon-apigateway-authorizer"] = {
        "type": "request",
        "identitySource": f"method.request.header.{contract.AUTH_HEADER}",
        "authorizerUri": authorizer_invoke_arn,
        "authorizerResultTtlInSeconds": contract.AUTHORIZER_CACHE_TTL_SECONDS,
    }
    # The usage plan's key comes from the authorizer (usageIdentifierKey); a key sent by a
    # client in x-api-key is ignored, so the plan's keys grant nothing on their own.
    schemes[USAGE_PLAN_KEY_SCHEME] = {"type": "apiKey", "name": "x-api-key", "in": "header"}
    document["x-amazon-apigateway-api-key-source"] = "AUTHORIZER"
    document["x-amazon-apigateway-request-validators"] = {
        REQUEST_VALIDATOR: {"validateRequestBody": True, "validateRequestParameters": True}
    }
    document["x-amazon-apigateway-request-validator"] = REQUEST_VALIDATOR
    document["x-amazon-apigateway-gateway-responses"] = GATEWAY_RESPONSES
    for operations in document["paths"].values():
        for method, operation in operations.items():
            if method.startswith("x-") or method == "parameters":
                continue
            if operation.get("security"):
                operation["security"] = [
                    {**requirement, USAGE_PLAN_KEY_SCHEME: []}
                    for requirement in operation["security"]
                ]
            operation["x-amazon-apigateway-integration"] = {
                "type": "aws_proxy",
                "httpMethod": "POST",  # Lambda is always invoked with POST
                "uri": invoke_arn,
                "passthroughBehavior": "when_no_match",
            }
    return document


@dataclass(frozen=True)
class RegionApi:
    rest_api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    usage_plan: aws.apigateway.UsagePlan
    access_log_group: aws.cloudwatch.LogGroup
    api_endpoint: pulumi.Output[str]
    execute_api_host: pulumi.Output[str]


@dataclass(frozen=True)
class CustomDomain:
    domain: aws.apigateway.DomainName
    certificate_validation_record: CertificateValidationRecord
    target: pulumi.Output[str]
    zone_id: pulumi.Output[str]
    url: str


def create_api(
    name: str,
    args: RegionalServiceArgs,
    functions: dict[Function, aws.lambda_.Function],
    parent: pulumi.Resource,
) -> RegionApi:
    region = args.region
    child = pulumi.ResourceOptions(parent=parent)
    api_function = functions[Function.API]
    authorizer_function = functions[Function.AUTHORIZER]
    body = pulumi.Output.all(api_function.invoke_arn, authorizer_function.invoke_arn).apply(
        lambda arns: json.dumps(api_definition(arns[0], arns[1]), sort_keys=True)
    )
    rest_api = aws.apigateway.RestApi(
        f"{name}-api",
        region=region,
        name=f"{contract.PROJECT}-{args.stack}",
        description="Payment API (OpenAPI document shared with the service)",
        body=body,
        put_rest_api_mode="overwrite",
        endpoint_configuration={"types": "REGIONAL"},
        tags=dict(args.tags),
        opts=child,
    )
    aws.lambda_.Permission(
        f"{name}-api-invoke",
        region=region,
        action="lambda:InvokeFunction",
        function=api_function.name,
        principal="apigateway.amazonaws.com",
        source_arn=rest_api.execution_arn.apply(lambda arn: f"{arn}/{contract.API_STAGE}/*"),
        opts=child,
    )
    # No authorizer role: API Gateway calls the authorizer through this resource policy,
    # which admits only this API's authorizers.
    aws.lambda_.Permission(
        f"{name}-authorizer-invoke",
        region=region,
        action="lambda:InvokeFunction",
        function=authorizer_function.name,
        principal="apigateway.amazonaws.com",
        source_arn=rest_api.execution_arn.apply(lambda arn: f"{arn}/authorizers/*"),
        opts=child,
    )
    deployment = aws.apigateway.Deployment(
        f"{name}-deployment",
        region=region,
        rest_api=rest_api.id,
        # A changed document needs a new deployment before the stage serves it.
        triggers={"body": body.apply(lambda text: hashlib.sha256(text.encode()).hexdigest())},
        opts=child,
    )
    logging_account = _api_logging_account(name, args, parent)

    def audit_log_group(suffix: str, log_group_name: pulumi.Input[str]) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            f"{name}-api-{suffix}",
            region=region,
            name=log_group_name,
            retention_in_days=args.audit_log_retention_days,
            kms_key_id=args.key_arn,
            tags=dict(args.tags),
            opts=child,
        )

    access_log_group = audit_log_group(
        "access-logs", f"/aws/apigateway/{contract.PROJECT}-{args.stack}/access"
    )
    # API Gateway would create the execution-log group itself, unencrypted and kept forever;
    # created first, it has the stack's key and the audit retention.
    execution_log_group = audit_log_group(
        "execution-logs",
        rest_api.id.apply(lambda api_id: execution_log_group_name(api_id, contract.API_STAGE)),
    )
    stage = aws.apigateway.Stage(
        f"{name}-stage",
        region=region,
        rest_api=rest_api.id,
        deployment=deployment.id,
        stage_name=contract.API_STAGE,
        xray_tracing_enabled=True,
        access_log_settings={"destination_arn": access_log_group.arn, "format": ACCESS_LOG_FORMAT},
        tags=dict(args.tags),
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=[logging_account, execution_log_group]
        ),
    )
    aws.apigateway.MethodSettings(
        f"{name}-method-settings",
        region=region,
        rest_api=rest_api.id,
        stage_name=stage.stage_name,
        method_path="*/*",
        settings={
            "metrics_enabled": True,
            "logging_level": "ERROR",
            "data_trace_enabled": False,  # full request logs would hold payment data
            "throttling_rate_limit": args.throttle_rate_limit,
            "throttling_burst_limit": args.throttle_burst_limit,
        },
        opts=child,
    )
    usage_plan = aws.apigateway.UsagePlan(
        f"{name}-merchant-usage-plan",
        region=region,
        name=contract.usage_plan_name(args.stack),
        description="Per-merchant limits; `payments-dr merchant create` adds the keys",
        api_stages=[{"api_id": rest_api.id, "stage": stage.stage_name}],
        throttle_settings={
            "rate_limit": args.merchant_throttle_rate_limit,
            "burst_limit": args.merchant_throttle_burst_limit,
        },
        tags=dict(args.tags),
        opts=child,
    )
    return RegionApi(
        rest_api=rest_api,
        stage=stage,
        usage_plan=usage_plan,
        access_log_group=access_log_group,
        api_endpoint=stage.invoke_url,
        execute_api_host=rest_api.id.apply(
            lambda api_id: f"{api_id}.execute-api.{region}.amazonaws.com"
        ),
    )


def _api_logging_account(
    name: str, args: RegionalServiceArgs, parent: pulumi.Resource
) -> aws.apigateway.Account:
    """API Gateway writes logs through one role per account and region, shared by every API.

    So the setting and the stack's own role are retained when the stack is destroyed: deleting
    them would reset logging for every other API in the region. With
    `apiGatewayLoggingRoleArn` the stack adopts an account-wide role instead of creating one.
    """
    retained = pulumi.ResourceOptions(parent=parent, retain_on_delete=True)
    depends_on: list[pulumi.Resource] = []
    role_arn: pulumi.Input[str]
    if args.api_gateway_logging_role_arn is not None:
        role_arn = args.api_gateway_logging_role_arn
    else:
        role = aws.iam.Role(
            f"{name}-apigateway-logging",
            assume_role_policy=json.dumps(iam.api_gateway_assume_role_policy()),
            description=f"API Gateway CloudWatch logging in {args.region} (account-wide)",
            tags=dict(args.tags),
            opts=retained,
        )
        depends_on.append(
            aws.iam.RolePolicy(
                f"{name}-apigateway-logging",
                role=role.id,
                policy=json.dumps(iam.api_gateway_logging_policy(args.region, args.account_id)),
                opts=retained,
            )
        )
        role_arn = role.arn
    return aws.apigateway.Account(
        f"{name}-apigateway-account",
        region=args.region,
        cloudwatch_role_arn=role_arn,
        opts=pulumi.ResourceOptions.merge(retained, pulumi.ResourceOptions(depends_on=depends_on)),
    )


def create_custom_domain(
    name: str, args: RegionalServiceArgs, api: RegionApi, parent: pulumi.Resource
) -> CustomDomain:
    region = args.region
    child = pulumi.ResourceOptions(parent=parent)
    certificate = aws.acm.Certificate(
        f"{name}-certificate",
        region=region,
        domain_name=args.api_domain,
        validation_method="DNS",
        tags=dict(args.tags),
        opts=child,
    )
    # ACM asks for the same CNAME in every region for one name and account, so one record
    # serves both certificates. It is a component of its own, not a child of this region's
    # service: whichever region is primary, its URN (and so the record) stays put.
    validation_record = args.certificate_validation_record or CertificateValidationRecord(
        CERTIFICATE_VALIDATION_RECORD, args.zone_id, certificate
    )
    validation = aws.acm.CertificateValidation(
        f"{name}-certificate-validation",
        region=region,
        certificate_arn=certificate.arn,
        validation_record_fqdns=[validation_record.fqdn],
        opts=child,
    )
    domain = aws.apigateway.DomainName(
        f"{name}-domain",
        region=region,
        domain_name=args.api_domain,
        regional_certificate_arn=validation.certificate_arn,
        endpoint_configuration={"types": "REGIONAL"},
        security_policy="TLS_1_2",
        tags=dict(args.tags),
        opts=child,
    )
    aws.apigateway.BasePathMapping(
        f"{name}-base-path",
        region=region,
        domain_name=domain.domain_name,
        rest_api=api.rest_api.id,
        stage_name=api.stage.stage_name,
        opts=child,
    )
    return CustomDomain(
        domain=domain,
        certificate_validation_record=validation_record,
        target=domain.regional_domain_name,
        zone_id=domain.regional_zone_id,
        url=f"https://{args.api_domain}",
    )
