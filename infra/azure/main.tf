# hubgate on Azure: the all-in-one `hubgate` binary as the custom handler of a Linux Function
# App (functions/azure: host.json and one function.json per route), on an Elastic Premium plan
# that can join a VNet to reach a private Kafka (HDInsight). SAS rules live in Key Vault and
# reach the handler through a Key Vault reference. Build the package first: scripts/package-azure.

data "azurerm_client_config" "current" {}

locals {
  tags = merge({ application = "hubgate" }, var.tags)
  kafka_sasl = var.kafka_auth == "managed_identity" ? {
    # Tokens from the app's own identity (README, Broker credentials without passwords).
    HUBGATE_KAFKA__SASL_MECHANISM  = "OAUTHBEARER"
    HUBGATE_KAFKA__OAUTH__SOURCE   = "azure_managed_identity"
    HUBGATE_KAFKA__OAUTH__RESOURCE = "https://${var.eventhub_namespace_host}"
    } : var.kafka_sasl_mechanism == "" ? {} : {
    HUBGATE_KAFKA__SASL_MECHANISM = var.kafka_sasl_mechanism
    HUBGATE_KAFKA__SASL_USERNAME  = var.kafka_sasl_username
    HUBGATE_KAFKA__SASL_PASSWORD  = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.kafka_sasl_password[0].versionless_id})"
  }
}

resource "azurerm_resource_group" "hubgate" {
  name     = "${var.name}-rg"
  location = var.location
  tags     = local.tags
}

# --- The Functions host's storage (its own bookkeeping; hubgate keeps nothing here) ----------

resource "azurerm_storage_account" "host" {
  # checkov:skip=CKV2_AZURE_1:The Functions host's own bookkeeping (leases, keys); Microsoft-managed encryption is enough, hubgate stores no data here.
  # checkov:skip=CKV2_AZURE_33:A private endpoint needs a VNet plan with private DNS; add one when the app joins a VNet (subnet_id).
  # checkov:skip=CKV_AZURE_33:No queues are used (only HTTP triggers), so there is no queue traffic to log.
  # checkov:skip=CKV_AZURE_35:The Functions host reaches its storage over the public endpoint unless the app and storage share a VNet; restrict with network rules when subnet_id is set.
  # checkov:skip=CKV_AZURE_59:As CKV_AZURE_35: without a shared VNet the Functions host needs the public endpoint (with shared keys off, access is by the app's identity only).
  # checkov:skip=CKV_AZURE_206:Host bookkeeping only: locally redundant storage is enough.
  # checkov:skip=CKV2_AZURE_38:Host bookkeeping only: nothing worth keeping after deletion.
  # checkov:skip=CKV2_AZURE_41:No SAS tokens are issued for this account.
  name                            = "${var.name}host"
  resource_group_name             = azurerm_resource_group.hubgate.name
  location                        = azurerm_resource_group.hubgate.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = false
  local_user_enabled              = false
  tags                            = local.tags
}

# The Function App reaches its storage with its managed identity, not a key.
resource "azurerm_role_assignment" "host_storage" {
  for_each             = toset(["Storage Blob Data Owner", "Storage Queue Data Contributor", "Storage Table Data Contributor"])
  scope                = azurerm_storage_account.host.id
  role_definition_name = each.key
  principal_id         = azurerm_linux_function_app.hubgate.identity[0].principal_id
}

# --- SAS rules in Key Vault -------------------------------------------------------------------

resource "azurerm_key_vault" "hubgate" {
  # checkov:skip=CKV2_AZURE_32:A private endpoint needs a VNet plan with private DNS; add one when the app joins a VNet (subnet_id).
  # checkov:skip=CKV_AZURE_189:The Function App resolves Key Vault references over the public endpoint unless it joins a VNet; access is by RBAC to the app's identity only.
  # checkov:skip=CKV_AZURE_109:As above: network ACLs would lock out the Function App outside a VNet; RBAC limits access to the app's identity.
  name                       = "${var.name}-kv"
  resource_group_name        = azurerm_resource_group.hubgate.name
  location                   = azurerm_resource_group.hubgate.location
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  enable_rbac_authorization  = true
  purge_protection_enabled   = true
  soft_delete_retention_days = 90
  tags                       = local.tags
}

resource "azurerm_key_vault_secret" "sas_rules" {
  # checkov:skip=CKV_AZURE_41:SAS keys are rotated by replacing this secret's value (README, Deploy on Azure), not by expiry; an expired secret would lock every client out.
  name         = "sas-rules"
  key_vault_id = azurerm_key_vault.hubgate.id
  value        = var.sas_rules
  content_type = "application/toml"
  depends_on   = [azurerm_role_assignment.deployer_secrets]
}

resource "azurerm_key_vault_secret" "kafka_sasl_password" {
  # checkov:skip=CKV_AZURE_41:The broker's password changes when the broker's does, not on a schedule here.
  count        = var.kafka_auth == "sasl" && var.kafka_sasl_mechanism != "" ? 1 : 0
  name         = "kafka-sasl-password"
  key_vault_id = azurerm_key_vault.hubgate.id
  value        = var.kafka_sasl_password
  content_type = "text/plain"
  depends_on   = [azurerm_role_assignment.deployer_secrets]
}

# Whoever runs terraform writes the secret; the Function App only reads it.
resource "azurerm_role_assignment" "deployer_secrets" {
  scope                = azurerm_key_vault.hubgate.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_role_assignment" "app_secrets" {
  scope                = azurerm_key_vault.hubgate.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_linux_function_app.hubgate.identity[0].principal_id
}

# With kafka_auth = "managed_identity" the app's identity sends and reads through the Event Hubs
# Kafka endpoint with these two data roles on the namespace, and nothing more (no Owner, no
# management rights; hubs and consumer-group store topics must exist, or be created there).
resource "azurerm_role_assignment" "eventhubs_data" {
  for_each             = var.kafka_auth == "managed_identity" ? toset(["Azure Event Hubs Data Sender", "Azure Event Hubs Data Receiver"]) : toset([])
  scope                = var.eventhub_namespace_id
  role_definition_name = each.key
  principal_id         = azurerm_linux_function_app.hubgate.identity[0].principal_id

  lifecycle {
    precondition {
      condition     = var.eventhub_namespace_id != "" && var.eventhub_namespace_host != ""
      error_message = "kafka_auth = \"managed_identity\" needs eventhub_namespace_id and eventhub_namespace_host."
    }
  }
}

# --- The Function App -------------------------------------------------------------------------

resource "azurerm_service_plan" "hubgate" {
  # checkov:skip=CKV_AZURE_212:Elastic Premium scales out on demand; the instance count is the platform's, not fixed here.
  # checkov:skip=CKV_AZURE_225:Zone redundancy needs at least three always-on instances; choose it per deployment.
  name                = "${var.name}-plan"
  resource_group_name = azurerm_resource_group.hubgate.name
  location            = azurerm_resource_group.hubgate.location
  os_type             = "Linux"
  sku_name            = var.sku_name
  tags                = local.tags
}

resource "azurerm_linux_function_app" "hubgate" {
  # checkov:skip=CKV_AZURE_221:hubgate is the public HTTPS front door; every request is authenticated by hubgate itself (SAS or OAuth).
  # checkov:skip=CKV_AZURE_56:App Service authentication would demand Entra ID sign-in; hubgate checks SAS and bearer tokens itself.
  name                          = "${var.name}-func"
  resource_group_name           = azurerm_resource_group.hubgate.name
  location                      = azurerm_resource_group.hubgate.location
  service_plan_id               = azurerm_service_plan.hubgate.id
  storage_account_name          = azurerm_storage_account.host.name
  storage_uses_managed_identity = true
  https_only                    = true
  zip_deploy_file               = var.package_zip
  virtual_network_subnet_id     = var.subnet_id
  tags                          = local.tags

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_stack {
      use_custom_runtime = true
    }
    minimum_tls_version    = "1.2"
    ftps_state             = "Disabled"
    http2_enabled          = true
    vnet_route_all_enabled = var.subnet_id != null
  }

  app_settings = merge({
    FUNCTIONS_WORKER_RUNTIME         = "custom"
    HUBGATE_NAMESPACE                = var.namespace
    HUBGATE_HUBS                     = join(",", var.hubs)
    HUBGATE_KAFKA__BOOTSTRAP_SERVERS = join(",", var.kafka_bootstrap_servers)
    HUBGATE_KAFKA__TLS               = tostring(var.kafka_tls)
    HUBGATE_RULES                    = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.sas_rules.versionless_id})"
    HUBGATE_LOG_FORMAT               = "json"
    RUST_LOG                         = var.log_level
  }, local.kafka_sasl, var.extra_app_settings)
}
