"""Sends requests to hubgate with httpx (HTTP/2 over TLS when asked) and prints what came back.

stdin: {"base": "https://localhost:PORT", "ca": "ca.pem", "http2": true,
        "requests": [{"method": "POST", "path": "/hub/messages", "headers": {...}, "body": "text"}]}
stdout: [{"status": 201, "http_version": "HTTP/2", "body": "..."}, ...] in request order, all on
one client (so HTTP/2 requests share one connection).
"""

import json
import ssl
import sys

import httpx


def main() -> None:
    spec = json.load(sys.stdin)
    context = ssl.create_default_context(cafile=spec["ca"])
    out = []
    with httpx.Client(
        base_url=spec["base"], verify=context, http2=spec["http2"], http1=not spec["http2"]
    ) as client:
        for r in spec["requests"]:
            answer = client.request(
                r["method"], r["path"], headers=r.get("headers", {}), content=r.get("body")
            )
            out.append(
                {
                    "status": answer.status_code,
                    "http_version": answer.http_version,
                    "body": answer.text,
                }
            )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
