output "api_url" {
  description = "Base URL of the API (the $default stage): e.g. <api_url>/v1/status."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "sas_rules_secret_arn" {
  description = "The Secrets Manager secret holding the SAS rules: put its first value (README, Deploy on AWS)."
  value       = aws_secretsmanager_secret.sas_rules.arn
}

output "function_names" {
  description = "Lambda function name per hubgate function."
  value       = { for k, f in aws_lambda_function.fn : k => f.function_name }
}

output "kms_key_arn" {
  description = "The KMS key encrypting the secret, the functions' environment and the logs."
  value       = aws_kms_key.hubgate.arn
}

output "streams_url" {
  description = "Base URL of the event-stream function (streams_function_url): e.g. <streams_url>/<hub>/consumergroups/$Default/stream. Empty when off."
  value       = var.streams_function_url ? aws_lambda_function_url.streams[0].function_url : ""
}
