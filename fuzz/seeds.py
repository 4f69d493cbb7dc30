#!/usr/bin/env python3
"""Writes the hand-made seed inputs of each fuzz target into corpus/<target>/seed-*.

Run once when a target is added (`python3 fuzz/seeds.py`); what the fuzzer finds later is
committed beside the seeds. The SAS seeds are signed with the keys of
crates/core/src/fuzzing.rs (RULES) so that the fuzzer starts past the signature check.
"""
import base64, hashlib, hmac, json, os, struct, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "fuzz.servicebus.windows.net"
NOW = 1_700_000_000
RULES = [
    ("RootManageSharedAccessKey", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
    ("hub-send", "r9rdIglXNiIPN2Lgj/HyhgOuq+aGht0qH3n+/lYQhfo="),
]


def enc(s):  # JavaScript's encodeURIComponent
    return urllib.parse.quote(s, safe="-_.!~*'()")


def mint(uri, rule, key, se):
    sr = enc(uri)
    sig = base64.b64encode(hmac.new(key.encode(), f"{sr}\n{se}".encode(), hashlib.sha256).digest()).decode()
    return f"SharedAccessSignature sr={sr}&sig={enc(sig)}&se={se}&skn={enc(rule)}"


def write(target, items):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for i, data in enumerate(items):
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, f"seed-{i:02}"), "wb") as f:
            f.write(data)


vectors = json.load(open(os.path.join(HERE, "../../shared/vectors/sas-sdk-vectors.json")))["vectors"]
sdk_tokens = [t["token"] for v in vectors for t in v["tokens"]]
uris = [
    f"https://{NS}/hub/publishers/dev-1",
    f"https://{NS}/hub",
    f"sb://{NS}/hub/consumergroups/$Default",
    f"amqps://{NS}",
    f"{NS}/HUB/Publishers/Dev%20ice%2F01/",
    f"http://{NS}:443/other/publishers/x",
    f"https://elsewhere.example/hub",
]
signed = [mint(u, *RULES[i % 2], NOW + 3600) for i, u in enumerate(uris)]
write("sas_parse_verify", signed + sdk_tokens + [
    mint(uris[0], *RULES[0], NOW - 1),
    "SharedAccessSignature sr=a&sig=b&se=1&skn=c&sr=a",
    "SharedAccessSignature sig=&se=1",
    "Bearer eyJhbGciOiJub25lIn0.e30.",
])
write("sas_mint_roundtrip", [struct.pack("<Q", NOW + 60) + bytes([i % 2]) + u.encode() for i, u in enumerate(uris)]
      + [struct.pack("<Q", 0) + b"\x00" + b"sb://" + NS.encode() + b"/h\xc3\xa9/publishers/\xe2\x80\x8b"])
write("scope_parse", uris + [urllib.parse.unquote(v["uri"]) for v in vectors] + [
    "ftp://x/y", "https://ns/a//b", "ns/a%2", "ns/%E2%82%AC/%C3%A9", "ns/a?b", "https://NS:9093/",
])
write("produce_body", [
    '{"records":[{"value":"hello"}]}',
    '{"records":[{"key":"k","value":{"t":22.5,"a":[1,true,null]},"partition":0,"headers":{"h":"v"}}]}',
    '{"records":[{"value":null},{"key":1e5,"partition":2}]}',
    '{"records":[{"value":"caf\\u00e9 \\ud83d\\ude00"}]}',
    '{"records":[]}', '{"records":[{"partition":-1}]}', '{"records":[{"valeu":1}]}',
])
write("batch_body", [
    '[{"Body":"hello"}]',
    '[{"Body":"aGk=","IsBodyBase64":true,"UserProperties":{"a":"x","n":1,"b":true},"BrokerProperties":{"PartitionKey":"k","Label":"x"}},{"Body":{"j":1}}]',
    '[{"Body":"x","UserProperties":{"a":[1]}}]',
    '[{"Body":1,"IsBodyBase64":true}]', '[]', '{}',
])
