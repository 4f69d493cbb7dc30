output "url" {
  description = "Base URL of the gateway: e.g. <url>/v1/status."
  value       = "https://${azurerm_linux_function_app.hubgate.default_hostname}"
}

output "function_app_name" {
  description = "The Function App (for az functionapp commands)."
  value       = azurerm_linux_function_app.hubgate.name
}

output "key_vault_name" {
  description = "The Key Vault holding the SAS rules (secret sas-rules)."
  value       = azurerm_key_vault.hubgate.name
}
