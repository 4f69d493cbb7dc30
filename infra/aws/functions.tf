# The three functions, each with its own role holding only the actions it uses, and its log group;
# and, with streams_function_url, kafka-proxy a second time for event streams (streams.tf).

locals {
  # Seconds each function may run: kafka-proxy stays under API Gateway's 30 s integration
  # limit; the token issuer also runs the four rotation steps.
  timeouts = {
    "kafka-proxy"  = 29
    "token-issuer" = 60
    "authorizer"   = 10
  }

  # Every Lambda function: its code (and role: the binary's), timeout and own settings.
  lambdas = merge(
    { for f in local.functions : f => { code = f, timeout = local.timeouts[f], environment = {} } },
    var.streams_function_url ? { (local.streams_function) = local.streams_lambda } : {},
  )
}

resource "aws_cloudwatch_log_group" "fn" {
  for_each          = local.lambdas
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.hubgate.arn
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fn" {
  for_each           = local.functions
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "fn" {
  for_each = local.functions

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for k, l in local.lambdas : "${aws_cloudwatch_log_group.fn[k].arn}:*" if l.code == each.key]
  }
  statement {
    sid       = "ReadSasRules"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.sas_rules.arn]
  }
  statement {
    sid       = "DecryptSecretAndEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.hubgate.arn]
  }

  # Only the token issuer writes the secret: the four rotation steps and scheduled rotation.
  dynamic "statement" {
    for_each = each.key == "token-issuer" ? [1] : []
    content {
      sid = "RotateSasRules"
      actions = [
        "secretsmanager:DescribeSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
      ]
      resources = [aws_secretsmanager_secret.sas_rules.arn]
    }
  }
  dynamic "statement" {
    for_each = each.key == "token-issuer" ? [1] : []
    content {
      sid       = "EncryptNewSecretVersions"
      actions   = ["kms:GenerateDataKey"]
      resources = [aws_kms_key.hubgate.arn]
    }
  }

  # The Kafka SASL secret (kafka_sasl_secret_arn), read once at start-up.
  dynamic "statement" {
    for_each = var.kafka_auth == "sasl" && var.kafka_sasl_secret_arn != "" ? [1] : []
    content {
      sid       = "ReadKafkaSaslSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [var.kafka_sasl_secret_arn]
    }
  }
  dynamic "statement" {
    for_each = var.kafka_auth == "sasl" && var.kafka_sasl_secret_kms_key_arn != "" ? [1] : []
    content {
      sid       = "DecryptKafkaSaslSecret"
      actions   = ["kms:Decrypt"]
      resources = [var.kafka_sasl_secret_kms_key_arn]
    }
  }

  # MSK IAM (kafka_auth = "iam"): each function only what it does. Every function connects
  # and reads the revocation store (metadata of a topic needs DescribeTopic; the start-up check
  # that a store is compacted needs DescribeTopicDynamicConfiguration; a store is created by
  # whichever function first needs it); kafka-proxy and the token issuer write the stores
  # (revocations, consumer groups); kafka-proxy reads and writes the hubs and creates topics
  # (PUT /v1/topics, Manage); the authorizer only looks hubs up.
  dynamic "statement" {
    for_each = var.kafka_auth == "iam" ? [1] : []
    content {
      sid       = "MskConnect"
      actions   = ["kafka-cluster:Connect"]
      resources = [var.msk_cluster_arn]
    }
  }
  dynamic "statement" {
    for_each = var.kafka_auth == "iam" ? [1] : []
    content {
      sid = "MskStoreTopics"
      actions = concat(
        ["kafka-cluster:DescribeTopic", "kafka-cluster:DescribeTopicDynamicConfiguration", "kafka-cluster:ReadData", "kafka-cluster:CreateTopic"],
        each.key == "authorizer" ? [] : ["kafka-cluster:WriteData"],
      )
      resources = local.msk_store_topics
    }
  }
  dynamic "statement" {
    for_each = var.kafka_auth == "iam" ? [1] : []
    content {
      sid = "MskHubs"
      actions = each.key == "kafka-proxy" ? [
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:ReadData",
        "kafka-cluster:WriteData",
        "kafka-cluster:CreateTopic",
      ] : ["kafka-cluster:DescribeTopic"]
      resources = local.msk_hub_topics
    }
  }

  # X-Ray and VPC network interfaces have no resource-level permissions: "*" is the only form.
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
  dynamic "statement" {
    for_each = local.in_vpc ? [1] : []
    content {
      sid = "VpcNetworkInterfaces"
      actions = [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "fn" {
  for_each = local.functions
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.fn[each.key].id
  policy   = data.aws_iam_policy_document.fn[each.key].json

  lifecycle {
    precondition {
      condition     = var.kafka_auth != "iam" || var.msk_cluster_arn != ""
      error_message = "kafka_auth = \"iam\" needs msk_cluster_arn (the roles are granted the cluster's kafka-cluster actions)."
    }
  }
}

resource "aws_lambda_function" "fn" {
  # checkov:skip=CKV_AWS_116:Invoked synchronously only (API Gateway, Secrets Manager rotation, EventBridge retries itself); there are no asynchronous events for a dead-letter queue to keep.
  # checkov:skip=CKV_AWS_272:The zips are built from this repository by scripts/package-lambda; add an aws_lambda_code_signing_config when your pipeline signs them with AWS Signer.
  # checkov:skip=CKV_AWS_117:A VPC is needed only to reach a private Kafka; set subnet_ids to run the functions in one (vpc_config below).
  for_each = local.lambdas

  function_name                  = "${var.name}-${each.key}"
  description                    = "hubgate ${each.key}"
  role                           = aws_iam_role.fn[each.value.code].arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  filename                       = "${local.lambda_dir}/${each.value.code}/bootstrap.zip"
  source_code_hash               = filebase64sha256("${local.lambda_dir}/${each.value.code}/bootstrap.zip")
  memory_size                    = var.memory_mb
  timeout                        = each.value.timeout
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.hubgate.arn

  environment {
    variables = merge(local.environment, each.value.environment)
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text" # hubgate writes JSON lines itself
    log_group  = aws_cloudwatch_log_group.fn[each.key].name
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  depends_on = [aws_iam_role_policy.fn]
}
