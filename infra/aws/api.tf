# The HTTP API: one route per route of the routers (local.routes), each through the REQUEST
# authorizer (payload 2.0, simple responses), the public GET /openapi.json, and the $default
# route to kafka-proxy.

resource "aws_apigatewayv2_api" "hubgate" {
  name          = var.name
  description   = "hubgate: HTTPS front door to Kafka (HDInsight /v1 and Event Hubs REST APIs)"
  protocol_type = "HTTP"
}

resource "aws_cloudwatch_log_group" "api" {
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.hubgate.arn
}

# The $default stage: paths reach the functions without a stage prefix, which the authorizer's
# route table expects (a named stage would prefix rawPath with its name).
resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.hubgate.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      latencyMs          = "$context.responseLatency"
      integrationStatus  = "$context.integrationStatus"
      authorizerError    = "$context.authorizer.error"
      principal          = "$context.authorizer.principal"
      sourceIp           = "$context.identity.sourceIp"
      integrationLatency = "$context.integrationLatency"
    })
  }
}

resource "aws_apigatewayv2_integration" "fn" {
  for_each               = local.functions
  api_id                 = aws_apigatewayv2_api.hubgate.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.fn[each.key].invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_authorizer" "hubgate" {
  api_id                            = aws_apigatewayv2_api.hubgate.id
  name                              = "${var.name}-authorizer"
  authorizer_type                   = "REQUEST"
  authorizer_uri                    = aws_lambda_function.fn["authorizer"].invoke_arn
  authorizer_payload_format_version = "2.0"
  enable_simple_responses           = true
  # The decision depends on the credential, the method and the path (hub, publisher): all
  # three make the cache key, or a cached "allow" for one hub would open another.
  identity_sources                 = ["$request.header.Authorization", "$context.httpMethod", "$context.path"]
  authorizer_result_ttl_in_seconds = var.authorizer_cache_ttl_seconds
}

resource "aws_apigatewayv2_route" "route" {
  for_each           = local.routes
  api_id             = aws_apigatewayv2_api.hubgate.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.fn[each.value].id}"
  authorization_type = "CUSTOM"
  authorizer_id      = aws_apigatewayv2_authorizer.hubgate.id
}

# CORS preflights (cors_allowed_origins): OPTIONS carries no credential, so it skips the
# authorizer and reaches kafka-proxy, whose [cors] layer answers it before any route or
# credential check (hubgate's own CORS answers, not API Gateway's cors_configuration, which
# would replace them and cannot hold per-hub policies).
resource "aws_apigatewayv2_route" "preflight" {
  #checkov:skip=CKV_AWS_309:preflights carry no credential by the Fetch standard; hubgate answers them with CORS headers only, never data
  count              = length(var.cors_allowed_origins) > 0 ? 1 : 0
  api_id             = aws_apigatewayv2_api.hubgate.id
  route_key          = "OPTIONS /{proxy+}"
  target             = "integrations/${aws_apigatewayv2_integration.fn["kafka-proxy"].id}"
  authorization_type = "NONE"
}

# GET /openapi.json, the API description, is public: clients and tools fetch it without a
# credential (API Gateway would answer 401 before the authorizer ran, Authorization being an
# identity source).
resource "aws_apigatewayv2_route" "openapi" {
  #checkov:skip=CKV_AWS_309:the API description is public on purpose; it holds no data and every other route is behind the authorizer
  api_id             = aws_apigatewayv2_api.hubgate.id
  route_key          = "GET /openapi.json"
  target             = "integrations/${aws_apigatewayv2_integration.fn[local.openapi_route_function].id}"
  authorization_type = "NONE"
}

resource "aws_apigatewayv2_route" "default" {
  api_id             = aws_apigatewayv2_api.hubgate.id
  route_key          = "$default"
  target             = "integrations/${aws_apigatewayv2_integration.fn[local.default_route_function].id}"
  authorization_type = "CUSTOM"
  authorizer_id      = aws_apigatewayv2_authorizer.hubgate.id
}

resource "aws_lambda_permission" "api" {
  for_each      = local.functions
  statement_id  = "ApiGatewayInvokes"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.hubgate.execution_arn}/*/*"
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "ApiGatewayAuthorizes"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["authorizer"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.hubgate.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.hubgate.id}"
}
