# Event streams (Server-Sent Events, GET …/stream) on AWS: API Gateway HTTP APIs buffer a
# Lambda answer and cut it at 30 s, so streams need a Lambda function URL whose invoke mode is
# RESPONSE_STREAM. The function behind it is kafka-proxy a second time (local.lambdas in
# functions.tf: same code and role) answering as a response stream
# (HUBGATE_LAMBDA_RESPONSE_STREAMING). Each stream lasts at most the function's timeout (hubgate
# ends it 2 s before); the browser's EventSource reconnects with Last-Event-ID and carries on,
# on whichever instance. Off unless streams_function_url is set. hubgate authenticates every
# request itself (SAS or bearer token, in the header or the access_token parameter), so the
# URL's own authorization is NONE, as for the API.

locals {
  streams_function = "kafka-proxy-streams"
  streams_lambda = {
    code        = "kafka-proxy"
    timeout     = var.streams_timeout_seconds
    environment = { HUBGATE_LAMBDA_RESPONSE_STREAMING = "true" }
  }
}

resource "aws_lambda_function_url" "streams" {
  # checkov:skip=CKV_AWS_258:hubgate authenticates every request itself (SAS or OAuth bearer tokens), as behind the API; IAM auth would need SigV4-signing browsers.
  count              = var.streams_function_url ? 1 : 0
  function_name      = aws_lambda_function.fn[local.streams_function].function_name
  authorization_type = "NONE"
  invoke_mode        = "RESPONSE_STREAM"
  # No `cors` block: hubgate answers CORS itself ([cors], HUBGATE_CORS__*), per hub.
}

resource "aws_lambda_permission" "streams_url" {
  count                  = var.streams_function_url ? 1 : 0
  statement_id           = "FunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.fn[local.streams_function].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}
