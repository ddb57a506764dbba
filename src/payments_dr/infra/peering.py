"""Private reach from each region's functions to the other region's SQS.

A payment the local table does not confirm is queued in the peer region (see
service.api), so its 202 survives the loss of this region. The functions run in private
subnets without internet or NAT, so they reach the peer's SQS through an inter-Region VPC
peering connection and the peer's own SQS interface endpoint, by its endpoint-specific DNS
name (public DNS, private addresses: AWS documents this way of reaching an interface endpoint
from a peered VPC). SQS is not among the services offered through cross-Region PrivateLink.
Only HTTPS to the peer's endpoints is allowed across the peering; the endpoint policies
still admit only this account's calls to the stack's queues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from payments_dr.infra.network import HTTPS_PORT, Network


@dataclass(frozen=True)
class RegionPeeringArgs:
    requester: Network  # the primary region's network
    accepter: Network
    tags: Mapping[str, str]


def regional_endpoint_url(dns_entries: Sequence[Any] | None) -> str:
    """The endpoint-specific regional name (vpce-...) of an interface endpoint, as a URL.

    Interface endpoints list a regional name, one per zone (the zone name appended to the
    endpoint id) and, with private DNS, the service's own name; the regional one is the
    shortest of the vpce- names.
    """
    names = sorted(
        (str(_dns_name(entry)) for entry in dns_entries or []),
        key=len,
    )
    regional = [name for name in names if name.startswith("vpce-")]
    if not regional:
        raise ValueError("the interface endpoint reports no endpoint-specific DNS name")
    return f"https://{regional[0]}"


def _dns_name(entry: Any) -> str:
    return str(entry["dns_name"] if isinstance(entry, Mapping) else entry.dns_name)


class RegionPeering(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: RegionPeeringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:RegionPeering", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        requester, accepter = args.requester, args.accepter
        connection = aws.ec2.VpcPeeringConnection(
            f"{name}-connection",
            region=requester.region,
            vpc_id=requester.vpc.id,
            peer_vpc_id=accepter.vpc.id,
            peer_region=accepter.region,
            tags={**args.tags, "Name": f"{name}-{requester.region}-{accepter.region}"},
            opts=child,
        )
        accepted = aws.ec2.VpcPeeringConnectionAccepter(
            f"{name}-accepter",
            region=accepter.region,
            vpc_peering_connection_id=connection.id,
            auto_accept=True,
            tags={**args.tags, "Name": f"{name}-{requester.region}-{accepter.region}"},
            opts=child,
        )
        after_acceptance = pulumi.ResourceOptions(parent=self, depends_on=[accepted])
        for local, remote in ((requester, accepter), (accepter, requester)):
            prefix = f"{name}-{local.region}"
            aws.ec2.Route(
                f"{prefix}-to-peer",
                region=local.region,
                route_table_id=local.route_table.id,
                destination_cidr_block=remote.cidr_block,
                vpc_peering_connection_id=connection.id,
                opts=after_acceptance,
            )
            aws.vpc.SecurityGroupEgressRule(
                f"{prefix}-functions-https-to-peer-endpoints",
                region=local.region,
                security_group_id=local.function_security_group.id,
                cidr_ipv4=remote.cidr_block,
                ip_protocol="tcp",
                from_port=HTTPS_PORT,
                to_port=HTTPS_PORT,
                description=f"HTTPS to the interface endpoints in {remote.region}",
                opts=child,
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{prefix}-endpoints-https-from-peer",
                region=local.region,
                security_group_id=local.endpoint_security_group.id,
                cidr_ipv4=remote.cidr_block,
                ip_protocol="tcp",
                from_port=HTTPS_PORT,
                to_port=HTTPS_PORT,
                description=f"HTTPS from the functions in {remote.region}",
                opts=child,
            )
        # Where each region's SQS is reached from the other one.
        self.sqs_endpoints: dict[str, pulumi.Output[str]] = {
            network.region: network.interface_endpoints["sqs"].dns_entries.apply(
                regional_endpoint_url
            )
            for network in (requester, accepter)
        }
        self.register_outputs({"sqs_endpoints": self.sqs_endpoints})
