"""Regional service layer: queues, functions, the REST API and its custom domain, SSM config.

Both regions get this component with the same arguments except the region-specific values, so
the functions, API and queues are identical by construction. Each part is built by its own
module (queues, functions, regional_api); this component composes them and owns the SSM
parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import Function, Param
from payments_dr.infra.functions import create_event_sources, create_function
from payments_dr.infra.queues import create_queues
from payments_dr.infra.regional_api import ValidationRecord, create_api, create_custom_domain


@dataclass(frozen=True)
class RegionalServiceArgs:
    stack: str
    region: str
    role: contract.RegionRole
    peer_region: str
    # The peer's SQS as this region's functions reach it (see infra.peering), and its key.
    peer_sqs_endpoint: pulumi.Input[str]
    peer_key_arn: pulumi.Input[str]
    account_id: str
    artifact_path: Path
    api_domain: str
    regional_api_domain: str  # api.<region>.<domain>: the name only this region answers
    zone_id: pulumi.Input[str]
    table_name: pulumi.Input[str]
    table_arn: str
    stream_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]  # the data key: queues, function environments
    log_key_arn: pulumi.Input[str]  # the region's key for log groups
    bucket_name: str
    bucket_arn: str
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    log_retention_days: int  # function logs
    audit_log_retention_days: int  # API access and execution logs
    # Reserved executions per function (the log archiver's sized from its stream's shards).
    reserved_concurrency: Mapping[Function, int]
    throttle_rate_limit: int
    throttle_burst_limit: int
    merchant_throttle_rate_limit: int
    merchant_throttle_burst_limit: int
    # The API's `mode` reads from SSM (see service.config.ModeCache).
    mode_refresh_seconds: int
    mode_read_spread_seconds: int
    tags: Mapping[str, str]
    # An existing role for API Gateway's account-wide logging setting; None: the stack's own.
    api_gateway_logging_role_arn: str | None = None
    # The first region's ACM validation record, reused by the next: see `create_custom_domain`.
    certificate_validation_record: ValidationRecord | None = None
    # This region's copy of the id secret (infra.id_secret), for the functions computing ids.
    id_secret_arn: pulumi.Input[str] | None = None


class RegionalService(pulumi.ComponentResource):
    """Everything that serves payments in one region."""

    def __init__(
        self, name: str, args: RegionalServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:RegionalService", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        self.ssm_path = contract.ssm_path(args.stack, region)

        queues = create_queues(
            name,
            stack=args.stack,
            region=region,
            account_id=args.account_id,
            key_arn=args.key_arn,
            tags=args.tags,
            opts=child,
        )
        self.dlq = queues.dlq
        self.retry_queue = queues.retry_queue
        self.archive_failures_queue = queues.archive_failures_queue
        settings = self._deploy_time_settings(args)
        environment = {
            contract.param_env_var(param): settings[param] for param in contract.DEPLOY_TIME_PARAMS
        }
        self.log_groups: dict[Function, aws.cloudwatch.LogGroup] = {}
        self.functions: dict[Function, aws.lambda_.Function] = {}
        for function in Function:
            self.functions[function], self.log_groups[function] = create_function(
                name,
                function,
                args,
                ssm_path=self.ssm_path,
                environment=environment,
                retry_queue=self.retry_queue,
                parent=self,
            )
        self.function_names = {
            function.value: contract.function_name(args.stack, function) for function in Function
        }
        create_event_sources(name, args, self.functions, queues, child)

        api = create_api(name, args, self.functions, parent=self)
        self.rest_api, self.stage, self.usage_plan = api.rest_api, api.stage, api.usage_plan
        self.access_log_group = api.access_log_group
        domain = create_custom_domain(name, args, api, parent=self)
        # The region's own URL; the default execute-api endpoint is disabled.
        self.api_endpoint = domain.regional_url
        self.regional_host = domain.regional_host
        self.domain = domain.domain
        self.certificate_validation_record = domain.certificate_validation_record
        self.custom_domain_target = domain.target
        self.custom_domain_zone_id = domain.zone_id
        self.custom_domain_url = domain.url
        self._parameters(args, settings)
        self.register_outputs(
            {
                "api_endpoint": self.api_endpoint,
                "regional_host": self.regional_host,
                "custom_domain_target": self.custom_domain_target,
                "ssm_path": self.ssm_path,
            }
        )

    # --- configuration -------------------------------------------------------------------
    def _deploy_time_settings(self, args: RegionalServiceArgs) -> dict[Param, pulumi.Input[str]]:
        """Values fixed at deployment: in SSM for operators, in the functions' environment."""
        return {
            Param.TABLE_NAME: args.table_name,
            Param.RETRY_QUEUE_URL: self.retry_queue.url,
            Param.DLQ_URL: self.dlq.url,
            Param.ARCHIVE_FAILURES_QUEUE_URL: self.archive_failures_queue.url,
            Param.LOG_BUCKET: args.bucket_name,
            Param.REGION_ROLE: args.role.value,
            Param.PEER_REGION: args.peer_region,
            Param.PEER_RETRY_QUEUE_URL: contract.queue_url(
                args.peer_region, args.account_id, contract.retry_queue_name(args.stack)
            ),
            Param.PEER_SQS_ENDPOINT: args.peer_sqs_endpoint,
        }

    def _parameters(
        self, args: RegionalServiceArgs, settings: dict[Param, pulumi.Input[str]]
    ) -> None:
        values: dict[Param, pulumi.Input[str]] = {
            **settings,
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
