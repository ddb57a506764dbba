"""One region's REST API: the OpenAPI document with API Gateway's extensions, the stage with
its logs, throttling and usage plan, and its two custom domains with their certificates.

The default execute-api endpoint is disabled: clients reach the stage only through the
failover name api.<domain> and the region's own name api.<region>.<domain>, both TLS 1.2.
"""

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
from payments_dr.infra.dns import CERTIFICATE_VALIDATION_TTL_SECONDS, CertificateValidationRecord
from payments_dr.infra.gateway_responses import GATEWAY_RESPONSES
from payments_dr.service.openapi import load_openapi

if TYPE_CHECKING:
    from payments_dr.infra.service import RegionalServiceArgs

CERTIFICATE_VALIDATION_RECORD = "certificate-validation"
ValidationRecord = CertificateValidationRecord | aws.route53.Record
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
TLS_SECURITY_POLICY = "TLS_1_2"


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
    # Also in the document, so the body cannot re-enable it; and a changed body redeploys the
    # stage, which is when API Gateway applies the setting.
    document["x-amazon-apigateway-endpoint-configuration"] = {"disableExecuteApiEndpoint": True}
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


@dataclass(frozen=True)
class CustomDomain:
    domain: aws.apigateway.DomainName
    certificate_validation_record: ValidationRecord
    target: pulumi.Output[str]
    zone_id: pulumi.Output[str]
    url: str
    regional_url: str  # https://api.<region>.<domain>
    # api.<region>.<domain>, known once its alias record and base path mapping exist.
    regional_host: pulumi.Output[str]


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
        # Only the custom domains serve; the default endpoint would answer 403 to anyone, and
        # its TLS policy is tightened too in case it is ever enabled again.
        disable_execute_api_endpoint=True,
        security_policy=TLS_SECURITY_POLICY,
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
            kms_key_id=args.log_key_arn,
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
    """The failover name and the region's own name, each on its own certificate and domain."""
    # ACM asks for the same CNAME in every region for one name and account, so one record
    # serves both regions' failover-name certificates: two resources owning it would each
    # delete it (and with it the other certificate's renewal) when replaced. Should ACM ever
    # ask for another name, the validation fails at once on the unknown record instead of
    # waiting. The regional name has a certificate, and so a record, of its own.
    domain, validation_record, _ = _served_domain(
        name, args, args.api_domain, args.certificate_validation_record, api, parent
    )
    regional, _, mapping = _served_domain(
        f"{name}-regional", args, args.regional_api_domain, None, api, parent
    )
    alias = aws.route53.Record(
        f"{name}-regional-alias",
        zone_id=args.zone_id,
        name=args.regional_api_domain,
        type="A",
        aliases=[
            {
                "name": regional.regional_domain_name,
                "zone_id": regional.regional_zone_id,
                "evaluate_target_health": False,  # the region's own name never fails over
            }
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return CustomDomain(
        domain=domain,
        certificate_validation_record=validation_record,
        target=domain.regional_domain_name,
        zone_id=domain.regional_zone_id,
        url=f"https://{args.api_domain}",
        regional_url=f"https://{args.regional_api_domain}",
        regional_host=pulumi.Output.all(alias.name, mapping.id).apply(lambda values: values[0]),
    )


def _served_domain(
    name: str,
    args: RegionalServiceArgs,
    domain_name: str,
    validation_record: ValidationRecord | None,
    api: RegionApi,
    parent: pulumi.Resource,
) -> tuple[aws.apigateway.DomainName, ValidationRecord, aws.apigateway.BasePathMapping]:
    """A DNS-validated certificate for `domain_name`, a TLS 1.2 regional custom domain on it,
    and the stage mapped at its root; `validation_record` when another region made it."""
    region = args.region
    child = pulumi.ResourceOptions(parent=parent)
    certificate = aws.acm.Certificate(
        f"{name}-certificate",
        region=region,
        domain_name=domain_name,
        validation_method="DNS",
        tags=dict(args.tags),
        opts=child,
    )
    if validation_record is None:
        # The failover name's record outlives any one region's component (see dns.py); the
        # regional name's record is this region's alone.
        validation_record = (
            CertificateValidationRecord(CERTIFICATE_VALIDATION_RECORD, args.zone_id, certificate)
            if domain_name == args.api_domain
            else _validation_record(
                f"{name}-certificate-validation", args.zone_id, certificate, child
            )
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
        domain_name=domain_name,
        regional_certificate_arn=validation.certificate_arn,
        endpoint_configuration={"types": "REGIONAL"},
        security_policy=TLS_SECURITY_POLICY,
        tags=dict(args.tags),
        opts=child,
    )
    mapping = aws.apigateway.BasePathMapping(
        f"{name}-base-path",
        region=region,
        domain_name=domain.domain_name,
        rest_api=api.rest_api.id,
        stage_name=api.stage.stage_name,
        opts=child,
    )
    return domain, validation_record, mapping


def _validation_record(
    name: str,
    zone_id: pulumi.Input[str],
    certificate: aws.acm.Certificate,
    opts: pulumi.ResourceOptions,
) -> aws.route53.Record:
    option = certificate.domain_validation_options.apply(lambda options: options[0])
    return aws.route53.Record(
        name,
        zone_id=zone_id,
        name=option.apply(lambda o: o.resource_record_name or ""),
        type=option.apply(lambda o: o.resource_record_type or "CNAME"),
        records=[option.apply(lambda o: o.resource_record_value or "")],
        ttl=CERTIFICATE_VALIDATION_TTL_SECONDS,
        allow_overwrite=True,  # a record left by an earlier certificate is adopted
        opts=opts,
    )
