"""The simulated AWS account `payments-dr synth` evaluates the program against.

`SimulatedAws` answers the program's invokes and computes plausible provider values for each
resource, behaving like the provider where the program depends on it; `RecordingMonitor` is
the mock engine that records every registration for the tests and the policy rules.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Final

import pulumi
from pulumi.dynamic.dynamic import PROVIDER_KEY
from pulumi.runtime import mocks

from payments_dr import contract

SIMULATED_ACCOUNT_ID = "123456789012"
GLOBAL_REGION = "global"  # resources of global services (IAM, Route 53) and components
STREAM_LABEL = "2026-01-01T00:00:00.000"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
REPLICA_STREAM_TYPE = "pulumi-python:dynamic/dynamodb:ReplicaStream"


def _digest(*parts: str, length: int = 12) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


# Zone names map to zone IDs differently in every account. This account's us-east-1 mapping,
# with use1-az3, the constrained zone where the interface endpoints are not offered.
US_EAST_1_ZONES: Final = {
    "us-east-1a": "use1-az4",
    "us-east-1b": "use1-az6",
    "us-east-1c": "use1-az1",
    "us-east-1d": "use1-az2",
    "us-east-1e": "use1-az3",
    "us-east-1f": "use1-az5",
}
NO_ENDPOINT_ZONES: Final = frozenset({"use1-az3"})
_DIRECTIONS: Final = {
    "east": "e",
    "west": "w",
    "central": "c",
    "north": "n",
    "south": "s",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


def simulated_zones(region: str) -> dict[str, str]:
    """Zone name -> zone ID of the simulated account in `region`."""
    if region == "us-east-1":
        return dict(US_EAST_1_ZONES)
    area, direction, number = region.split("-")
    prefix = f"{area}{_DIRECTIONS[direction]}{number}"
    return {f"{region}{letter}": f"{prefix}-az{index}" for index, letter in enumerate("abc", 1)}


class SimulatedAws(pulumi.runtime.Mocks):
    """Answers the program's invokes and computes plausible provider values per resource."""

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            account = SIMULATED_ACCOUNT_ID
            return {
                "accountId": account,
                "arn": f"arn:aws:iam::{account}:user/simulated",
                "userId": "SIMULATED",
                "id": account,
            }, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            region = args.args["region"]
            zones = simulated_zones(region)
            names = list(zones)
            return {
                "id": region,
                "names": names,
                "zoneIds": [zones[name] for name in names],
                "groupNames": [region] * len(names),
            }, []
        if args.token == "aws:ec2/getVpcEndpointService:getVpcEndpointService":
            service_name = args.args["serviceName"]  # com.amazonaws.<region>.<service>
            region = service_name.split(".")[2]
            zones = simulated_zones(region)
            offered = [name for name, zone_id in zones.items() if zone_id not in NO_ENDPOINT_ZONES]
            return {
                "id": service_name,
                "serviceName": service_name,
                "serviceType": args.args.get("serviceType", "Interface"),
                "availabilityZones": offered,
                "region": region,
            }, []
        if args.token == "aws:secretsmanager/getRandomPassword:getRandomPassword":
            # A stand-in: the real value comes from Secrets Manager and never reaches the tests.
            length = int(args.args.get("passwordLength", 32))
            return {"id": "random", "randomPassword": _digest("simulated", length=length)}, []
        raise ValueError(f"the simulation has no answer for invoke {args.token}")

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        region = inputs.get("region", contract.DEFAULT_PRIMARY_REGION)
        account = SIMULATED_ACCOUNT_ID
        token = _digest(args.typ, args.name)
        resource_id = f"sim-{token}"
        state: dict[str, Any] = dict(inputs)
        kind = args.typ

        def put(**values: Any) -> None:
            state.update(values)

        if kind == "aws:kms/key:Key":
            resource_id = f"mrk-{_digest(args.name, length=32)}"
            put(keyId=resource_id, arn=f"arn:aws:kms:{region}:{account}:key/{resource_id}")
        elif kind == "aws:kms/replicaKey:ReplicaKey":
            key_id = inputs["primaryKeyArn"].rsplit("/", 1)[1]  # replicas share the key id
            resource_id = key_id
            put(keyId=key_id, arn=f"arn:aws:kms:{region}:{account}:key/{key_id}")
        elif kind == "aws:dynamodb/table:Table":
            resource_id = inputs["name"]
            put(**_table_state(region, account, inputs))
        elif kind == "aws:sqs/queue:Queue":
            name = inputs["name"]
            resource_id = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
            put(arn=f"arn:aws:sqs:{region}:{account}:{name}", url=resource_id)
        elif kind == "aws:s3/bucket:Bucket":
            resource_id = inputs["bucket"]
            put(
                arn=f"arn:aws:s3:::{resource_id}",
                bucketRegionalDomainName=f"{resource_id}.s3.{region}.amazonaws.com",
            )
        elif kind == "aws:lambda/function:Function":
            resource_id = inputs["name"]
            arn = f"arn:aws:lambda:{region}:{account}:function:{resource_id}"
            put(
                arn=arn,
                invokeArn=(
                    f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
                ),
            )
        elif kind == "aws:apigateway/restApi:RestApi":
            resource_id = _digest(args.name, length=10)
            put(
                rootResourceId=_digest(resource_id, length=10),
                executionArn=f"arn:aws:execute-api:{region}:{account}:{resource_id}",
                arn=f"arn:aws:apigateway:{region}::/restapis/{resource_id}",
            )
        elif kind == "aws:apigateway/stage:Stage":
            host = f"{inputs['restApi']}.execute-api.{region}.amazonaws.com"
            put(
                invokeUrl=f"https://{host}/{inputs['stageName']}",
                arn=(
                    f"arn:aws:apigateway:{region}::/restapis/{inputs['restApi']}"
                    f"/stages/{inputs['stageName']}"
                ),
            )
        elif kind == "aws:wafv2/webAcl:WebAcl":
            put(arn=f"arn:aws:wafv2:{region}:{account}:regional/webacl/{inputs['name']}/{token}")
        elif kind == "aws:apigateway/domainName:DomainName":
            put(
                regionalDomainName=(
                    f"d-{_digest(args.name, length=10)}.execute-api.{region}.amazonaws.com"
                ),
                regionalZoneId=f"ZSIM{_digest(region, length=10).upper()}",
                arn=f"arn:aws:apigateway:{region}::/domainnames/{inputs['domainName']}",
            )
        elif kind == "aws:acm/certificate:Certificate":
            domain = inputs["domainName"]
            label = _digest(account, domain, length=32)  # ACM reuses it across regions
            put(
                arn=f"arn:aws:acm:{region}:{account}:certificate/{token}",
                domainValidationOptions=[
                    {
                        "domainName": domain,
                        "resourceRecordName": f"_{label}.{domain}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{label[::-1]}.acm-validations.aws.",
                    }
                ],
            )
        elif kind == "aws:route53/zone:Zone":
            resource_id = f"ZSIM{token.upper()}"
            put(
                zoneId=resource_id,
                nameServers=[f"ns-{n}.awsdns-sim.example" for n in range(1, 5)],
                arn=f"arn:aws:route53:::hostedzone/{resource_id}",
            )
        elif kind == "aws:route53/record:Record":
            put(fqdn=str(inputs.get("name", "")).rstrip("."))
        elif kind == "aws:iam/role:Role":
            resource_id = inputs.get("name") or f"{args.name}-{token[:7]}"
            path = inputs.get("path") or "/"  # IAM puts a role's path into its ARN
            put(name=resource_id, arn=f"arn:aws:iam::{account}:role{path}{resource_id}")
        elif kind == "aws:ec2/vpcEndpoint:VpcEndpoint":
            put(prefixListId=f"pl-{token[:8]}")
            if inputs.get("vpcEndpointType") == "Interface":
                # As AWS lists them: the regional endpoint-specific name, then one per zone.
                service = str(inputs["serviceName"]).rsplit(".", 1)[-1]
                endpoint = f"vpce-{token[:17]}"
                names = [f"{endpoint}.{service}.{region}.vpce.amazonaws.com"] + [
                    f"{endpoint}-{region}{zone}.{service}.{region}.vpce.amazonaws.com"
                    for zone in "ab"
                ]
                put(
                    dnsEntries=[
                        {"dnsName": name, "hostedZoneId": "Z7HUB22UULQXV"} for name in names
                    ]
                )
        elif kind == "aws:secretsmanager/secret:Secret":
            # Secrets Manager appends six random characters to the name.
            resource_id = (
                f"arn:aws:secretsmanager:{region}:{account}:secret:{inputs['name']}-{token[:6]}"
            )
            put(arn=resource_id)
        elif kind == "aws:sns/topic:Topic":
            put(arn=f"arn:aws:sns:{region}:{account}:{inputs['name']}")
        elif kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
            put(arn=f"arn:aws:cloudwatch:{region}:{account}:alarm:{inputs['name']}")
        elif kind == "aws:cloudwatch/logGroup:LogGroup":
            resource_id = inputs["name"]
            put(arn=f"arn:aws:logs:{region}:{account}:log-group:{resource_id}")
        elif kind == REPLICA_STREAM_TYPE:
            # What the program's provider reports once it has enabled the replica's stream.
            name, stream_region = inputs["table_name"], inputs["region"]
            resource_id = f"{name}@{stream_region}"
            put(
                stream_arn=(
                    f"arn:aws:dynamodb:{stream_region}:{account}:table/{name}/stream/{STREAM_LABEL}"
                )
            )
            return resource_id, state
        elif kind == "aws:acm/certificateValidation:CertificateValidation":
            put(certificateArn=inputs["certificateArn"])
        elif kind.startswith("aws:route53recoverycontrol/"):
            put(**_recovery_control_state(kind, account, token, inputs))
        if "arn" not in state:
            service = kind.split(":")[1].split("/")[0]
            state["arn"] = f"arn:aws:{service}:{region}:{account}:{args.name}/{resource_id}"
        return resource_id, state


# Where an ARC cluster's data plane answers: five endpoints in five regions, as AWS lists them.
ARC_CLUSTER_ENDPOINT_REGIONS = (
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-2",
    "ap-northeast-1",
)


def _recovery_control_state(
    kind: str, account: str, token: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    prefix = f"arn:aws:route53-recovery-control::{account}"
    if kind.endswith("/cluster:Cluster"):
        return {
            "arn": f"{prefix}:cluster/{token}",
            "clusterEndpoints": [
                {"endpoint": f"https://host-{token[:6]}.{region}.example.aws", "region": region}
                for region in ARC_CLUSTER_ENDPOINT_REGIONS
            ],
            "status": "DEPLOYED",
        }
    if kind.endswith("/controlPanel:ControlPanel"):
        return {"arn": f"{prefix}:controlpanel/{token}", "status": "DEPLOYED"}
    if kind.endswith("/routingControl:RoutingControl"):
        panel = str(inputs.get("controlPanelArn", f"{prefix}:controlpanel/none"))
        return {"arn": f"{panel}/routingcontrol/{token}", "status": "DEPLOYED"}
    return {"arn": f"{prefix}:safetyrule/{token}", "status": "DEPLOYED"}


def _table_state(region: str, account: str, inputs: dict[str, Any]) -> dict[str, Any]:
    name = inputs["name"]
    label = STREAM_LABEL

    def arn(in_region: str) -> str:
        return f"arn:aws:dynamodb:{in_region}:{account}:table/{name}"

    def replica_state(replica: dict[str, Any]) -> dict[str, Any]:
        replica_arn = arn(replica["regionName"])
        # As the provider: under strong consistency it enables the stream on the primary
        # table only, so a replica reports none (terraform-provider-aws#48213).
        if replica.get("consistencyMode") == "STRONG":
            return {**replica, "arn": replica_arn, "streamArn": "", "streamLabel": ""}
        return {
            **replica,
            "arn": replica_arn,
            "streamArn": f"{replica_arn}/stream/{label}",
            "streamLabel": label,
        }

    replicas = [replica_state(replica) for replica in inputs.get("replicas", [])]
    return {
        "arn": arn(region),
        "streamArn": f"{arn(region)}/stream/{label}",
        "streamLabel": label,
        "replicas": replicas,
    }


def _is_secret(value: Any) -> bool:
    fields = value.struct_value.fields if value.HasField("struct_value") else {}
    signature = fields.get(pulumi.runtime.rpc._special_sig_key)
    return (
        signature is not None and signature.string_value == pulumi.runtime.rpc._special_secret_sig
    )


class RecordingMonitor(mocks.MockMonitor):
    """The mock engine, recording each registration's inputs, parent and dependencies."""

    def __init__(self, simulated: pulumi.runtime.Mocks) -> None:
        super().__init__(simulated)
        self.registrations: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine makes them: the parent's whole type chain, without the root
        stack's type (the mock engine keeps only the last parent type and the stack's)."""
        if parent:
            parent_chain = parent.split("::")[2]
            if parent_chain != ROOT_STACK_TYPE:
                type_ = f"{parent_chain}${type_}"
        return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{type_}::{name}"

    def RegisterResource(self, request: Any) -> Any:  # the engine's RPC name
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
        inputs.pop(PROVIDER_KEY, None)  # a dynamic resource's serialized code
        record = {
            "type": request.type,
            "name": request.name,
            "urn": response.urn,
            "region": inputs.get("region", GLOBAL_REGION),
            "parent": request.parent or None,
            "custom": bool(request.custom),
            "inputs": inputs,
            "dependencies": sorted(request.dependencies),
            "ignore_changes": sorted(request.ignoreChanges),
            "retain_on_delete": bool(request.retainOnDelete),
            "protect": bool(request.protect),
            # Inputs the program marked secret: Pulumi encrypts them in its state.
            "secret_inputs": sorted(
                key for key, value in request.object.fields.items() if _is_secret(value)
            ),
        }
        with self._lock:
            self.registrations.append(record)
        return response
