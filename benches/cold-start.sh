#!/usr/bin/env bash
# Cold start of a hubgate binary: process start -> first 200 on /v1/status, N runs each,
# (a) SAS rules from the config file, (b) SAS rules from AWS Secrets Manager (moto on
# loopback: SDK set-up plus one GetSecretValue). Reports medians in ms.
# Usage: benches/cold-start.sh [BINARY] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/hubgate}"
runs="${2:-20}"
py="$(scripts/python-env)"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
key() { "$bin" key; }

kafka_port=$(free_port)
(cd "$work" && exec "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" broker --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" --storage-engine memory://tansu/ >tansu.log 2>&1) &
moto_port=$(free_port)
"$(dirname "$py")/moto_server" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null && break; sleep 0.1; done
k=$(key)
rules="{\"rules\":[{\"name\":\"r\",\"rights\":[\"Listen\"],\"primary_key\":\"$k\"}]}"
curl -s -o /dev/null -X POST "http://127.0.0.1:$moto_port" -H 'x-amz-target: secretsmanager.CreateSecret' \
  -H 'content-type: application/x-amz-json-1.1' \
  -H 'authorization: AWS4-HMAC-SHA256 Credential=t/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0' \
  -d "{\"Name\":\"cold\",\"SecretString\":$(printf '%s' "$rules" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}"

cat >"$work/file.toml" <<TOML
namespace = "localhost"
[kafka]
bootstrap_servers = ["127.0.0.1:$kafka_port"]
[[rules]]
name = "r"
rights = ["Listen"]
primary_key = "$k"
TOML
cat >"$work/secret.toml" <<TOML
namespace = "localhost"
secret_id = "cold"
[kafka]
bootstrap_servers = ["127.0.0.1:$kafka_port"]
TOML
token=$("$bin" token --config "$work/file.toml" --right listen)

measure() { # config -> ms to first 200
  local port; port=$(free_port)
  local start; start=$(date +%s%N)
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=t AWS_SECRET_ACCESS_KEY=t \
    AWS_EC2_METADATA_DISABLED=true RUST_LOG=error "$bin" serve --config "$1" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
  local pid=$!
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $token" "http://127.0.0.1:$port/v1/status")" = 200 ]; do sleep 0.001; done
  local end; end=$(date +%s%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo $(( (end - start) / 1000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]/1000}'; }
for mode in file secret; do
  printf '%-7s rules: median %s ms to first 200 over %s runs\n' "$mode" \
    "$(for _ in $(seq "$runs"); do measure "$work/$mode.toml"; done | median)" "$runs"
done
