"""Network layer of one region: a private-only VPC the functions run in.

No internet or NAT gateway: the functions reach DynamoDB and S3 through gateway endpoints and
SQS and SSM through interface endpoints, and every security group allows HTTPS only.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.infra import iam

HTTPS_PORT = 443
SUBNET_PREFIX_LENGTH = 20
PRIVATE_SUBNET_COUNT = 2  # one per availability zone; Lambda wants at least two for resilience
GATEWAY_ENDPOINT_SERVICES = ("dynamodb", "s3")
# The AWS APIs the functions reach besides DynamoDB and S3. X-Ray: Lambda's X-Ray daemon runs
# in the function's execution environment, whose traffic leaves through the function's VPC
# interfaces, and nothing documents an exemption; without a route traces vanish silently.
INTERFACE_ENDPOINT_SERVICES = ("sqs", "ssm", "xray", "secretsmanager")
# Zone IDs to avoid: use1-az3 refuses Lambda VPC configurations and several interface
# endpoints; usw1-az2 and apne1-az3 refuse new subnets in many accounts. Zone IDs, not names:
# names map to different zones in every account.
CONSTRAINED_ZONE_IDS = frozenset({"use1-az3", "usw1-az2", "apne1-az3"})


@dataclass(frozen=True, order=True)
class Zone:
    zone_id: str  # first: zones are ordered by ID, the same physical zones in every account
    name: str


def choose_zones(
    region: str,
    zone_names: Sequence[str],
    zone_ids: Sequence[str],
    offered: Sequence[Sequence[str]],
    count: int = PRIVATE_SUBNET_COUNT,
) -> list[Zone]:
    """The first `count` zones by ID that every endpoint service offers, constrained ones out.

    `offered` holds, per interface endpoint service, the names of the zones it is offered in.
    """
    usable = [
        Zone(zone_id, name)
        for name, zone_id in zip(zone_names, zone_ids, strict=True)
        if zone_id not in CONSTRAINED_ZONE_IDS and all(name in names for names in offered)
    ]
    if len(usable) < count:
        raise ValueError(
            f"{region} offers {len(usable)} zones where Lambda and the"
            f" {', '.join(INTERFACE_ENDPOINT_SERVICES)} endpoints all run (need {count}):"
            " choose another region"
        )
    return sorted(usable)[:count]


def region_zones(region: str, name: str, parent: pulumi.Resource) -> list[Zone]:
    """Looks up the region's standard zones and where its interface endpoints are offered."""
    zones = aws.get_availability_zones(
        region=region,
        state="available",
        filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
    )
    # The endpoint-service lookup takes no region argument: it asks its provider's region.
    provider = aws.Provider(
        f"{name}-lookups", region=region, opts=pulumi.ResourceOptions(parent=parent)
    )
    offered = [
        aws.ec2.get_vpc_endpoint_service(
            service_name=f"com.amazonaws.{region}.{service}",
            service_type="Interface",
            opts=pulumi.InvokeOptions(provider=provider),
        ).availability_zones
        for service in INTERFACE_ENDPOINT_SERVICES
    ]
    return choose_zones(region, zones.names, zones.zone_ids, offered)


@dataclass(frozen=True)
class NetworkArgs:
    region: str
    cidr_block: str  # distinct per region, so the VPCs could be peered later
    stack: str
    account_id: str
    key_arn: pulumi.Input[str]
    log_retention_days: int
    endpoint_policies: Mapping[str, iam.PolicyDocument]  # by service, for every endpoint
    tags: Mapping[str, str]


class Network(pulumi.ComponentResource):
    """VPC, private subnets in separate AZs, endpoints, the functions' group and flow logs."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        self.zones = region_zones(region, name, self)

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            region=region,
            cidr_block=args.cidr_block,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # interface endpoints answer on the services' own names
            tags={**args.tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        # Adopt the default security group and leave it without rules, so nothing uses it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            region=region,
            vpc_id=self.vpc.id,
            tags={**args.tags, "Name": f"{name}-default-unused"},
            opts=child,
        )
        self.region, self.cidr_block = region, args.cidr_block
        self.route_table = route_table = aws.ec2.RouteTable(
            f"{name}-private-rt",
            region=region,
            vpc_id=self.vpc.id,
            tags={**args.tags, "Name": f"{name}-private"},
            opts=child,
        )
        subnet_cidrs = ipaddress.ip_network(args.cidr_block).subnets(
            new_prefix=SUBNET_PREFIX_LENGTH
        )
        self.private_subnets: list[aws.ec2.Subnet] = []
        for zone, cidr in zip(self.zones, subnet_cidrs, strict=False):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{zone.zone_id}",
                region=region,
                vpc_id=self.vpc.id,
                availability_zone_id=zone.zone_id,
                cidr_block=str(cidr),
                map_public_ip_on_launch=False,
                tags={**args.tags, "Name": f"{name}-private-{zone.zone_id}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone.zone_id}-rt",
                region=region,
                subnet_id=subnet.id,
                route_table_id=route_table.id,
                opts=child,
            )
            self.private_subnets.append(subnet)

        self.function_security_group = aws.ec2.SecurityGroup(
            f"{name}-functions-sg",
            region=region,
            vpc_id=self.vpc.id,
            description="Lambda functions: HTTPS out to the VPC endpoints only",
            tags={**args.tags, "Name": f"{name}-functions"},
            opts=child,
        )
        self.endpoint_security_group = endpoint_security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            region=region,
            vpc_id=self.vpc.id,
            description="Interface endpoints: HTTPS in from the functions only",
            tags={**args.tags, "Name": f"{name}-endpoints"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-https-in",
            region=region,
            security_group_id=endpoint_security_group.id,
            referenced_security_group_id=self.function_security_group.id,
            ip_protocol="tcp",
            from_port=HTTPS_PORT,
            to_port=HTTPS_PORT,
            description="HTTPS from the functions",
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-functions-https-to-endpoints",
            region=region,
            security_group_id=self.function_security_group.id,
            referenced_security_group_id=endpoint_security_group.id,
            ip_protocol="tcp",
            from_port=HTTPS_PORT,
            to_port=HTTPS_PORT,
            description="HTTPS to the interface endpoints",
            opts=child,
        )

        self.gateway_endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        for service in GATEWAY_ENDPOINT_SERVICES:
            endpoint = aws.ec2.VpcEndpoint(
                f"{name}-{service}-gateway",
                region=region,
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=[route_table.id],
                policy=json.dumps(args.endpoint_policies[service]),
                tags={**args.tags, "Name": f"{name}-{service}"},
                opts=child,
            )
            # Gateway endpoints are reached through the service's prefix list, not a group.
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-functions-https-to-{service}",
                region=region,
                security_group_id=self.function_security_group.id,
                prefix_list_id=endpoint.prefix_list_id,
                ip_protocol="tcp",
                from_port=HTTPS_PORT,
                to_port=HTTPS_PORT,
                description=f"HTTPS to {service} through its gateway endpoint",
                opts=child,
            )
            self.gateway_endpoints[service] = endpoint

        self.interface_endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        for service in INTERFACE_ENDPOINT_SERVICES:
            self.interface_endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-{service}-interface",
                region=region,
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                policy=json.dumps(args.endpoint_policies[service]),
                subnet_ids=[subnet.id for subnet in self.private_subnets],
                security_group_ids=[endpoint_security_group.id],
                tags={**args.tags, "Name": f"{name}-{service}"},
                opts=child,
            )

        self._flow_logs(name, args)
        self.private_subnet_ids = [subnet.id for subnet in self.private_subnets]
        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "private_subnet_ids": self.private_subnet_ids,
                "function_security_group_id": self.function_security_group.id,
            }
        )

    def _flow_logs(self, name: str, args: NetworkArgs) -> None:
        """Record every connection attempt in the VPC, for investigations."""
        child = pulumi.ResourceOptions(parent=self)
        log_group_name = f"/{contract.PROJECT}/{args.stack}/vpc-flow-logs"
        log_group_arn = f"arn:aws:logs:{args.region}:{args.account_id}:log-group:{log_group_name}"
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            region=args.region,
            name=log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            tags=dict(args.tags),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=json.dumps(
                iam.service_assume_role_policy("vpc-flow-logs.amazonaws.com", args.account_id)
            ),
            description=f"VPC flow logs delivery in {args.region}",
            tags=dict(args.tags),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=json.dumps(iam.flow_log_policy(log_group_arn, args.region, args.account_id)),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            region=args.region,
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            tags={**args.tags, "Name": f"{name}-flow-logs"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
