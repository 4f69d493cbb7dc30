# hubgate on AWS: three Lambda functions (arm64, provided.al2023) behind an API Gateway HTTP API
# with the authorizer function as its REQUEST authorizer, SAS rules in Secrets Manager rotated by
# the token issuer. Build the zips first: scripts/package-lambda (README, Deploy on AWS).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  lambda_dir = coalesce(var.lambda_dir, "${path.module}/../../target/lambda-${var.architecture}")

  # One Lambda function per binary of the workspace (functions/*/Cargo.toml).
  functions = toset(["kafka-proxy", "token-issuer", "authorizer"])

  # Every route of the routers and the function serving it, but the authorizer's own
  # POST /v1/authorize (for other gateways: here the authorizer function is the API's
  # authorizer, and a public endpoint would only be a token-checking oracle). Kept equal to
  # hubgate_server::routes::ROUTES by functions/hubgate/tests/deploy.rs.
  routes = {
    "GET /v1/status"                                                              = "kafka-proxy"
    "GET /v1/audit"                                                               = "kafka-proxy"
    "GET /v1/metadata/brokers"                                                    = "kafka-proxy"
    "GET /v1/metadata/topics"                                                     = "kafka-proxy"
    "GET /v1/metadata/topics/{topic}/partitions"                                  = "kafka-proxy"
    "GET /v1/metadata/topics/{topic}/partitions/{partition}"                      = "kafka-proxy"
    "PUT /v1/topics/{topic}"                                                      = "kafka-proxy"
    "POST /v1/producer/topics/{topic}"                                            = "kafka-proxy"
    "GET /v1/consumer/topics/{topic}/partitions/{partition}/offsets/{offset}"     = "kafka-proxy"
    "POST /v1/tokens"                                                             = "token-issuer"
    "POST /{hub}/messages"                                                        = "kafka-proxy"
    "POST /{hub}/partitions/{partition}/messages"                                 = "kafka-proxy"
    "POST /{hub}/publishers/{publisher}/messages"                                 = "kafka-proxy"
    "POST /{hub}/publisher/{publisher}/messages"                                  = "kafka-proxy"
    "PUT /{hub}/revokedpublishers/{publisher}"                                    = "kafka-proxy"
    "DELETE /{hub}/revokedpublishers/{publisher}"                                 = "kafka-proxy"
    "GET /{hub}/revokedpublishers"                                                = "kafka-proxy"
    "GET /{hub}/consumergroups"                                                   = "kafka-proxy"
    "PUT /{hub}/consumergroups/{consumergroup}"                                   = "kafka-proxy"
    "GET /{hub}/consumergroups/{consumergroup}"                                   = "kafka-proxy"
    "DELETE /{hub}/consumergroups/{consumergroup}"                                = "kafka-proxy"
    "GET /{hub}/consumergroups/{consumergroup}/partitions"                        = "kafka-proxy"
    "GET /{hub}/consumergroups/{consumergroup}/partitions/{partition}"            = "kafka-proxy"
    "GET /{hub}/consumergroups/{consumergroup}/partitions/{partition}/messages"   = "kafka-proxy"
    "GET /{hub}/consumergroups/{consumergroup}/partitions/{partition}/checkpoint" = "kafka-proxy"
    "PUT /{hub}/consumergroups/{consumergroup}/partitions/{partition}/checkpoint" = "kafka-proxy"
  }

  # The API description needs no credential: its route (api.tf) has no authorizer.
  openapi_route_function = "kafka-proxy"

  # API Gateway matches paths case-sensitively; Event Hubs keywords are case-insensitive
  # (`/hub/RevokedPublishers/x`). Everything no route above matches goes to kafka-proxy,
  # whose router matches keywords case-insensitively and answers anything else with a JSON 404.
  default_route_function = "kafka-proxy"

  kafka_sasl = var.kafka_auth == "iam" ? {
    # MSK IAM: tokens signed with the function's role (README, Broker credentials without
    # passwords); no password anywhere.
    HUBGATE_KAFKA__SASL_MECHANISM = "OAUTHBEARER"
    HUBGATE_KAFKA__OAUTH__SOURCE  = "aws_msk_iam"
    HUBGATE_KAFKA__OAUTH__REGION  = var.region
    } : var.kafka_sasl_mechanism == "" ? {} : var.kafka_sasl_secret_arn != "" ? {
    # The user and password from the secret, read at start-up; none in the environment.
    HUBGATE_KAFKA__SASL_MECHANISM = var.kafka_sasl_mechanism
    HUBGATE_KAFKA__SASL_SECRET_ID = var.kafka_sasl_secret_arn
    } : {
    HUBGATE_KAFKA__SASL_MECHANISM = var.kafka_sasl_mechanism
    HUBGATE_KAFKA__SASL_USERNAME  = var.kafka_sasl_username
    HUBGATE_KAFKA__SASL_PASSWORD  = var.kafka_sasl_password
  }

  # MSK IAM resources (kafka_auth = "iam"): the cluster, its topics (ARN .../topic/<cluster
  # name>/<uuid>/<topic>), hubgate's own store topics (revocations, consumer groups: every
  # name starting __hubgate_), and the hubs (var.hubs, or every topic when it is empty).
  msk_topic_prefix = replace(var.msk_cluster_arn, ":cluster/", ":topic/")
  msk_store_topics = ["${local.msk_topic_prefix}/__hubgate_*"]
  msk_hub_topics   = length(var.hubs) == 0 ? ["${local.msk_topic_prefix}/*"] : [for h in var.hubs : "${local.msk_topic_prefix}/${h}"]

  environment = merge({
    HUBGATE_NAMESPACE                = var.namespace
    HUBGATE_HUBS                     = join(",", var.hubs)
    HUBGATE_KAFKA__BOOTSTRAP_SERVERS = join(",", var.kafka_bootstrap_servers)
    HUBGATE_KAFKA__TLS               = tostring(var.kafka_tls)
    HUBGATE_SECRET_ID                = aws_secretsmanager_secret.sas_rules.arn
    HUBGATE_LOG_FORMAT               = "json"
    # A long poll must answer before API Gateway's 30 s integration timeout and the
    # function's 29 s timeout, with time left for the read itself.
    HUBGATE_LIMITS__MAX_WAIT_MS = "25000"
    RUST_LOG                    = var.log_level
    },
    length(var.cors_allowed_origins) > 0 ? { HUBGATE_CORS__ALLOWED_ORIGINS = join(",", var.cors_allowed_origins) } : {},
    # Metrics as CloudWatch EMF lines, one per invocation (README, Metrics).
    var.metrics_enabled ? { HUBGATE_METRICS__ENABLED = "true" } : {},
    # Traces to an OTLP/HTTP endpoint (an ADOT collector layer, say; README, Traces).
    var.traces_endpoint != "" ? { HUBGATE_TRACES__ENABLED = "true", HUBGATE_TRACES__ENDPOINT = var.traces_endpoint } : {},
    # The audit log (README, Audit log); the environment is encrypted with the KMS key below.
    var.audit_key != "" ? { HUBGATE_AUDIT__KEY = var.audit_key } : {},
  local.kafka_sasl, var.extra_environment)

  in_vpc = length(var.subnet_ids) > 0
}

# --- Keys: one customer-managed KMS key for the secret, the environment and the logs ---------

resource "aws_kms_key" "hubgate" {
  description         = "${var.name}: SAS rules secret, function environment, logs"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "hubgate" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.hubgate.key_id
}

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:The key policy must let the account administer its own key; the resource "*" of a key policy is this key.
  # checkov:skip=CKV_AWS_111:As above: a key policy's resource is always the key itself.
  # checkov:skip=CKV_AWS_356:As above: "*" in a key policy means this key.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

# --- SAS rules: a Secrets Manager secret, rotated by the token issuer ------------------------

resource "aws_secretsmanager_secret" "sas_rules" {
  name        = "${var.name}/sas-rules"
  description = "hubgate SAS rules: {\"rules\": [{\"name\", \"rights\", \"hub\"?, \"primary_key\", \"secondary_key\"?}]}. Put the first value with put-secret-value (README, Deploy on AWS)."
  kms_key_id  = aws_kms_key.hubgate.arn
}

resource "aws_secretsmanager_secret_rotation" "sas_rules" {
  secret_id           = aws_secretsmanager_secret.sas_rules.id
  rotation_lambda_arn = aws_lambda_function.fn["token-issuer"].arn
  rotation_rules {
    automatically_after_days = var.rotation_days
  }
  depends_on = [aws_lambda_permission.secretsmanager_rotation]
}

resource "aws_lambda_permission" "secretsmanager_rotation" {
  statement_id  = "SecretsManagerRotates"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["token-issuer"].function_name
  principal     = "secretsmanager.amazonaws.com"
  source_arn    = aws_secretsmanager_secret.sas_rules.arn
}

resource "aws_cloudwatch_event_rule" "rotation" {
  count               = var.rotation_schedule == null ? 0 : 1
  name                = "${var.name}-rotate-sas-keys"
  description         = "Rotates hubgate's SAS keys (the token issuer takes the Scheduled Event)."
  schedule_expression = var.rotation_schedule
}

resource "aws_cloudwatch_event_target" "rotation" {
  count = var.rotation_schedule == null ? 0 : 1
  rule  = aws_cloudwatch_event_rule.rotation[0].name
  arn   = aws_lambda_function.fn["token-issuer"].arn
}

resource "aws_lambda_permission" "rotation_schedule" {
  count         = var.rotation_schedule == null ? 0 : 1
  statement_id  = "EventBridgeRotates"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["token-issuer"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.rotation[0].arn
}
