variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Prefix of every resource name (functions, roles, API, secret)."
  type        = string
  default     = "hubgate"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "name: lower-case letters, digits and '-', at most 31 characters, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "architecture" {
  description = "Lambda architecture: arm64 (default, cheaper) or x86_64. Must match the build (scripts/package-lambda)."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "lambda_dir" {
  description = "Directory holding <function>/bootstrap.zip as built by scripts/package-lambda (default: target/lambda-<architecture> of this repository)."
  type        = string
  default     = null
}

variable "namespace" {
  description = "Host name SAS tokens are scoped to (sr=https://<namespace>/...). Usually the API's custom domain; any port is ignored."
  type        = string
}

variable "hubs" {
  description = "Hubs (Kafka topics) reachable through the gateway. Empty: every topic except internal ones."
  type        = list(string)
  default     = []
}

variable "kafka_bootstrap_servers" {
  description = "host:port of one or more Kafka brokers, e.g. MSK's bootstrap brokers (TLS 9094, SASL/SCRAM 9096, plaintext 9092)."
  type        = list(string)
  validation {
    condition     = length(var.kafka_bootstrap_servers) > 0
    error_message = "Give at least one bootstrap server."
  }
}

variable "kafka_tls" {
  description = "Connect to Kafka over TLS (verified against the system's root certificates; MSK, Confluent Cloud and the Event Hubs Kafka endpoint use public CAs)."
  type        = bool
  default     = true
}

variable "kafka_auth" {
  description = "How the functions authenticate to Kafka: \"sasl\" (kafka_sasl_mechanism with a user and password, or no SASL) or \"iam\" (Amazon MSK IAM access control: SASL/OAUTHBEARER tokens signed with each function's own role, no password; MSK Serverless accepts only this; port 9098, kafka_tls = true)."
  type        = string
  default     = "sasl"
  validation {
    condition     = contains(["sasl", "iam"], var.kafka_auth)
    error_message = "kafka_auth must be \"sasl\" or \"iam\"."
  }
}

variable "msk_cluster_arn" {
  description = "With kafka_auth = \"iam\": the MSK cluster's ARN (arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>). Each function's role gets only the kafka-cluster actions it uses on this cluster and its topics."
  type        = string
  default     = ""
  validation {
    condition     = var.msk_cluster_arn == "" || can(regex("^arn:[^:]+:kafka:[^:]+:[0-9]+:cluster/[^/]+/[^/]+$", var.msk_cluster_arn))
    error_message = "msk_cluster_arn must be an MSK cluster ARN: arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>."
  }
}

variable "kafka_sasl_mechanism" {
  description = "SASL mechanism: \"\" (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (MSK SASL/SCRAM: SCRAM-SHA-512; Confluent Cloud and Event Hubs: PLAIN)."
  type        = string
  default     = ""
  validation {
    condition     = contains(["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], var.kafka_sasl_mechanism)
    error_message = "kafka_sasl_mechanism must be \"\", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
  }
}

variable "kafka_sasl_username" {
  description = "SASL user name (with kafka_sasl_mechanism)."
  type        = string
  default     = ""
}

variable "kafka_sasl_secret_arn" {
  description = "With kafka_sasl_mechanism: the Secrets Manager secret holding {\"username\", \"password\"} (MSK's SCRAM secrets, AmazonMSK_*, have this form). The functions read it at start-up (kafka.sasl_secret_id); no password sits in their environment. Preferred over kafka_sasl_username/kafka_sasl_password."
  type        = string
  default     = ""
}

variable "kafka_sasl_secret_kms_key_arn" {
  description = "The customer-managed KMS key that encrypts kafka_sasl_secret_arn (MSK requires one for SCRAM secrets); the functions may decrypt with it."
  type        = string
  default     = ""
}

variable "kafka_sasl_password" {
  description = "SASL password (with kafka_sasl_mechanism), when kafka_sasl_secret_arn is not used. It reaches the functions as an environment variable encrypted with the module's KMS key."
  type        = string
  default     = ""
  sensitive   = true
}

variable "subnet_ids" {
  description = "Private subnets the functions run in, to reach a private Kafka (MSK). Empty: no VPC."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of the functions when subnet_ids is set; they must reach the brokers' ports."
  type        = list(string)
  default     = []
}

variable "rotation_days" {
  description = "Secrets Manager rotates the SAS keys (primary -> secondary, new primary) every this many days."
  type        = number
  default     = 30
}

variable "rotation_schedule" {
  description = "Optional extra EventBridge schedule that rotates the keys, e.g. \"rate(7 days)\". Null: only Secrets Manager's rotation."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' and the API's log groups."
  type        = number
  default     = 365
}

variable "log_level" {
  description = "RUST_LOG of the functions (error, warn, info, debug)."
  type        = string
  default     = "info"
}

variable "authorizer_cache_ttl_seconds" {
  description = "How long API Gateway caches an authorizer decision. 0 (default) keeps revocation immediate; with caching a revoked publisher is locked out only after this many seconds (the functions still check it themselves)."
  type        = number
  default     = 0
}

variable "throttling_rate_limit" {
  description = "API Gateway steady-state requests per second for the whole API."
  type        = number
  default     = 1000
}

variable "throttling_burst_limit" {
  description = "API Gateway burst for the whole API."
  type        = number
  default     = 2000
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per function (caps what a flood can cost; -1: no reservation)."
  type        = number
  default     = 100
}

variable "extra_environment" {
  description = "More HUBGATE_* settings for every function, e.g. OAuth: {HUBGATE_OAUTH = \"{issuers = [...], audiences = [...], groups = [...]}\"} (README, Configuration)."
  type        = map(string)
  default     = {}
}

variable "memory_mb" {
  description = "Memory of each function in MB (Lambda gives CPU in proportion)."
  type        = number
  default     = 256
}

variable "streams_function_url" {
  description = "Serve event streams (GET …/stream, Server-Sent Events) from a second kafka-proxy function behind a Lambda function URL with response streaming (API Gateway HTTP APIs cannot stream). Output: streams_url."
  type        = bool
  default     = false
}

variable "streams_timeout_seconds" {
  description = "Timeout of the streams function: the longest one stream lasts before the client reconnects with Last-Event-ID (at most 900)."
  type        = number
  default     = 900
  validation {
    condition     = var.streams_timeout_seconds >= 10 && var.streams_timeout_seconds <= 900
    error_message = "streams_timeout_seconds must be from 10 to 900."
  }
}

variable "cors_allowed_origins" {
  description = "Origins whose browser pages may call hubgate (HUBGATE_CORS__ALLOWED_ORIGINS: exact, or https://*.example.com); also routes OPTIONS preflights past the authorizer to kafka-proxy, which answers them. Empty: CORS off. Per-hub policies: extra_environment or a config file (README, Cross-origin requests)."
  type        = list(string)
  default     = []
}

variable "metrics_enabled" {
  description = "Print the metrics as CloudWatch Embedded Metric Format lines, one per HTTP invocation (HUBGATE_METRICS__ENABLED; namespace hubgate; README, Metrics)."
  type        = bool
  default     = false
}

variable "traces_endpoint" {
  description = "OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces for an ADOT collector layer); empty: traces off (README, Traces)."
  type        = string
  default     = ""
}

variable "audit_key" {
  description = "The audit log's key, base64 of at least 32 bytes (`hubgate key` prints one); empty: audit log off (README, Audit log). Keep the same key for `hubgate audit verify`."
  type        = string
  default     = ""
  sensitive   = true
}

