"""Composition root: builds every layer of both regions from a `StackConfig`.

`build_stack` returns the stack outputs instead of exporting them, so the real program
(`__main__.py`) and the offline synthesizer share one code path and differ only in what they
do with the outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import Function, RegionOutput, StackOutput
from payments_dr.infra import function_policies, id_secret
from payments_dr.infra.alarms import AlarmPurpose, HealthCheckAlarms, HealthCheckAlarmsArgs
from payments_dr.infra.canary import CrossRegionCanary, CrossRegionCanaryArgs, build_canary_zip
from payments_dr.infra.config import StackConfig
from payments_dr.infra.dashboard import Dashboard, DashboardArgs
from payments_dr.infra.data import Data, DataArgs
from payments_dr.infra.dns import FailoverDns, FailoverDnsArgs, HostedZone, RegionEndpoint
from payments_dr.infra.firewall import Firewall, FirewallArgs
from payments_dr.infra.id_secret import IdSecret, IdSecretArgs
from payments_dr.infra.log_keys import LogKeys
from payments_dr.infra.metrics import ROUTE53_METRICS_REGION
from payments_dr.infra.monitoring import Monitoring, MonitoringArgs
from payments_dr.infra.network import Network, NetworkArgs
from payments_dr.infra.peering import RegionPeering, RegionPeeringArgs
from payments_dr.infra.queues import dlq_arn, retry_queue_arn
from payments_dr.infra.service import RegionalService, RegionalServiceArgs
from payments_dr.infra.storage import Storage, StorageArgs, replication_rule_id
from payments_dr.infra.switch import TrafficSwitch, TrafficSwitchArgs

# Non-overlapping address space per region role, so the VPCs can be peered if ever needed.
VPC_CIDRS = {
    contract.RegionRole.PRIMARY: "10.10.0.0/16",
    contract.RegionRole.SECONDARY: "10.20.0.0/16",
}


def build_stack(config: StackConfig, artifact_path: Path) -> dict[str, Any]:
    """Declare every resource of the stack; return the stack outputs by contract name."""
    account_id = aws.get_caller_identity().account_id
    tags = config.resource_tags
    primary, secondary = config.regions

    data = Data(
        "data",
        DataArgs(
            stack=config.stack,
            account_id=account_id,
            primary_region=primary,
            secondary_region=secondary,
            consistency_mode=config.consistency_mode,
            witness_region=config.witness_region,
            tags=tags,
            break_glass_role_arn=config.break_glass_role_arn,
        ),
    )
    # The key of payment ids: one value, a copy in each region (docs/security.md).
    ids = IdSecret(
        "id-secret",
        IdSecretArgs(
            stack=config.stack,
            account_id=account_id,
            primary_region=primary,
            secondary_region=secondary,
            key_arns=data.key_arns,
            tags=tags,
        ),
    )
    log_keys = LogKeys(
        "log-keys",
        stack=config.stack,
        account_id=account_id,
        regions=config.regions,
        tags=tags,
    )
    storage = Storage(
        "storage",
        StorageArgs(
            stack=config.stack,
            account_id=account_id,
            regions=config.regions,
            key_arns=data.key_arns,
            log_retention_days=config.transaction_log_retention_days,
            tags=tags,
            break_glass_role_arn=config.break_glass_role_arn,
        ),
    )
    zone = HostedZone(contract.HOSTED_ZONE_NAME, config.domain_name, config.hosted_zone_id, tags)

    networks: dict[str, Network] = {}
    for region in config.regions:
        networks[region] = Network(
            f"network-{region}",
            NetworkArgs(
                region=region,
                cidr_block=VPC_CIDRS[config.role_of(region)],
                stack=config.stack,
                account_id=account_id,
                key_arn=log_keys.key_arns[region],
                log_retention_days=config.audit_log_retention_days,
                endpoint_policies={
                    **function_policies.endpoint_policies(
                        region=region,
                        account_id=account_id,
                        table_arn=data.table_arns[region],
                        queue_arn=retry_queue_arn(region, account_id, config.stack),
                        dlq_arn=dlq_arn(region, account_id, config.stack),
                        bucket_arn=storage.bucket_arns[region],
                        ssm_path=contract.ssm_path(config.stack, region),
                    ),
                    "secretsmanager": id_secret.endpoint_policy(region, account_id, config.stack),
                },
                tags=tags,
            ),
        )
    peering = RegionPeering(
        "peering",
        RegionPeeringArgs(requester=networks[primary], accepter=networks[secondary], tags=tags),
    )

    services: dict[str, RegionalService] = {}
    for region in config.regions:
        role = config.role_of(region)
        network = networks[region]
        services[region] = RegionalService(
            f"service-{region}",
            RegionalServiceArgs(
                stack=config.stack,
                region=region,
                role=role,
                peer_region=config.peer_region(region),
                peer_sqs_endpoint=peering.sqs_endpoints[config.peer_region(region)],
                peer_key_arn=data.key_arns[config.peer_region(region)],
                account_id=account_id,
                artifact_path=artifact_path,
                api_domain=config.api_domain,
                regional_api_domain=contract.regional_api_domain(config.domain_name, region),
                zone_id=zone.zone_id,
                table_name=data.table_name,
                table_arn=data.table_arns[region],
                stream_arn=data.stream_arns[region],
                key_arn=data.key_arns[region],
                log_key_arn=log_keys.key_arns[region],
                bucket_name=storage.bucket_names[region],
                bucket_arn=storage.bucket_arns[region],
                subnet_ids=network.private_subnet_ids,
                security_group_id=network.function_security_group.id,
                log_retention_days=config.log_retention_days,
                audit_log_retention_days=config.audit_log_retention_days,
                reserved_concurrency=config.reserved_concurrency,
                api_gateway_logging_role_arn=config.api_gateway_logging_role_arn,
                throttle_rate_limit=config.api_throttle_rate_limit,
                throttle_burst_limit=config.api_throttle_burst_limit,
                merchant_throttle_rate_limit=config.merchant_throttle_rate_limit,
                merchant_throttle_burst_limit=config.merchant_throttle_burst_limit,
                mode_refresh_seconds=config.mode_refresh_seconds,
                mode_read_spread_seconds=config.mode_read_spread_seconds,
                tags=tags,
                certificate_validation_record=(
                    services[primary].certificate_validation_record if region != primary else None
                ),
                id_secret_arn=ids.arn_in(region),
            ),
            # Its functions read the id secret at their first cold start.
            opts=pulumi.ResourceOptions(depends_on=[ids]),
        )

    switch = TrafficSwitch(
        "switch",
        TrafficSwitchArgs(
            stack=config.stack,
            kind=config.failover_control,
            regions=config.regions,
            peer_of={region: config.peer_region(region) for region in config.regions},
            tags=tags,
        ),
    )
    dns = FailoverDns(
        "failover",
        FailoverDnsArgs(
            zone_id=zone.zone_id,
            api_domain=config.api_domain,
            endpoints=tuple(
                RegionEndpoint(
                    region=region,
                    role=config.role_of(region),
                    regional_host=service.regional_host,
                    custom_domain_target=service.custom_domain_target,
                    custom_domain_zone_id=service.custom_domain_zone_id,
                )
                for region, service in services.items()
            ),
            request_interval_seconds=config.health_check_interval_seconds,
            failure_threshold=config.health_check_failure_threshold,
            switch_health_check_ids={r: check.id for r, check in switch.health_checks.items()},
            tags=tags,
        ),
    )

    health_check_ids = {r: hc.id for r, hc in dns.health_checks.items()}
    monitors: dict[str, Monitoring] = {}
    for region, service in services.items():
        peer = config.peer_region(region)
        monitors[region] = Monitoring(
            f"monitoring-{region}",
            MonitoringArgs(
                stack=config.stack,
                region=region,
                peer_region=peer,
                account_id=account_id,
                key_arn=log_keys.key_arns[region],
                table_name=data.table_name,
                consistency_mode=config.consistency_mode,
                replication_lag_alarm_seconds=config.replication_lag_alarm_seconds,
                merchant_key_max_age_days=config.merchant_key_max_age_days,
                dlq_name=service.dlq.name,
                retry_queue_name=service.retry_queue.name,
                archive_failures_queue_name=service.archive_failures_queue.name,
                function_names={f: contract.function_name(config.stack, f) for f in Function},
                api_name=service.rest_api.name,
                api_stage=contract.API_STAGE,
                source_bucket=storage.bucket_names[region],
                destination_bucket=storage.bucket_names[peer],
                replication_rule_id=replication_rule_id(peer),
                alarm_email=config.alarm_email,
                health_check_ids=health_check_ids,
                tags=tags,
            ),
        )

    # With us-east-1 among the regions its Monitoring alarms on the health checks; otherwise
    # they get their own small set there, listed with the primary's alarms.
    health_check_alarm_arns: dict[str, pulumi.Output[str]] = {}
    if ROUTE53_METRICS_REGION not in config.regions:
        health_check_alarms = HealthCheckAlarms(
            "health-check-alarms",
            HealthCheckAlarmsArgs(
                stack=config.stack,
                account_id=account_id,
                health_check_ids=health_check_ids,
                alarm_email=config.alarm_email,
                tags=tags,
            ),
        )
        health_check_alarm_arns = health_check_alarms.alarm_arns

    firewalls = {
        region: Firewall(
            f"firewall-{region}",
            FirewallArgs(
                stack=config.stack,
                region=region,
                stage_arn=service.stage.arn,
                key_arn=log_keys.key_arns[region],
                alarm_topic_arn=monitors[region].topic.arn,
                requests_per_ip_per_5_minutes=config.waf_requests_per_ip_per_5_minutes,
                log_retention_days=config.audit_log_retention_days,
                tags=tags,
            ),
        )
        for region, service in services.items()
    }

    # Each region watches the other: its canary probes the peer's own API name, and the
    # alarm and topic that page about the peer live here, outside the peer's failure domain.
    canary_zip = build_canary_zip(artifact_path.parent)
    canaries = {
        region: CrossRegionCanary(
            f"canary-{region}",
            CrossRegionCanaryArgs(
                stack=config.stack,
                region=region,
                target_region=config.peer_region(region),
                target_url=services[config.peer_region(region)].api_endpoint,
                account_id=account_id,
                key_arn=data.key_arns[region],
                alarm_topic_arn=monitors[region].topic.arn,
                interval_minutes=config.canary_interval_minutes,
                zip_path=canary_zip,
                tags=tags,
            ),
        )
        for region in config.regions
    }

    alarm_arns = {
        region: {
            **monitors[region].alarm_arns,
            AlarmPurpose.WAF_BLOCKED.value: firewalls[region].blocked_alarm.arn,
            **canaries[region].alarm_arns,
        }
        for region in config.regions
    }
    # Where each alarm lives: the regions' own, and the health-check alarms of a stack
    # without us-east-1 in that region (Route 53 publishes their metric there only).
    alarm_regions: dict[str, dict[str, pulumi.Output[str]]] = {
        region: dict(arns) for region, arns in alarm_arns.items()
    }
    if health_check_alarm_arns:
        alarm_regions[ROUTE53_METRICS_REGION] = dict(health_check_alarm_arns)
        alarm_arns[primary] = {**alarm_arns[primary], **health_check_alarm_arns}
    every_alarm = [arn for arns in alarm_regions.values() for arn in arns.values()]
    dashboards = {
        region: Dashboard(
            f"dashboard-{region}" if region != primary else "dashboard",
            DashboardArgs(
                stack=config.stack,
                region=region,
                monitored=[monitors[r].args for r in config.regions],
                health_check_ids=health_check_ids,
                alarm_arns=every_alarm,
                canary_names={r: canaries[r].canary.name for r in config.regions},
            ),
        )
        for region in config.regions
    }

    regions_output = {
        region: {
            RegionOutput.ROLE: config.role_of(region).value,
            RegionOutput.API_ENDPOINT: service.api_endpoint,
            RegionOutput.CUSTOM_DOMAIN_URL: service.custom_domain_url,
            RegionOutput.CUSTOM_DOMAIN_TARGET: service.custom_domain_target,
            RegionOutput.HEALTH_CHECK_ID: dns.health_checks[region].id,
            RegionOutput.HEALTH_CHECK_URL: dns.health_check_urls[region],
            RegionOutput.ALARM_ARNS: alarm_arns[region],
            RegionOutput.ALARM_TOPIC_ARN: monitors[region].topic.arn,
            RegionOutput.LOG_BUCKET: storage.bucket_names[region],
            RegionOutput.SSM_PATH: service.ssm_path,
            RegionOutput.RETRY_QUEUE_URL: service.retry_queue.url,
            RegionOutput.DLQ_URL: service.dlq.url,
            RegionOutput.FUNCTION_NAMES: service.function_names,
            RegionOutput.USAGE_PLAN_ID: service.usage_plan.id,
            RegionOutput.WEB_ACL_ARN: firewalls[region].web_acl.arn,
            RegionOutput.RECORD_HEALTH_CHECK_ID: dns.record_health_checks[region].id,
            RegionOutput.SWITCH: switch.descriptions[region],
            RegionOutput.DASHBOARD_URL: dashboards[region].url,
            RegionOutput.CANARY_NAME: canaries[region].canary.name,
            RegionOutput.CANARY_SECRET_ARN: canaries[region].secret.arn,
        }
        for region, service in services.items()
    }
    return {
        StackOutput.PRIMARY_API_ENDPOINT: services[primary].api_endpoint,
        StackOutput.SECONDARY_API_ENDPOINT: services[secondary].api_endpoint,
        StackOutput.FAILOVER_URL: config.failover_url,
        StackOutput.API_DOMAIN: config.api_domain,
        StackOutput.HOSTED_ZONE_ID: zone.zone_id,
        StackOutput.NAME_SERVERS: zone.name_servers,
        StackOutput.TABLE_NAME: data.table_name,
        StackOutput.DR_BUDGET: config.budget.to_dict(),
        StackOutput.REGIONS: regions_output,
        StackOutput.DASHBOARD_URL: dashboards[primary].url,
        StackOutput.ALARMS: [
            {"region": region, "alarm": key, "arn": arn}
            for region, arns in alarm_regions.items()
            for key, arn in arns.items()
        ],
        StackOutput.CONSISTENCY_MODE: config.consistency_mode.value,
        StackOutput.FAILOVER_CONTROL: switch.control,
        StackOutput.MERCHANT_KEY_MAX_AGE_DAYS: config.merchant_key_max_age_days,
    }


def export_outputs(outputs: dict[str, Any]) -> None:
    for name, value in outputs.items():
        pulumi.export(str(name), value)
