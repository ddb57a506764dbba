"""DNS layer: the hosted zone, per-region health checks and the failover records.

Each health check probes its region's own name (api.<region>.<domain>) on the deep health
path, never the shared failover name, so it measures that region alone (function, table,
mode) and not just "some region answers". The default execute-api endpoint is disabled, so
the check goes through the same custom domain, certificate and TLS policy as the traffic.

The failover record does not use that check alone: it uses a CALCULATED check that is healthy
only while the HTTPS check *and* the region's traffic switch (infra/switch.py) are. So
traffic leaves a region when it fails its checks, or when an operator flips its switch from
outside it, even while its health path still answers 200 (a gray failure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import RegionRole
from payments_dr.infra.switch import RECORD_CHILDREN

HTTPS_PORT = 443


class HostedZone(pulumi.ComponentResource):
    """The zone holding the API name: created here, or an existing one given by id."""

    def __init__(
        self,
        name: str,
        domain_name: str,
        existing_zone_id: str | None,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(contract.HOSTED_ZONE_TYPE, name, None, opts)
        self.zone_id: pulumi.Output[str]
        self.name_servers: pulumi.Output[Sequence[str]]
        if existing_zone_id is None:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=domain_name,
                comment=f"{contract.PROJECT}: delegate {domain_name} to these name servers",
                tags=dict(tags),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.zone_id = zone.zone_id
            self.name_servers = zone.name_servers
        else:
            self.zone_id = pulumi.Output.from_input(existing_zone_id)
            self.name_servers = pulumi.Output.from_input([])
        self.register_outputs({"zone_id": self.zone_id})


CERTIFICATE_VALIDATION_TTL_SECONDS = 300


class CertificateValidationRecord(pulumi.ComponentResource):
    """The CNAME ACM validates, and later renews, the API name's certificates with.

    ACM asks for the same record in every region for one name and account, so both regions'
    certificates share it. It has a lifecycle of its own: no region's component owns it, so
    replacing one cannot delete the record the other certificate renews with.
    """

    def __init__(
        self,
        name: str,
        zone_id: pulumi.Input[str],
        certificate: aws.acm.Certificate,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("payments-dr:infra:CertificateValidationRecord", name, None, opts)
        option = certificate.domain_validation_options.apply(lambda options: options[0])
        record = aws.route53.Record(
            f"{name}-record",
            zone_id=zone_id,
            name=option.apply(lambda o: o.resource_record_name or ""),
            type=option.apply(lambda o: o.resource_record_type or "CNAME"),
            records=[option.apply(lambda o: o.resource_record_value or "")],
            ttl=CERTIFICATE_VALIDATION_TTL_SECONDS,
            allow_overwrite=True,  # a record left by an earlier certificate is adopted
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.fqdn: pulumi.Output[str] = record.fqdn
        self.register_outputs({"fqdn": self.fqdn})


@dataclass(frozen=True)
class RegionEndpoint:
    """What the failover layer needs from one region's service."""

    region: str
    role: RegionRole
    regional_host: pulumi.Input[str]  # api.<region>.<domain>
    custom_domain_target: pulumi.Input[str]
    custom_domain_zone_id: pulumi.Input[str]


@dataclass(frozen=True)
class FailoverDnsArgs:
    zone_id: pulumi.Input[str]
    api_domain: str
    endpoints: tuple[RegionEndpoint, ...]
    request_interval_seconds: int
    failure_threshold: int
    # region -> the health check of its traffic switch (infra/switch.py)
    switch_health_check_ids: Mapping[str, pulumi.Input[str]]
    tags: Mapping[str, str]


class FailoverDns(pulumi.ComponentResource):
    """HTTPS health checks, each combined with its region's switch, and PRIMARY/SECONDARY
    failover alias records for the API name."""

    def __init__(
        self, name: str, args: FailoverDnsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:FailoverDns", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.health_checks: dict[str, aws.route53.HealthCheck] = {}
        self.record_health_checks: dict[str, aws.route53.HealthCheck] = {}
        self.health_check_urls: dict[str, pulumi.Output[str]] = {}
        for endpoint in args.endpoints:
            region = endpoint.region
            health_check = aws.route53.HealthCheck(
                f"{name}-health-{region}",
                type="HTTPS",
                fqdn=endpoint.regional_host,
                port=HTTPS_PORT,
                resource_path=contract.HEALTH_PATH,  # the stage is mapped at the domain's root
                enable_sni=True,
                request_interval=args.request_interval_seconds,
                failure_threshold=args.failure_threshold,
                measure_latency=True,
                tags={**args.tags, "Name": f"{contract.PROJECT}-{region}-health"},
                opts=child,
            )
            record_check = aws.route53.HealthCheck(
                f"{name}-guard-{region}",
                type="CALCULATED",
                child_healthchecks=[health_check.id, args.switch_health_check_ids[region]],
                child_health_threshold=RECORD_CHILDREN,
                tags={**args.tags, "Name": f"{contract.PROJECT}-{region}-health-and-switch"},
                opts=child,
            )
            aws.route53.Record(
                f"{name}-failover-{region}",
                zone_id=args.zone_id,
                name=args.api_domain,
                type="A",
                set_identifier=f"{endpoint.role.value}-{region}",
                failover_routing_policies=[{"type": endpoint.role.value.upper()}],
                health_check_id=record_check.id,
                aliases=[
                    {
                        "name": endpoint.custom_domain_target,
                        "zone_id": endpoint.custom_domain_zone_id,
                        # Adds API Gateway's own regional health to our deep check.
                        "evaluate_target_health": True,
                    }
                ],
                opts=child,
            )
            self.health_checks[region] = health_check
            self.record_health_checks[region] = record_check
            self.health_check_urls[region] = pulumi.Output.concat(
                "https://", endpoint.regional_host, contract.HEALTH_PATH
            )
        self.register_outputs(
            {
                "health_check_ids": {r: hc.id for r, hc in self.health_checks.items()},
                "health_check_urls": self.health_check_urls,
                "record_health_check_ids": {
                    r: hc.id for r, hc in self.record_health_checks.items()
                },
            }
        )
