"""Regional service layer: queues, functions, the REST API and its custom domain, SSM config.

Both regions get this component with the same arguments except the region-specific values, so
the functions, API and queues are identical by construction.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import Function, Param
from payments_dr.infra import iam
from payments_dr.infra.gateway_responses import GATEWAY_RESPONSES
from payments_dr.service.openapi import load_openapi

LAMBDA_ARCHITECTURE = "arm64"  # the artifact is pure Python; Graviton is cheaper per ms
# A failing stream batch is retried for 23 h, not dropped after a few attempts: a short S3
# outage must not punch holes in the transaction log. The archiver's errors alarm pages while
# the shard waits. A batch still failing then is discarded *by this limit*, an hour before the
# stream (24 h retention) would trim it: Lambda documents sending discarded records to the
# on-failure destination when a retry or age limit is reached, and says nothing of records
# that expire under "retry forever". So the archive-failures queue always learns the shard and
# sequence range, and the hole can be found and rebuilt.
RETRY_UNTIL_DISCARDED = -1
STREAM_RECORD_MAX_AGE_SECONDS = 23 * 3600
KMS_DATA_KEY_REUSE_SECONDS = 300
CERTIFICATE_VALIDATION_TTL_SECONDS = 300
REQUEST_VALIDATOR = "body-and-parameters"
POWERTOOLS_METRICS_NAMESPACE = "PaymentsDr"
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


@dataclass(frozen=True)
class RegionalServiceArgs:
    stack: str
    region: str
    role: contract.RegionRole
    peer_region: str
    account_id: str
    artifact_path: Path
    api_domain: str
    zone_id: pulumi.Input[str]
    table_name: pulumi.Input[str]
    table_arn: str
    stream_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    bucket_name: str
    bucket_arn: str
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    log_retention_days: int
    throttle_rate_limit: int
    throttle_burst_limit: int
    merchant_throttle_rate_limit: int
    merchant_throttle_burst_limit: int
    tags: Mapping[str, str]
    # The first region's ACM validation record, reused by the next: see `_custom_domain`.
    certificate_validation_record: aws.route53.Record | None = None


def retry_queue_arn(region: str, account_id: str, stack: str) -> str:
    """Queue ARNs derive from the name, so policies can name the queue before it exists."""
    return f"arn:aws:sqs:{region}:{account_id}:{contract.retry_queue_name(stack)}"


def dlq_arn(region: str, account_id: str, stack: str) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{contract.dlq_name(stack)}"


def archive_failures_queue_arn(region: str, account_id: str, stack: str) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{contract.archive_failures_queue_name(stack)}"


MERCHANT_KEY_SCHEME = "MerchantKey"  # the service document's security scheme
USAGE_PLAN_KEY_SCHEME = "UsagePlanKey"  # makes API Gateway apply the usage plan


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


class RegionalService(pulumi.ComponentResource):
    """Everything that serves payments in one region."""

    def __init__(
        self, name: str, args: RegionalServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:RegionalService", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        region = args.region
        self.ssm_path = contract.ssm_path(args.stack, region)

        self._queues(args)
        self.log_groups: dict[Function, aws.cloudwatch.LogGroup] = {}
        self.functions: dict[Function, aws.lambda_.Function] = {}
        for function in Function:
            self.functions[function] = self._function(function)
        self.function_names = {
            function.value: contract.function_name(args.stack, function) for function in Function
        }

        aws.lambda_.EventSourceMapping(
            f"{name}-retry-queue-source",
            region=region,
            event_source_arn=self.retry_queue.arn,
            function_name=self.functions[Function.RETRY_WORKER].arn,
            batch_size=contract.RETRY_BATCH_SIZE,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config={
                # As many pollers as the worker may run (SQS accepts no fewer than 2), so the
                # queue is never drained into throttled invocations.
                "maximum_concurrency": max(
                    2, contract.FUNCTIONS[Function.RETRY_WORKER].reserved_concurrency
                )
            },
            opts=self._child,
        )
        aws.lambda_.EventSourceMapping(
            f"{name}-table-stream-source",
            region=region,
            event_source_arn=args.stream_arn,
            function_name=self.functions[Function.LOG_ARCHIVER].arn,
            starting_position="TRIM_HORIZON",  # archive every change the stream still holds
            batch_size=contract.STREAM_BATCH_SIZE,
            # The archiver reports the first failed record itself; bisecting on top of that
            # could archive overlapping halves of a batch under different keys.
            function_response_types=["ReportBatchItemFailures"],
            maximum_retry_attempts=RETRY_UNTIL_DISCARDED,
            maximum_record_age_in_seconds=STREAM_RECORD_MAX_AGE_SECONDS,
            destination_config={
                "on_failure": {"destination_arn": self.archive_failures_queue.arn},
            },
            opts=self._child,
        )

        self._api(args)
        self._custom_domain(args)
        self._parameters(args)
        self.register_outputs(
            {
                "api_endpoint": self.api_endpoint,
                "execute_api_host": self.execute_api_host,
                "custom_domain_target": self.custom_domain_target,
                "ssm_path": self.ssm_path,
            }
        )

    # --- queues --------------------------------------------------------------------------
    def _queues(self, args: RegionalServiceArgs) -> None:
        region, account = args.region, args.account_id
        retry_queue_name = contract.retry_queue_name(args.stack)
        self.dlq = aws.sqs.Queue(
            f"{self._name}-dlq",
            region=region,
            name=contract.dlq_name(args.stack),
            message_retention_seconds=contract.DLQ_RETENTION_SECONDS,
            kms_master_key_id=args.key_arn,
            kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
            # Only the retry queue may dead-letter into it.
            redrive_allow_policy=json.dumps(
                {
                    "redrivePermission": "byQueue",
                    "sourceQueueArns": [retry_queue_arn(region, account, args.stack)],
                }
            ),
            tags=dict(args.tags),
            opts=self._child,
        )
        self.retry_queue = aws.sqs.Queue(
            f"{self._name}-retry-queue",
            region=region,
            name=retry_queue_name,
            message_retention_seconds=contract.RETRY_QUEUE_RETENTION_SECONDS,
            visibility_timeout_seconds=contract.RETRY_QUEUE_VISIBILITY_SECONDS,
            kms_master_key_id=args.key_arn,
            kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
            redrive_policy=self.dlq.arn.apply(
                lambda dlq_arn: json.dumps(
                    {
                        "deadLetterTargetArn": dlq_arn,
                        "maxReceiveCount": contract.RETRY_MAX_RECEIVE_COUNT,
                    }
                )
            ),
            tags=dict(args.tags),
            opts=self._child,
        )
        # Terminal, like the DLQ: it holds records of dropped stream ranges (shard and
        # sequence numbers, no payment data), read by an operator rebuilding the log.
        self.archive_failures_queue = aws.sqs.Queue(
            f"{self._name}-archive-failures",
            region=region,
            name=contract.archive_failures_queue_name(args.stack),
            message_retention_seconds=contract.ARCHIVE_FAILURES_RETENTION_SECONDS,
            kms_master_key_id=args.key_arn,
            kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
            # No queue may dead-letter into it.
            redrive_allow_policy=json.dumps({"redrivePermission": "denyAll"}),
            tags=dict(args.tags),
            opts=self._child,
        )

    # --- functions -----------------------------------------------------------------------
    def _function(self, function: Function) -> aws.lambda_.Function:
        args = self._args
        region, account = args.region, args.account_id
        prefix = f"{self._name}-{function.value}"
        function_name = contract.function_name(args.stack, function)
        settings = contract.FUNCTIONS[function]
        log_group_name = f"/aws/lambda/{function_name}"
        log_group = aws.cloudwatch.LogGroup(
            f"{prefix}-logs",
            region=region,
            name=log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            tags=dict(args.tags),
            opts=self._child,
        )
        self.log_groups[function] = log_group
        role = aws.iam.Role(
            f"{prefix}-role",
            assume_role_policy=json.dumps(
                iam.service_assume_role_policy("lambda.amazonaws.com", account)
            ),
            description=f"{function_name} in {region}",
            tags=dict(args.tags),
            opts=self._child,
        )
        policy = aws.iam.RolePolicy(
            f"{prefix}-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.key_arn,
                self.retry_queue.arn,
                args.security_group_id,
                *args.subnet_ids,
            ).apply(
                functools.partial(
                    _function_policy_json,
                    function=function,
                    region=region,
                    account_id=account,
                    table_arn=args.table_arn,
                    dlq_arn=dlq_arn(region, account, args.stack),
                    archive_failures_queue_arn=archive_failures_queue_arn(
                        region, account, args.stack
                    ),
                    bucket_arn=args.bucket_arn,
                    log_group_arn=f"arn:aws:logs:{region}:{account}:log-group:{log_group_name}",
                    ssm_path=self.ssm_path,
                )
            ),
            opts=self._child,
        )
        return aws.lambda_.Function(
            prefix,
            region=region,
            name=function_name,
            description=f"{contract.PROJECT} {function.value} ({args.role.value} region)",
            runtime=contract.LAMBDA_RUNTIME,
            architectures=[LAMBDA_ARCHITECTURE],
            handler=settings.handler,
            code=pulumi.FileArchive(str(args.artifact_path)),
            memory_size=settings.memory_mb,
            timeout=settings.timeout_seconds,
            reserved_concurrent_executions=settings.reserved_concurrency,
            role=role.arn,
            vpc_config={
                "subnet_ids": list(args.subnet_ids),
                "security_group_ids": [args.security_group_id],
            },
            tracing_config={"mode": "Active"},
            logging_config={"log_format": "JSON", "log_group": log_group.name},
            environment={
                "variables": {
                    contract.ENV_SSM_PATH: self.ssm_path,
                    "POWERTOOLS_SERVICE_NAME": f"{contract.PROJECT}-{function.value}",
                    "POWERTOOLS_METRICS_NAMESPACE": POWERTOOLS_METRICS_NAMESPACE,
                }
            },
            tags=dict(args.tags),
            # The role must carry its permissions before Lambda validates the VPC settings.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, log_group]),
        )

    # --- API -----------------------------------------------------------------------------
    def _api(self, args: RegionalServiceArgs) -> None:
        region = args.region
        api_function = self.functions[Function.API]
        authorizer_function = self.functions[Function.AUTHORIZER]
        body = pulumi.Output.all(api_function.invoke_arn, authorizer_function.invoke_arn).apply(
            lambda arns: json.dumps(api_definition(arns[0], arns[1]), sort_keys=True)
        )
        self.rest_api = aws.apigateway.RestApi(
            f"{self._name}-api",
            region=region,
            name=f"{contract.PROJECT}-{args.stack}",
            description="Payment API (OpenAPI document shared with the service)",
            body=body,
            put_rest_api_mode="overwrite",
            endpoint_configuration={"types": "REGIONAL"},
            tags=dict(args.tags),
            opts=self._child,
        )
        aws.lambda_.Permission(
            f"{self._name}-api-invoke",
            region=region,
            action="lambda:InvokeFunction",
            function=api_function.name,
            principal="apigateway.amazonaws.com",
            source_arn=self.rest_api.execution_arn.apply(
                lambda arn: f"{arn}/{contract.API_STAGE}/*"
            ),
            opts=self._child,
        )
        # No authorizer role: API Gateway calls the authorizer through this resource policy,
        # which admits only this API's authorizers.
        aws.lambda_.Permission(
            f"{self._name}-authorizer-invoke",
            region=region,
            action="lambda:InvokeFunction",
            function=authorizer_function.name,
            principal="apigateway.amazonaws.com",
            source_arn=self.rest_api.execution_arn.apply(lambda arn: f"{arn}/authorizers/*"),
            opts=self._child,
        )
        deployment = aws.apigateway.Deployment(
            f"{self._name}-deployment",
            region=region,
            rest_api=self.rest_api.id,
            # A changed document needs a new deployment before the stage serves it.
            triggers={"body": body.apply(lambda text: hashlib.sha256(text.encode()).hexdigest())},
            opts=self._child,
        )
        logging_account = self._api_logging_account(args)
        self.access_log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-api-access-logs",
            region=region,
            name=f"/aws/apigateway/{contract.PROJECT}-{args.stack}/access",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            tags=dict(args.tags),
            opts=self._child,
        )
        self.stage = aws.apigateway.Stage(
            f"{self._name}-stage",
            region=region,
            rest_api=self.rest_api.id,
            deployment=deployment.id,
            stage_name=contract.API_STAGE,
            xray_tracing_enabled=True,
            access_log_settings={
                "destination_arn": self.access_log_group.arn,
                "format": ACCESS_LOG_FORMAT,
            },
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logging_account]),
        )
        aws.apigateway.MethodSettings(
            f"{self._name}-method-settings",
            region=region,
            rest_api=self.rest_api.id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings={
                "metrics_enabled": True,
                "logging_level": "ERROR",
                "data_trace_enabled": False,  # full request logs would hold payment data
                "throttling_rate_limit": args.throttle_rate_limit,
                "throttling_burst_limit": args.throttle_burst_limit,
            },
            opts=self._child,
        )
        self.usage_plan = aws.apigateway.UsagePlan(
            f"{self._name}-merchant-usage-plan",
            region=region,
            name=contract.usage_plan_name(args.stack),
            description="Per-merchant limits; `payments-dr merchant create` adds the keys",
            api_stages=[{"api_id": self.rest_api.id, "stage": self.stage.stage_name}],
            throttle_settings={
                "rate_limit": args.merchant_throttle_rate_limit,
                "burst_limit": args.merchant_throttle_burst_limit,
            },
            tags=dict(args.tags),
            opts=self._child,
        )
        self.api_endpoint = self.stage.invoke_url
        self.execute_api_host = self.rest_api.id.apply(
            lambda api_id: f"{api_id}.execute-api.{region}.amazonaws.com"
        )

    def _api_logging_account(self, args: RegionalServiceArgs) -> aws.apigateway.Account:
        """API Gateway writes logs through one account-wide role per region."""
        role = aws.iam.Role(
            f"{self._name}-apigateway-logging",
            assume_role_policy=json.dumps(
                iam.service_assume_role_policy("apigateway.amazonaws.com", args.account_id)
            ),
            description=f"API Gateway CloudWatch logging in {args.region}",
            tags=dict(args.tags),
            opts=self._child,
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-apigateway-logging",
            role=role.id,
            policy=json.dumps(iam.api_gateway_logging_policy(args.region, args.account_id)),
            opts=self._child,
        )
        return aws.apigateway.Account(
            f"{self._name}-apigateway-account",
            region=args.region,
            cloudwatch_role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

    def _custom_domain(self, args: RegionalServiceArgs) -> None:
        region = args.region
        certificate = aws.acm.Certificate(
            f"{self._name}-certificate",
            region=region,
            domain_name=args.api_domain,
            validation_method="DNS",
            tags=dict(args.tags),
            opts=self._child,
        )
        # ACM asks for the same CNAME in every region for one name and account, so one record
        # serves both certificates: two resources owning it would each delete it (and with it
        # the other certificate's renewal) when replaced. Should ACM ever ask for another
        # name, the validation below fails at once on the unknown record instead of waiting.
        validation_record = args.certificate_validation_record
        if validation_record is None:
            option = certificate.domain_validation_options.apply(lambda options: options[0])
            validation_record = aws.route53.Record(
                f"{self._name}-certificate-validation",
                zone_id=args.zone_id,
                name=option.apply(lambda o: o.resource_record_name or ""),
                type=option.apply(lambda o: o.resource_record_type or "CNAME"),
                records=[option.apply(lambda o: o.resource_record_value or "")],
                ttl=CERTIFICATE_VALIDATION_TTL_SECONDS,
                allow_overwrite=True,  # a record left by an earlier certificate is adopted
                opts=self._child,
            )
        self.certificate_validation_record = validation_record
        validation = aws.acm.CertificateValidation(
            f"{self._name}-certificate-validation",
            region=region,
            certificate_arn=certificate.arn,
            validation_record_fqdns=[validation_record.fqdn],
            opts=self._child,
        )
        self.domain = aws.apigateway.DomainName(
            f"{self._name}-domain",
            region=region,
            domain_name=args.api_domain,
            regional_certificate_arn=validation.certificate_arn,
            endpoint_configuration={"types": "REGIONAL"},
            security_policy="TLS_1_2",
            tags=dict(args.tags),
            opts=self._child,
        )
        aws.apigateway.BasePathMapping(
            f"{self._name}-base-path",
            region=region,
            domain_name=self.domain.domain_name,
            rest_api=self.rest_api.id,
            stage_name=self.stage.stage_name,
            opts=self._child,
        )
        self.custom_domain_target = self.domain.regional_domain_name
        self.custom_domain_zone_id = self.domain.regional_zone_id
        self.custom_domain_url = f"https://{args.api_domain}"

    # --- configuration -------------------------------------------------------------------
    def _parameters(self, args: RegionalServiceArgs) -> None:
        values: dict[Param, pulumi.Input[str]] = {
            Param.TABLE_NAME: args.table_name,
            Param.RETRY_QUEUE_URL: self.retry_queue.url,
            Param.DLQ_URL: self.dlq.url,
            Param.ARCHIVE_FAILURES_QUEUE_URL: self.archive_failures_queue.url,
            Param.LOG_BUCKET: args.bucket_name,
            Param.REGION_ROLE: args.role.value,
            Param.PEER_REGION: args.peer_region,
            Param.API_ENDPOINT: self.api_endpoint,
            Param.MODE: contract.Mode.ACTIVE.value,
        }
        self.parameters: dict[Param, aws.ssm.Parameter] = {}
        for param, value in values.items():
            self.parameters[param] = aws.ssm.Parameter(
                f"{self._name}-param-{param.value}",
                region=args.region,
                name=contract.ssm_parameter_name(args.stack, args.region, param),
                type="String",
                value=value,
                tags=dict(args.tags),
                # The mode is the operators' failover switch: a deployment must not undo a fence.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    ignore_changes=["value"] if param is Param.MODE else None,
                ),
            )


def _function_policy_json(
    resolved: list[str],
    *,
    function: Function,
    region: str,
    account_id: str,
    table_arn: str,
    dlq_arn: str,
    archive_failures_queue_arn: str,
    bucket_arn: str,
    log_group_arn: str,
    ssm_path: str,
) -> str:
    key_arn, queue_arn, security_group_id, *subnet_ids = resolved
    scope = iam.FunctionScope(
        function=function,
        region=region,
        account_id=account_id,
        table_arn=table_arn,
        queue_arn=queue_arn,
        dlq_arn=dlq_arn,
        archive_failures_queue_arn=archive_failures_queue_arn,
        bucket_arn=bucket_arn,
        key_arn=key_arn,
        log_group_arn=log_group_arn,
        subnet_ids=subnet_ids,
        security_group_id=security_group_id,
        ssm_path=ssm_path,
    )
    return json.dumps(iam.function_policy(scope))
