variable "name" {
  description = "Prefix of every resource name; the Function App is <name>-func (its host <name>-func.azurewebsites.net)."
  type        = string
  default     = "hubgate"
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,15}$", var.name))
    error_message = "name: 3-16 lower-case letters and digits (storage account names allow nothing else)."
  }
}

variable "location" {
  description = "Azure region."
  type        = string
  default     = "westeurope"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "package_zip" {
  description = "The Function App package built by scripts/package-azure (host.json, one folder per route, the hubgate binary)."
  type        = string
  default     = "../../target/azure/hubgate-functions.zip"
}

variable "namespace" {
  description = "Host name SAS tokens are scoped to (sr=https://<namespace>/...): the Function App's host or your custom domain."
  type        = string
}

variable "hubs" {
  description = "Hubs (Kafka topics) reachable through the gateway. Empty: every topic except internal ones."
  type        = list(string)
  default     = []
}

variable "kafka_bootstrap_servers" {
  description = "host:port of one or more Kafka brokers, e.g. an HDInsight Kafka cluster's worker nodes in the VNet (port 9092), or the Event Hubs Kafka endpoint <ns>.servicebus.windows.net:9093 (TLS + PLAIN)."
  type        = list(string)
  validation {
    condition     = length(var.kafka_bootstrap_servers) > 0
    error_message = "Give at least one bootstrap server."
  }
}

variable "kafka_tls" {
  description = "Connect to Kafka over TLS (the system's root certificates). HDInsight Kafka inside a VNet usually listens in plaintext: set false there."
  type        = bool
  default     = true
}

variable "kafka_auth" {
  description = "How the Function App authenticates to Kafka: \"sasl\" (kafka_sasl_mechanism with a user and a password kept in Key Vault, or no SASL) or \"managed_identity\" (the Event Hubs Kafka endpoint with the app's own identity: SASL/OAUTHBEARER, no connection string stored anywhere; needs eventhub_namespace_id)."
  type        = string
  default     = "sasl"
  validation {
    condition     = contains(["sasl", "managed_identity"], var.kafka_auth)
    error_message = "kafka_auth must be \"sasl\" or \"managed_identity\"."
  }
}

variable "eventhub_namespace_id" {
  description = "With kafka_auth = \"managed_identity\": the Event Hubs namespace's resource id. The app's identity gets Azure Event Hubs Data Sender and Data Receiver on it, and nothing else."
  type        = string
  default     = ""
}

variable "eventhub_namespace_host" {
  description = "With kafka_auth = \"managed_identity\": the namespace's host, <namespace>.servicebus.windows.net (the tokens' audience; the Kafka endpoint is this host, port 9093)."
  type        = string
  default     = ""
}

variable "kafka_sasl_mechanism" {
  description = "SASL mechanism: \"\" (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (the Event Hubs Kafka endpoint: PLAIN, user $ConnectionString, password the connection string)."
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

variable "kafka_sasl_password" {
  description = "SASL password (with kafka_sasl_mechanism); stored in Key Vault, read through a Key Vault reference."
  type        = string
  default     = ""
  sensitive   = true
}

variable "sas_rules" {
  description = "The SAS rules as a TOML inline array (HUBGATE_RULES), e.g. [{name = \"RootManageSharedAccessKey\", rights = [\"Manage\"], primary_key = \"<hubgate key>\"}]. Stored in Key Vault; the Function App reads it through a Key Vault reference."
  type        = string
  sensitive   = true
}

variable "subnet_id" {
  description = "Subnet (delegated to Microsoft.Web/serverFarms) for VNet integration, to reach a private Kafka such as HDInsight. Null: no VNet."
  type        = string
  default     = null
}

variable "sku_name" {
  description = "App Service plan SKU. Elastic Premium (EP1-EP3) scales like Consumption and can join a VNet."
  type        = string
  default     = "EP1"
}

variable "log_level" {
  description = "RUST_LOG of the handler (error, warn, info, debug)."
  type        = string
  default     = "info"
}

variable "extra_app_settings" {
  description = "More HUBGATE_* settings, e.g. HUBGATE_OAUTH for bearer tokens (README, Configuration)."
  type        = map(string)
  default     = {}
}
