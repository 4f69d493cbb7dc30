"""Checks an MSK IAM token against Amazon's reference signer (aws-msk-iam-sasl-signer-python).

Usage: msk_token.py REGION HUBGATE_TOKEN
Credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN). Prints one JSON object: the fields both tokens must agree on, decoded
from each, and whether botocore's SigV4 presigner, run at hubgate's X-Amz-Date with the same
credentials, computes exactly hubgate's signature.
"""
import base64
import json
import sys
from urllib.parse import parse_qs, urlsplit

import botocore.auth
import botocore.awsrequest
import botocore.session
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

region, hubgate_token = sys.argv[1], sys.argv[2]


def decode(token):
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return url, parts, query


def fields(token):
    url, parts, query = decode(token)
    credential = query["X-Amz-Credential"].split("/")
    return {
        "scheme": parts.scheme,
        "host": parts.netloc,
        "path": parts.path,
        "action": query["Action"],
        "algorithm": query["X-Amz-Algorithm"],
        "access_key": credential[0],
        "scope": "/".join(credential[2:]),
        "expires": query["X-Amz-Expires"],
        "signed_headers": query["X-Amz-SignedHeaders"],
        "session_token": query.get("X-Amz-Security-Token"),
    }


reference, _expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
ours, _, query = decode(hubgate_token)

# botocore's SigV4 presigner at hubgate's time (the context's timestamp is the one the
# signer's own steps read), on the URL before signing.
credentials = botocore.session.Session().get_credentials()
request = botocore.awsrequest.AWSRequest(
    method="GET",
    url=f"https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect",
)
signer = botocore.auth.SigV4QueryAuth(credentials, "kafka-cluster", region, expires=900)
request.context["timestamp"] = query["X-Amz-Date"]
signer._modify_request_before_signing(request)
canonical = signer.canonical_request(request)
signature = signer.signature(signer.string_to_sign(request, canonical), request)

print(
    json.dumps(
        {
            "reference": fields(reference),
            "hubgate": fields(hubgate_token),
            "signature_recomputed": signature == query["X-Amz-Signature"],
            "hubgate_date": query["X-Amz-Date"],
            "reference_date": decode(reference)[2]["X-Amz-Date"],
        }
    )
)
