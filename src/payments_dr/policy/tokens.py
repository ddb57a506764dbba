"""Pulumi resource type tokens the rules look at (as registered by pulumi-aws 7)."""

from typing import Final

DYNAMODB_TABLE: Final = "aws:dynamodb/table:Table"
DYNAMODB_TABLE_REPLICA: Final = "aws:dynamodb/tableReplica:TableReplica"

S3_BUCKET: Final = "aws:s3/bucket:Bucket"
S3_BUCKET_VERSIONING: Final = "aws:s3/bucketVersioning:BucketVersioning"
S3_BUCKET_ENCRYPTION: Final = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
S3_BUCKET_PUBLIC_ACCESS_BLOCK: Final = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_BUCKET_POLICY: Final = "aws:s3/bucketPolicy:BucketPolicy"
S3_BUCKET_REPLICATION: Final = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"

SQS_QUEUE: Final = "aws:sqs/queue:Queue"
SQS_REDRIVE_POLICY: Final = "aws:sqs/redrivePolicy:RedrivePolicy"
SQS_REDRIVE_ALLOW_POLICY: Final = "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy"

LAMBDA_FUNCTION: Final = "aws:lambda/function:Function"
LAMBDA_EVENT_SOURCE_MAPPING: Final = "aws:lambda/eventSourceMapping:EventSourceMapping"

IAM_ROLE: Final = "aws:iam/role:Role"
IAM_ROLE_POLICY: Final = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY: Final = "aws:iam/policy:Policy"
IAM_USER_POLICY: Final = "aws:iam/userPolicy:UserPolicy"
IAM_GROUP_POLICY: Final = "aws:iam/groupPolicy:GroupPolicy"
IAM_ROLE_POLICY_ATTACHMENT: Final = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
IAM_POLICY_ATTACHMENT: Final = "aws:iam/policyAttachment:PolicyAttachment"

APIGATEWAY_REST_API: Final = "aws:apigateway/restApi:RestApi"
APIGATEWAY_DOMAIN_NAME: Final = "aws:apigateway/domainName:DomainName"
APIGATEWAY_STAGE: Final = "aws:apigateway/stage:Stage"
APIGATEWAY_METHOD_SETTINGS: Final = "aws:apigateway/methodSettings:MethodSettings"
APIGATEWAY_ACCOUNT: Final = "aws:apigateway/account:Account"

ROUTE53_RECORD: Final = "aws:route53/record:Record"
ROUTE53_HEALTH_CHECK: Final = "aws:route53/healthCheck:HealthCheck"

CLOUDWATCH_METRIC_ALARM: Final = "aws:cloudwatch/metricAlarm:MetricAlarm"
SYNTHETICS_CANARY: Final = "aws:synthetics/canary:Canary"

WAFV2_WEB_ACL: Final = "aws:wafv2/webAcl:WebAcl"
WAFV2_WEB_ACL_ASSOCIATION: Final = "aws:wafv2/webAclAssociation:WebAclAssociation"

KMS_KEY: Final = "aws:kms/key:Key"
KMS_REPLICA_KEY: Final = "aws:kms/replicaKey:ReplicaKey"
SECRETS_MANAGER_SECRET: Final = "aws:secretsmanager/secret:Secret"

SQS_QUEUE_POLICY: Final = "aws:sqs/queuePolicy:QueuePolicy"
